use petra_test_support::{Child, DEFAULT_TIMEOUT, require, wait_until};
use std::path::{Path, PathBuf};
use std::process::Command;

fn petra() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_petra"));
    c.env("RUST_LOG", "info");
    c
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The quickstart, copied into a temp dir so its data_dir lands there.
fn quickstart_in(dir: &Path) -> PathBuf {
    let src = std::fs::read_to_string(repo().join("examples/quickstart.yaml")).unwrap();
    // Its API on a free port, so the test never collides with anything on 8080.
    assert!(
        src.contains("127.0.0.1:8080"),
        "the quickstart's listen address moved"
    );
    let src = src.replace(
        "127.0.0.1:8080",
        &format!("127.0.0.1:{}", petra_test_support::free_port()),
    );
    let path = dir.join("quickstart.yaml");
    std::fs::write(&path, src).unwrap();
    path
}

/// Writes `yaml` as `name` in `dir` and returns its path.
fn config_file(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `petra run` on `config` with a fast status line.
fn run(config: &Path, status_every: &str) -> Child {
    Child::spawn(
        "petra run",
        petra()
            .args(["run", "--status-every", status_every])
            .arg(config),
    )
}

/// The scan count of a status line (`scans N overruns M · …`).
fn scans_in(line: &str) -> u64 {
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn value_of(line: &str, signal: &str) -> Option<f64> {
    let start = line.find(&format!(" {signal}="))? + signal.len() + 2;
    line[start..].split_whitespace().next()?.parse().ok()
}

#[test]
fn quickstart_runs_shows_a_live_process_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = quickstart_in(dir.path());
    let mut p = run(&config, "200ms");
    p.wait_for_line("petra is running", DEFAULT_TIMEOUT);
    // The tank level moves: the simulation and the control task are both scanning.
    let mut levels = Vec::new();
    wait_until("tank.level to change", DEFAULT_TIMEOUT, || {
        levels = p
            .output()
            .iter()
            .filter_map(|l| value_of(l, "tank.level"))
            .collect();
        levels.iter().any(|l| (l - 5.0).abs() > 0.05)
    });
    let last = p
        .output()
        .into_iter()
        .rfind(|l| l.starts_with("scans "))
        .unwrap();
    // Scanning (overruns are the engine tests' business, in virtual time: a loaded CI machine
    // may stall a real-time scan here without anything being wrong).
    assert!(scans_in(&last) > 0, "{last}");
    p.terminate();
    let status = p.wait_exit(DEFAULT_TIMEOUT);
    assert!(
        status.success(),
        "exit {status}; output:\n{}",
        p.output().join("\n")
    );
    let out = p.output().join("\n");
    assert!(
        out.contains("signal=\"SIGTERM\"") || out.contains("SIGTERM"),
        "{out}"
    );
    assert!(out.contains("stopped cleanly"), "{out}");
    let retained: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("data/retained.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(retained["signals"]["level.low_sp"]["value"], 3.0);
    assert_eq!(retained["signals"]["level.high_sp"]["value"], 7.0);
}

#[test]
fn retained_values_are_restored_at_start_and_saved_at_stop() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "retain.yaml",
        "plant: retain\n\
         signals:\n\
         \x20 - { name: kept, type: float, initial: 1.0, retain: true }\n\
         \x20 - { name: doubled, type: float, initial: 0.0, retain: true }\n\
         blocks:\n\
         \x20 - { name: dbl, type: ADD, inputs: { in1: kept, in2: kept }, outputs: { out: doubled } }\n",
    );
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/retained.json"),
        r#"{"version":1,"signals":{"kept":{"type":"float","value":4.5,"ts":0}}}"#,
    )
    .unwrap();
    let mut p = run(&config, "100ms");
    let line = p.wait_for_line("doubled=9.00", DEFAULT_TIMEOUT);
    assert!(line.contains("kept=4.50"), "{line}");
    p.terminate();
    assert!(p.wait_exit(DEFAULT_TIMEOUT).success());
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("data/retained.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["signals"]["kept"]["value"], 4.5);
    assert_eq!(saved["signals"]["doubled"]["value"], 9.0);
}

