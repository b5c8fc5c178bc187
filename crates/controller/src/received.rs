//! What a delivery says about its task's past tries, and the message for its next try.
//!
//! A retry is a new message, so the task's history travels in its headers: the attempts made and
//! when it was first seen (for the no-runner deadline and the result's duration).

use std::time::Duration;

use switchyard_broker::Message;
use switchyard_wire::{FailedAttempt, headers, new_task_id};

/// What a delivery's properties say about the task's history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Received {
    pub id: String,
    /// The producer set no message id; this one was generated here.
    pub generated_id: bool,
    /// Tries already made: this delivery's first try is number `prior_attempts + 1`.
    pub prior_attempts: u32,
    /// When the task was first consumed (ms since the Unix epoch), for durations and deadlines.
    pub first_seen_ms: u64,
    /// When its answer stops being useful (ms since the Unix epoch), if the producer said.
    pub deadline_ms: Option<u64>,
    /// The attempts that failed on earlier deliveries, for the result's `history`.
    pub history: Vec<FailedAttempt>,
}

impl Received {
    pub(crate) fn from_message(message: &Message, now_ms: u64) -> Self {
        let (id, generated_id) = match &message.id {
            Some(id) if !id.is_empty() => (id.clone(), false),
            _ => (new_task_id(), true),
        };
        let number = |name| message.header(name).and_then(|value| value.parse().ok());
        Received {
            id,
            generated_id,
            prior_attempts: number(headers::ATTEMPTS)
                .map_or(0, |n: u64| n.min(u64::from(u32::MAX)) as u32),
            first_seen_ms: number(headers::FIRST_SEEN_MS).unwrap_or(now_ms),
            deadline_ms: number(headers::DEADLINE_MS),
            // A garbled history is dropped, not fatal: it is for people, not for routing.
            history: message
                .header(headers::HISTORY)
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default(),
        }
    }

    /// Time left before the deadline at `now_ms` (zero once it passed); `None` without one.
    pub(crate) fn time_left(&self, now_ms: u64) -> Option<Duration> {
        self.deadline_ms
            .map(|deadline| switchyard_wire::deadline::time_left(deadline, now_ms))
    }

    pub(crate) fn waited(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.first_seen_ms))
    }
}

/// The message again, under its (possibly generated) id so every try, result and dead letter
/// of the task shares one id.
pub(crate) fn with_id(original: &Message, id: &str) -> Message {
    Message {
        id: Some(id.to_string()),
        ..original.clone()
    }
}

/// The task republished for its next try: same body and properties, history in the headers.
pub(crate) fn retry_message(
    original: &Message,
    received: &Received,
    attempts: u32,
    history: &[FailedAttempt],
) -> Message {
    let mut message = with_id(original, &received.id);
    message.headers.insert(
        headers::HISTORY.into(),
        serde_json::to_string(history).expect("a history always serialises"),
    );
    message
        .headers
        .insert(headers::ATTEMPTS.into(), attempts.to_string());
    message.headers.insert(
        headers::FIRST_SEEN_MS.into(),
        received.first_seen_ms.to_string(),
    );
    message
}

pub(crate) use switchyard_wire::deadline::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_delivery_starts_the_history() {
        let message = Message::new("{}").with_id("t1");
        let received = Received::from_message(&message, 1_000);
        assert_eq!(
            received,
            Received {
                id: "t1".into(),
                generated_id: false,
                prior_attempts: 0,
                first_seen_ms: 1_000,
                deadline_ms: None,
                history: vec![],
            }
        );
        assert_eq!(received.time_left(1_250), None);
        assert_eq!(received.waited(1_250), Duration::from_millis(250));
        assert_eq!(received.waited(900), Duration::ZERO);
    }

    #[test]
    fn a_deadline_header_gives_the_time_left_and_travels_with_retries() {
        let mut message = Message::new("{}").with_id("t1");
        message
            .headers
            .insert(headers::DEADLINE_MS.into(), "2000".into());
        let received = Received::from_message(&message, 1_000);
        assert_eq!(received.time_left(1_250), Some(Duration::from_millis(750)));
        assert_eq!(received.time_left(2_500), Some(Duration::ZERO));
        let retry = retry_message(&message, &received, 1, &[]);
        assert_eq!(retry.header(headers::DEADLINE_MS), Some("2000"));
    }

    #[test]
    fn a_task_without_an_id_gets_a_fresh_one() {
        let first = Received::from_message(&Message::new("{}"), 0);
        let second = Received::from_message(&Message::new("{}").with_id(""), 0);
        assert!(first.generated_id && second.generated_id);
        assert_ne!(first.id, second.id);
        assert!(uuid::Uuid::parse_str(&first.id).is_ok());
    }

    #[test]
    fn a_retry_carries_its_history_and_keeps_the_rest() {
        let mut original = Message::new(r#"{"algorithm":"echo"}"#).with_priority(7);
        original.reply_to = Some("replies".into());
        original.correlation_id = Some("c1".into());
        original.headers.insert("x-producer".into(), "kept".into());
        let received = Received::from_message(&original, 5_000);
        let failed = FailedAttempt::new(
            2,
            Some("http://r:1".into()),
            &switchyard_wire::TaskError {
                kind: switchyard_wire::ErrorKind::Unavailable,
                message: "503".into(),
                status: Some(503),
            },
        );
        let retry = retry_message(&original, &received, 2, std::slice::from_ref(&failed));
        assert_eq!(retry.id.as_deref(), Some(received.id.as_str()));
        assert_eq!(
            (retry.body.clone(), retry.reply_to.clone()),
            (original.body.clone(), original.reply_to.clone())
        );
        assert_eq!(retry.correlation_id.as_deref(), Some("c1"));
        assert_eq!(retry.header("x-producer"), Some("kept"));
        assert_eq!(retry.priority, 7, "a retry keeps the task's priority");

        let again = Received::from_message(&retry, 9_000);
        assert_eq!((again.id, again.generated_id), (received.id, false));
        assert_eq!((again.prior_attempts, again.first_seen_ms), (2, 5_000));
        assert_eq!(again.history, vec![failed]);
    }

    #[test]
    fn garbled_history_headers_count_as_absent() {
        let mut message = Message::new("{}").with_id("t");
        message
            .headers
            .insert(headers::ATTEMPTS.into(), "many".into());
        message
            .headers
            .insert(headers::FIRST_SEEN_MS.into(), "-3".into());
        message
            .headers
            .insert(headers::HISTORY.into(), "[{\"attempt\":".into());
        let received = Received::from_message(&message, 42);
        assert_eq!((received.prior_attempts, received.first_seen_ms), (0, 42));
        assert!(received.history.is_empty());
    }
}
