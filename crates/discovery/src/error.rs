//! Every way a request to discovery fails, answered as the series' `{"message": ...}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use switchyard_wire::ErrorBody;

use crate::validate::InvalidRegistration;

/// The largest request body discovery reads; registrations with schemas are a few kilobytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A refused request. None of these is helped by retrying the same request unchanged, except
/// [`ApiError::UnknownRunner`], which asks the runner to register again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// Valid JSON of the wrong shape (a missing, unknown or mistyped field).
    #[error("body is not a registration: {0}")]
    WrongShape(String),
    #[error("invalid registration: {0}")]
    Invalid(#[from] InvalidRegistration),
    #[error("body could not be read: {0}")]
    UnreadableBody(String),
    #[error("body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error(
        "missing or wrong token: changing registrations needs 'Authorization: Bearer <SWITCHYARD_TOKEN>'"
    )]
    Unauthorized,
    #[error("unknown runner '{0}': register again")]
    UnknownRunner(String),
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::NotJson(_)
            | ApiError::WrongShape(_)
            | ApiError::Invalid(_)
            | ApiError::UnreadableBody(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::UnknownRunner(_) | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        tracing::info!(status = status.as_u16(), "request refused: {message}");
        let body = ErrorBody {
            message,
            error: None,
        };
        (status, axum::Json(body)).into_response()
    }
}