#[test]
fn check_accepts_the_quickstart() {
    let out = petra()
        .arg("check")
        .arg(repo().join("examples/quickstart.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ok (9 signals, 6 blocks in 2 tasks)"),
        "{stdout}"
    );
}

#[test]
fn check_prints_every_error_with_file_line_and_column_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "broken.yaml",
        "plant: broken\n\
         signals:\n\
         \x20 - { name: a, type: float, colour: red }\n\
         \x20 - { name: a, type: bool }\n\
         tasks:\n\
         \x20 - { name: main, period: fast }\n\
         blocks:\n\
         \x20 - { name: b, type: NOT, inputs: { in: missing }, outputs: { out: a } }\n\
         alarms:\n\
         \x20 - { name: c, signal: a, hihg: 1 }\n",
    );
    let out = petra().arg("check").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = config.display().to_string();
    for expected in [
        format!("{file}:3:29: error[unknown-key]"),
        format!("{file}:4:13: error[duplicate-name]"),
        format!("{file}:6:27: error[bad-duration]"),
        format!("{file}:8:41: error[unknown-signal]"),
        format!("{file}:10:27: error[unknown-key]"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
}

#[test]
fn run_refuses_an_invalid_file_without_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, "plant: x\nsignals: 3\n").unwrap();
    let out = petra().arg("run").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:2:10: error[wrong-type]"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was started"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "no data_dir was created");
}

#[test]
fn bench_scan_reports_json_in_the_documented_shape() {
    let out = petra()
        .args([
            "bench",
            "scan",
            "--signals",
            "200",
            "--blocks",
            "100",
            "--period",
            "5ms",
            "--duration",
            "300ms",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["scans"].as_u64().unwrap() >= 10, "{v}");
    assert_eq!(v["period_us"], 5000);
    for h in ["scan_us", "jitter_us"] {
        for k in ["p50", "p99", "max"] {
            assert!(v[h][k].as_f64().is_some(), "{h}.{k} in {v}");
        }
        assert!(v[h]["p50"].as_f64() <= v[h]["max"].as_f64());
    }
    assert!(v["scan_us"]["max"].as_f64().unwrap() > 0.0);
    assert!(v["overruns"].as_u64().is_some());
    assert!(v["rss_bytes"].as_u64().unwrap() > 1_000_000);
}

#[test]
fn bench_scan_refuses_impossible_sizes() {
    let out = petra()
        .args([
            "bench",
            "scan",
            "--signals",
            "10",
            "--blocks",
            "100",
            "--duration",
            "10ms",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--signals must be at least"));
}

#[test]
fn version_and_help_are_available() {
    let out = petra().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("petra "));
    let out = petra().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check", "bench"] {
        assert!(help.contains(cmd), "{help}");
    }
}

/// A one-block plant (`b = NOT a`, printed as `b=false` once it runs), with `extra` lines
/// (e.g. an `engine:` section) before its signals.
fn not_plant(dir: &Path, extra: &str) -> PathBuf {
    let yaml = format!(
        "plant: not\n{extra}signals:\n\
         \x20 - {{ name: a, type: bool, initial: true }}\n\
         \x20 - {{ name: b, type: bool }}\n\
         blocks:\n\
         \x20 - {{ name: n, type: NOT, inputs: {{ in: a }}, outputs: {{ out: b }} }}\n"
    );
    config_file(dir, "not.yaml", &yaml)
}

#[test]
fn an_impossible_cpu_pin_is_a_clear_warning_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let config = not_plant(dir.path(), "engine: { cpu: 4095 }\n");
    let mut p = run(&config, "100ms");
    let warning = p.wait_for_line("could not pin the scan thread", DEFAULT_TIMEOUT);
    assert!(
        warning.contains("WARN") && warning.contains("cpu=4095"),
        "{warning}"
    );
    p.wait_for_line("b=false", DEFAULT_TIMEOUT);
    p.terminate();
    assert!(p.wait_exit(DEFAULT_TIMEOUT).success());
}

