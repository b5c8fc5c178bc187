//! What an ML engineer deploys instead of Switchyard, measured beside it: the FastAPI +
//! uvicorn + onnxruntime + Pillow service of `bench/peers/classifier_peer.py`, in the virtual
//! environment `bench/peers/setup.sh` makes, serving the same model file. Both it and
//! Switchyard's runner are called directly over HTTP by the same load: the same images, base64
//! in JSON, as many calls in flight for each. Their rounds take turns with the classifier's
//! other stages (`classify`), so the peer and the whole worker meet the same machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use switchyard_algorithms::classifier::{DEFAULT_LABELS, DEFAULT_MODEL};
use switchyard_algorithms::samples::SAMPLE_IMAGES;

use super::children::free_local_address;
use super::cpu::{Process, Watched};
use super::roundtrip::Percentiles;
use super::turns::overall_rate;

/// The peer and Switchyard's runner, each called directly over HTTP with the samples.
#[derive(Debug, Clone, Copy)]
pub(super) struct DirectFigures {
    /// The peer's images/s.
    pub peer_ips: f64,
    /// The peer's latency per call, every round pooled.
    pub peer_latency: Percentiles,
    /// Switchyard's runner's images/s, `POST /run/image_classifier` with the same bodies.
    pub runner_direct_ips: f64,
    /// The runner's latency per call, every round pooled.
    pub runner_latency: Percentiles,
    /// CPU milliseconds per image of the peer's processes, all its workers together.
    pub peer_cpu_ms: f64,
    /// CPU milliseconds per image of the runner's process.
    pub runner_cpu_ms: f64,
}

/// Calls in flight per core: enough that each of the peer's workers and each of the runner's
/// slots always has the next image waiting.
const IN_FLIGHT_PER_CORE: usize = 2;

/// Which of the two is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Peer,
    Runner,
}

/// One round of calls to one side.
#[derive(Debug, Clone)]
pub(super) struct DirectRound {
    rate: f64,
    latencies: Vec<Duration>,
    /// CPU seconds the side's processes used meanwhile.
    cpu_seconds: f64,
}

/// The peer, started, and Switchyard's runner, both ready to be called directly.
pub(super) struct Direct {
    peer: Peer,
    runner_url: String,
    /// The peer's processes (its workers are its children).
    peer_watched: Watched,
    /// The runner's process.
    runner_watched: Watched,
    client: reqwest::Client,
    /// The samples, base64 in JSON, as both take them.
    bodies: Vec<Bytes>,
    in_flight: usize,
}

impl Direct {
    /// Starts the peer of `dir`, with as many workers as `cores`, beside the runner at
    /// `runner_url` (process `runner_pid`), and warms both up.
    pub(super) async fn start(
        dir: &Path,
        scratch: &Path,
        cores: usize,
        (runner_url, runner_pid): (String, u32),
    ) -> anyhow::Result<Direct> {
        let bodies: Vec<Bytes> = SAMPLE_IMAGES
            .iter()
            .map(|(_, bytes)| {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                Bytes::from(json!({ "image_base64": encoded }).to_string())
            })
            .collect();
        let peer = Peer::start(dir, scratch, cores, bodies[0].clone()).await?;
        let peer_pid = peer.process.id().context("the peer has exited")?;
        let watched = |name, pid, with_descendants| {
            Watched::new(vec![Process {
                name,
                pid,
                with_descendants,
            }])
        };
        let direct = Direct {
            peer,
            runner_url,
            peer_watched: watched("peer", peer_pid, true),
            runner_watched: watched("runner", runner_pid, false),
            client: reqwest::Client::new(),
            in_flight: cores * IN_FLIGHT_PER_CORE,
            bodies,
        };
        for side in [Side::Peer, Side::Runner] {
            let warm_up = direct.bodies.len() * 2;
            http_load(
                &direct.client,
                direct.url(side),
                &direct.bodies,
                warm_up,
                direct.in_flight,
            )
            .await?;
        }
        Ok(direct)
    }

    fn url(&self, side: Side) -> &str {
        match side {
            Side::Peer => &self.peer.url,
            Side::Runner => &self.runner_url,
        }
    }

    fn watched(&self, side: Side) -> &Watched {
        match side {
            Side::Peer => &self.peer_watched,
            Side::Runner => &self.runner_watched,
        }
    }

    /// `count` calls to `side`, the samples in turn.
    pub(super) async fn round(
        &self,
        side: Side,
        count: usize,
        round: &str,
    ) -> anyhow::Result<DirectRound> {
        let load = http_load(
            &self.client,
            self.url(side),
            &self.bodies,
            count,
            self.in_flight,
        );
        let ((rate, latencies), cpu) = self.watched(side).during(load).await?;
        let name = match side {
            Side::Peer => "the peer",
            Side::Runner => "Switchyard's runner",
        };
        eprintln!("  {name} called directly, round {round}: {rate:.1} images/s");
        Ok(DirectRound {
            rate,
            latencies,
            cpu_seconds: cpu[0],
        })
    }
}

