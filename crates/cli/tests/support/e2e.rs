//! End-to-end kit: a RabbitMQ vhost of the test's own, discovery and a runner in this process,
//! and the `switchyard` binary as controller and producer.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use futures::StreamExt;
use switchyard_broker::amqp::{AmqpBroker, AmqpConfig};
use switchyard_broker::{Deliveries, QueueNames, ResultSource};
use switchyard_discovery::DiscoveryClient;
use switchyard_runner::{Algorithm, AlgorithmError, RunnerConfig};
use switchyard_wire::TaskResult;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
pub(crate) const QUEUE: &str = "tasks";

/// Sleeps for `ms`, then answers `label`: a stand-in for a slow model.
#[switchyard_runner::algorithm]
pub(crate) async fn sleepy(label: String, ms: u64) -> Result<String, AlgorithmError> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(label)
}

/// A RabbitMQ vhost of the test's own: its queues cannot meet another test's, closing its
/// connections touches no other test, and deleting it removes everything.
pub(crate) struct Vhost {
    pub name: String,
    /// The AMQP URL of the vhost, for `--amqp`.
    pub url: String,
}

impl Vhost {
    pub(crate) fn new() -> Vhost {
        let name = format!("switchyard-e2e-{}", uuid::Uuid::new_v4().simple());
        rabbitmqctl(&["add_vhost", &name]);
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        let url = format!("amqp://guest:guest@127.0.0.1:5672/{name}");
        Vhost { name, url }
    }

    /// A broker on this vhost's task queue, as a producer or result reader.
    pub(crate) async fn broker(&self) -> AmqpBroker {
        broker_at(&self.url).await
    }

    /// Closes every connection of the vhost, as a broker restart would.
    pub(crate) fn close_all_connections(&self) {
        rabbitmqctl(&["close_all_connections", "--vhost", &self.name, "e2e test"]);
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        rabbitmqctl(&["delete_vhost", &self.name]);
    }
}

/// A broker on the test task queue of the RabbitMQ at `url`, as a producer or result reader.
pub(crate) async fn broker_at(url: &str) -> AmqpBroker {
    broker_of_type(url, switchyard_broker::amqp::QueueType::Classic).await
}

/// As [`broker_at`], on queues of `queue_type`.
pub(crate) async fn broker_of_type(
    url: &str,
    queue_type: switchyard_broker::amqp::QueueType,
) -> AmqpBroker {
    AmqpBroker::connect(AmqpConfig {
        queue_type,
        ..AmqpConfig::new(url.to_owned(), QueueNames::new(QUEUE))
    })
    .await
    .expect("connect to the local RabbitMQ")
}

pub(crate) use switchyard_broker::conformance::amqp::rabbitmqctl;

/// A local address nothing listens on right now, for a child process to bind.
pub(crate) async fn free_address() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A service running in this process until dropped.
pub(crate) struct Service {
    pub url: String,
    shutdown: CancellationToken,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub(crate) async fn start_discovery() -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let config = switchyard_discovery::Config::default();
    tokio::spawn(switchyard_discovery::serve(
        listener,
        config,
        shutdown.clone(),
    ));
    Service { url, shutdown }
}

/// A runner hosting `algorithms`, registered with discovery (returns once discovery lists it).
pub(crate) async fn start_runner(discovery: &Service, algorithms: Vec<Algorithm>) -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let config = RunnerConfig {
        advertise_url: Some(url.clone()),
        discovery: Some(DiscoveryClient::new(discovery.url.clone(), None)),
        ..RunnerConfig::default()
    };
    let algorithms_served = tokio::spawn(switchyard_runner::serve(
        listener,
        algorithms,
        config,
        shutdown.clone(),
    ));
    let client = DiscoveryClient::new(discovery.url.clone(), None);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = client.runners().await.unwrap_or_default();
        if listed.iter().any(|entry| entry.base_url == url) {
            break;
        }
        assert!(
            !algorithms_served.is_finished(),
            "the runner stopped: {:?}",
            algorithms_served.await
        );
        assert!(
            Instant::now() < deadline,
            "the runner did not register within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Service { url, shutdown }
}

/// The series' Python runner, registered through the series' `POST /algorithms`.
pub(crate) async fn start_python_runner(discovery: &Service) -> (Child, String) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/legacy_runner.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["--discovery", &discovery.url, "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the Python runner reports its port in time")
        .unwrap()
        .expect("the Python runner printed its port");
    (child, format!("http://127.0.0.1:{}", port.trim()))
}

/// A `switchyard controller` process, killed when dropped. Its log is printed if the test fails.
pub(crate) struct ControllerProcess {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl ControllerProcess {
    pub(crate) fn spawn(vhost: &Vhost, discovery: &Service, extra: &[&str]) -> ControllerProcess {
        Self::spawn_on(vhost, &discovery.url, extra)
    }

