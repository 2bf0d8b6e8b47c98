//! Fuzzing a running HTTP server from its OpenAPI description with schemathesis (PyPI).
//!
//! [`run_schemathesis`] runs the `st` command line against a base URL for a bounded number of
//! generated requests per operation and a bounded time, checking that no response is a server
//! error (5xx) and that the server keeps answering. The flags are those of the pinned
//! [`SCHEMATHESIS_VERSION`] (`scripts/test` installs it); other 4.x releases take the same.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::missing_peer_message;

/// The schemathesis release `scripts/test` installs and whose `st run` flags this module uses.
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// The command that installs it.
pub const SCHEMATHESIS_INSTALL: &str = "python3 -m pip install schemathesis==4.32.5";
/// The longest a run may take before it is killed and counted as a failure.
pub const SCHEMATHESIS_TIMEOUT: Duration = Duration::from_secs(300);

/// Fuzzes the API at `base_url` (e.g. `http://127.0.0.1:8080`) described by the OpenAPI file
/// `openapi`, sending `Authorization: Bearer {token}` with every request and at most
/// `max_examples` generated requests per operation. Operations on `exclude_paths` (exact
/// paths, e.g. an endpoint documented to answer 501 for now) are skipped.
///
/// `Ok` when schemathesis ran every operation and found no 5xx and no failed request. `Err`
/// holds why — schemathesis missing (with the install command), a timeout, or its report —
/// so a test does `run_schemathesis(..).unwrap_or_else(|e| panic!("{e}"))`. The token is
/// never part of the message (schemathesis masks the header in its own output).
pub fn run_schemathesis(
    base_url: &str,
    openapi: &Path,
    token: &str,
    max_examples: u32,
    exclude_paths: &[&str],
) -> Result<(), String> {
    // `st` may be a pyenv shim that exists on PATH without the package installed behind it.
    let installed = Command::new("st")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return Err(missing_peer_message(
            "st (schemathesis)",
            SCHEMATHESIS_INSTALL,
        ));
    }
    if !openapi.is_file() {
        return Err(format!(
            "schemathesis: no OpenAPI file at {}",
            openapi.display()
        ));
    }
    // Its working directory is a fresh temp dir: nothing (reports, example databases) is
    // left in the repository.
    let work = tempfile::tempdir().map_err(|e| format!("schemathesis: temp dir: {e}"))?;
    let mut cmd = Command::new("st");
    cmd.current_dir(work.path())
        .arg("run")
        .arg(openapi)
        .arg("--url")
        .arg(base_url)
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .args(["--checks", "not_a_server_error"])
        .args(["--max-examples", &max_examples.max(1).to_string()])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .args(["--workers", "1"])
        .arg("--no-color")
        .args(exclude_paths.iter().flat_map(|p| ["--exclude-path", p]))
        .env("NO_COLOR", "1")
        // Never through a proxy from the environment: the server is local.
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy");
    // Output goes to a file, read whole once the process has exited.
    let log_path = work.path().join("st.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("schemathesis: log: {e}"))?;
    let log2 = log
        .try_clone()
        .map_err(|e| format!("schemathesis: log: {e}"))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| format!("cannot start schemathesis (`st`): {e}"))?;
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + SCHEMATHESIS_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "schemathesis did not finish within {SCHEMATHESIS_TIMEOUT:?} against \
                     {base_url} (a hung server?); its output:\n{}",
                    read_log()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("schemathesis: cannot wait for it: {e}")),
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "schemathesis against {base_url} ({}) failed with {status}:\n{}",
            openapi.display(),
            read_log()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;

    const SPEC: &str = r#"openapi: 3.0.3
info: { title: stub, version: "1" }
paths:
  /health:
    get:
      parameters:
        - { name: verbose, in: query, required: false, schema: { type: boolean } }
      responses:
        "200": { description: ok }
        "401": { description: no token }
  /boom:
    get:
      responses:
        "200": { description: never }
"#;

    /// A stub API on a free port: `/health` answers 200 with the expected token, else 401;
    /// `/boom` always answers 500. Served until the returned runtime is dropped.
    fn stub_server() -> (tokio::runtime::Runtime, String) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route(
                "/health",
                get(|h: HeaderMap| async move {
                    match h.get("authorization").and_then(|v| v.to_str().ok()) {
                        Some("Bearer t0k3n") => StatusCode::OK,
                        _ => StatusCode::UNAUTHORIZED,
                    }
                }),
            )
            .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }));
        rt.spawn(async move { axum::serve(listener, app).await });
        (rt, url)
    }

    #[test]
    fn schemathesis_passes_a_sound_api_and_catches_a_5xx() {
        let (_rt, url) = stub_server();
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("openapi.yaml");
        std::fs::write(&spec, SPEC.split("  /boom:").next().unwrap()).unwrap();
        run_schemathesis(&url, &spec, "t0k3n", 5, &[]).unwrap_or_else(|e| panic!("{e}"));

        std::fs::write(&spec, SPEC).unwrap();
        let e = run_schemathesis(&url, &spec, "t0k3n", 5, &[]).unwrap_err();
        assert!(e.contains("/boom") && e.contains("500"), "{e}");
        assert!(
            !e.contains("t0k3n"),
            "the token leaked into the report: {e}"
        );
    }

    #[test]
    fn a_missing_openapi_file_is_an_error() {
        let e = run_schemathesis(
            "http://127.0.0.1:1",
            Path::new("/nonexistent.yaml"),
            "t",
            1,
            &[],
        );
        let e = e.unwrap_err();
        assert!(
            e.contains("/nonexistent.yaml") || e.contains("pip install"),
            "{e}"
        );
    }
}
