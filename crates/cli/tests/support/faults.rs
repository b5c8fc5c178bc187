//! Fault kit: `switchyard` services as processes that can be killed and restarted on the same
//! address, misbehaving runners (garbage, hanging, slow), an image host serving hostile images,
//! and hand-made PNGs.

use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;
use switchyard_discovery::DiscoveryClient;
use switchyard_wire::discovery::{AlgorithmInfo, RunnerRegistration};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::e2e::BIN;

/// A `switchyard <args>` process that can be SIGKILLed and started again with the same
/// arguments (so on the same address). Its log is printed if the test fails.
pub(crate) struct Process {
    args: Vec<String>,
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Process {
    pub(crate) fn spawn(args: &[&str]) -> Process {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = spawn_logged(&args, &log);
        Process { args, child, log }
    }

    /// SIGKILL, then the same command again; the log goes on in the same file.
    pub(crate) async fn kill_9_and_restart(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        self.child = spawn_logged(&self.args, &self.log);
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Whether it has exited, without waiting.
    pub(crate) fn has_exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Waits for it to exit on its own; panics after `within`.
    pub(crate) async fn exit_status(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{:?} still running after {within:?}", self.args))
            .unwrap()
    }

    /// Polls its log until it contains `line`; panics after `within`.
    pub(crate) async fn wait_for_log(&self, line: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(line) {
            assert!(Instant::now() < deadline, "no {line:?} in:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn spawn_logged(args: &[String], log: &tempfile::NamedTempFile) -> Child {
    let log_file = std::fs::OpenOptions::new()
        .append(true)
        .open(log.path())
        .unwrap();
    Command::new(BIN)
        .args(args)
        .env("SWITCHYARD_LOG", "info")
        .env("NO_COLOR", "1")
        .env("SWITCHYARD_CONFIG", "/nonexistent/switchyard.toml")
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .expect("the switchyard binary runs")
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- switchyard {:?} log ----\n{}", self.args, self.log());
        }
    }
}

/// A RabbitMQ node of the test's own (`scripts/rabbitmq-node.sh`), on ports and in a directory
/// of its own, so killing it touches no other test; stopped when dropped.
pub(crate) struct RabbitNode {
    name: String,
    /// The AMQP URL of its default vhost.
    pub url: String,
    amqp_port: String,
    dist_port: String,
    /// Its data: kept across a kill, so a restart finds its durable queues.
    dir: tempfile::TempDir,
}

const NODE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/rabbitmq-node.sh"
);

impl RabbitNode {
    pub(crate) async fn start() -> RabbitNode {
        let port = |address: String| address.rsplit(':').next().unwrap().to_owned();
        let amqp_port = port(super::e2e::free_address().await);
        let dist_port = port(super::e2e::free_address().await);
        let node = RabbitNode {
            name: format!("switchyard-fault-{amqp_port}"),
            url: format!("amqp://guest:guest@127.0.0.1:{amqp_port}/%2f"),
            amqp_port,
            dist_port,
            dir: tempfile::tempdir().unwrap(),
        };
        node.start_again().await;
        node
    }

    /// Starts it (again, after [`RabbitNode::kill_9`]) on the same ports and data; returns once
    /// it serves.
    pub(crate) async fn start_again(&self) {
        let dir = self.dir.path().to_str().unwrap();
        self.script(&["start", &self.name, &self.amqp_port, &self.dist_port, dir])
            .await;
    }

    /// SIGKILL of the broker: no shutdown, no goodbye to its clients.
    pub(crate) async fn kill_9(&self) {
        self.script(&["kill", &self.name]).await;
    }

    /// `rabbitmqctl` on this node.
    pub(crate) async fn rabbitmqctl(&self, args: &[&str]) {
        let node = format!("{}@localhost", self.name);
        let output = Command::new("rabbitmqctl")
            .args(["-q", "-n", &node])
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    async fn script(&self, args: &[&str]) {
        run_script(NODE_SCRIPT, args).await;
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        let _ = std::process::Command::new(NODE_SCRIPT)
            .args(["stop", &self.name])
            .status();
    }
}

/// A three-node RabbitMQ cluster of the test's own (`scripts/rabbitmq-cluster.sh`); stopped when
/// dropped.
pub(crate) struct RabbitCluster {
    prefix: String,
    base_port: u16,
    /// The nodes' data, kept across kills so a restarted node rejoins with its queues.
    dir: tempfile::TempDir,
}

const CLUSTER_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/rabbitmq-cluster.sh"
);

impl RabbitCluster {
    /// Three nodes on ports `base`, `+1`, `+2` (distribution on `+10` to `+12`), a range where
    /// nothing listens now.
    pub(crate) async fn start() -> RabbitCluster {
        let base_port = free_port_range().await;
        let cluster = RabbitCluster {
            prefix: format!("switchyard-cluster-{base_port}"),
            base_port,
            dir: tempfile::tempdir().unwrap(),
        };
        let dir = cluster.dir.path().to_str().unwrap().to_owned();
        run_script(
            CLUSTER_SCRIPT,
            &["start", &cluster.prefix, &base_port.to_string(), &dir],
        )
        .await;
        cluster
    }

    /// Every node's AMQP URL, comma-separated: what `--amqp` takes for a cluster.
    pub(crate) fn urls(&self) -> String {
        (0..3)
            .map(|n| format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.base_port + n))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node (1 to 3) that leads the quorum queue `queue`.
    pub(crate) async fn leader_of(&self, queue: &str) -> u16 {
        for node in 1..=3 {
            let output = Command::new("rabbitmqctl")
                .args([
                    "-q",
                    "-n",
                    &self.node(node),
                    "list_queues",
                    "name",
                    "leader",
                ])
                .output()
                .await
                .unwrap();
            if !output.status.success() {
                continue;
            }
            let listing = String::from_utf8_lossy(&output.stdout).into_owned();
            for line in listing.lines() {
                let mut columns = line.split_whitespace();
                if columns.next() == Some(queue) {
                    let leader = columns.next().unwrap_or_default();
                    return (1..=3)
                        .find(|n| leader == self.node(*n))
                        .unwrap_or_else(|| panic!("leader {leader:?} of {queue} is no node"));
                }
            }
        }
        panic!("no node lists {queue}")
    }

    pub(crate) async fn kill_9(&self, node: u16) {
        run_script(NODE_SCRIPT, &["kill", &format!("{}-{node}", self.prefix)]).await;
    }

    /// Starts a killed node again; it rejoins the cluster.
    pub(crate) async fn restart(&self, node: u16) {
        let port = self.base_port + node - 1;
        let dir = self.dir.path().join(node.to_string());
        run_script(
            NODE_SCRIPT,
            &[
                "start",
                &format!("{}-{node}", self.prefix),
                &port.to_string(),
                &(self.base_port + 9 + node).to_string(),
                dir.to_str().unwrap(),
            ],
        )
        .await;
    }

    fn node(&self, n: u16) -> String {
        format!("{}-{n}@localhost", self.prefix)
    }
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(CLUSTER_SCRIPT)
            .args(["stop", &self.prefix])
            .status();
    }
}

/// A port `p` such that `p..p+3` and `p+10..p+13` are free on 127.0.0.1 right now.
async fn free_port_range() -> u16 {
    loop {
        let base = 20_000 + (uuid::Uuid::new_v4().as_u128() % 30_000) as u16;
        let mut free = true;
        for port in (base..base + 3).chain(base + 10..base + 13) {
            free &= tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .is_ok();
        }
        if free {
            return base;
        }
    }
}

async fn run_script(script: &str, args: &[&str]) {
    let output = Command::new(script).args(args).output().await.unwrap();
    assert!(
        output.status.success(),
        "{script} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `switchyard discovery` on `address`, with a short ttl so a killed runner drops out soon.
pub(crate) async fn discovery_process(address: &str, token: Option<&str>) -> Process {
    let mut args = vec![
        "discovery",
        "--listen",
        address,
        "--ttl",
        "3s",
        "--heartbeat-interval",
        "1s",
    ];
    if let Some(token) = token {
        args.extend(["--token", token]);
    }
    let process = Process::spawn(&args);
    let client = DiscoveryClient::new(format!("http://{address}"), None);
    poll(Duration::from_secs(30), "discovery answers", || async {
        client.runners().await.is_ok()
    })
    .await;
    process
}

/// `switchyard runner` on `address` with `extra` flags; returns once discovery lists it.
pub(crate) async fn runner_process(discovery_url: &str, address: &str, extra: &[&str]) -> Process {
    let process = Process::spawn(
        &[
            &["runner", "--listen", address, "--discovery", discovery_url][..],
            extra,
        ]
        .concat(),
    );
    wait_until_listed(discovery_url, &format!("http://{address}")).await;
    process
}

pub(crate) async fn wait_until_listed(discovery_url: &str, base_url: &str) {
    let client = DiscoveryClient::new(discovery_url, None);
    poll(
        Duration::from_secs(120),
        &format!("discovery lists {base_url}"),
        || async {
            let listed = client.runners().await.unwrap_or_default();
            listed.iter().any(|entry| entry.base_url == base_url)
        },
    )
    .await;
}

/// Polls `condition` every 50 ms; panics with `what` after `within`.
pub(crate) async fn poll<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How a fake runner misbehaves.
#[derive(Clone, Copy)]
pub(crate) enum Misbehaviour {
    /// 200 with a body that is not JSON.
    Garbage,
    /// Accepts the connection, reads nothing, answers nothing.
    Hang,
    /// Answers a valid `{"result": ...}`, but only after this long.
    Slow(Duration),
}

/// A fake runner registered with discovery (and heartbeating) for `algorithm`. Stops when dropped.
pub(crate) struct FakeRunner {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeRunner {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|task| task.abort());
    }
}

pub(crate) async fn fake_runner(
    discovery: &DiscoveryClient,
    algorithm: &str,
    misbehaviour: Misbehaviour,
) -> FakeRunner {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = match misbehaviour {
        Misbehaviour::Hang => tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        }),
        Misbehaviour::Garbage | Misbehaviour::Slow(_) => {
            let router = Router::new().route(
                "/run/{algorithm}",
                post(move |Path(name): Path<String>| async move {
                    match misbehaviour {
                        Misbehaviour::Slow(delay) => {
                            tokio::time::sleep(delay).await;
                            axum::Json(json!({"result": {"late": name}})).into_response()
                        }
                        _ => (StatusCode::OK, "<html>surely not JSON</html>").into_response(),
                    }
                }),
            );
            tokio::spawn(async move {
                axum::serve(listener, router).await.unwrap();
            })
        }
    };
    let registration = RunnerRegistration {
        id: format!("fake-{}", uuid::Uuid::new_v4().simple()),
        base_url: url,
        algorithms: vec![AlgorithmInfo {
            name: algorithm.to_string(),
            schema: json!({"type": "object"}),
        }],
        unavailable: Vec::new(),
        capacity: 4,
    };
    discovery.register(&registration).await.expect("registered");
    let client = discovery.clone();
    let heartbeat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if client.heartbeat(&registration.id).await.is_err() {
                let _ = client.register(&registration).await;
            }
        }
    });
    FakeRunner {
        tasks: vec![server, heartbeat],
    }
}

