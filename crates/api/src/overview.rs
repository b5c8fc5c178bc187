//! What the dashboard's overview shows, served to programs as well: the runners with their calls
//! in flight, what waits in the queues, and the last minutes of throughput.
//!
//! Throughput comes from the task store (every finished task has a finish time, an algorithm, a
//! status and a duration), not from the components' Prometheus counters: the store is the one
//! place that sees every task of this deployment, whichever controller ran it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use switchyard_broker::Depths;
use switchyard_wire::discovery::RunnerEntry;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::TaskApi;
use crate::error::ApiError;
use crate::store::{Finished, TaskStatus, now_ms};

/// How often [`sample`] records the queues and the tasks finished.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// Samples kept: ten minutes at [`SAMPLE_INTERVAL`].
pub const SAMPLES_KEPT: usize = 120;
/// The window of the per-algorithm figures.
pub const STATS_WINDOW: Duration = Duration::from_secs(300);
/// How long a runner's `/metrics` may take before its calls in flight show as unknown: the
/// listing must not wait on one slow runner.
const METRICS_TIMEOUT: Duration = Duration::from_millis(800);

/// One runner as `GET /v1/runners` shows it: discovery's entry and, read from the runner's own
/// `/metrics`, its calls in flight (`null` when it has no such metric: a series runner, or one
/// that did not answer in time).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunnerView {
    /// Discovery's entry for the runner.
    #[serde(flatten)]
    pub entry: RunnerEntry,
    /// Calls running now, from the runner's /metrics; null for a series runner or one that did
    /// not answer within 0.8 s.
    pub in_flight: Option<u64>,
}

/// `GET /v1/queues`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct QueueView {
    /// Tasks waiting for a controller; those a controller holds are not counted.
    pub tasks: u64,
    /// Retries waiting for their backoff.
    pub delayed: u64,
    /// Dead letters waiting to be looked at or replayed.
    pub dead_letters: u64,
}

impl From<Depths> for QueueView {
    fn from(depths: Depths) -> Self {
        QueueView {
            tasks: depths.tasks,
            delayed: depths.delayed,
            dead_letters: depths.dead_letters,
        }
    }
}

/// The queues and the tasks finished at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Sample {
    /// When it was taken, in Unix milliseconds.
    pub at_ms: u64,
    /// The queue depths then.
    #[serde(flatten)]
    pub queues: QueueView,
    /// Tasks submitted through this API since the previous sample (producers that publish to
    /// the queue directly are not seen).
    pub submitted: u64,
    /// Tasks that finished since the previous sample (cancelled ones left out).
    pub finished: u64,
    /// Of those, the ones that did not succeed (failed, dead or expired).
    pub failed: u64,
}

/// The last samples, oldest first; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Samples(Arc<Mutex<VecDeque<Sample>>>);

impl Samples {
    fn push(&self, sample: Sample) {
        let mut samples = self.lock();
        if samples.len() == SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    fn all(&self) -> Vec<Sample> {
        self.lock().iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Sample>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One algorithm's figures over [`STATS_WINDOW`].
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AlgorithmStats {
    /// The algorithm.
    pub algorithm: String,
    /// Tasks that finished.
    pub finished: u64,
    /// Of those, the ones that did not succeed.
    pub failed: u64,
    /// Percentiles of the whole task duration (queue wait and retries included).
    pub p50_ms: Option<u64>,
    /// See `p50_ms`.
    pub p95_ms: Option<u64>,
    /// See `p50_ms`.
    pub p99_ms: Option<u64>,
}

/// `GET /v1/stats`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recent {
    /// Time between two samples of `series`.
    pub interval_ms: u64,
    /// How far back `algorithms` looks.
    pub window_ms: u64,
    /// Oldest first, one per interval, the last 10 minutes.
    pub series: Vec<Sample>,
    /// Tasks finished within `window_ms`, by algorithm; durations include queue wait and retries.
    pub algorithms: Vec<AlgorithmStats>,
}

fn is_failure(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Failed | TaskStatus::Dead | TaskStatus::Expired
    )
}

/// Per algorithm (by name), how many finished, how many failed, and duration percentiles.
pub fn algorithm_stats(finished: &[Finished]) -> Vec<AlgorithmStats> {
    let mut by_algorithm: BTreeMap<&str, (u64, u64, Vec<u64>)> = BTreeMap::new();
    for task in finished {
        let (count, failed, durations) = by_algorithm.entry(&task.algorithm).or_default();
        *count += 1;
        *failed += u64::from(is_failure(task.status));
        durations.extend(task.duration_ms);
    }
    by_algorithm
        .into_iter()
        .map(|(algorithm, (count, failed, mut durations))| {
            durations.sort_unstable();
            AlgorithmStats {
                algorithm: algorithm.to_owned(),
                finished: count,
                failed,
                p50_ms: percentile(&durations, 50),
                p95_ms: percentile(&durations, 95),
                p99_ms: percentile(&durations, 99),
            }
        })
        .collect()
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], percent: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// The sum of `switchyard_runner_in_flight` over its label sets in a Prometheus text page.
pub fn in_flight_of(metrics: &str) -> Option<u64> {
    let mut total = None;
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("switchyard_runner_in_flight") else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
        *total.get_or_insert(0) += value.max(0.0) as u64;
    }
    total
}