    /// As [`ControllerProcess::spawn`], with discovery at `discovery_url` (e.g. a process).
    pub(crate) fn spawn_on(
        vhost: &Vhost,
        discovery_url: &str,
        extra: &[&str],
    ) -> ControllerProcess {
        Self::spawn_at(&vhost.url, discovery_url, extra)
    }

    /// As [`ControllerProcess::spawn_on`], on the RabbitMQ at `amqp_url`.
    pub(crate) fn spawn_at(
        amqp_url: &str,
        discovery_url: &str,
        extra: &[&str],
    ) -> ControllerProcess {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(BIN)
            .args([
                "controller",
                "--amqp",
                amqp_url,
                "--queue",
                QUEUE,
                "--discovery",
                discovery_url,
            ])
            .args([
                "--backoff-base",
                "100ms",
                "--backoff-cap",
                "1s",
                "--registry-refresh",
                "1s",
            ])
            .args(extra)
            // Debug lines carry each task's steps ("routed"), which tests read back.
            .env("SWITCHYARD_LOG", "info,switchyard_controller=debug")
            .env("NO_COLOR", "1")
            .env("SWITCHYARD_CONFIG", "/nonexistent/switchyard.toml")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("the switchyard binary runs");
        ControllerProcess { child, log }
    }

    /// SIGKILL: no shutdown, no requeue, no goodbye.
    pub(crate) async fn kill_9(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    pub(crate) async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the controller exits within 30 s of SIGTERM")
            .unwrap()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- controller log ----\n{}", self.log());
        }
    }
}

/// Runs `switchyard <args>` to completion.
pub(crate) async fn switchyard(args: &[&str]) -> Output {
    tokio::time::timeout(
        Duration::from_secs(120),
        Command::new(BIN)
            .args(args)
            .env("SWITCHYARD_CONFIG", "/nonexistent/switchyard.toml")
            .env("SWITCHYARD_LOG", "warn")
            .output(),
    )
    .await
    .expect("the command finishes within 120 s")
    .expect("the switchyard binary runs")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Reads the results queue, keeping every result read so far, and reconnecting when the
/// connection is lost.
pub(crate) struct ResultReader<'a> {
    broker: &'a AmqpBroker,
    /// Every result read, by task id (duplicates kept: delivery is at-least-once).
    pub seen: HashMap<String, Vec<TaskResult>>,
    stream: Option<Deliveries>,
}

impl<'a> ResultReader<'a> {
    pub(crate) fn new(broker: &'a AmqpBroker) -> Self {
        ResultReader {
            broker,
            seen: HashMap::new(),
            stream: None,
        }
    }

    /// Reads until every id in `expected` has at least one result; panics after `within`.
    pub(crate) async fn wait_for(
        &mut self,
        expected: &BTreeSet<String>,
        within: Duration,
    ) -> &HashMap<String, Vec<TaskResult>> {
        let deadline = Instant::now() + within;
        loop {
            let missing: Vec<&String> = expected
                .iter()
                .filter(|id| !self.seen.contains_key(*id))
                .collect();
            if missing.is_empty() {
                return &self.seen;
            }
            assert!(
                Instant::now() < deadline,
                "no result within {within:?} for {} tasks: {missing:?}",
                missing.len()
            );
            self.read_next().await;
        }
    }

    /// Reads until no result has come for `quiet`: late duplicates included.
    pub(crate) async fn drain(&mut self, quiet: Duration) {
        let mut last = Instant::now();
        while last.elapsed() < quiet {
            if self.read_next().await {
                last = Instant::now();
            }
        }
    }

    /// Reads at most one result, waiting up to 500 ms; says whether one was read.
    async fn read_next(&mut self) -> bool {
        let deliveries = match &mut self.stream {
            Some(deliveries) => deliveries,
            None => match self.broker.consume_results(64).await {
                Ok(deliveries) => self.stream.insert(deliveries),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return false;
                }
            },
        };
        match tokio::time::timeout(Duration::from_millis(500), deliveries.next()).await {
            Err(_) => false,
            Ok(Some(Ok(delivery))) => {
                let result: TaskResult =
                    serde_json::from_slice(&delivery.message.body).expect("a TaskResult");
                let _ = delivery.ack().await;
                self.seen.entry(result.id.clone()).or_default().push(result);
                true
            }
            Ok(Some(Err(_)) | None) => {
                self.stream = None;
                false
            }
        }
    }
}

/// Reads the results queue until every id in `expected` has a result (see [`ResultReader`]).
pub(crate) async fn collect_results(
    broker: &AmqpBroker,
    expected: &BTreeSet<String>,
    within: Duration,
) -> HashMap<String, Vec<TaskResult>> {
    let mut reader = ResultReader::new(broker);
    reader.wait_for(expected, within).await;
    reader.seen
}