/// The binary allocates with jemalloc and its background threads (main.rs: they return freed
/// pages to the OS while the thread that freed them is quiet); with glibc's malloc, or jemalloc
/// without `background_thread:true`, there is no `jemalloc_bg_thd` thread.
#[test]
fn petra_runs_on_jemalloc_with_background_threads() {
    let dir = tempfile::tempdir().unwrap();
    let config = not_plant(dir.path(), "");
    let mut p = run(&config, "100ms");
    p.wait_for_line("b=false", DEFAULT_TIMEOUT);
    let threads = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", p.pid()))
            .map(|d| {
                d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until("a jemalloc background thread", DEFAULT_TIMEOUT, || {
        threads().iter().any(|t| t == "jemalloc_bg_thd")
    });
    p.terminate();
    assert!(p.wait_exit(DEFAULT_TIMEOUT).success());
}

/// jemalloc is `malloc` itself (main.rs): the C code linked in (zstd, under the Parquet writer)
/// allocates from it, not from glibc's arenas. With the prefixed build the binary defines no
/// `malloc` and takes glibc's.
#[test]
fn c_code_allocates_from_jemalloc_too() {
    require("nm", "apt-get install -y binutils");
    let out = Command::new("nm")
        .args(["--dynamic", "--defined-only", env!("CARGO_BIN_EXE_petra")])
        .output()
        .unwrap();
    assert!(out.status.success(), "nm failed: {out:?}");
    let defined: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    for f in ["malloc", "free", "calloc", "realloc"] {
        assert!(
            defined.iter().any(|d| d == f),
            "the binary does not define `{f}`: C code allocates from glibc"
        );
    }
}

const TANK_V1: &str = "plant: reload
signals:
  - { name: level, type: float, initial: 0.0 }
  - { name: inflow, type: float, initial: 1.0 }
  - { name: outflow, type: float, initial: 0.0 }
blocks:
  - name: tank
    type: TANK
    inputs: { inflow: inflow, outflow: outflow }
    outputs: { level: level }
    params: { area: 1.0, max_level: 1000.0 }
";

/// The last status line's value of `signal`.
fn last_value(p: &Child, signal: &str) -> Option<f64> {
    p.output().iter().rev().find_map(|l| value_of(l, signal))
}

#[test]
fn reload_refuses_a_broken_file_and_applies_a_good_one_keeping_block_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "tank.yaml", TANK_V1);
    let mut p = Child::spawn(
        "petra run --watch",
        petra()
            .args(["run", "--watch", "--status-every", "100ms"])
            .arg(&config),
    );
    wait_until("the level to rise", DEFAULT_TIMEOUT, || {
        last_value(&p, "level").is_some_and(|l| l >= 0.5)
    });

    // A broken file is refused with its errors; the plant keeps running.
    std::fs::write(&config, format!("{TANK_V1}colour: red\n")).unwrap();
    let refused = p.wait_for_line("reload refused", DEFAULT_TIMEOUT);
    assert!(refused.contains("file changed"), "{refused}");
    assert!(
        p.output()
            .iter()
            .any(|l| l.contains("tank.yaml:12:1: error[unknown-key]")),
        "{}",
        p.output().join("\n")
    );
    let before = last_value(&p, "level").unwrap();
    wait_until("the level to keep rising", DEFAULT_TIMEOUT, || {
        last_value(&p, "level").is_some_and(|l| l > before)
    });

    // A good file with a new signal: a new bus, the tank keeps its level.
    let v2 = TANK_V1.replace(
        "signals:\n",
        "signals:\n  - { name: extra, type: bool, initial: true }\n",
    );
    let level_at_reload = last_value(&p, "level").unwrap();
    std::fs::write(&config, &v2).unwrap();
    let done = p.wait_for_line("configuration reloaded", DEFAULT_TIMEOUT);
    assert!(
        done.contains("kept=1") && done.contains("signals_copied=3"),
        "{done}"
    );
    let line = p.wait_for_line("extra=true", DEFAULT_TIMEOUT);
    let level = value_of(&line, "level").unwrap();
    assert!(
        level >= level_at_reload,
        "the tank restarted from {level} instead of continuing from {level_at_reload}"
    );
    let v2_renamed = v2.replace("plant: reload", "plant: renamed");

    // SIGHUP reloads too (same file: same bus).
    p.signal(1);
    wait_until("a second reload", DEFAULT_TIMEOUT, || {
        p.output()
            .iter()
            .filter(|l| l.contains("configuration reloaded"))
            .count()
            == 2
    });

    // Renaming the plant needs a restart: refused, the running configuration stays.
    std::fs::write(&config, v2_renamed).unwrap();
    wait_until("the rename to be refused", DEFAULT_TIMEOUT, || {
        p.output()
            .iter()
            .any(|l| l.contains("reload refused") && l.contains("needs a restart"))
    });
    let before = last_value(&p, "level").unwrap();
    wait_until("the plant to keep running", DEFAULT_TIMEOUT, || {
        last_value(&p, "level").is_some_and(|l| l > before)
    });
    let last = p
        .output()
        .into_iter()
        .rfind(|l| l.starts_with("scans "))
        .unwrap();
    // Scanning (overruns are the engine tests' business, in virtual time: a loaded CI machine
    // may stall a real-time scan here without anything being wrong).
    assert!(scans_in(&last) > 0, "{last}");
    p.terminate();
    assert!(p.wait_exit(DEFAULT_TIMEOUT).success());
}

