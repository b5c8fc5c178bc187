//! Runs `switchyard up` as a child process on ports the test chose, so the test knows where its
//! API is; the child's output goes to a log file that is printed when a test fails.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// A local address nothing listens on right now, for the child to bind.
pub(crate) fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The `--listen`, `--discovery-listen` and `--data` of one `up`, kept across restarts.
pub(crate) struct UpArgs {
    pub listen: String,
    pub discovery_listen: String,
    pub data: tempfile::TempDir,
}

impl UpArgs {
    pub(crate) fn new() -> UpArgs {
        UpArgs {
            listen: free_address(),
            discovery_listen: free_address(),
            data: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn api_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// `switchyard up` on these addresses with `extra` flags; killed when dropped.
    pub(crate) fn command(&self, extra: &[&str], log: &Path) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut command = Command::new(BIN);
        command
            .arg("up")
            .args(["--listen", &self.listen])
            .args(["--discovery-listen", &self.discovery_listen])
            .arg("--data")
            .arg(self.data.path())
            .args(extra)
            // The controller's debug lines ("received") tell which tasks ran twice.
            .env("SWITCHYARD_LOG", "info,switchyard_controller=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true);
        command
    }
}

/// Polls `GET /v1/schemas` until every name in `algorithms` is listed, or the child exits.
pub(crate) async fn wait_until_serving(
    child: &mut Child,
    api_url: &str,
    algorithms: &[&str],
    log: &Path,
) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(response) = http.get(format!("{api_url}/v1/schemas")).send().await
            && let Ok(schemas) = response.json::<serde_json::Value>().await
            && algorithms.iter().all(|name| schemas.get(name).is_some())
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("`up` exited early ({status}):\n{}", read_log(log));
        }
        assert!(
            Instant::now() < deadline,
            "`up` not serving {algorithms:?} within 120 s:\n{}",
            read_log(log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}
