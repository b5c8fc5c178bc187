//! Helpers shared by the test binaries: a real discovery server on an ephemeral port, and
//! registrations to feed it.

// Each test binary uses only some of these.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::json;
use switchyard_discovery::Config;
use switchyard_wire::discovery::{AlgorithmInfo, RunnerRegistration};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) struct Running {
    pub base_url: String,
    pub shutdown: CancellationToken,
    pub served: JoinHandle<std::io::Result<()>>,
}

pub(crate) async fn start(config: Config) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let served = tokio::spawn(switchyard_discovery::serve(
        listener,
        config,
        shutdown.clone(),
    ));
    Running {
        base_url,
        shutdown,
        served,
    }
}

impl Running {
    /// Stops the server and checks it stopped cleanly.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.served)
            .await
            .expect("discovery stops when cancelled")
            .unwrap()
            .unwrap();
    }
}

pub(crate) fn registration(id: &str, base_url: &str, algorithms: &[&str]) -> RunnerRegistration {
    RunnerRegistration {
        id: id.to_string(),
        base_url: base_url.to_string(),
        algorithms: algorithms
            .iter()
            .map(|name| AlgorithmInfo {
                name: name.to_string(),
                schema: json!({"type": "object"}),
            })
            .collect(),
        unavailable: Vec::new(),
        capacity: 4,
    }
}