impl DirectRound {
    pub(super) fn rate(&self) -> f64 {
        self.rate
    }
}

impl DirectFigures {
    /// The figures of the peer's rounds and the runner's, `images` calls in all to each.
    pub(super) fn of(peer: Vec<DirectRound>, runner: Vec<DirectRound>, images: usize) -> Self {
        let summary = |rounds: Vec<DirectRound>| {
            let rates: Vec<f64> = rounds.iter().map(|round| round.rate).collect();
            let cpu_seconds: f64 = rounds.iter().map(|round| round.cpu_seconds).sum();
            let latencies = rounds.into_iter().flat_map(|round| round.latencies);
            (
                overall_rate(&rates),
                Percentiles::of(latencies.collect()),
                cpu_seconds * 1000.0 / images as f64,
            )
        };
        let (
            (peer_ips, peer_latency, peer_cpu_ms),
            (runner_direct_ips, runner_latency, runner_cpu_ms),
        ) = (summary(peer), summary(runner));
        eprintln!(
            "  called directly, images/s: the peer {peer_ips:.1} ({peer_latency}, CPU \
             {peer_cpu_ms:.1} ms per image), Switchyard's runner {runner_direct_ips:.1} \
             ({runner_latency}, CPU {runner_cpu_ms:.1} ms per image)"
        );
        DirectFigures {
            peer_ips,
            peer_latency,
            runner_direct_ips,
            runner_latency,
            peer_cpu_ms,
            runner_cpu_ms,
        }
    }
}

/// Loading onnxruntime, numpy and Pillow in every worker takes seconds.
const START_LIMIT: Duration = Duration::from_secs(120);

/// The peer's interpreter, in the environment `setup.sh` makes; checked before the bench starts
/// anything, so a missing setup fails at once rather than after the other measurements.
pub(super) fn python(dir: &Path) -> anyhow::Result<PathBuf> {
    let python = dir.join(".venv/bin/python");
    if !python.exists() {
        bail!(
            "the peer's environment is missing: run {}/setup.sh (it installs the peer's pinned \
             requirements from PyPI), or pass --no-peer",
            dir.display()
        );
    }
    Ok(python)
}

/// The peer's server, stopped when dropped.
#[derive(Debug)]
struct Peer {
    process: tokio::process::Child,
    /// `POST` an `{"image_base64"}` body here.
    url: String,
    /// Its stderr, kept with the other children's logs when the bench fails.
    log: PathBuf,
}

impl Peer {
    /// Starts the peer of `dir` (the repository's `bench/peers`) with `workers` processes, the
    /// model written into `scratch`; ready once it has answered one image.
    async fn start(
        dir: &Path,
        scratch: &Path,
        workers: usize,
        probe: Bytes,
    ) -> anyhow::Result<Peer> {
        let python = python(dir)?;
        let model = scratch.join("peer-model.onnx");
        let labels = scratch.join("peer-labels.txt");
        std::fs::write(&model, DEFAULT_MODEL).context("writing the model for the peer")?;
        std::fs::write(&labels, DEFAULT_LABELS).context("writing the labels for the peer")?;
        let address = free_local_address()?;
        let log = scratch.join("peer.log");
        let stderr =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let process = tokio::process::Command::new(&python)
            .arg(dir.join("classifier_peer.py"))
            .args(["--model", &model.to_string_lossy()])
            .args(["--labels", &labels.to_string_lossy()])
            .args([
                "--port",
                &address.port().to_string(),
                "--workers",
                &workers.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", python.display()))?;
        let mut peer = Peer {
            process,
            url: format!("http://{address}/classify"),
            log,
        };
        peer.wait_until_answering(probe).await?;
        Ok(peer)
    }

    async fn wait_until_answering(&mut self, probe: Bytes) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self.process.try_wait()? {
                bail!("the peer exited ({status}); see {}", self.log.display());
            }
            if let Ok(answer) = post(&client, &self.url, probe.clone()).await
                && answer.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the peer did not answer within {START_LIMIT:?}; see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Images per second and each call's latency: `count` calls to `url`, `in_flight` at once,
/// cycling through `bodies`. Any answer but a 2xx fails the measurement: a peer that refuses
/// images is not faster.
async fn http_load(
    client: &reqwest::Client,
    url: &str,
    bodies: &[Bytes],
    count: usize,
    in_flight: usize,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let started = Instant::now();
    let latencies: Vec<Duration> = futures::stream::iter(0..count)
        .map(|index| {
            let body = bodies[index % bodies.len()].clone();
            async move {
                let sent = Instant::now();
                let answer = post(client, url, body).await?;
                let status = answer.status();
                let text = answer.bytes().await.context("reading an answer")?;
                if !status.is_success() {
                    bail!(
                        "{url} answered {status}: {}",
                        String::from_utf8_lossy(&text)
                    );
                }
                Ok(sent.elapsed())
            }
        })
        .buffer_unordered(in_flight.max(1))
        .try_collect()
        .await?;
    Ok((count as f64 / started.elapsed().as_secs_f64(), latencies))
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
) -> anyhow::Result<reqwest::Response> {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("calling {url}"))
}
