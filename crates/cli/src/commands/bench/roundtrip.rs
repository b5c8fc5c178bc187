//! The producer's side of a round trip: publish tasks, read their results off the results queue,
//! and time the two. The same code measures the ceiling and the worker; only what consumes the
//! task queue differs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use switchyard_broker::{Broker, BrokerError, Deliveries, Message, ResultSource};
use switchyard_wire::{TaskOutcome, TaskResult};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Publishes in flight at once in a burst: RabbitMQ confirms each publish on its own, and
/// awaiting them one by one caps a publisher near 1/RTT (docs/benchmarks.md, "Brokers").
const PUBLISHES_IN_FLIGHT: usize = 256;
/// Unsettled results the producer holds; results are small, and acks are not awaited in turn.
const RESULTS_PREFETCH: u16 = 512;

/// A result as it reached the producer.
struct Arrival {
    id: String,
    at: Instant,
    /// The error message of a failed task.
    failure: Option<String>,
}

/// Publishes tasks to one topology and reads its results queue.
pub(super) struct Producer {
    broker: Arc<dyn Broker>,
    arrivals: Mutex<mpsc::UnboundedReceiver<Result<Arrival, String>>>,
    collector: JoinHandle<()>,
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.collector.abort();
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    /// The worst sample: a single stall (a blocked write, a GC-like pause) hides below p99.
    pub max: f64,
}

impl Percentiles {
    pub(super) fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |quantile: f64| {
            let index = ((samples.len() as f64 * quantile).ceil() as usize).clamp(1, samples.len());
            samples[index - 1].as_secs_f64() * 1000.0
        };
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }

    /// What `self` adds to `base`, percentile by percentile.
    pub(super) fn minus(self, base: Percentiles) -> Percentiles {
        Percentiles {
            p50: self.p50 - base.p50,
            p95: self.p95 - base.p95,
            p99: self.p99 - base.p99,
            max: self.max - base.max,
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.p50, self.p95, self.p99, self.max
        )
    }
}

impl Producer {
    /// Starts reading the results queue before anything is published, so no result is missed.
    pub(super) async fn start<B: Broker + ResultSource>(broker: Arc<B>) -> anyhow::Result<Self> {
        let results = broker
            .consume_results(RESULTS_PREFETCH)
            .await
            .context("consuming the results queue")?;
        let (sender, receiver) = mpsc::unbounded_channel();
        Ok(Producer {
            broker,
            arrivals: Mutex::new(receiver),
            collector: tokio::spawn(collect(results, sender)),
        })
    }

    /// Publishes every task with many publishes in flight and waits for every result; returns
    /// the time from the first publish to the last result.
    pub(super) async fn burst(&self, tasks: Vec<Message>, label: &str) -> anyhow::Result<Duration> {
        let count = tasks.len();
        let expected = ids(&tasks);
        let bar = progress(count, label);
        let started = Instant::now();
        let publishing = futures::stream::iter(tasks)
            .map(|task| self.broker.publish_task(task, Duration::ZERO))
            .buffer_unordered(PUBLISHES_IN_FLIGHT)
            .try_for_each(|()| futures::future::ready(Ok(())));
        let publishing = async { publishing.await.context("publishing a task") };
        let (_, arrivals) = tokio::try_join!(publishing, self.results(expected, &bar))?;
        bar.finish_and_clear();
        let last = arrivals.values().max().copied().unwrap_or(started);
        Ok(last.duration_since(started))
    }

    /// Tasks per second over a burst of `tasks`.
    pub(super) async fn throughput(&self, tasks: Vec<Message>, label: &str) -> anyhow::Result<f64> {
        let count = tasks.len();
        let took = self.burst(tasks, label).await?;
        let rate = count as f64 / took.as_secs_f64();
        eprintln!("  {label}: {count} tasks in {took:.2?}, {rate:.0} tasks/s");
        Ok(rate)
    }

