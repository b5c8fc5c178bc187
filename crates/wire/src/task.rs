//! A task as a producer puts it on the queue.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// One unit of work: run `algorithm` on `payload`.
///
/// On the queue a task is `{"algorithm": "...", "payload": {...}}`. The series' Part II producer
/// sends the bare payload (`{"url": ...}`) instead; [`Task::parse`] routes such a body to a default
/// algorithm so those producers keep working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Which algorithm runs the task.
    pub algorithm: String,
    /// Its input, as the algorithm's schema describes it.
    pub payload: Value,
}

/// Why a queued body is not a task. Every variant is permanent: retrying the same bytes cannot help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskParseError {
    #[error("task body is not valid JSON: {0}")]
    /// The body does not parse as JSON.
    NotJson(String),
    #[error("task body must be a JSON object, got {0}")]
    /// The body is JSON but not an object (the JSON type it is instead).
    NotAnObject(&'static str),
    #[error("task field 'algorithm' must be a non-empty string")]
    /// `algorithm` is empty or not a string.
    BadAlgorithm,
    #[error("task has unknown field '{0}' (expected 'algorithm' and 'payload')")]
    /// A field beside `algorithm` and `payload`, likely a typo that would otherwise be ignored.
    UnknownField(String),
    #[error("task has no 'algorithm' and no default algorithm is configured")]
    /// No `algorithm`, and no default to fall back on.
    NoAlgorithm,
}

impl Task {
    /// A task for `algorithm` with `payload`.
    pub fn new(algorithm: impl Into<String>, payload: Value) -> Self {
        Task {
            algorithm: algorithm.into(),
            payload,
        }
    }

    /// Parses a queued body. A JSON object with an `algorithm` key is a task (its `payload`
    /// defaults to `{}`); any other object is the payload of `default_algorithm`.
    pub fn parse(body: &[u8], default_algorithm: Option<&str>) -> Result<Task, TaskParseError> {
        let RawTask { algorithm, payload } =
            RawTask::parse(Bytes::copy_from_slice(body), default_algorithm)?;
        let payload =
            serde_json::from_slice(&payload).map_err(|e| TaskParseError::NotJson(e.to_string()))?;
        Ok(Task { algorithm, payload })
    }

    /// The body a producer publishes.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a Task always serialises")
    }
}

/// A task whose payload stays the JSON text it arrived in, for whoever only forwards it.
///
/// The controller sends the payload on to a runner. An inline image makes it megabytes: parsed
/// into a tree and serialised again it would cost two more copies per task in flight and the time
/// to make them; as a slice of the body it costs neither.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTask {
    /// Which algorithm runs the task.
    pub algorithm: String,
    /// The payload's JSON text, sharing the body's buffer.
    pub payload: Bytes,
}

impl RawTask {
    /// [`Task::parse`]'s rules, without parsing the payload: it is checked to be JSON, not what
    /// it holds (its nesting depth included; the runner that parses it answers for that).
    pub fn parse(body: Bytes, default_algorithm: Option<&str>) -> Result<RawTask, TaskParseError> {
        let mut fields: BTreeMap<String, &RawValue> =
            serde_json::from_slice(&body).map_err(|error| not_an_object(&body, error))?;
        let Some(algorithm) = fields.remove("algorithm") else {
            return match default_algorithm {
                Some(algorithm) => Ok(RawTask {
                    algorithm: algorithm.to_string(),
                    payload: body.clone(),
                }),
                None => Err(TaskParseError::NoAlgorithm),
            };
        };
        let algorithm = match serde_json::from_str::<String>(algorithm.get()) {
            Ok(algorithm) if !algorithm.is_empty() => algorithm,
            _ => return Err(TaskParseError::BadAlgorithm),
        };
        let payload = fields.remove("payload");
        if let Some(unknown) = fields.into_keys().next() {
            return Err(TaskParseError::UnknownField(unknown));
        }
        let payload = match payload {
            Some(payload) => body.slice_ref(payload.get().as_bytes()),
            None => Bytes::from_static(b"{}"),
        };
        Ok(RawTask { algorithm, payload })
    }
}

/// Why a body did not parse as a JSON object: it is not JSON (and the full parser says why:
/// nesting beyond its limit, say), or it is JSON of another type.
fn not_an_object(body: &[u8], error: serde_json::Error) -> TaskParseError {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if !value.is_object() => TaskParseError::NotAnObject(json_type_name(&value)),
        Ok(_) => TaskParseError::NotJson(error.to_string()),
        Err(error) => TaskParseError::NotJson(error.to_string()),
    }
}

/// The JSON type of a value, for error messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Longest task id `up`'s API and `switchyard cancel` accept.
pub const MAX_TASK_ID_LEN: usize = 128;

/// A string that cannot be a task id: ids are what `submit` generates (UUIDs) or what a producer
/// chose, and a URL path, a log line or a queue message carries them as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{shown}' is not a task id (ids are up to {MAX_TASK_ID_LEN} characters of letters, digits \
     and -_.:)"
)]
pub struct InvalidTaskId {
    /// The refused id, cut to 64 characters so a pasted document does not flood the message.
    pub shown: String,
}

