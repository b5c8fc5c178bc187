//! Publishing what became of a delivery: the result, a delayed retry, or a dead letter and an
//! error result. Only once this is confirmed may the delivery be acknowledged.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use switchyard_broker::{BrokerError, DeadLetter, Message};
use switchyard_wire::{FailedAttempt, TaskError, TaskOutcome, TaskResult};

use crate::handler::Worker;
use crate::received::{Received, now_ms, retry_message, with_id};

/// What becomes of a delivery.
#[derive(Debug)]
pub(crate) enum Verdict {
    Done {
        result: Value,
        attempts: u32,
        runner: String,
    },
    /// Dead-letter it and tell the producer.
    Failed {
        reason: &'static str,
        error: TaskError,
        attempts: u32,
        runner: Option<String>,
    },
    /// Over for a reason no replay could change (its deadline passed, it was cancelled): tell
    /// the producer, dead-letter nothing.
    Ended {
        error: TaskError,
        attempts: u32,
        runner: Option<String>,
    },
    /// Publish it again, visible after `delay`; waiting holds no concurrency slot.
    Retry {
        delay: Duration,
        attempts: u32,
        error: TaskError,
    },
}

impl Verdict {
    /// The failure a runner or routing reported, for the task's history; `None` when the task
    /// succeeded or ended without a failed attempt (expired, cancelled).
    pub(crate) fn failure(&self) -> Option<&TaskError> {
        match self {
            Verdict::Failed { error, .. } | Verdict::Retry { error, .. } => Some(error),
            Verdict::Done { .. } | Verdict::Ended { .. } => None,
        }
    }
}

impl Worker {
    /// Publishes what the verdict calls for; `Ok` means the delivery may be acknowledged.
    /// `history` holds every failed attempt of the task so far, this delivery's included.
    pub(crate) async fn settle(
        &self,
        original: &Message,
        received: &Received,
        algorithm: &str,
        verdict: Verdict,
        history: &[FailedAttempt],
    ) -> Result<(), BrokerError> {
        let label = self.label(algorithm);
        let result = |outcome, attempts, runner| TaskResult {
            id: received.id.clone(),
            algorithm: algorithm.to_string(),
            outcome,
            attempts,
            runner,
            duration_ms: received.waited(now_ms()).as_millis() as u64,
            history: history.to_vec(),
        };
        match verdict {
            Verdict::Done {
                result: value,
                attempts,
                runner,
            } => {
                let result = result(TaskOutcome::Ok { result: value }, attempts, Some(runner));
                self.publish_result(original, &result).await?;
                self.metrics
                    .task_finished(label, "ok", received.waited(now_ms()));
            }
            Verdict::Failed {
                reason,
                error,
                attempts,
                runner,
            } => {
                let letter = DeadLetter {
                    message: with_id(original, &received.id),
                    reason: reason.to_string(),
                    attempts,
                    last_error: error.message.clone(),
                };
                self.broker.dead_letter(letter).await?;
                tracing::warn!(task_id = %received.id, algorithm, reason, attempts, error = %error.message, "dead-lettered");
                let result = result(TaskOutcome::Error { error }, attempts, runner);
                self.publish_result(original, &result).await?;
                self.metrics
                    .task_finished(label, reason, received.waited(now_ms()));
            }
            Verdict::Ended {
                error,
                attempts,
                runner,
            } => {
                let kind = error.kind.as_str();
                tracing::info!(task_id = %received.id, algorithm, attempts, error = %error.message, "{kind}");
                let result = result(TaskOutcome::Error { error }, attempts, runner);
                self.publish_result(original, &result).await?;
                self.metrics
                    .task_finished(label, kind, received.waited(now_ms()));
            }
            Verdict::Retry {
                delay,
                attempts,
                error,
            } => {
                let retry = retry_message(original, received, attempts, history);
                self.broker.publish_task(retry, delay).await?;
                tracing::info!(
                    task_id = %received.id, algorithm, attempts, delay_ms = delay.as_millis() as u64,
                    error = %error.message, "retry scheduled"
                );
                self.metrics.retry(label);
            }
        }
        Ok(())
    }

    /// Sends the result to the producer's `reply_to`, or to the results queue.
    async fn publish_result(
        &self,
        original: &Message,
        result: &TaskResult,
    ) -> Result<(), BrokerError> {
        let message = Message {
            id: Some(result.id.clone()),
            body: result.to_json_bytes().into(),
            reply_to: original.reply_to.clone(),
            // The producer matches replies by correlation id; without one, the task id does.
            correlation_id: original
                .correlation_id
                .clone()
                .or_else(|| Some(result.id.clone())),
            headers: BTreeMap::new(),
            // Results queues are not priority queues: every result is read as it comes.
            priority: 0,
        };
        self.broker.publish_result(message).await?;
        tracing::info!(
            task_id = %result.id, algorithm = %result.algorithm,
            status = if result.is_ok() { "ok" } else { "error" },
            runner = result.runner.as_deref().unwrap_or("-"),
            attempts = result.attempts, duration_ms = result.duration_ms,
            reply_to = original.reply_to.as_deref().unwrap_or("(results queue)"),
            "result published"
        );
        Ok(())
    }
}
