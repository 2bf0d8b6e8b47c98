//! `petra test`: the shipped scenarios pass against the quickstart and catch its broken copy;
//! invalid scenarios and configurations are reported like `petra check` reports them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `petra ARGS` in `dir`, to completion.
fn petra_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_petra"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_quickstart_scenario_passes() {
    let out = petra_in(&repo(), &["test", "examples/quickstart.test.yaml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("PASS quickstart level control (13 steps, virtual 61s in "),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn the_scenario_catches_the_broken_interlock_with_a_readable_failure() {
    let out = petra_in(&repo(), &["test", "examples/quickstart-broken.test.yaml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(
            "FAIL quickstart level control, broken interlock (13 steps, virtual 61s in "
        ),
        "{stdout}"
    );
    assert!(lines[0].ends_with("expectations failed"), "{stdout}");
    // The first failure names the step, where it is, the signal, expected and actual values
    // with their quality, and the virtual time.
    assert_eq!(
        lines[1],
        "  step 4 (at: 1s) at examples/quickstart-broken.test.yaml:37, virtual time 1s:"
    );
    assert_eq!(
        lines[2],
        "    level.high: expected false (good), actual true (good)  \
         [examples/quickstart-broken.test.yaml:41:7]"
    );
    assert!(
        stdout.contains(
            "    pump.run: expected true (good), actual false (good)  \
             [examples/quickstart-broken.test.yaml:43:7]"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("tank.level: expected 5.525 ± 0.000001 (good), actual 4.76"),
        "{stdout}"
    );
}

#[test]
fn several_scenarios_exit_1_when_any_fails_and_say_how_many() {
    let out = petra_in(
        &repo().join("examples"),
        &[
            "test",
            "quickstart.test.yaml",
            "quickstart-broken.test.yaml",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("PASS quickstart level control ("),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("FAIL quickstart level control, broken interlock ("),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"1 passed, 1 failed, 0 invalid"));
}

/// The broken scenario is the passing one pointed at the broken file: same steps.
#[test]
fn the_broken_scenario_runs_the_same_steps_as_the_passing_one() {
    let steps = |name: &str| {
        let src = std::fs::read_to_string(repo().join("examples").join(name)).unwrap();
        src[src.find("\nsteps:\n").expect("a steps section")..].to_string()
    };
    assert_eq!(
        steps("quickstart.test.yaml"),
        steps("quickstart-broken.test.yaml")
    );
    // And the broken configuration differs from the quickstart in one wire only.
    let body = |name: &str| {
        std::fs::read_to_string(repo().join("examples").join(name))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("plant:"))
            .map(|l| l.split(" #").next().unwrap().trim_end().to_string())
            .collect::<Vec<_>>()
    };
    let (good, broken) = (body("quickstart.yaml"), body("quickstart-broken.yaml"));
    let diff: Vec<_> = good.iter().zip(&broken).filter(|(a, b)| a != b).collect();
    assert_eq!(good.len(), broken.len());
    assert_eq!(
        diff,
        [(
            &"    inputs: { in1: tank.level, in2: level.high_sp }".to_string(),
            &"    inputs: { in1: tank.level, in2: level.low_sp }".to_string()
        )]
    );
}

#[test]
fn invalid_scenarios_and_configurations_are_reported_like_check() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("plant.yaml"),
        "plant: p\nsignals:\n  - { name: a, type: bool }\n  - { name: b, type: flaot }\n",
    )
    .unwrap();
    std::fs::write(
        d.join("ok.yaml"),
        "plant: p\nsignals:\n  - { name: a, type: bool, initial: false }\n",
    )
    .unwrap();
    std::fs::write(
        d.join("bad-config.test.yaml"),
        "config: plant.yaml\nsteps: [{ at: 0s }]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("bad-steps.test.yaml"),
        "config: ok.yaml\nsteps:\n  - { at: 1s, set: { a: 1 } }\n  - { at: 0s, expect: { b: true } }\n",
    )
    .unwrap();

    let check = petra_in(d, &["check", "plant.yaml"]);
    let (_, check_err) = text(&check);
    let out = petra_in(d, &["test", "bad-config.test.yaml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(stderr, check_err);
    assert!(
        stderr.starts_with("plant.yaml:4:22: error[bad-value]"),
        "{stderr}"
    );
    assert_eq!(
        stdout,
        "ERROR bad-config.test.yaml: not run, the scenario is invalid\n"
    );

    let out = petra_in(d, &["test", "bad-steps.test.yaml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let errs: Vec<&str> = stderr.lines().collect();
    assert_eq!(errs.len(), 3, "{stderr}");
    assert!(
        errs[0].starts_with("bad-steps.test.yaml:3:25: error[wrong-type]: `a` in `set` of step 1"),
        "{stderr}"
    );
    assert!(
        errs[1].starts_with("bad-steps.test.yaml:4:11: error[out-of-range]: `at` of step 2 is 0s"),
        "{stderr}"
    );
    assert!(
        errs[2].starts_with("bad-steps.test.yaml:4:25: error[unknown-signal]"),
        "{stderr}"
    );

    let out = petra_in(d, &["test", "missing.test.yaml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.starts_with("cannot read missing.test.yaml: "),
        "{stderr}"
    );
}
