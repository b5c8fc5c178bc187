//! What a runner's answer means for the task: done, hopeless, or worth another try.
//!
//! Pure: status, `Retry-After` and body in, a [`CallOutcome`] out, so every rule is unit-tested.

use std::time::Duration;

use serde_json::Value;
use switchyard_wire::{ErrorBody, ErrorKind, TaskError};

/// Longest runner message kept in an error, so a runner answering an HTML page cannot bloat
/// results and dead letters.
const MAX_MESSAGE_CHARS: usize = 512;

/// The outcome of one runner call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// The runner answered `{"result": ...}`.
    Succeeded(Value),
    /// Trying again cannot help: the runner refused the payload, or answered nonsense.
    Permanent(TaskError),
    /// This runner may succeed later, or another replica now.
    Transient {
        /// What went wrong, for the result if the tries run out.
        error: TaskError,
        /// The runner's `Retry-After`: the retry waits at least this long.
        retry_after: Option<Duration>,
    },
    /// 404: either the runner no longer hosts the algorithm (stale registry: transient), or the
    /// algorithm itself answered 404 (a fetched image was missing: permanent). Only a fresh look
    /// at the registry tells which.
    NotFound(TaskError),
}

/// Classifies an HTTP answer from `POST {runner}/run/{algorithm}`.
pub fn classify_response(status: u16, retry_after: Option<&str>, body: &[u8]) -> CallOutcome {
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(mut fields)) if fields.contains_key("result") => {
                CallOutcome::Succeeded(fields.remove("result").unwrap_or_default())
            }
            _ => CallOutcome::Permanent(TaskError {
                kind: ErrorKind::BadResponse,
                message: format!(
                    "runner answered {status} without a \"result\" field: {}",
                    snippet(body)
                ),
                status: Some(status),
            }),
        };
    }
    let error = |kind| TaskError {
        kind,
        message: runner_message(status, body),
        status: Some(status),
    };
    match status {
        404 => CallOutcome::NotFound(error(ErrorKind::Rejected)),
        // Request timeout and rate limiting: the same request can succeed later.
        408 | 429 | 500..=599 => CallOutcome::Transient {
            error: error(ErrorKind::Unavailable),
            retry_after: retry_after.and_then(parse_retry_after),
        },
        400..=499 => CallOutcome::Permanent(error(ErrorKind::Rejected)),
        _ => CallOutcome::Permanent(TaskError {
            kind: ErrorKind::BadResponse,
            message: format!(
                "runner answered unexpected status {status}: {}",
                snippet(body)
            ),
            status: Some(status),
        }),
    }
}

/// A call that got no HTTP answer (refused, reset, timed out): always worth another try.
pub fn unreachable(message: String) -> CallOutcome {
    CallOutcome::Transient {
        error: TaskError {
            kind: ErrorKind::Unavailable,
            message,
            status: None,
        },
        retry_after: None,
    }
}

/// `Retry-After` in seconds. The HTTP-date form is ignored: runners send seconds, and a clock
/// skew between machines would make a date meaningless anyway.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The runner's own words: the series' `{"message", "error"?}`, FastAPI's `{"detail"}`, or the
/// raw body.
fn runner_message(status: u16, body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        if let Ok(ErrorBody { message, error }) = serde_json::from_value(value.clone()) {
            return truncate(match error {
                Some(detail) => format!("{message}: {detail}"),
                None => message,
            });
        }
        if let Some(detail) = value.get("detail") {
            return truncate(match detail {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            });
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return format!("runner answered {status} with an empty body");
    }
    snippet(body)
}

fn snippet(body: &[u8]) -> String {
    truncate(String::from_utf8_lossy(body).trim().to_string())
}

fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_MESSAGE_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transient(status: u16, message: &str, retry_after: Option<Duration>) -> CallOutcome {
        CallOutcome::Transient {
            error: TaskError {
                kind: ErrorKind::Unavailable,
                message: message.into(),
                status: Some(status),
            },
            retry_after,
        }
    }

    #[test]
    fn a_result_is_success() {
        assert_eq!(
            classify_response(200, None, br#"{"result": {"label": "success_kid"}}"#),
            CallOutcome::Succeeded(json!({"label": "success_kid"}))
        );
        assert_eq!(
            classify_response(200, None, br#"{"result": null}"#),
            CallOutcome::Succeeded(Value::Null)
        );
    }

    #[test]
    fn a_2xx_without_result_is_a_bad_response() {
        for body in [&br#"{"label": "x"}"#[..], b"ok", b"", b"[1]"] {
            let CallOutcome::Permanent(error) = classify_response(200, None, body) else {
                panic!("{body:?} should be permanent");
            };
            assert_eq!(error.kind, ErrorKind::BadResponse);
            assert_eq!(error.status, Some(200));
            assert!(
                error.message.contains("without a \"result\""),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn a_4xx_is_rejected_with_the_runners_message() {
        assert_eq!(
            classify_response(
                400,
                None,
                br#"{"message": "Task body missing field 'url'"}"#
            ),
            CallOutcome::Permanent(TaskError {
                kind: ErrorKind::Rejected,
                message: "Task body missing field 'url'".into(),
                status: Some(400),
            })
        );
        let CallOutcome::Permanent(error) =
            classify_response(422, None, br#"{"detail": [{"loc": ["url"]}]}"#)
        else {
            panic!("422 is permanent");
        };
        assert_eq!((error.kind, error.status), (ErrorKind::Rejected, Some(422)));
        assert_eq!(error.message, r#"[{"loc":["url"]}]"#);
    }

    #[test]
    fn server_errors_and_overload_are_transient() {
        assert_eq!(
            classify_response(
                500,
                None,
                br#"{"message": "Internal error", "error": "boom"}"#
            ),
            transient(500, "Internal error: boom", None)
        );
        assert_eq!(
            classify_response(503, Some("3"), br#"{"message": "runner is full"}"#),
            transient(503, "runner is full", Some(Duration::from_secs(3)))
        );
        assert_eq!(
            classify_response(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), b""),
            transient(429, "runner answered 429 with an empty body", None)
        );
        assert_eq!(
            classify_response(502, None, b"<html>bad gateway</html>"),
            transient(502, "<html>bad gateway</html>", None)
        );
        assert!(matches!(
            classify_response(408, None, b""),
            CallOutcome::Transient { .. }
        ));
    }

    #[test]
    fn a_404_is_left_to_the_registry() {
        assert_eq!(
            classify_response(
                404,
                None,
                br#"{"message": "Error fetching request image, received 404"}"#
            ),
            CallOutcome::NotFound(TaskError {
                kind: ErrorKind::Rejected,
                message: "Error fetching request image, received 404".into(),
                status: Some(404),
            })
        );
    }

    #[test]
    fn other_statuses_are_bad_responses() {
        let CallOutcome::Permanent(error) = classify_response(302, None, b"") else {
            panic!("a redirect is permanent");
        };
        assert_eq!(
            (error.kind, error.status),
            (ErrorKind::BadResponse, Some(302))
        );
    }

    #[test]
    fn long_bodies_are_truncated() {
        let body = "x".repeat(5000);
        let CallOutcome::Permanent(error) = classify_response(400, None, body.as_bytes()) else {
            panic!("400 is permanent");
        };
        assert_eq!(error.message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn no_answer_is_transient() {
        let CallOutcome::Transient { error, retry_after } =
            unreachable("connection refused".into())
        else {
            panic!("unreachable is transient");
        };
        assert_eq!(
            (error.kind, error.status, retry_after),
            (ErrorKind::Unavailable, None, None)
        );
    }
}
