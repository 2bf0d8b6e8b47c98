//! The `petra` command: CLI parsing and dispatch. See docs/cli.md.

mod admin;
mod alarms;
mod bench;
mod probe;
mod retain;
mod rt;
mod run;
mod scenario;

/// jemalloc, not glibc's malloc. The soak (50,000 changes/s recorded and published) measured,
/// in one run: glibc 62 MiB and creeping about 0.03 MiB a minute even with a periodic
/// `malloc_trim` (its per-thread arenas fragment); glibc limited to 2 arenas 43 MiB, flat, but
/// 11 % more CPU; jemalloc 43 MiB, flat, 7 % less CPU than glibc; mimalloc 80–90 MiB. Idle,
/// jemalloc is within 1 MB of glibc (the quickstart: 25.4 against 24.4 MB) and holds 0.44 MB per
/// 1,000 signals against 0.66. The cost is jemalloc's C build, about a minute once.
///
/// Unprefixed (`malloc` itself is jemalloc's): the C code linked in allocates from it too. The
/// zstd contexts the Parquet writer creates for every column chunk otherwise came from glibc's
/// arenas, which grew by steps the soak saw (docs/performance.md, "Allocator").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: background threads return freed pages to the OS
/// after its decay time (10 s) even when the thread that freed them goes quiet — a
/// configuration load frees a YAML tree several times the file, then the main thread idles.
/// (`MALLOC_CONF` in the environment adds to or overrides this.)
#[unsafe(export_name = "malloc_conf")]
static JEMALLOC_CONF: &[u8; 23] = b"background_thread:true\0";

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "petra",
    version,
    about = "Industrial automation runtime: one binary, one YAML file",
    long_about = "Petra reads devices into typed signals, runs control logic on a deterministic \
                  scan, and publishes what happens.\n\nStart with `petra run examples/quickstart.yaml`; \
                  check a file with `petra check FILE`. Documentation: docs/ in the repository."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything the configuration declares until SIGINT/SIGTERM, then stop cleanly.
    Run {
        /// The configuration file.
        config: PathBuf,
        /// How often to print the one-line status (e.g. 5s); 0s turns it off.
        #[arg(long, default_value = "5s", value_parser = duration)]
        status_every: Duration,
        /// Reload the configuration when the file changes (SIGHUP always reloads).
        #[arg(long)]
        watch: bool,
    },
    /// Validate a configuration without touching any device. Prints every error as
    /// FILE:LINE:COL: error[CODE]: message. Exit status 0 when valid, 1 when not.
    Check {
        /// The configuration file.
        config: PathBuf,
    },
    /// Connect to one driver's device, read every point once and print signal, address, raw
    /// data, value and quality. Exit status 0 when every point is good, 1 when any is bad.
    Probe {
        /// The configuration file.
        config: PathBuf,
        /// The driver's `name`.
        #[arg(long)]
        driver: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run logic scenarios in virtual time: set signals, let the scans run, check outputs
    /// (docs/testing.md). Exit status 0 when every scenario passes, 1 when any fails or is
    /// invalid.
    Test {
        /// Scenario files (YAML with `config:` and `steps:`).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Manage the users of the HTTP API: the users file named by the configuration's `server`
    /// section (docs/security.md).
    User {
        #[command(subcommand)]
        what: UserCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        what: AuditCommand,
    },
    /// The history's write-ahead log.
    Wal {
        #[command(subcommand)]
        what: WalCommand,
    },
}

#[derive(Subcommand)]
enum WalCommand {
    /// Print a WAL directory's segments (positions, records, bytes, damage) and the sinks'
    /// cursors, read-only (it works beside a running Petra). Exit status 1 when something is
    /// damaged or the directory cannot be read.
    Inspect {
        /// The WAL directory (`history.wal.dir`, by default `data_dir/wal`).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. The password is asked twice on the terminal (not echoed), or read from
    /// stdin with --password-stdin; at least 12 characters.
    Add {
        /// User name: letters, digits, `_`, `.`, `-`; starts with a letter or `_`.
        name: String,
        /// viewer, operator, engineer or admin (each includes the ones before).
        #[arg(long, value_parser = role)]
        role: petra_server::Role,
        /// Read the password from stdin (one line) instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        /// The configuration file (its `server` section names the users file).
        #[arg(long)]
        config: PathBuf,
    },
    /// List users, their roles and API tokens (never passwords or hashes).
    List {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Remove a user and its API tokens.
    Remove {
        name: String,
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Create a long-lived API token for a machine acting as user NAME. The token is printed
    /// once; only its SHA-256 is stored.
    Token {
        /// The owner.
        name: String,
        /// A name for the token (to list and revoke it).
        #[arg(long)]
        token_name: String,
        /// The token's role, at most the owner's (default: the owner's).
        #[arg(long, value_parser = role)]
        role: Option<petra_server::Role>,
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Revoke an API token.
    Revoke {
        /// The owner.
        name: String,
        /// The token's name.
        #[arg(long)]
        token_name: String,
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the audit log's hash chain. Exit status 0 when intact, 1 when any line was
    /// edited, removed, reordered or cut (the first bad line is printed).
    Verify {
        /// The audit log (JSON lines).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Run a synthetic load on the real scan thread and report scan time and jitter.
    Scan(bench::ScanArgs),
    /// Measure the per-block cost of every block type in a large scan (virtual time).
    Blocks(bench::BlocksArgs),
}

fn role(s: &str) -> Result<petra_server::Role, String> {
    s.parse()
        .map_err(|e: petra_server::ServerError| e.to_string())
}

fn duration(s: &str) -> Result<Duration, String> {
    petra_config::parse_duration(s)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Run {
            config,
            status_every,
            watch,
        } => run::run(
            &config,
            run::Options {
                status_every,
                watch,
            },
        ),
        Command::Check { config } => return check(&config),
        Command::Probe {
            config,
            driver,
            json,
        } => return probe::probe(&config, &driver, json),
        Command::Test { scenarios } => return scenario::test(&scenarios),
        Command::Bench {
            what: BenchCommand::Scan(args),
        } => bench::scan(&args),
        Command::Bench {
            what: BenchCommand::Blocks(args),
        } => bench::blocks(&args),
        Command::User { what } => match what {
            UserCommand::Add {
                name,
                role,
                password_stdin,
                config,
            } => admin::user_add(&config, &name, role, password_stdin),
            UserCommand::List { config } => admin::user_list(&config),
            UserCommand::Remove { name, config } => admin::user_remove(&config, &name),
            UserCommand::Token {
                name,
                token_name,
                role,
                config,
            } => admin::token_create(&config, &name, &token_name, role),
            UserCommand::Revoke {
                name,
                token_name,
                config,
            } => admin::token_revoke(&config, &name, &token_name),
        },
        Command::Audit {
            what: AuditCommand::Verify { file },
        } => return admin::audit_verify(&file),
        Command::Wal {
            what: WalCommand::Inspect { dir },
        } => return wal_inspect(&dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn wal_inspect(dir: &std::path::Path) -> ExitCode {
    match petra_wal::inspect(dir) {
        Ok(i) => {
            print!("{i}");
            let damaged = i.segments.iter().any(|s| !s.problems.is_empty());
            if damaged {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match petra_config::load(path, &petra_blocks::builtin()) {
        Ok(plan) => {
            let blocks: usize = plan.program.tasks.iter().map(|t| t.blocks.len()).sum();
            println!(
                "{}: ok ({} signals, {} blocks in {} tasks)",
                path.display(),
                plan.signals.len(),
                blocks,
                plan.program.tasks.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the default level (info).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
