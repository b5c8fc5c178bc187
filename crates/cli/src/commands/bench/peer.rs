//! What an ML engineer deploys instead of Switchyard, measured beside it: the FastAPI +
//! uvicorn + onnxruntime + Pillow service of `bench/peers/classifier_peer.py`, in the virtual
//! environment `bench/peers/setup.sh` makes, serving the same model file. Both it and
//! Switchyard's runner are called directly over HTTP by the same load: the same images, base64
//! in JSON, as many calls in flight for each.

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
use super::roundtrip::Percentiles;
use super::turns::{in_turns, overall_rate};

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
}

/// Calls in flight per core: enough that each of the peer's workers and each of the runner's
/// slots always has the next image waiting.
const IN_FLIGHT_PER_CORE: usize = 2;

/// Starts the peer of `dir`, then measures it and the runner at `runner_url` in turns, over
/// `per_round` images in each of `rounds` rounds.
pub(super) async fn measure(
    dir: &Path,
    scratch: &Path,
    cores: usize,
    runner_url: &str,
    (rounds, per_round): (usize, usize),
) -> anyhow::Result<DirectFigures> {
    let bodies: Vec<Bytes> = SAMPLE_IMAGES
        .iter()
        .map(|(_, bytes)| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            Bytes::from(json!({ "image_base64": encoded }).to_string())
        })
        .collect();
    let peer = Peer::start(dir, scratch, cores, bodies[0].clone()).await?;
    let client = reqwest::Client::new();
    let in_flight = cores * IN_FLIGHT_PER_CORE;
    let sides = [
        ("the peer", peer.url.as_str()),
        ("Switchyard's runner", runner_url),
    ];
    for (_, url) in sides {
        http_load(&client, url, &bodies, bodies.len() * 2, in_flight).await?;
    }
    let [peer_rounds, runner_rounds] = in_turns(rounds, sides, |(side, url), round| {
        let (client, bodies) = (&client, &bodies);
        async move {
            let (rate, latencies) = http_load(client, url, bodies, per_round, in_flight).await?;
            eprintln!("  {side} called directly, round {round}: {rate:.1} images/s");
            Ok((rate, latencies))
        }
    })
    .await?;
    let summary = |rounds: Vec<(f64, Vec<Duration>)>| {
        let (rates, latencies): (Vec<f64>, Vec<Vec<Duration>>) = rounds.into_iter().unzip();
        (overall_rate(&rates), Percentiles::of(latencies.concat()))
    };
    let ((peer_ips, peer_latency), (runner_direct_ips, runner_latency)) =
        (summary(peer_rounds), summary(runner_rounds));
    eprintln!(
        "  called directly, images/s: the peer {peer_ips:.1} ({peer_latency}), Switchyard's \
         runner {runner_direct_ips:.1} ({runner_latency})"
    );
    Ok(DirectFigures {
        peer_ips,
        peer_latency,
        runner_direct_ips,
        runner_latency,
    })
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