    /// Publishes the tasks at a fixed `rate` (per second), each on its schedule whatever the
    /// others are doing, and gives each task's publish-to-result time.
    pub(super) async fn latency(
        &self,
        tasks: Vec<Message>,
        rate: f64,
        label: &str,
    ) -> anyhow::Result<Vec<Duration>> {
        let count = tasks.len();
        let expected = ids(&tasks);
        let bar = progress(count, label);
        let period = Duration::from_secs_f64(1.0 / rate);
        let publishing = async {
            let start = Instant::now();
            let mut sent = HashMap::with_capacity(count);
            let mut in_flight: FuturesUnordered<BoxFuture<'_, Result<(), BrokerError>>> =
                FuturesUnordered::new();
            for (index, task) in tasks.into_iter().enumerate() {
                let due = start + period.mul_f64(index as f64);
                // Publishes in flight progress while waiting (a future only runs when polled),
                // and none of them delays the next task.
                loop {
                    tokio::select! {
                        biased;
                        Some(published) = in_flight.next() => {
                            published.context("publishing a task")?;
                        }
                        () = tokio::time::sleep_until(due) => break,
                    }
                }
                sent.insert(task.id.clone().expect("ids() checked it"), Instant::now());
                in_flight.push(self.broker.publish_task(task, Duration::ZERO));
            }
            while let Some(published) = in_flight.next().await {
                published.context("publishing a task")?;
            }
            anyhow::Ok(sent)
        };
        let (sent, arrived) = tokio::try_join!(publishing, self.results(expected, &bar))?;
        bar.finish_and_clear();
        let latencies: Vec<Duration> = arrived
            .iter()
            .map(|(id, at)| at.duration_since(sent[id]))
            .collect();
        eprintln!(
            "  {label}: {count} tasks at {rate:.0}/s, {}",
            Percentiles::of(latencies.clone())
        );
        Ok(latencies)
    }

    /// Waits for one successful result per expected id; others (a late duplicate of an earlier
    /// run: delivery is at-least-once) are skipped.
    async fn results(
        &self,
        mut expected: HashSet<String>,
        bar: &ProgressBar,
    ) -> anyhow::Result<HashMap<String, Instant>> {
        let mut arrivals = self.arrivals.lock().await;
        let limit = super::deadline_for(expected.len());
        let deadline = Instant::now() + limit;
        let mut arrived = HashMap::with_capacity(expected.len());
        while !expected.is_empty() {
            let next = tokio::time::timeout_at(deadline, arrivals.recv())
                .await
                .map_err(|_| {
                    anyhow::anyhow!("{} results missing after {limit:?}", expected.len())
                })?;
            let arrival = match next {
                Some(Ok(arrival)) => arrival,
                Some(Err(error)) => bail!("reading results: {error}"),
                None => bail!("the results queue's consumer stopped"),
            };
            if !expected.remove(&arrival.id) {
                continue;
            }
            if let Some(failure) = arrival.failure {
                bail!("task {} failed: {failure}", arrival.id);
            }
            arrived.insert(arrival.id, arrival.at);
            bar.inc(1);
        }
        Ok(arrived)
    }
}

/// Reads results as they come, stamps their arrival, and settles them without waiting.
async fn collect(
    mut results: Deliveries,
    arrivals: mpsc::UnboundedSender<Result<Arrival, String>>,
) {
    while let Some(next) = results.next().await {
        let delivery = match next {
            Ok(delivery) => delivery,
            Err(error) => {
                let _ = arrivals.send(Err(error.to_string()));
                return;
            }
        };
        let at = Instant::now();
        let failure = match serde_json::from_slice::<TaskResult>(&delivery.message.body) {
            Ok(TaskResult {
                outcome: TaskOutcome::Ok { .. },
                ..
            }) => None,
            Ok(TaskResult {
                outcome: TaskOutcome::Error { error },
                ..
            }) => Some(format!("{}: {}", error.kind, error.message)),
            Err(error) => Some(format!("not a task result: {error}")),
        };
        let id = delivery.message.id.clone().unwrap_or_default();
        // An ack on the embedded queue is a commit: awaiting each in turn would cap reading.
        tokio::spawn(async move {
            if let Err(error) = delivery.ack().await {
                tracing::warn!(%error, "acknowledging a result failed");
            }
        });
        if arrivals.send(Ok(Arrival { id, at, failure })).is_err() {
            return;
        }
    }
}

fn ids(tasks: &[Message]) -> HashSet<String> {
    tasks
        .iter()
        .map(|task| task.id.clone().expect("bench tasks carry an id"))
        .collect()
}

/// A bar on stderr for a terminal; nothing otherwise (each phase prints one line when done).
fn progress(length: usize, label: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("  {prefix} [{bar:30}] {pos}/{len} ({elapsed})")
        .expect("a valid template")
        .progress_chars("=> ");
    ProgressBar::new(length as u64)
        .with_style(style)
        .with_prefix(label.to_owned())
}