#[test]
fn run_with_a_server_section_refuses_a_port_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = config_file(
        dir.path(),
        "server.yaml",
        &format!("plant: s\ndata_dir: data\nserver: {{ listen: 127.0.0.1:{port} }}\n"),
    );
    let out = petra().arg("run").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

/// With `engine.cpu`, the scan thread runs on that CPU and every other thread of Petra keeps
/// off it (the WAL's fsyncs, the sinks, the API and the drivers never take the scan's CPU).
#[test]
fn with_engine_cpu_the_other_threads_keep_off_the_scan_cpu() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let dir = tempfile::tempdir().unwrap();
    let config = quickstart_in(dir.path());
    let yaml = std::fs::read_to_string(&config).unwrap() + "\nengine: { cpu: 0 }\n";
    std::fs::write(&config, yaml).unwrap();
    let mut p = run(&config, "0s");
    p.wait_for_line("HTTP API listening", DEFAULT_TIMEOUT);
    let allowed = |comm: &str| -> Vec<String> {
        let mut out = Vec::new();
        for t in std::fs::read_dir(format!("/proc/{}/task", p.pid())).unwrap() {
            let t = t.unwrap().path();
            let name = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
            if name.trim() == comm {
                let status = std::fs::read_to_string(t.join("status")).unwrap();
                let line = status
                    .lines()
                    .find(|l| l.starts_with("Cpus_allowed_list:"))
                    .unwrap()
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
                    .to_string();
                out.push(line);
            }
        }
        assert!(!out.is_empty(), "no thread named {comm}");
        out
    };
    assert_eq!(allowed("petra-scan"), ["0"]);
    let others = if cpus >= 2 {
        format!("1-{}", cpus - 1).replace("1-1", "1")
    } else {
        "0".to_string()
    };
    for comm in [
        "petra-alarms",
        "history-sampler",
        "history-parquet",
        "petra-io",
    ] {
        for mask in allowed(comm) {
            assert_eq!(mask, others, "{comm}");
        }
    }
    p.terminate();
    assert!(p.wait_exit(DEFAULT_TIMEOUT).success());
}
