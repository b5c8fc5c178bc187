//! Test kit: fake runners on ephemeral ports, a registry the test edits, and a controller
//! running over a broker of any backend, through the broker contract's harnesses
//! (`switchyard_broker::conformance`).

#![allow(dead_code)] // each test binary uses its own part of the kit

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Json, Path};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};
use switchyard_broker::conformance::{Harness, wait_for_depth_where};
use switchyard_broker::{Broker, DeadLetter, DeadLetterStore, Message, ResultSource};
use switchyard_controller::{
    Backoff, Controller, ControllerConfig, ControllerError, RunnerSource, SourceError, Timeouts,
};
use switchyard_wire::discovery::{AlgorithmInfo, RunnerEntry};
use switchyard_wire::{Task, TaskResult};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Settings that keep tests fast: short backoff, on-demand registry reads almost immediate.
pub(crate) fn config() -> ControllerConfig {
    ControllerConfig {
        concurrency: 4,
        max_attempts: 5,
        backoff: Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        },
        timeouts: Timeouts {
            default: Duration::from_secs(5),
            ..Timeouts::default()
        },
        no_runner_deadline: Duration::from_secs(5),
        grace_period: Duration::from_secs(5),
        registry_refresh: Duration::from_secs(30),
        registry_min_refresh: Duration::from_millis(20),
        ..ControllerConfig::default()
    }
}

/// One call a fake runner received.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub at: Instant,
    pub algorithm: String,
    pub headers: HeaderMap,
    pub payload: Value,
}

/// Every call a fake runner received, in order.
#[derive(Clone, Default)]
pub(crate) struct Calls(Arc<Mutex<Vec<Call>>>);

impl Calls {
    pub(crate) fn all(&self) -> Vec<Call> {
        self.0.lock().unwrap().clone()
    }

    pub(crate) fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn record(&self, call: Call) -> usize {
        let mut calls = self.0.lock().unwrap();
        calls.push(call);
        calls.len()
    }
}

/// What a fake runner is asked: the call's number (1-based, across algorithms), algorithm and
/// payload.
pub(crate) struct Incoming {
    pub n: usize,
    pub algorithm: String,
    pub payload: Value,
}

/// An HTTP server on 127.0.0.1:0 answering `POST /run/{algorithm}` with `answer`.
pub(crate) struct FakeRunner {
    pub base_url: String,
    pub calls: Calls,
    server: JoinHandle<()>,
}

impl FakeRunner {
    pub(crate) async fn start<F, Fut>(answer: F) -> Self
    where
        F: Fn(Incoming) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let calls = Calls::default();
        let recorder = calls.clone();
        let router = Router::new().route(
            "/run/{algorithm}",
            post(
                move |Path(algorithm): Path<String>,
                      headers: HeaderMap,
                      Json(payload): Json<Value>| {
                    let answer = answer.clone();
                    let n = recorder.record(Call {
                        at: Instant::now(),
                        algorithm: algorithm.clone(),
                        headers,
                        payload: payload.clone(),
                    });
                    async move {
                        answer(Incoming {
                            n,
                            algorithm,
                            payload,
                        })
                        .await
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakeRunner {
            base_url,
            calls,
            server,
        }
    }

    /// The registry entry announcing this runner with `algorithms`.
    pub(crate) fn entry(&self, id: &str, algorithms: &[&str]) -> RunnerEntry {
        entry(id, &self.base_url, algorithms)
    }
}

impl Drop for FakeRunner {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A `{"result": ...}` answer.
pub(crate) fn ok(result: Value) -> Response {
    answer(200, json!({ "result": result }))
}

pub(crate) fn answer(status: u16, body: Value) -> Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        Json(body),
    )
        .into_response()
}

pub(crate) fn entry(id: &str, base_url: &str, algorithms: &[&str]) -> RunnerEntry {
    RunnerEntry {
        id: id.into(),
        base_url: base_url.into(),
        algorithms: algorithms
            .iter()
            .map(|name| AlgorithmInfo {
                name: name.to_string(),
                schema: json!({"type": "object"}),
            })
            .collect(),
        unavailable: Vec::new(),
        capacity: 4,
        legacy: false,
        healthy: true,
        last_heartbeat_ms_ago: 0,
    }
}

/// A base URL nothing listens on: connecting to it is refused.
pub(crate) async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// The registry, as the test sets it.
#[derive(Clone, Default)]
pub(crate) struct Registry(Arc<Mutex<Vec<RunnerEntry>>>);

impl Registry {
    pub(crate) fn with(entries: Vec<RunnerEntry>) -> Self {
        Registry(Arc::new(Mutex::new(entries)))
    }

    pub(crate) fn set(&self, entries: Vec<RunnerEntry>) {
        *self.0.lock().unwrap() = entries;
    }

    pub(crate) fn add(&self, entry: RunnerEntry) {
        self.0.lock().unwrap().push(entry);
    }
}

#[async_trait]
impl RunnerSource for Registry {
    async fn runners(&self) -> Result<Vec<RunnerEntry>, SourceError> {
        Ok(self.0.lock().unwrap().clone())
    }
}

/// A controller running in the background.
pub(crate) struct Running {
    pub controller: Arc<Controller>,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), ControllerError>>,
}

/// Instantiates generic cases of a test file, `case::<H>()`, as `#[tokio::test]`s in a module
/// named after the backend: `on_backend!(amqp: AmqpHarness; case, case)`.
macro_rules! on_backend {
    ($module:ident: $harness:ty; $($case:ident),+ $(,)?) => {
        mod $module {
            use super::*;

            $(
                #[tokio::test]
                async fn $case() {
                    super::$case::<$harness>().await;
                }
            )+
        }
    };
}
pub(crate) use on_backend;

/// A broker of one backend under a controller, and every result published to its results queue.
pub(crate) struct Backend<H: Harness> {
    /// Before the harness, so its consumer stops before the harness removes the queues.
    results: ResultLog,
    pub harness: H,
}

/// Results consumed from the results queue, in arrival order.
struct ResultLog {
    messages: Arc<Mutex<Vec<Message>>>,
    consumer: JoinHandle<()>,
}

impl Drop for ResultLog {
    fn drop(&mut self) {
        self.consumer.abort();
    }
}

impl<H: Harness> Backend<H> {
    pub(crate) async fn open() -> Self {
        Backend::around(H::open().await)
    }

