//! Petra's configuration: one strict path from a YAML file to a runnable [`Plan`].
//!
//! `petra check`, `petra run` and configuration reload all call [`load`] (or [`load_str`]):
//!
//! 1. **parse** the YAML into nodes that remember their line and column, expanding `${NAME}`
//!    environment references in values;
//! 2. **validate** against the schema with a walker that reports *every* problem — unknown and
//!    duplicate keys, wrong types, bad names and references, port and parameter errors, cycles —
//!    rather than stopping at the first;
//! 3. **compile** into a [`Plan`]: signals with dense ids, the engine's [`Program`] with every
//!    block built and bound, and the engine options.
//!
//! Errors come back as [`Diagnostics`], printed one per line as
//! `FILE:LINE:COL: error[CODE]: message`, sorted by position. The codes and the schema are
//! documented in `docs/config.md`. This crate starts nothing and does no IO except reading the
//! one file in [`load`].
//!
//! [`scenario`] reads `petra test` scenario files with the same walker, and loads the
//! configuration they name through [`load`].

mod alarms;
mod blocks;
mod compile;
mod diag;
mod drivers;
mod drivers_mqtt;
mod drivers_s7;
mod env;
mod history;
pub mod scenario;
mod server;
mod units;
mod walk;
mod yaml;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_alarms;
#[cfg(test)]
mod tests_drivers;
#[cfg(test)]
mod tests_drivers_mqtt;
#[cfg(test)]
mod tests_drivers_s7;
#[cfg(test)]
mod tests_history;

pub use alarms::SYSTEM_PREFIX;
pub use diag::{Diagnostic, Diagnostics};
pub use drivers::DriverPlan;
pub use scenario::{AlarmExpectation, Scenario, ScenarioError, load_scenario};
pub use server::{ServerPlan, TlsPlan};
pub use units::{parse_duration, parse_size};
pub use walk::is_name;

use petra_core::{BusBuilder, SignalDef, SignalId, Value};
use petra_engine::{Program, Registry};
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every problem found, sorted by position.
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// A validated, compiled configuration, ready to run.
pub struct Plan {
    pub plant: String,
    pub config_path: PathBuf,
    /// `data_dir`, resolved against the configuration file's directory when relative.
    pub data_dir: PathBuf,
    /// In id order: `signals[i]` is `SignalId::from_index(i)`.
    pub signals: Vec<SignalPlan>,
    /// Tasks in declaration order (or the default task `main`); blocks of a task in
    /// declaration order — the engine computes the execution order.
    pub program: Program,
    pub engine: EngineOptions,
    /// The `server:` section (HTTP API, users, audit log), when present.
    pub server: Option<ServerPlan>,
    /// The `drivers:` section, in declaration order.
    pub drivers: Vec<DriverPlan>,
    /// The `history:` section, when present.
    pub history: Option<petra_history::HistoryConfig>,
    /// The `alarms:` section, in declaration order (signal names resolved).
    pub alarms: Vec<petra_alarms::AlarmDef>,
    /// The `notify:` section, when present (validated with `NotifyConfig::validate`).
    pub notify: Option<petra_notify::NotifyConfig>,
}

/// One declared signal with what the bus does not need to know.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalPlan {
    pub def: SignalDef,
    pub description: Option<String>,
    /// Range for writes from outside (API, MQTT, HMI); only on numeric signals.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Roles that may write the signal from outside; empty = read-only from outside.
    pub write: Vec<String>,
    /// The value survives a restart.
    pub retain: bool,
    /// Value the watchdog drives when the task writing the signal hangs.
    pub safe: Option<Value>,
}

/// Scan thread options (`engine:` section).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// SCHED_FIFO priority 1..99 for the scan thread.
    pub rt_priority: Option<u8>,
    /// CPU to pin the scan thread to.
    pub cpu: Option<usize>,
}

impl Plan {
    /// A bus builder declaring every signal of the plan, in id order.
    pub fn bus_builder(&self) -> BusBuilder {
        BusBuilder::new(self.signals.iter().map(|s| s.def.clone()).collect())
            .expect("the compiler checked names are unique and initial values typed")
    }

    /// The id of a signal by name. A linear search: meant for setup, not for the scan.
    pub fn signal(&self, name: &str) -> Option<SignalId> {
        self.signals
            .iter()
            .position(|s| s.def.name == name)
            .map(SignalId::from_index)
    }
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tasks: Vec<(&str, Vec<&str>)> = self
            .program
            .tasks
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.blocks.iter().map(|b| b.name.as_str()).collect(),
                )
            })
            .collect();
        f.debug_struct("Plan")
            .field("plant", &self.plant)
            .field("config_path", &self.config_path)
            .field("data_dir", &self.data_dir)
            .field("signals", &self.signals)
            .field("tasks", &tasks)
            .field("safe_values", &self.program.safe_values)
            .field("engine", &self.engine)
            .field("server", &self.server)
            .field("drivers", &self.drivers)
            .field("alarms", &self.alarms)
            .field("notify", &self.notify)
            .finish()
    }
}

/// Loads, validates and compiles the configuration file at `path`, with the process
/// environment for `${NAME}` references. Relative paths in it are relative to its directory.
pub fn load(path: &Path, registry: &Registry) -> Result<Plan, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file = path.display().to_string();
    let env = |name: &str| std::env::var(name).ok();
    compile_src(&src, &file, base_dir, path.to_path_buf(), &env, registry)
}

/// Like [`load`], from a string: `file` is the name used in diagnostics (and the plan's
/// `config_path`), `base_dir` the directory relative paths are resolved against, `env` the
/// environment for `${NAME}` references.
pub fn load_str(
    src: &str,
    file: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    registry: &Registry,
) -> Result<Plan, ConfigError> {
    compile_src(src, file, base_dir, PathBuf::from(file), env, registry)
}

fn compile_src(
    src: &str,
    file: &str,
    base_dir: &Path,
    config_path: PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
    registry: &Registry,
) -> Result<Plan, ConfigError> {
    let mut cx = diag::Cx::new(file);
    let plan = yaml::parse(src, env, &mut cx)
        .and_then(|root| compile::compile(&mut cx, &root, registry, base_dir, config_path));
    match plan {
        Some(p) if !cx.has_errors() => Ok(p),
        _ => Err(ConfigError::Invalid(Diagnostics::sorted(cx.diags))),
    }
}
