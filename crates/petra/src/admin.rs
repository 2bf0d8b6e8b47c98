//! `petra user add|list|remove|token|revoke` and `petra audit verify`: the command-line face of
//! `petra_server`'s users file and audit log (docs/security.md).
//!
//! The configuration is loaded through the normal path only to find `data_dir` and the
//! `server` section (users file, audit log). User changes are recorded in the audit log, when
//! there is one, as the operating-system user from source `cli`; the audit log is opened (and
//! its chain checked) before anything changes, so a broken log stops the change.

use anyhow::{Context, anyhow, bail};
use petra_config::ServerPlan;
use petra_server::{AuditEvent, AuditLog, Role, ServerError, Users};
use serde_json::json;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

/// The `server` section of the configuration at `config`.
fn server_plan(config: &Path) -> anyhow::Result<ServerPlan> {
    let plan = match petra_config::load(config, &petra_blocks::builtin()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            bail!("{} is not valid; nothing was changed", config.display());
        }
    };
    plan.server.ok_or_else(|| {
        anyhow!(
            "{} has no `server` section, which names the users file; add one (`server: {{}}` \
             keeps every default) — see docs/security.md",
            config.display()
        )
    })
}

/// Who is running the command, for the audit log.
fn os_user() -> String {
    for var in ["SUDO_USER", "USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var)
            && !u.is_empty()
        {
            return u;
        }
    }
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| format!("uid {}", m.uid()))
        .unwrap_or_else(|_| "unknown".into())
}

fn open_audit(server: &ServerPlan) -> anyhow::Result<Option<AuditLog>> {
    server
        .audit_log
        .as_deref()
        .map(AuditLog::open)
        .transpose()
        .context("the change was not made, because it could not be audited")
}

fn audit(log: Option<&AuditLog>, event: AuditEvent) -> anyhow::Result<()> {
    if let Some(log) = log {
        log.append(&event, SystemTime::now()).with_context(|| {
            format!(
                "the change was made, but recording it in the audit log {} failed",
                log.path().display()
            )
        })?;
    }
    Ok(())
}

/// The new user's password: one line from stdin, or typed twice on the terminal.
fn read_password(name: &str, from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the password from stdin")?;
        let pw = s
            .strip_suffix('\n')
            .map(|p| p.strip_suffix('\r').unwrap_or(p))
            .unwrap_or(&s);
        if pw.contains('\n') {
            bail!("the password on stdin has more than one line; give exactly one");
        }
        return Ok(pw.to_string());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no terminal to ask for the password on; pipe it in with --password-stdin \
             (e.g. `printf '%s' \"$PASSWORD\" | petra user add {name} … --password-stdin`)"
        );
    }
    let first = rpassword::prompt_password(format!("Password for {name}: "))
        .context("cannot read the password from the terminal")?;
    let second = rpassword::prompt_password("Again: ")
        .context("cannot read the password from the terminal")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

pub fn user_add(config: &Path, name: &str, role: Role, password_stdin: bool) -> anyhow::Result<()> {
    let server = server_plan(config)?;
    let log = open_audit(&server)?;
    let mut users = Users::load(&server.users_file)?;
    users.check_new(name)?;
    let password = read_password(name, password_stdin)?;
    users.add(name, role, &password, SystemTime::now())?;
    users.save()?;
    audit(
        log.as_ref(),
        AuditEvent::new(os_user(), "cli", "user.add", name)
            .change(json!(null), json!({ "role": role })),
    )?;
    println!(
        "added user `{name}` with role {role} to {}",
        server.users_file.display()
    );
    Ok(())
}

