//! One delivery from receipt to settlement: parse it, route it, call runners (failing over
//! between replicas), settle the outcome (see `settle`), and only once that publish is
//! confirmed, acknowledge it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use switchyard_broker::{Broker, Delivery};
use switchyard_wire::{ErrorKind, FailedAttempt, RawTask, TaskError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::call::{CallContext, RunnerClient};
use crate::classify::CallOutcome;
use crate::config::ControllerConfig;
use crate::metrics::{Metrics, UNROUTED};
use crate::received::{Received, now_ms};
use crate::registry::Routes;
use crate::routing::Replica;
use crate::settle::Verdict;
use crate::tombstones::{NoTombstones, Tombstones};

/// Dead-letter reason of a task that failed transiently until it ran out of attempts (the other
/// reasons are the permanent error kinds: `invalid_task`, `rejected`, `bad_response`, `no_runner`).
pub const ATTEMPTS_EXHAUSTED: &str = "attempts_exhausted";

/// Everything a delivery's handling needs, shared by every in-flight task.
pub(crate) struct Worker {
    pub broker: Arc<dyn Broker>,
    pub config: ControllerConfig,
    pub routes: Routes,
    pub runners: RunnerClient,
    pub metrics: Metrics,
    /// Where cancellations are recorded; asked before every call to a runner.
    pub tombstones: Arc<dyn Tombstones>,
    /// Draws the jitter of retry delays.
    rng: Mutex<fastrand::Rng>,
}

impl Worker {
    pub(crate) fn new(
        broker: Arc<dyn Broker>,
        config: ControllerConfig,
        routes: Routes,
        runners: RunnerClient,
    ) -> Self {
        Worker {
            broker,
            config,
            routes,
            runners,
            metrics: Metrics::new(),
            tombstones: Arc::new(NoTombstones),
            rng: Mutex::new(fastrand::Rng::new()),
        }
    }

    /// Handles one delivery to the end. When `abort` fires (shutdown's grace period is over) the
    /// delivery is requeued as it is, for another controller.
    pub(crate) async fn handle(self: Arc<Self>, delivery: Delivery, abort: CancellationToken) {
        let _in_flight = self.metrics.in_flight();
        let received = Received::from_message(&delivery.message, now_ms());
        let mut history = received.history.clone();
        let (algorithm, verdict) = match RawTask::parse(
            delivery.message.body.clone(),
            self.config.default_algorithm.as_deref(),
        ) {
            Ok(RawTask { algorithm, payload }) => {
                // One info line per task, at its outcome; the steps before it are debug lines.
                tracing::debug!(
                    task_id = %received.id,
                    algorithm = %algorithm,
                    attempt = received.prior_attempts + 1,
                    redelivered = delivery.redelivered,
                    generated_id = received.generated_id,
                    "received"
                );
                let verdict = tokio::select! {
                    verdict = self.decide(&received, &algorithm, payload, &mut history) => verdict,
                    () = abort.cancelled() => return give_back(delivery, &received.id).await,
                };
                (algorithm, verdict)
            }
            Err(error) => {
                tracing::warn!(task_id = %received.id, %error, generated_id = received.generated_id, "received an invalid task");
                let verdict = Verdict::Failed {
                    reason: ErrorKind::InvalidTask.as_str(),
                    error: TaskError {
                        kind: ErrorKind::InvalidTask,
                        message: error.to_string(),
                        status: None,
                    },
                    attempts: received.prior_attempts,
                    runner: None,
                };
                (String::new(), verdict)
            }
        };
        let settled = tokio::select! {
            settled = self.settle(&delivery.message, &received, &algorithm, verdict, &history) => settled,
            () = abort.cancelled() => return give_back(delivery, &received.id).await,
        };
        match settled {
            Ok(()) => {
                if let Err(error) = delivery.ack().await {
                    tracing::warn!(task_id = %received.id, error = %format_args!("{error:#}"), "ack failed: the task will be delivered again");
                }
            }
            Err(error) => {
                tracing::warn!(task_id = %received.id, error = %format_args!("{error:#}"), "publishing the outcome failed: requeueing the task");
                // A pause, so a broker refusing every publish does not turn this into a hot loop.
                tokio::select! {
                    () = tokio::time::sleep(self.config.backoff.base) => {}
                    () = abort.cancelled() => {}
                }
                give_back(delivery, &received.id).await;
            }
        }
    }

    /// Routes and calls until the task succeeds, fails for good, expires, or must wait for a
    /// retry; every failed attempt is appended to `history`.
    async fn decide(
        &self,
        received: &Received,
        algorithm: &str,
        payload: Bytes,
        history: &mut Vec<FailedAttempt>,
    ) -> Verdict {
        let mut attempt = received.prior_attempts;
        let mut tried: Vec<String> = Vec::new();
        let mut last_runner = None;
        let mut last_error = None;
        loop {
            // The runner gets the time left when that is shorter than the algorithm's timeout.
            let mut timeout = self.config.timeouts.for_algorithm(algorithm);
            if let Some(left) = received.time_left(now_ms()) {
                if left.is_zero() {
                    return expired(attempt, last_runner, last_error.as_ref());
                }
                timeout = timeout.min(left);
            }
            if self.tombstones.is_cancelled(&received.id).await {
                return Verdict::Ended {
                    error: TaskError {
                        kind: ErrorKind::Cancelled,
                        message: "the task was cancelled before a runner took it".to_owned(),
                        status: None,
                    },
                    attempts: attempt,
                    runner: last_runner,
                };
            }
            attempt += 1;
            let Some(replica) = self.route(algorithm, &tried).await else {
                let verdict = self.no_runner(received, algorithm, attempt, last_runner);
                if let Some(error) = verdict.failure() {
                    FailedAttempt::push(history, FailedAttempt::new(attempt, None, error));
                }
                return verdict;
            };
            tracing::debug!(task_id = %received.id, algorithm, runner = %replica.base_url, attempt, "routed");
            let call = CallContext {
                task_id: &received.id,
                algorithm,
                attempt,
                timeout,
            };
            let started = Instant::now();
            let outcome = {
                let _in_flight = self.routes.begin_call(&replica);
                self.runners.call(&replica, &call, payload.clone()).await
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let label = self.label(algorithm);
            let (error, retry_after) = match outcome {
                CallOutcome::Succeeded(result) => {
                    self.metrics.attempt(label, "ok");
                    tracing::debug!(task_id = %received.id, algorithm, runner = %replica.base_url, attempt, elapsed_ms, "attempt succeeded");
                    return Verdict::Done {
                        result,
                        attempts: attempt,
                        runner: replica.base_url,
                    };
                }
                CallOutcome::Permanent(error) => {
                    return self.refused(received, algorithm, &replica, attempt, error, history);
                }
                CallOutcome::NotFound(error) => {
                    self.routes.refresh_unless_read_since(started).await;
                    if self.routes.hosts(algorithm, &replica.id) {
                        return self
                            .refused(received, algorithm, &replica, attempt, error, history);
                    }
                    let error = TaskError {
                        kind: ErrorKind::Unavailable,
                        message: format!(
                            "runner {} no longer hosts '{algorithm}': {}",
                            replica.base_url, error.message
                        ),
                        status: error.status,
                    };
                    (error, None)
                }
                CallOutcome::Transient { error, retry_after } => (error, retry_after),
            };
            self.metrics.attempt(label, error.kind.as_str());
            FailedAttempt::push(
                history,
                FailedAttempt::new(attempt, Some(replica.base_url.clone()), &error),
            );
            tracing::warn!(
                task_id = %received.id, algorithm, runner = %replica.base_url, attempt, elapsed_ms,
                status = error.status, error = %error.message, "attempt failed"
            );
            last_runner = Some(replica.base_url);
            last_error = Some(error.clone());
            tried.push(replica.id);
            if attempt >= self.config.max_attempts {
                return Verdict::Failed {
                    reason: ATTEMPTS_EXHAUSTED,
                    error,
                    attempts: attempt,
                    runner: last_runner,
                };
            }
            // Another replica may well be fine right now: try it without waiting.
            if self.routes.has_untried(algorithm, &tried) {
                continue;
            }
            let delay = self.jitter(attempt).max(retry_after.unwrap_or_default());
            if received
                .time_left(now_ms())
                .is_some_and(|left| left <= delay)
            {
                return expired(attempt, last_runner, Some(&error));
            }
            return Verdict::Retry {
                delay,
                attempts: attempt,
                error,
            };
        }
    }

    async fn route(&self, algorithm: &str, tried: &[String]) -> Option<Replica> {
        if !self.routes.knows(algorithm) {
            // A runner may have registered since the last read.
            self.routes.refresh_if_stale().await;
        }
        self.routes.pick(algorithm, tried)
    }

    fn refused(
        &self,
        received: &Received,
        algorithm: &str,
        replica: &Replica,
        attempt: u32,
        error: TaskError,
        history: &mut Vec<FailedAttempt>,
    ) -> Verdict {
        FailedAttempt::push(
            history,
            FailedAttempt::new(attempt, Some(replica.base_url.clone()), &error),
        );
        self.metrics
            .attempt(self.label(algorithm), error.kind.as_str());
        tracing::warn!(
            task_id = %received.id, algorithm, runner = %replica.base_url, attempt,
            status = error.status, error = %error.message, "attempt failed permanently"
        );
        Verdict::Failed {
            reason: error.kind.as_str(),
            error,
            attempts: attempt,
            runner: Some(replica.base_url.clone()),
        }
    }

    /// No runner hosts the algorithm: wait for one until the deadline, counted from the first try.
    fn no_runner(
        &self,
        received: &Received,
        algorithm: &str,
        attempt: u32,
        last_runner: Option<String>,
    ) -> Verdict {
        self.metrics.attempt(UNROUTED, ErrorKind::NoRunner.as_str());
        let waited = received.waited(now_ms());
        let known = self.routes.algorithms();
        let message = format!(
            "no runner hosts algorithm '{algorithm}' (registered: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        let delay = self.jitter(attempt);
        if received
            .time_left(now_ms())
            .is_some_and(|left| left <= delay)
        {
            let error = TaskError {
                kind: ErrorKind::NoRunner,
                message,
                status: None,
            };
            return expired(attempt, last_runner, Some(&error));
        }
        match self.config.no_runner_deadline.checked_sub(waited) {
            Some(remaining) if !remaining.is_zero() => {
                tracing::info!(task_id = %received.id, algorithm, attempt, waited_ms = waited.as_millis() as u64, "no runner yet");
                Verdict::Retry {
                    // Never past the deadline, so the last try happens right at it.
                    delay: delay.min(remaining),
                    attempts: attempt,
                    error: TaskError {
                        kind: ErrorKind::NoRunner,
                        message,
                        status: None,
                    },
                }
            }
            _ => Verdict::Failed {
                reason: ErrorKind::NoRunner.as_str(),
                error: TaskError {
                    kind: ErrorKind::NoRunner,
                    message: format!("{message}; gave up after {waited:?}"),
                    status: None,
                },
                attempts: attempt,
                runner: last_runner,
            },
        }
    }

    fn jitter(&self, attempt: u32) -> Duration {
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.config.backoff.jittered(attempt, &mut rng)
    }

    /// The metrics label for an algorithm: its name only if some runner hosts it.
    pub(crate) fn label<'a>(&self, algorithm: &'a str) -> &'a str {
        if self.routes.knows(algorithm) {
            algorithm
        } else {
            UNROUTED
        }
    }
}

/// The task's deadline passed before a runner answered it, after `attempts` tries.
fn expired(attempts: u32, runner: Option<String>, last_error: Option<&TaskError>) -> Verdict {
    let message = match last_error {
        Some(error) => format!(
            "the task's deadline passed before a runner answered it (last error: {})",
            error.message
        ),
        None => "the task's deadline passed before a runner took it: it was not run".to_owned(),
    };
    Verdict::Ended {
        error: TaskError {
            kind: ErrorKind::Expired,
            message,
            status: None,
        },
        attempts,
        runner,
    }
}

/// Hands an unfinished delivery back to the queue.
async fn give_back(delivery: Delivery, task_id: &str) {
    match delivery.requeue().await {
        Ok(()) => tracing::info!(task_id, "requeued unfinished task"),
        Err(error) => tracing::warn!(
            task_id, error = %format_args!("{error:#}"),
            "requeue failed: the broker redelivers the task once the connection closes"
        ),
    }
}