/// Accepts up to [`MAX_TASK_ID_LEN`] ASCII letters, digits and `-_.:`.
pub fn check_task_id(id: &str) -> Result<(), InvalidTaskId> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if (1..=MAX_TASK_ID_LEN).contains(&id.len()) && id.chars().all(allowed) {
        return Ok(());
    }
    Err(InvalidTaskId {
        shown: id.chars().take(64).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_named_task() {
        let task = Task::parse(br#"{"algorithm":"echo","payload":{"text":"hi"}}"#, None).unwrap();
        assert_eq!(task, Task::new("echo", json!({"text": "hi"})));
    }

    #[test]
    fn missing_payload_is_an_empty_object() {
        let task = Task::parse(br#"{"algorithm":"echo"}"#, None).unwrap();
        assert_eq!(task.payload, json!({}));
    }

    #[test]
    fn a_part_two_body_goes_to_the_default_algorithm() {
        let task = Task::parse(br#"{"url":"http://x/y.png"}"#, Some("image_classifier")).unwrap();
        assert_eq!(
            task,
            Task::new("image_classifier", json!({"url": "http://x/y.png"}))
        );
    }

    #[test]
    fn rejects_what_is_not_a_task() {
        assert!(matches!(
            Task::parse(b"not json", None),
            Err(TaskParseError::NotJson(_))
        ));
        assert_eq!(
            Task::parse(b"[1]", Some("echo")),
            Err(TaskParseError::NotAnObject("an array"))
        );
        assert_eq!(
            Task::parse(br#"{"algorithm":3}"#, None),
            Err(TaskParseError::BadAlgorithm)
        );
        assert_eq!(
            Task::parse(br#"{"algorithm":""}"#, None),
            Err(TaskParseError::BadAlgorithm)
        );
        assert_eq!(
            Task::parse(br#"{"url":"x"}"#, None),
            Err(TaskParseError::NoAlgorithm)
        );
        assert_eq!(
            Task::parse(br#"{"algorithm":"echo","payload":{},"extra":1}"#, None),
            Err(TaskParseError::UnknownField("extra".into()))
        );
    }

    #[test]
    fn a_raw_payload_is_the_body_s_own_text() {
        let body =
            Bytes::from_static(br#"{"payload": {"text": "caf\u00e9" }, "algorithm":"echo"}"#);
        let task = RawTask::parse(body.clone(), None).unwrap();
        assert_eq!(task.algorithm, "echo");
        assert_eq!(&task.payload[..], br#"{"text": "caf\u00e9" }"#);
        // A slice of the body's buffer, not a copy.
        assert!(body.as_ptr_range().contains(&task.payload.as_ptr()));

        let bare = Bytes::from_static(br#"{"url":"http://x/y.png"}"#);
        let task = RawTask::parse(bare.clone(), Some("image_classifier")).unwrap();
        assert_eq!(
            (task.algorithm.as_str(), task.payload),
            ("image_classifier", bare)
        );

        let task = RawTask::parse(Bytes::from_static(br#"{"algorithm":"echo"}"#), None).unwrap();
        assert_eq!(&task.payload[..], b"{}");
    }

    #[test]
    fn raw_and_parsed_tasks_refuse_the_same_bodies() {
        for body in [
            &b"not json"[..],
            b"[1]",
            b"\"text\"",
            br#"{"algorithm":3}"#,
            br#"{"algorithm":""}"#,
            br#"{"algorithm":"echo","payload":{"a":}}"#,
            br#"{"algorithm":"echo","payload":{},"extra":1}"#,
        ] {
            let raw = RawTask::parse(Bytes::copy_from_slice(body), None).unwrap_err();
            assert_eq!(Task::parse(body, None).unwrap_err(), raw);
        }
        assert_eq!(
            RawTask::parse(Bytes::from_static(b"\"text\""), None),
            Err(TaskParseError::NotAnObject("a string"))
        );
        let nested = Bytes::from("[".repeat(1_000));
        assert!(
            matches!(RawTask::parse(nested, None), Err(TaskParseError::NotJson(m)) if m.contains("recursion limit"))
        );
    }

    #[test]
    fn task_ids_are_checked() {
        for id in [
            "0190f3c2-7a1b-7c3d-9e4f-a1b2c3d4e5f6",
            "job:42.retry_1",
            &"x".repeat(128),
        ] {
            assert_eq!(check_task_id(id), Ok(()), "{id}");
        }
        for id in ["", "has space", "a/b", "é", &"x".repeat(129)] {
            assert!(check_task_id(id).is_err(), "{id:?} accepted");
        }
        let refused = check_task_id(&"/".repeat(200)).unwrap_err().to_string();
        assert!(refused.starts_with(&format!("'{}' is not a task id", "/".repeat(64))));
    }
}
