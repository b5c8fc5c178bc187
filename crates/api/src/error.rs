//! The API's errors: each maps to a status and a `{"message"}` body. Internal detail is logged
//! once, here, and never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use switchyard_wire::ErrorBody;

/// Why a request failed, as the client is told.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: the message says which part.
    #[error("{0}")]
    BadRequest(String),
    /// No task, algorithm or dead letter of that name or id.
    #[error("{0}")]
    NotFound(String),
    /// It existed and was pruned after its retention.
    #[error("{0}")]
    Gone(String),
    /// The body is over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// The broker or discovery is unreachable, or the algorithm is still loading: the client
    /// may retry.
    #[error("{0}")]
    Unavailable(String),
    /// The algorithm cannot run on this deployment (its engine is not installed): retrying
    /// will not help; the message says what to install.
    #[error("{0}")]
    NotImplemented(String),
    /// A change was asked without the token this deployment requires.
    #[error(
        "missing or wrong token: changes need 'Authorization: Bearer <token>' (SWITCHYARD_TOKEN)"
    )]
    Unauthorized,
    /// A bug or a broken store; the client sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, message.clone()),
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, message.clone()),
            ApiError::Gone(message) => (StatusCode::GONE, message.clone()),
            ApiError::TooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, message.clone()),
            ApiError::NotImplemented(message) => (StatusCode::NOT_IMPLEMENTED, message.clone()),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, self.to_string()),
            ApiError::Unavailable(message) => {
                tracing::warn!("answering 503: {message}");
                (StatusCode::SERVICE_UNAVAILABLE, message.clone())
            }
            ApiError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
        };
        let mut response = (
            status,
            Json(ErrorBody {
                message,
                error: None,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

impl From<switchyard_discovery::ClientError> for ApiError {
    fn from(error: switchyard_discovery::ClientError) -> Self {
        ApiError::Unavailable(format!("cannot list algorithms: {error}"))
    }
}

impl From<switchyard_broker::BrokerError> for ApiError {
    fn from(error: switchyard_broker::BrokerError) -> Self {
        if error.is_transient() {
            ApiError::Unavailable(format!("queue unavailable: {error:#}"))
        } else {
            ApiError::Internal(format!("{error:#}"))
        }
    }
}
