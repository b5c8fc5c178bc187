//! Helpers shared by the runner's test binaries; each binary uses a part of them.
#![allow(dead_code)]

pub(crate) mod algorithms;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use switchyard_discovery::DiscoveryClient;
use switchyard_runner::{Algorithm, Runner, RunnerConfig, RunnerError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// An answer, read whole.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `message` of an error body.
    pub(crate) fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .expect("an error body has a message")
            .to_string()
    }
}

pub(crate) fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

pub(crate) fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub(crate) async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body
            .collect()
            .await
            .expect("the body is readable")
            .to_bytes(),
    }
}

/// A runner's router with every algorithm loaded.
pub(crate) async fn loaded_router(algorithms: Vec<Algorithm>, config: RunnerConfig) -> Router {
    let mut runner = Runner::new(algorithms, config).expect("a valid runner");
    runner.load().await.expect("every algorithm loads");
    runner.router()
}

/// Polls `check` every 20 ms until it holds, failing after 10 s.
pub(crate) async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A runner serving on a real socket.
pub(crate) struct Served {
    pub base_url: String,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), RunnerError>>,
}

pub(crate) async fn serve(algorithms: Vec<Algorithm>, config: RunnerConfig) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(switchyard_runner::serve(
        listener,
        algorithms,
        config,
        shutdown.clone(),
    ));
    Served {
        base_url,
        shutdown,
        task,
    }
}

impl Served {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub(crate) async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        eventually("the runner is ready", async || {
            matches!(http.get(self.url("/ready")).send().await, Ok(response) if response.status() == 200)
        })
        .await;
    }

    /// Cancels the runner and returns what `serve` returned.
    pub(crate) async fn stop(self) -> Result<(), RunnerError> {
        self.shutdown.cancel();
        self.join().await
    }

    pub(crate) async fn join(self) -> Result<(), RunnerError> {
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the runner stops in time")
            .expect("the runner does not panic")
    }
}

/// A discovery service on a real socket.
pub(crate) struct Discovery {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

/// Short enough that expiry and heartbeats show within a test.
pub(crate) fn quick_discovery() -> switchyard_discovery::Config {
    switchyard_discovery::Config {
        ttl: Duration::from_millis(600),
        heartbeat_interval: Duration::from_millis(100),
        token: None,
    }
}

pub(crate) async fn start_discovery(
    listener: TcpListener,
    config: switchyard_discovery::Config,
) -> Discovery {
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(switchyard_discovery::serve(
        listener,
        config,
        shutdown.clone(),
    ));
    Discovery {
        addr,
        shutdown,
        task,
    }
}

impl Discovery {
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn client(&self) -> DiscoveryClient {
        DiscoveryClient::new(self.base_url(), None)
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("discovery stops in time")
            .unwrap()
            .unwrap();
    }
}

/// The value of one sample in Prometheus text, e.g. `switchyard_runner_in_flight{algorithm="slow"}`.
pub(crate) fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