impl TaskApi {
    /// Discovery's runners, each with its calls in flight, asked of every runner at once.
    pub async fn runners(&self) -> Result<Vec<RunnerView>, ApiError> {
        let entries = self.catalog.discovery().runners().await?;
        let views = entries.into_iter().map(|entry| async move {
            let in_flight = if entry.legacy {
                None
            } else {
                self.runner_in_flight(&entry.base_url).await
            };
            RunnerView { entry, in_flight }
        });
        Ok(futures::future::join_all(views).await)
    }

    async fn runner_in_flight(&self, base_url: &str) -> Option<u64> {
        let url = format!("{}/metrics", base_url.trim_end_matches('/'));
        let response = self
            .http
            .get(url)
            .timeout(METRICS_TIMEOUT)
            .send()
            .await
            .ok()?;
        in_flight_of(&response.error_for_status().ok()?.text().await.ok()?)
    }

    /// The queue depths now (`GET /v1/queues`).
    pub async fn queues(&self) -> Result<QueueView, ApiError> {
        Ok(self.queues.stats.depths().await?.into())
    }

    /// The last samples and each algorithm's figures (`GET /v1/stats`).
    pub async fn recent(&self) -> Result<Recent, ApiError> {
        let since = now_ms() - STATS_WINDOW.as_millis() as i64;
        let finished = self.store.finished_since(since).await?;
        Ok(Recent {
            interval_ms: SAMPLE_INTERVAL.as_millis() as u64,
            window_ms: STATS_WINDOW.as_millis() as u64,
            series: self.samples.all(),
            algorithms: algorithm_stats(&finished),
        })
    }
}

/// Records a [`Sample`] every `interval` until `shutdown`; a sample that cannot be taken (the
/// broker is down) is skipped with a warning, so the chart shows a gap, not a stale figure.
pub async fn sample(api: TaskApi, interval: Duration, shutdown: CancellationToken) {
    let mut last_ms = now_ms();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let now = now_ms();
        let taken = async {
            let queues = api.queues().await?;
            let finished = api.store.finished_since(last_ms).await?;
            Ok::<_, ApiError>(Sample {
                at_ms: now as u64,
                queues,
                submitted: api.store.submitted_since(last_ms).await?,
                finished: finished.len() as u64,
                failed: finished
                    .iter()
                    .filter(|task| is_failure(task.status))
                    .count() as u64,
            })
        }
        .await;
        match taken {
            Ok(sample) => {
                api.samples.push(sample);
                last_ms = now;
            }
            Err(error) => tracing::warn!("dashboard sample skipped: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(algorithm: &str, status: TaskStatus, duration_ms: u64) -> Finished {
        Finished {
            algorithm: algorithm.into(),
            status,
            duration_ms: Some(duration_ms),
        }
    }

    #[test]
    fn stats_count_failures_and_take_nearest_rank_percentiles() {
        let mut tasks: Vec<Finished> = (1..=100)
            .map(|ms| finished("echo", TaskStatus::Done, ms))
            .collect();
        tasks.push(finished("ocr", TaskStatus::Dead, 7));
        tasks.push(finished("ocr", TaskStatus::Expired, 9));
        tasks.push(finished("ocr", TaskStatus::Done, 8));
        let stats = algorithm_stats(&tasks);
        assert_eq!(
            stats,
            vec![
                AlgorithmStats {
                    algorithm: "echo".into(),
                    finished: 100,
                    failed: 0,
                    p50_ms: Some(50),
                    p95_ms: Some(95),
                    p99_ms: Some(99),
                },
                AlgorithmStats {
                    algorithm: "ocr".into(),
                    finished: 3,
                    failed: 2,
                    p50_ms: Some(8),
                    p95_ms: Some(9),
                    p99_ms: Some(9),
                },
            ]
        );
        assert!(algorithm_stats(&[]).is_empty());
    }

    #[test]
    fn in_flight_sums_every_label_set_and_ignores_other_metrics() {
        let page = "# HELP switchyard_runner_in_flight Calls running now.\n\
                    # TYPE switchyard_runner_in_flight gauge\n\
                    switchyard_runner_in_flight{algorithm=\"echo\"} 2\n\
                    switchyard_runner_in_flight{algorithm=\"ocr\"} 1\n\
                    switchyard_runner_in_flight_other 40\n\
                    switchyard_runner_queued{algorithm=\"echo\"} 5\n";
        assert_eq!(in_flight_of(page), Some(3));
        assert_eq!(in_flight_of("switchyard_runner_in_flight 4\n"), Some(4));
        assert_eq!(in_flight_of("up 1\n"), None);
        assert_eq!(
            in_flight_of("switchyard_runner_in_flight{a=\"b\"} nope\n"),
            None
        );
    }

    #[test]
    fn samples_keep_the_last_ten_minutes() {
        let samples = Samples::default();
        for at_ms in 0..(SAMPLES_KEPT as u64 + 5) {
            samples.push(Sample {
                at_ms,
                queues: QueueView {
                    tasks: 0,
                    delayed: 0,
                    dead_letters: 0,
                },
                submitted: 0,
                finished: 0,
                failed: 0,
            });
        }
        let all = samples.all();
        assert_eq!(all.len(), SAMPLES_KEPT);
        assert_eq!(all[0].at_ms, 5);
    }
}
