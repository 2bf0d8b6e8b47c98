//! `petra run` with the HTTP API, logged in, for the driver end-to-end tests.

use petra_test_support::{Child, DEFAULT_TIMEOUT};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `petra run` in `dir` (with a `server` on `port`), logged in as the first-run admin.
pub struct Live {
    pub petra: Child,
    pub http: reqwest::blocking::Client,
    pub token: String,
    port: u16,
    password: String,
    dir: std::path::PathBuf,
}

impl Live {
    pub fn start(dir: &Path, port: u16) -> Live {
        let mut petra = spawn(dir);
        let (http, password, token) = first_login(&mut petra, port);
        Live {
            petra,
            http,
            token,
            port,
            password,
            dir: dir.to_path_buf(),
        }
    }

    /// Stops Petra cleanly and starts it again on the same directory, logged in again.
    pub fn restart(&mut self) {
        self.petra.terminate();
        assert!(self.petra.wait_exit(DEFAULT_TIMEOUT).success());
        self.petra = spawn(&self.dir);
        self.petra
            .wait_for_line("HTTP API listening", DEFAULT_TIMEOUT);
        self.token = login(&self.http, self.port, &self.password);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn signal(&self, name: &str) -> Value {
        self.http
            .get(self.url(&format!("/api/v1/signals/{name}")))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    pub fn stop(mut self) {
        self.petra.terminate();
        assert!(self.petra.wait_exit(DEFAULT_TIMEOUT).success());
    }
}

fn spawn(dir: &Path) -> Child {
    Child::spawn(
        "petra run",
        Command::new(env!("CARGO_BIN_EXE_petra"))
            .current_dir(dir)
            .args(["run", "plant.yaml", "--status-every", "0s"]),
    )
}

/// For a `petra run` starting on a fresh data dir: the first-run admin password from its
/// output, once the API listens, a client, and a login token.
pub fn first_login(petra: &mut Child, port: u16) -> (reqwest::blocking::Client, String, String) {
    let line = petra.wait_for_line("created user `admin` with password ", DEFAULT_TIMEOUT);
    let password = line.rsplit(' ').next().unwrap().to_string();
    petra.wait_for_line("HTTP API listening", DEFAULT_TIMEOUT);
    petra_server::tls::install_crypto_provider();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let token = login(&http, port, &password);
    (http, password, token)
}

pub fn login(http: &reqwest::blocking::Client, port: u16, password: &str) -> String {
    http.post(format!("http://127.0.0.1:{port}/api/v1/login"))
        .json(&json!({"user": "admin", "password": password}))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}
