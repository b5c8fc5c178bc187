//! The two ways things fail: the runner itself cannot run ([`RunnerError`]), or one request is
//! refused or fails ([`ApiError`], answered as the series' `{"message": ...}` body).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchyard_wire::ErrorBody;

use crate::AlgorithmError;

/// Why a runner could not start or stopped. None of these goes away by retrying unchanged:
/// each needs a change of code, configuration or environment.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("a runner needs at least one algorithm")]
    /// A runner was built with no algorithm to serve.
    NoAlgorithms,
    #[error(
        "algorithm name '{0}' must be 1 to 128 characters of A-Z, a-z, 0-9, '_', '.', '-': it is a URL path segment"
    )]
    /// The name cannot be a URL path segment.
    InvalidName(String),
    #[error("algorithm '{0}' is registered twice")]
    /// Two algorithms share a name, so one could never be called.
    DuplicateAlgorithm(String),
    #[error("default algorithm '{name}' is not hosted by this runner; it hosts: {}", hosted.join(", "))]
    /// `default_algorithm` names an algorithm the runner does not host.
    UnknownDefault {
        /// The default that was asked for.
        name: String,
        /// What the runner hosts instead.
        hosted: Vec<String>,
    },
    #[error("algorithm '{name}' failed to load: {source}")]
    /// An algorithm's loader failed for a reason other than a missing system library.
    Load {
        /// The algorithm.
        name: String,
        /// What its loader said.
        source: AlgorithmError,
    },
    #[error("the runner's listener failed: {0}")]
    /// Accepting connections failed.
    Io(#[from] std::io::Error),
}

/// A refused or failed request. `Loading`, `Saturated` and `Abandoned` are worth retrying
/// (503 with `Retry-After`); an internal algorithm error may succeed on another replica; the rest need
/// a different request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("missing or wrong token: calls need 'Authorization: Bearer <token>'")]
    Unauthorized,
    #[error("algorithm '{name}' is not hosted by this runner; it hosts: {}", hosted.join(", "))]
    UnknownAlgorithm { name: String, hosted: Vec<String> },
    #[error(
        "this runner has no default algorithm: POST /run/{{algorithm}} with one of: {} (or start it with --default-algorithm)",
        hosted.join(", ")
    )]
    NoDefault { hosted: Vec<String> },
    #[error("algorithm '{0}' is still loading; retry shortly")]
    Loading(String),
    /// Its loader found the machine lacking (an engine not installed): retrying cannot help.
    #[error("algorithm '{name}' is unavailable on this runner: {reason}")]
    Unavailable { name: String, reason: String },
    #[error(
        "algorithm '{name}' is saturated ({concurrency} running, {queue} waiting); retry shortly"
    )]
    Saturated {
        name: String,
        concurrency: usize,
        queue: usize,
    },
    #[error("the runner shut down before the call finished; retry it elsewhere")]
    Abandoned,
    #[error("Task body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("Task body could not be read: {0}")]
    UnreadableBody(String),
    #[error("Task body not valid JSON: {0}")]
    NotJson(String),
    /// The payload does not fit the algorithm's schema (caught before the algorithm runs).
    #[error("{0}")]
    InvalidPayload(String),
    #[error(transparent)]
    Algorithm(AlgorithmError),
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::UnknownAlgorithm { .. }
            | ApiError::NoDefault { .. }
            | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::Loading(_) | ApiError::Saturated { .. } | ApiError::Abandoned => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Unavailable { .. } => StatusCode::NOT_IMPLEMENTED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnreadableBody(_) | ApiError::NotJson(_) | ApiError::InvalidPayload(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Algorithm(error) => algorithm_status(error),
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The `kind` label of the errors metric: few values, whatever the request.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::UnknownAlgorithm { .. } | ApiError::NoDefault { .. } => "unknown_algorithm",
            ApiError::Loading(_) => "loading",
            ApiError::Unavailable { .. }
            | ApiError::Algorithm(AlgorithmError::Unavailable { .. }) => "unavailable",
            ApiError::Saturated { .. } => "saturated",
            ApiError::Abandoned => "abandoned",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnreadableBody(_) | ApiError::NotJson(_) | ApiError::InvalidPayload(_) => {
                "invalid_payload"
            }
            ApiError::Algorithm(AlgorithmError::Client { .. }) => "client",
            ApiError::Algorithm(AlgorithmError::Internal { .. }) => "internal",
            ApiError::NoRoute { .. } | ApiError::MethodNotAllowed { .. } => "no_route",
        }
    }
}

/// A client error keeps the status the algorithm chose (the series passes a failed image
/// fetch's status through); one that is not an error status is still the caller's fault: 400.
fn algorithm_status(error: &AlgorithmError) -> StatusCode {
    match error {
        AlgorithmError::Client { status, .. } => StatusCode::from_u16(*status)
            .ok()
            .filter(|status| status.is_client_error() || status.is_server_error())
            .unwrap_or(StatusCode::BAD_REQUEST),
        AlgorithmError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        AlgorithmError::Unavailable { .. } => StatusCode::NOT_IMPLEMENTED,
    }
}

/// Not logged here: the request's one log line (see `call.rs`) carries the error.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match self {
            // The series' shape for unexpected failures: a fixed message, the detail beside it.
            ApiError::Algorithm(AlgorithmError::Internal { message }) => ErrorBody {
                message: "Internal error".into(),
                error: Some(message),
            },
            other => ErrorBody {
                message: other.to_string(),
                error: None,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// Loading and saturation clear within moments; a second keeps callers from spinning.
const RETRY_AFTER_SECONDS: &str = "1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_error_keeps_its_status_unless_it_is_not_an_error() {
        let status = |code| ApiError::Algorithm(AlgorithmError::client(code, "x")).status();
        assert_eq!(status(404), StatusCode::NOT_FOUND);
        assert_eq!(status(502), StatusCode::BAD_GATEWAY);
        assert_eq!(status(200), StatusCode::BAD_REQUEST);
        assert_eq!(status(1000), StatusCode::BAD_REQUEST);
    }
}
