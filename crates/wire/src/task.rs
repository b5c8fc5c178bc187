//! A task as a producer puts it on the queue.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One unit of work: run `algorithm` on `payload`.
///
/// On the queue a task is `{"algorithm": "...", "payload": {...}}`. The series' Part II producer
/// sends the bare payload (`{"url": ...}`) instead; [`Task::parse`] routes such a body to a default
/// algorithm so those producers keep working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub algorithm: String,
    pub payload: Value,
}

/// Why a queued body is not a task. Every variant is permanent: retrying the same bytes cannot help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskParseError {
    #[error("task body is not valid JSON: {0}")]
    NotJson(String),
    #[error("task body must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("task field 'algorithm' must be a non-empty string")]
    BadAlgorithm,
    #[error("task has unknown field '{0}' (expected 'algorithm' and 'payload')")]
    UnknownField(String),
    #[error("task has no 'algorithm' and no default algorithm is configured")]
    NoAlgorithm,
}

impl Task {
    pub fn new(algorithm: impl Into<String>, payload: Value) -> Self {
        Task {
            algorithm: algorithm.into(),
            payload,
        }
    }

    /// Parses a queued body. A JSON object with an `algorithm` key is a task (its `payload`
    /// defaults to `{}`); any other object is the payload of `default_algorithm`.
    pub fn parse(body: &[u8], default_algorithm: Option<&str>) -> Result<Task, TaskParseError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| TaskParseError::NotJson(e.to_string()))?;
        let Value::Object(mut fields) = value else {
            return Err(TaskParseError::NotAnObject(json_type_name(&value)));
        };
        match fields.remove("algorithm") {
            Some(Value::String(algorithm)) if !algorithm.is_empty() => {
                let payload = fields
                    .remove("payload")
                    .unwrap_or_else(|| Value::Object(Default::default()));
                if let Some(unknown) = fields.keys().next() {
                    return Err(TaskParseError::UnknownField(unknown.clone()));
                }
                Ok(Task { algorithm, payload })
            }
            Some(_) => Err(TaskParseError::BadAlgorithm),
            None => match default_algorithm {
                Some(algorithm) => Ok(Task::new(algorithm, Value::Object(fields))),
                None => Err(TaskParseError::NoAlgorithm),
            },
        }
    }

    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a Task always serialises")
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
}
