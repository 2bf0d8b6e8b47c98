//! The web HMI in a real browser (design.md, "Browser" peer): `petra run` on the bundled
//! quickstart, a viewer added with `petra user add`, and `crates/petra/tests/hmi/hmi.mjs`
//! driving headless Debian Chromium through playwright-core — first paint, login, a live value,
//! writes (accepted, out of range, refused for the viewer), the alarm console (ack, shelve, a
//! latched alarm's reset refused and then accepted),
//! a trend, the status page, logout, a lapsed token — with a screenshot of every view.
//!
//! Screenshots go to `$CARGO_TARGET_DIR/hmi-screenshots` (`target/hmi-screenshots` without it),
//! or to `docs/images/` with `PETRA_UPDATE_SCREENSHOTS=1` (the ones docs/hmi.md shows).

use crate::live::Live;
use petra_test_support::twilio::npm_peers_dir;
use petra_test_support::{Child, free_port, missing_peer_message, require};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The version `scripts/test` installs.
const PLAYWRIGHT: &str = "playwright-core@1.65.2";
const VIEWER_PASSWORD: &str = "a viewer's long password";
/// A backstop: every wait inside the script has its own, shorter deadline.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
const VIEWS: [&str; 6] = ["login", "signals", "tablet", "alarms", "trends", "status"];

fn repo() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    repo.canonicalize().unwrap_or(repo)
}

/// Where the screenshots go (see the module doc).
fn screenshot_dir() -> PathBuf {
    if std::env::var("PETRA_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        return repo().join("docs/images");
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if Path::new(&t).is_absolute() => PathBuf::from(t),
        Some(t) => repo().join(t),
        None => repo().join("target"),
    };
    target.join("hmi-screenshots")
}

/// node, Chromium and playwright-core must be installed; a missing one fails with its hint.
fn require_browser_peers() {
    require("node", "apt-get install -y nodejs npm");
    require(CHROMIUM, "apt-get install -y chromium");
    let in_peers = npm_peers_dir().join("node_modules/playwright-core/package.json");
    let global = Command::new("npm")
        .args(["root", "-g"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .map(|root| root.join("playwright-core/package.json"));
    assert!(
        in_peers.is_file() || global.is_some_and(|g| g.is_file()),
        "{}",
        missing_peer_message(
            "playwright-core (npm)",
            &format!(
                "npm install --prefix {} {PLAYWRIGHT}",
                npm_peers_dir().display()
            )
        )
    );
}

fn add_viewer(dir: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_petra"))
        .current_dir(dir)
        .args([
            "user",
            "add",
            "viewer",
            "--role",
            "viewer",
            "--password-stdin",
            "--config",
            "plant.yaml",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{VIEWER_PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "petra user add: {out:?}");
}

/// The quickstart in a browser, as an operator would use it; see the module doc.
#[test]
fn hmi_in_chromium_shows_live_values_writes_acks_trends_and_refuses_a_viewer() {
    require_browser_peers();
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(repo().join("examples/quickstart.yaml")).unwrap();
    for needle in ["127.0.0.1:8080", "http://127.0.0.1:4010", "name: tank_high"] {
        assert!(src.contains(needle), "the quickstart changed: {needle}");
    }
    let port = free_port();
    // No Twilio here: notifications go to a closed port (their failed attempts are journaled,
    // which the alarm console shows).
    // tank_high latches here, so the console's Reset button has an alarm to reset.
    let config = src
        .replace("name: tank_high\n", "name: tank_high\n    latch: true\n")
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace(
            "http://127.0.0.1:4010",
            &format!("http://127.0.0.1:{}", free_port()),
        );
    std::fs::write(dir.path().join("plant.yaml"), config).unwrap();
    let live = Live::start(dir.path(), port);
    let admin_password =
        std::fs::read_to_string(dir.path().join("data/initial-admin-password")).unwrap();
    add_viewer(dir.path());

    let shots = screenshot_dir();
    std::fs::create_dir_all(&shots).unwrap();
    for view in VIEWS {
        let _ = std::fs::remove_file(shots.join(format!("hmi-{view}.png")));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hmi/hmi.mjs");
    let mut node = Child::spawn(
        "node hmi.mjs",
        Command::new("node")
            .arg(&script)
            .arg(live.url("/"))
            .arg(&shots)
            .env("PETRA_ADMIN_PASSWORD", admin_password.trim())
            .env("PETRA_VIEWER_PASSWORD", VIEWER_PASSWORD)
            .env("PETRA_NPM_PEERS", npm_peers_dir()),
    );
    let status = node.wait_exit(SCRIPT_TIMEOUT);
    let output = node.output().join("\n");
    println!("{output}");
    assert!(
        status.success(),
        "the browser test failed ({status}):\n{output}\n\npetra's output:\n{}",
        live.petra.output().join("\n")
    );

    // What was done in the browser reached the server, as the admin and never as the viewer.
    let audit: Vec<Value> = std::fs::read_to_string(dir.path().join("data/audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let done_by = |user: &str, action: &str, target: &str| {
        audit
            .iter()
            .any(|l| l["user"] == user && l["action"] == action && l["target"] == target)
    };
    for (action, target) in [
        ("signal.write", "demand.flow"),
        ("signal.write", "level.high_sp"),
        ("signal.write", "level.low_sp"),
        ("alarm.ack", "tank_high"),
        ("alarm.shelve", "tank_high"),
        ("alarm.unshelve", "tank_high"),
        ("alarm.reset", "tank_high"),
    ] {
        assert!(
            done_by("admin", action, target),
            "no {action} of {target} by admin in the audit log: {audit:?}"
        );
    }
    assert!(
        audit
            .iter()
            .any(|l| l["user"] == "viewer" && l["action"] == "login" && l["new"] == "success"),
        "{audit:?}"
    );
    assert!(
        !audit
            .iter()
            .any(|l| l["user"] == "viewer" && l["action"] != "login"),
        "the viewer changed something: {audit:?}"
    );
    for view in VIEWS {
        let png = shots.join(format!("hmi-{view}.png"));
        let len = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(len > 5_000, "no screenshot {} ({len} bytes)", png.display());
    }
    println!("HMI screenshots: {}", shots.display());
    live.stop();
}
