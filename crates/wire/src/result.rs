//! What a producer gets back for every task: a result or a clear error, never silence.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outcome of one task, published to the task's `reply_to` or to the results queue.
///
/// On the wire: `{"id", "algorithm", "status": "ok"|"error", "result" | "error", "attempts",
/// "runner", "duration_ms"}`, and `"history"` when an attempt failed (added after the first
/// release, absent when empty, so a consumer of the first schema reads every result unchanged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task's id: the AMQP `message_id`, or the one the controller generated and logged.
    pub id: String,
    /// The algorithm the task asked for (or the default it was given).
    pub algorithm: String,
    /// `ok` with the result, or `error` with why.
    #[serde(flatten)]
    pub outcome: TaskOutcome,
    /// How many times a runner was called (or, for a task no runner hosted, routing was tried).
    pub attempts: u32,
    /// Base URL of the runner that produced the outcome, when one was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// Wall time from the first attempt to the outcome.
    pub duration_ms: u64,
    /// The attempts that failed before the outcome, oldest first (at most [`MAX_HISTORY`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<FailedAttempt>,
}

/// The most failed attempts a task carries: its retries travel in a message header, which must
/// stay small whatever `--max-attempts` says.
pub const MAX_HISTORY: usize = 20;

/// The longest error message kept per failed attempt, in bytes.
pub const MAX_HISTORY_MESSAGE: usize = 300;

/// One attempt that failed: which runner (none when no runner hosted the algorithm) and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailedAttempt {
    /// Which try, from 1.
    pub attempt: u32,
    /// Absent when no runner hosted the algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// What kind of failure it was.
    pub kind: ErrorKind,
    /// Cut to 300 bytes.
    pub message: String,
}

impl FailedAttempt {
    /// The record of `error` at `attempt`, its message cut to [`MAX_HISTORY_MESSAGE`].
    pub fn new(attempt: u32, runner: Option<String>, error: &TaskError) -> Self {
        let mut message = error.message.clone();
        if message.len() > MAX_HISTORY_MESSAGE {
            let mut end = MAX_HISTORY_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        FailedAttempt {
            attempt,
            runner,
            kind: error.kind,
            message,
        }
    }

    /// Appends `attempt` to `history`, dropping the oldest past [`MAX_HISTORY`].
    pub fn push(history: &mut Vec<FailedAttempt>, attempt: FailedAttempt) {
        history.push(attempt);
        if history.len() > MAX_HISTORY {
            history.remove(0);
        }
    }
}

/// `"status": "ok"` with `"result"`, or `"status": "error"` with `"error"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum TaskOutcome {
    /// The algorithm answered.
    Ok {
        /// What the algorithm returned.
        result: Value,
    },
    /// The task failed, expired or was cancelled: the producer still gets an answer.
    Error {
        /// Why the task failed.
        error: TaskError,
    },
}

impl TaskResult {
    /// Whether the task succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, TaskOutcome::Ok { .. })
    }

    /// The body published to the results queue or `reply_to`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a TaskResult always serialises")
    }
}

/// Why a task failed, for the producer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskError {
    /// What kind of failure, for a program to branch on.
    pub kind: ErrorKind,
    /// What happened, for a person.
    pub message: String,
    /// The HTTP status the runner answered with, when the failure came from a runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// The classes of failure the controller tells apart; each decides whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The queued body is not a task (not JSON, no algorithm). Permanent.
    InvalidTask,
    /// The runner refused the payload (a 4xx: schema violation, image not fetchable...). Permanent.
    Rejected,
    /// No runner hosts the algorithm, and none appeared within the routing deadline.
    NoRunner,
    /// The runner could not be reached, timed out, was full or failed (5xx): transient, retried
    /// until the attempts ran out.
    Unavailable,
    /// The runner answered 2xx with a body that is not `{"result": ...}`.
    BadResponse,
    /// The task's deadline (or ttl) passed before a runner answered it: it was never run, or
    /// its last try was cut at the deadline. Permanent, and not dead-lettered: replaying an
    /// answer nobody waits for is pointless. Added after the first release: the result keeps
    /// `"status": "error"`, so a consumer that only reads `status` is unaffected, and one that
    /// matches on `kind` should treat kinds it does not know as permanent errors.
    Expired,
    /// Cancelled (`DELETE /v1/tasks/{id}`) before a runner took it: never run. Permanent, not
    /// dead-lettered; added after the first release, like `Expired`.
    Cancelled,
}

impl ErrorKind {
    /// The snake_case name it has in JSON, for metrics labels and dead-letter reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidTask => "invalid_task",
            ErrorKind::Rejected => "rejected",
            ErrorKind::NoRunner => "no_runner",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Expired => "expired",
            ErrorKind::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ok_result_has_the_documented_shape() {
        let result = TaskResult {
            id: "t1".into(),
            algorithm: "echo".into(),
            outcome: TaskOutcome::Ok {
                result: json!({"length": 2}),
            },
            attempts: 1,
            runner: Some("http://r:1".into()),
            duration_ms: 5,
            history: vec![],
        };
        let value = serde_json::to_value(&result).unwrap();
        assert_eq!(
            value,
            json!({"id": "t1", "algorithm": "echo", "status": "ok", "result": {"length": 2},
                   "attempts": 1, "runner": "http://r:1", "duration_ms": 5})
        );
        assert_eq!(serde_json::from_value::<TaskResult>(value).unwrap(), result);
    }

    #[test]
    fn error_result_has_the_documented_shape() {
        let result = TaskResult {
            id: "t2".into(),
            algorithm: "echo".into(),
            outcome: TaskOutcome::Error {
                error: TaskError {
                    kind: ErrorKind::Rejected,
                    message: "missing field `text`".into(),
                    status: Some(400),
                },
            },
            attempts: 1,
            runner: None,
            duration_ms: 1,
            history: vec![],
        };
        let value = serde_json::to_value(&result).unwrap();
        assert_eq!(value["status"], "error");
        assert_eq!(value["error"]["kind"], "rejected");
        assert_eq!(value["error"]["status"], 400);
        assert!(value.get("runner").is_none());
        assert!(!result.is_ok());
    }

    #[test]
    fn history_is_bounded_cut_and_absent_when_empty() {
        let long = TaskError {
            kind: ErrorKind::Unavailable,
            message: "é".repeat(MAX_HISTORY_MESSAGE),
            status: Some(503),
        };
        let mut history = Vec::new();
        for attempt in 1..=(MAX_HISTORY as u32 + 3) {
            FailedAttempt::push(
                &mut history,
                FailedAttempt::new(attempt, Some("http://r:1".into()), &long),
            );
        }
        assert_eq!(history.len(), MAX_HISTORY);
        assert_eq!(history[0].attempt, 4, "the oldest are dropped");
        assert!(history[0].message.len() <= MAX_HISTORY_MESSAGE + '…'.len_utf8());
        assert!(history[0].message.ends_with('…'));

        // A result of the first schema (no history) reads, and one with an empty history
        // writes no key.
        let first: TaskResult = serde_json::from_value(serde_json::json!({
            "id": "t", "algorithm": "echo", "status": "ok", "result": 1, "attempts": 1,
            "duration_ms": 2
        }))
        .unwrap();
        assert!(first.history.is_empty());
        assert!(
            serde_json::to_value(&first)
                .unwrap()
                .get("history")
                .is_none()
        );
    }
}
