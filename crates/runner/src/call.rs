//! One call of an algorithm, from request to answer: token, algorithm, admission, body,
//! fields, a slot, the handler; then one log line and the metrics.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_wire::headers::{TASK_ID, TRACEPARENT};

use crate::AlgorithmError;
use crate::algorithm::panic_message;
use crate::error::ApiError;
use crate::state::Shared;

/// Calls the algorithm `name`, or the default one for `None`, and answers `{"result": ...}`
/// or the error.
pub(crate) async fn answer(shared: &Shared, name: Option<&str>, request: Request) -> Response {
    let started = Instant::now();
    let task_id = header_text(request.headers(), TASK_ID);
    let traceparent = header_text(request.headers(), TRACEPARENT);
    let outcome = tokio::select! {
        outcome = call(shared, name, request) => outcome,
        _ = shared.abandon.cancelled() => Err(ApiError::Abandoned),
    };
    let elapsed = started.elapsed();

    let label = shared.label(name);
    let (status, error) = match &outcome {
        Ok(_) => (StatusCode::OK, None),
        Err(error) => (error.status(), Some(error)),
    };
    shared
        .metrics
        .record(label, status.as_u16(), elapsed, error.map(ApiError::kind));
    let requested = name
        .or(shared.default_algorithm.as_deref())
        .unwrap_or("(no default)");
    log(
        requested,
        status,
        elapsed,
        task_id.as_deref(),
        traceparent.as_deref(),
        error,
    );

    match outcome {
        Ok(result) => (StatusCode::OK, axum::Json(json!({ "result": result }))).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn call(shared: &Shared, name: Option<&str>, request: Request) -> Result<Value, ApiError> {
    shared.authorize(request.headers())?;
    let hosted = shared.lookup(name)?;
    let handler = hosted
        .handler()
        .ok_or_else(|| match hosted.unavailable_reason() {
            Some(reason) => ApiError::Unavailable {
                name: hosted.name.clone(),
                reason: reason.to_owned(),
            },
            None => ApiError::Loading(hosted.name.clone()),
        })?;
    // Admitted before the body is read: a refused call never buffers its body.
    let admission = hosted.admit().ok_or_else(|| ApiError::Saturated {
        name: hosted.name.clone(),
        concurrency: hosted.limits.concurrency,
        queue: hosted.limits.queue,
    })?;
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(shared.max_body_bytes)
            } else {
                ApiError::UnreadableBody(rejection.body_text())
            }
        })?;
    let payload: Value =
        serde_json::from_slice(&body).map_err(|error| ApiError::NotJson(error.to_string()))?;
    drop(body);
    hosted
        .check_shape(&payload)
        .map_err(ApiError::InvalidPayload)?;

    let slot = admission.start().await;
    // A task of its own: a panic stays in it, and the slot is held until the algorithm is
    // done even if the caller hangs up, so concurrency limits count what really runs.
    let running = tokio::spawn(async move {
        let _slot = slot;
        handler(payload).await
    });
    match running.await {
        Ok(outcome) => outcome.map_err(ApiError::Algorithm),
        Err(join_error) => Err(ApiError::Algorithm(AlgorithmError::internal(
            panic_message(join_error),
        ))),
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(String::from)
}

/// The request's one log line; a failure's detail is logged here and nowhere else.
fn log(
    algorithm: &str,
    status: StatusCode,
    elapsed: Duration,
    task_id: Option<&str>,
    traceparent: Option<&str>,
    error: Option<&ApiError>,
) {
    let status = status.as_u16();
    // Microsecond precision: more digits are noise in a log line.
    let duration_ms = elapsed.as_micros() as f64 / 1000.0;
    match error {
        None => tracing::info!(
            algorithm,
            status,
            duration_ms,
            task_id,
            traceparent,
            "call answered"
        ),
        Some(error) if status >= 500 => {
            tracing::warn!(algorithm, status, duration_ms, task_id, traceparent, %error, "call failed")
        }
        Some(error) => {
            tracing::info!(algorithm, status, duration_ms, task_id, traceparent, %error, "call refused")
        }
    }
}