pub fn user_list(config: &Path) -> anyhow::Result<()> {
    let server = server_plan(config)?;
    let users = Users::load(&server.users_file)?;
    if users.is_empty() {
        println!(
            "no users in {}; add one with `petra user add NAME --role admin --config {}`",
            server.users_file.display(),
            config.display()
        );
        return Ok(());
    }
    let rows: Vec<[String; 4]> = users
        .list()
        .into_iter()
        .map(|u| {
            let tokens = if u.tokens.is_empty() {
                "-".to_string()
            } else {
                u.tokens
                    .iter()
                    .map(|t| format!("{} ({})", t.name, t.role))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            [
                u.name,
                u.role.to_string(),
                humantime::format_rfc3339_seconds(u.created).to_string(),
                tokens,
            ]
        })
        .collect();
    let header = ["NAME", "ROLE", "CREATED", "API TOKENS"].map(String::from);
    let mut width = [0usize; 3];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        );
    }
    Ok(())
}

pub fn user_remove(config: &Path, name: &str) -> anyhow::Result<()> {
    let server = server_plan(config)?;
    let log = open_audit(&server)?;
    let mut users = Users::load(&server.users_file)?;
    let removed = users.remove(name)?;
    users.save()?;
    audit(
        log.as_ref(),
        AuditEvent::new(os_user(), "cli", "user.remove", name)
            .change(json!({ "role": removed.role }), json!(null)),
    )?;
    println!("removed user `{name}` from {}", server.users_file.display());
    if users.is_empty() {
        println!(
            "there are no users left; the next `petra run` creates `admin` with a new password"
        );
    }
    Ok(())
}

/// Exit status 0 when the chain is intact, 1 when it is broken or the file cannot be read.
pub fn audit_verify(file: &Path) -> ExitCode {
    match petra_server::verify_audit_log(file) {
        Ok(n) => {
            println!("{}: intact ({n} entries)", file.display());
            ExitCode::SUCCESS
        }
        Err(ServerError::AuditBroken { line, problem, .. }) => {
            println!("{}:{line}: tampered: {problem}", file.display());
            if let Some(text) = nth_line(file, line) {
                println!("{line} | {text}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Line `n` (1-based) of `file`, shortened for the terminal.
fn nth_line(file: &Path, n: u64) -> Option<String> {
    let bytes = std::fs::read(file).ok()?;
    let line = bytes
        .split(|b| *b == b'\n')
        .nth(usize::try_from(n).ok()? - 1)?;
    let text = String::from_utf8_lossy(line);
    const MAX: usize = 300;
    Some(if text.chars().count() > MAX {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    } else {
        text.into_owned()
    })
}

pub fn token_create(
    config: &Path,
    owner: &str,
    token_name: &str,
    role: Option<Role>,
) -> anyhow::Result<()> {
    let server = server_plan(config)?;
    let log = open_audit(&server)?;
    let mut users = Users::load(&server.users_file)?;
    let role = match role {
        Some(r) => r,
        None => users
            .get(owner)
            .map(|u| u.role)
            .ok_or_else(|| anyhow!("no user `{owner}` in {}", server.users_file.display()))?,
    };
    let token = users.create_token(owner, token_name, role, SystemTime::now())?;
    users.save()?;
    audit(
        log.as_ref(),
        AuditEvent::new(
            os_user(),
            "cli",
            "token.create",
            format!("{owner}/{token_name}"),
        )
        .change(json!(null), json!({ "role": role })),
    )?;
    eprintln!("API token `{token_name}` of `{owner}` (role {role}); shown once, store it now:");
    println!("{}", token.expose());
    Ok(())
}

pub fn token_revoke(config: &Path, owner: &str, token_name: &str) -> anyhow::Result<()> {
    let server = server_plan(config)?;
    let log = open_audit(&server)?;
    let mut users = Users::load(&server.users_file)?;
    users.revoke_token(owner, token_name)?;
    users.save()?;
    audit(
        log.as_ref(),
        AuditEvent::new(
            os_user(),
            "cli",
            "token.revoke",
            format!("{owner}/{token_name}"),
        ),
    )?;
    println!("revoked API token `{token_name}` of `{owner}`");
    Ok(())
}