    /// On a harness whose connections a test may kill.
    pub(crate) async fn open_alone() -> Self {
        Backend::around(H::open_alone().await)
    }

    fn around(harness: H) -> Self {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let broker = harness.broker().clone();
        let log = messages.clone();
        // Consumes again when its stream ends (a lost connection), as up's collector does; a
        // result whose ack failed comes again, so only acked ones are logged.
        let consumer = tokio::spawn(async move {
            loop {
                if let Ok(mut results) = broker.consume_results(64).await {
                    while let Some(Ok(delivery)) = results.next().await {
                        let message = delivery.message.clone();
                        if delivery.ack().await.is_ok() {
                            log.lock().unwrap().push(message);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Backend {
            results: ResultLog { messages, consumer },
            harness,
        }
    }

    pub(crate) fn broker(&self) -> Arc<dyn Broker> {
        self.harness.broker().clone()
    }

    pub(crate) fn start(&self, config: ControllerConfig, registry: &Registry) -> Running {
        self.start_with(Controller::new(self.broker(), config, registry.clone()).unwrap())
    }

    /// Runs a controller built by the test (with tombstones, say).
    pub(crate) fn start_with(&self, controller: Controller) -> Running {
        let controller = Arc::new(controller);
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn({
            let controller = controller.clone();
            let shutdown = shutdown.clone();
            async move { controller.run(shutdown).await }
        });
        Running {
            controller,
            shutdown,
            handle,
        }
    }

    pub(crate) async fn submit(&self, id: &str, algorithm: &str, payload: Value) {
        let message = Message::new(Task::new(algorithm, payload).to_json_bytes()).with_id(id);
        self.publish(message).await;
    }

    pub(crate) async fn publish(&self, message: Message) {
        self.harness
            .broker()
            .publish_task(message, Duration::ZERO)
            .await
            .unwrap();
    }

    /// The results consumed so far, as messages.
    pub(crate) fn result_messages(&self) -> Vec<Message> {
        self.results.messages.lock().unwrap().clone()
    }

    /// The results consumed so far, decoded.
    pub(crate) fn results_so_far(&self) -> Vec<TaskResult> {
        self.result_messages().iter().map(decode).collect()
    }

    /// Waits for `count` results and decodes them all; panics if they do not come within
    /// `within`.
    pub(crate) async fn results(&self, count: usize, within: Duration) -> Vec<TaskResult> {
        let deadline = Instant::now() + within;
        while self.result_messages().len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let results = self.results_so_far();
        assert!(
            results.len() >= count,
            "expected {count} results within {within:?}, got {}: {results:?}",
            results.len(),
        );
        results
    }

    pub(crate) async fn dead_letters(&self) -> Vec<DeadLetter> {
        let stored = self.harness.broker().list_dead_letters(1000).await.unwrap();
        stored.into_iter().map(|stored| stored.letter).collect()
    }

    /// Waits until the task queue holds `ready` tasks and `delayed` waiting ones, whatever the
    /// dead letters.
    pub(crate) async fn wait_for_depth(&self, ready: u64, delayed: u64) {
        let expected = format!("{ready} ready and {delayed} delayed tasks");
        wait_for_depth_where(&self.harness, &expected, |depths| {
            (depths.tasks, depths.delayed) == (ready, delayed)
        })
        .await;
    }
}

impl Running {
    /// Signals shutdown and waits for `run` to return.
    pub(crate) async fn stop(self) -> Result<(), ControllerError> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("the controller stops within 15 s")
            .expect("the controller does not panic")
    }
}

pub(crate) fn decode(message: &Message) -> TaskResult {
    serde_json::from_slice(&message.body).expect("a result body is a TaskResult")
}

/// Polls `condition` every 10 ms until it holds; panics after `within`.
pub(crate) async fn eventually(within: Duration, what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