/// An image host serving every kind of bad image (and one good one). Stops with the test.
pub(crate) async fn hostile_image_host() -> String {
    let router = Router::new()
        .route("/good.png", get(|| async { png(png_file(8, 8)) }))
        .route(
            "/truncated.png",
            get(|| async {
                let file = png_file(8, 8);
                png(file[..file.len() / 2].to_vec())
            }),
        )
        .route("/bomb.png", get(|| async { png(png_bomb()) }))
        .route(
            "/page.html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body>not an image</body></html>",
                )
            }),
        )
        .route(
            "/slow.png",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(600)).await;
                png(png_file(8, 8))
            }),
        )
        .route("/loop", get(|| async { Redirect::temporary("/loop") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn png(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/png")], bytes).into_response()
}

/// A valid `width` x `height` grey-ish RGB PNG, made by hand (stored deflate blocks).
pub(crate) fn png_file(width: u32, height: u32) -> Vec<u8> {
    let row: Vec<u8> = std::iter::once(0) // filter: none
        .chain((0..width).flat_map(|x| [(x * 30) as u8, 120, 200]))
        .collect();
    let raw: Vec<u8> = (0..height).flat_map(|_| row.clone()).collect();
    png_with(width, height, &zlib_stored(&raw))
}

/// A 60,000 x 60,000 PNG whose header is valid and whose data is a few bytes: 10.8 GB once
/// decoded, a few dozen bytes on the wire.
pub(crate) fn png_bomb() -> Vec<u8> {
    png_with(60_000, 60_000, &zlib_stored(&[0; 16]))
}

fn png_with(width: u32, height: u32, idat: &[u8]) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter method variant, no interlace
    let mut file = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(*b"IHDR", &ihdr[..]), (*b"IDAT", idat), (*b"IEND", &[][..])] {
        file.extend((data.len() as u32).to_be_bytes());
        let start = file.len();
        file.extend(kind);
        file.extend(data);
        let crc = crc32(&file[start..]);
        file.extend(crc.to_be_bytes());
    }
    file
}

/// A zlib stream of one stored (uncompressed) deflate block.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let length = data.len() as u16;
    let mut stream = vec![0x78, 0x01, 0x01];
    stream.extend(length.to_le_bytes());
    stream.extend((!length).to_le_bytes());
    stream.extend(data);
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    stream.extend(((b << 16) | a).to_be_bytes());
    stream
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
