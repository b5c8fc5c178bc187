//! The task API's world in one process: discovery, a runner, a controller on the in-memory
//! broker, the result collector and the API router, each on its own ephemeral port.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchyard_api::{Catalog, Queues, TaskApi, TaskStore};
use switchyard_broker::memory::MemoryBroker;
use switchyard_controller::{Controller, ControllerConfig};
use switchyard_discovery::DiscoveryClient;
use switchyard_runner::{AlgorithmError, RunnerConfig};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The request body limit of the API under test: small, so 413 is cheap to provoke.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// How long anything in these tests may take on a loaded 2-core machine.
pub(crate) const WITHIN: Duration = Duration::from_secs(60);

/// Always refused by the runner, although its schema accepts the payload: a task the controller
/// must dead-letter.
#[switchyard_runner::algorithm]
pub(crate) fn refuse(reason: String) -> Result<String, AlgorithmError> {
    Err(AlgorithmError::bad_input(format!("refused: {reason}")))
}

/// Answers the image as it reached the runner, and the note beside it: what an upload became.
#[switchyard_runner::algorithm]
pub(crate) fn image_echo(
    image_base64: String,
    note: Option<String>,
) -> Result<Value, AlgorithmError> {
    Ok(serde_json::json!({"image_base64": image_base64, "note": note}))
}

/// Sleeps `ms`, then answers it: a task that is still running while a client waits.
#[switchyard_runner::algorithm]
pub(crate) async fn nap(ms: u64) -> Result<u64, AlgorithmError> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ms)
}

pub(crate) struct Stack {
    /// The API's base URL.
    pub url: String,
    pub runner_url: String,
    pub broker: MemoryBroker,
    /// The API's state, for what HTTP cannot reach (republishing).
    pub api: TaskApi,
    /// The API's task store, for what runs beside the API (the pruner).
    pub store: TaskStore,
    pub http: reqwest::Client,
    discovery: DiscoveryClient,
    /// Stops the controller alone, so a test can look at tasks nobody consumes.
    controller: CancellationToken,
    shutdown: CancellationToken,
    _data: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.controller.cancel();
        self.shutdown.cancel();
    }
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

impl Stack {
    pub(crate) async fn start() -> Stack {
        Self::start_with_token(None).await
    }

    /// A stack whose API requires `token` for changes (discovery and the runner do not).
    pub(crate) async fn start_with_token(token: Option<&str>) -> Stack {
        let shutdown = CancellationToken::new();
        let (listener, discovery_url) = bind().await;
        tokio::spawn(switchyard_discovery::serve(
            listener,
            switchyard_discovery::Config::default(),
            shutdown.clone(),
        ));
        let discovery = DiscoveryClient::new(discovery_url, None);

        let (listener, runner_url) = bind().await;
        let runner_config = RunnerConfig {
            advertise_url: Some(runner_url.clone()),
            discovery: Some(discovery.clone()),
            ..RunnerConfig::default()
        };
        let algorithms = vec![
            switchyard_algorithms::echo_algorithm(),
            refuse_algorithm(),
            nap_algorithm(),
            image_echo_algorithm(),
        ];
        tokio::spawn(switchyard_runner::serve(
            listener,
            algorithms,
            runner_config,
            shutdown.clone(),
        ));
        wait_for_runner(&discovery, &runner_url).await;

        let broker = MemoryBroker::new();
        let data = tempfile::tempdir().unwrap();
        let store = TaskStore::open(&data.path().join("tasks.db")).unwrap();
        let api = TaskApi::new(
            Queues::of(Arc::new(broker.clone())),
            store.clone(),
            Catalog::new(discovery.clone()),
        )
        .with_token(token.map(String::from));
        let store_for_tests = store.clone();
        tokio::spawn(switchyard_api::collector::collect_results(
            Arc::new(broker.clone()),
            store_for_tests.clone(),
            api.finished_sender(),
            shutdown.clone(),
        ));
        let (listener, url) = bind().await;
        let router = switchyard_api::router(api.clone(), MAX_BODY);
        let served = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(served.cancelled_owned())
                .await
        });
        let mut stack = Stack {
            url,
            runner_url,
            broker,
            api,
            store: store_for_tests,
            http: reqwest::Client::new(),
            discovery,
            controller: CancellationToken::new(),
            shutdown,
            _data: data,
        };
        stack.start_controller();
        stack
    }

    /// Starts a controller on the broker (after [`Stack::stop_controller`], a fresh one).
    pub(crate) fn start_controller(&mut self) {
        self.controller = self.shutdown.child_token();
        let controller = Controller::new(
            Arc::new(self.broker.clone()),
            ControllerConfig {
                concurrency: 8,
                ..ControllerConfig::default()
            },
            self.discovery.clone(),
        )
        .unwrap();
        let stop = self.controller.clone();
        tokio::spawn(async move { controller.run(stop).await });
    }

    /// Stops the controller and returns once it holds no delivery.
    pub(crate) async fn stop_controller(&self) {
        self.controller.cancel();
        let deadline = Instant::now() + WITHIN;
        while self.broker.unsettled() > 0 {
            assert!(Instant::now() < deadline, "the controller did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `POST /v1/tasks`: the status and the JSON answer.
    pub(crate) async fn submit(&self, body: Value, key: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(self.at("/v1/tasks")).json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        answer(request).await
    }

    /// Submits a task that must be accepted; its id.
    pub(crate) async fn accepted(&self, algorithm: &str, payload: Value) -> String {
        let (status, body) = self
            .submit(
                serde_json::json!({"algorithm": algorithm, "payload": payload}),
                None,
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().expect("an id").to_string()
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        answer(self.http.get(self.at(path))).await
    }

    /// Long-polls a task until it is final.
    pub(crate) async fn wait_final(&self, id: &str) -> Value {
        let deadline = Instant::now() + WITHIN;
        loop {
            let (status, record) = self.get(&format!("/v1/tasks/{id}?wait=20s")).await;
            assert_eq!(status, 200, "{record}");
            if matches!(
                record["status"].as_str(),
                Some("done" | "failed" | "dead" | "expired" | "cancelled")
            ) {
                return record;
            }
            assert!(Instant::now() < deadline, "task {id} not final: {record}");
        }
    }

    /// Results the controller published for `id`: more than one means the task ran twice.
    pub(crate) fn results_for(&self, id: &str) -> usize {
        self.broker
            .results()
            .iter()
            .filter(|message| serde_json::from_slice::<Value>(&message.body).unwrap()["id"] == id)
            .count()
    }
}

/// Sends a request; its status and its body as JSON (the text as a JSON string if it is not).
pub(crate) async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

async fn wait_for_runner(discovery: &DiscoveryClient, runner_url: &str) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let runners = discovery.runners().await.unwrap_or_default();
        if runners.iter().any(|runner| runner.base_url == runner_url) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the runner did not register in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
