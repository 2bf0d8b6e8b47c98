//! The `petra` command: CLI parsing and dispatch. See docs/cli.md.

mod bench;
mod retain;
mod rt;
mod run;
mod scenario;

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
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Run a synthetic load on the real scan thread and report scan time and jitter.
    Scan(bench::ScanArgs),
    /// Measure the per-block cost of every block type in a large scan (virtual time).
    Blocks(bench::BlocksArgs),
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
        Command::Test { scenarios } => return scenario::test(&scenarios),
        Command::Bench {
            what: BenchCommand::Scan(args),
        } => bench::scan(&args),
        Command::Bench {
            what: BenchCommand::Blocks(args),
        } => bench::blocks(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
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
