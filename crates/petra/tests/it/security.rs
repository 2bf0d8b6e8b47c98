//! `petra user add|list|remove` and `petra audit verify` through the binary: the users file,
//! the audit log of user changes, and the exit codes.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PASSWORD: &str = "a long enough password";

fn petra(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_petra"));
    c.args(args).env("USER", "tester").env_remove("SUDO_USER");
    c
}

/// Runs `petra ARGS` with `stdin` as its standard input.
fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = petra(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It may exit before reading (a refused name): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> Output {
    petra(args).stdin(Stdio::null()).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[track_caller]
fn exit(o: &Output, code: i32) -> (String, String) {
    let (out, err) = text(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    (out, err)
}

/// A configuration with a `server` section and an audit log, in a temp dir.
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("plant.yaml");
    std::fs::write(
        &path,
        "plant: demo\ndata_dir: data\nserver:\n  users_file: users.yaml\n  audit_log: audit.jsonl\n",
    )
    .unwrap();
    path
}

/// `petra user add NAME --role ROLE --password-stdin` (also used by the API tests).
pub(crate) fn add(config: &Path, name: &str, role: &str, password: &str) -> Output {
    let c = config.to_str().unwrap();
    run_with_stdin(
        &[
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--config",
            c,
        ],
        &format!("{password}\n"),
    )
}

#[test]
fn users_are_added_listed_without_hashes_and_removed_with_an_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let c = cfg.to_str().unwrap();
    let (out, _) = exit(&add(&cfg, "alice", "operator", PASSWORD), 0);
    assert!(
        out.contains("added user `alice` with role operator"),
        "{out}"
    );
    exit(&add(&cfg, "bob", "admin", PASSWORD), 0);

    let users_file = dir.path().join("data/users.yaml");
    let stored = std::fs::read_to_string(&users_file).unwrap();
    assert!(stored.contains("$argon2id$"), "{stored}");
    assert!(!stored.contains(PASSWORD));
    let mode = std::fs::metadata(&users_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let (out, _) = exit(&run(&["user", "list", "--config", c]), 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("NAME"), "{out}");
    assert!(lines[1].starts_with("alice  operator"), "{out}");
    assert!(lines[2].starts_with("bob    admin"), "{out}");
    assert!(!out.contains("argon2"), "{out}");
    assert!(!out.contains(PASSWORD), "{out}");

    let (out, _) = exit(&run(&["user", "remove", "alice", "--config", c]), 0);
    assert!(out.contains("removed user `alice`"), "{out}");
    let (out, _) = exit(&run(&["user", "list", "--config", c]), 0);
    assert!(!out.contains("alice"), "{out}");
    assert!(out.contains("bob"), "{out}");

    // Three changes, three audit lines with the OS user and no secret.
    let audit = dir.path().join("data/audit.jsonl");
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(!log.contains(PASSWORD) && !log.contains("argon2"), "{log}");
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(&str, &str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["user"].as_str().unwrap(),
                e["source"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("tester", "cli", "user.add", "alice"),
            ("tester", "cli", "user.add", "bob"),
            ("tester", "cli", "user.remove", "alice"),
        ]
    );
    assert_eq!(entries[0]["new"]["role"], "operator");
    assert_eq!(entries[2]["old"]["role"], "operator");

    let (out, _) = exit(&run(&["audit", "verify", audit.to_str().unwrap()]), 0);
    assert!(out.contains("intact (3 entries)"), "{out}");
}

#[test]
fn audit_verify_exits_1_on_a_tampered_log_and_prints_the_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    for name in ["alice", "bob", "carol"] {
        exit(&add(&cfg, name, "viewer", PASSWORD), 0);
    }
    let audit = dir.path().join("data/audit.jsonl");
    let a = audit.to_str().unwrap();
    exit(&run(&["audit", "verify", a]), 0);

    // Someone turns bob into an admin after the fact.
    let good = std::fs::read_to_string(&audit).unwrap();
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    lines[1] = lines[1].replace("\"viewer\"", "\"admin\"");
    std::fs::write(&audit, lines.join("\n") + "\n").unwrap();
    let (out, _) = exit(&run(&["audit", "verify", a]), 1);
    assert!(out.contains(&format!("{a}:3: tampered: ")), "{out}");
    assert!(out.contains("line 2 was edited"), "{out}");
    assert!(out.contains("3 | {\"ts\""), "{out}");

    // A removed line.
    let mut lines: Vec<&str> = good.lines().collect();
    lines.remove(0);
    std::fs::write(&audit, lines.join("\n") + "\n").unwrap();
    let (out, _) = exit(&run(&["audit", "verify", a]), 1);
    assert!(out.contains(&format!("{a}:1: tampered: ")), "{out}");

    // And a tampered log stops further user changes: they could not be audited.
    let (_, err) = exit(&add(&cfg, "dave", "viewer", PASSWORD), 1);
    assert!(err.contains("could not be audited"), "{err}");
    assert!(err.contains("broken at line 1"), "{err}");
    let (out, _) = exit(
        &run(&["user", "list", "--config", cfg.to_str().unwrap()]),
        0,
    );
    assert!(!out.contains("dave"), "{out}");

    // A missing file is an error too.
    let (_, err) = exit(&run(&["audit", "verify", "/nonexistent/audit.jsonl"]), 1);
    assert!(
        err.contains("cannot open /nonexistent/audit.jsonl"),
        "{err}"
    );
}

#[test]
fn user_commands_refuse_bad_input_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let c = cfg.to_str().unwrap();

    let (_, err) = exit(&add(&cfg, "alice", "viewer", "too short"), 1);
    assert!(err.contains("at least 12"), "{err}");
    let (_, err) = exit(&add(&cfg, "9lives", "viewer", PASSWORD), 1);
    assert!(err.contains("user name `9lives` is not valid"), "{err}");
    exit(&add(&cfg, "alice", "viewer", PASSWORD), 0);
    let (_, err) = exit(&add(&cfg, "alice", "admin", PASSWORD), 1);
    assert!(err.contains("user `alice` already exists"), "{err}");
    let (_, err) = exit(&add(&cfg, "bob", "root", PASSWORD), 2);
    assert!(err.contains("unknown role `root`"), "{err}");
    let (_, err) = exit(&run(&["user", "remove", "nobody", "--config", c]), 1);
    assert!(err.contains("no user `nobody`"), "{err}");

    // No --password-stdin and no terminal: refused, not hanging on a prompt.
    let (_, err) = exit(
        &run(&["user", "add", "bob", "--role", "viewer", "--config", c]),
        1,
    );
    assert!(err.contains("--password-stdin"), "{err}");

    // A readable users file is refused: it holds password hashes.
    let users_file = dir.path().join("data/users.yaml");
    std::fs::set_permissions(&users_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_, err) = exit(&run(&["user", "list", "--config", c]), 1);
    assert!(err.contains("chmod 600"), "{err}");

    // A configuration without `server`, and an invalid one.
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, "plant: demo\n").unwrap();
    let (_, err) = exit(
        &run(&["user", "list", "--config", plain.to_str().unwrap()]),
        1,
    );
    assert!(err.contains("has no `server` section"), "{err}");
    std::fs::write(&plain, "plant: demo\nserver: { listen: 0.0.0.0:8080 }\n").unwrap();
    let (_, err) = exit(
        &run(&["user", "list", "--config", plain.to_str().unwrap()]),
        1,
    );
    assert!(err.contains("error[insecure-listen]"), "{err}");
}
