//! The runner's HTTP surface: the series' `POST /run/{algorithm}`, `POST /` and
//! `GET /schemas`, probes, metrics and API docs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use utoipa_swagger_ui::SwaggerUi;

use crate::call::answer;
use crate::error::ApiError;
use crate::state::Shared;

pub(crate) fn router(shared: Arc<Shared>, openapi: Value) -> Router {
    let docs = SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", openapi);
    Router::new()
        .route("/", post(run_default))
        .route("/run/{algorithm}", post(run_named))
        .route("/schemas", get(schemas))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(docs)
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(shared.max_body_bytes))
        .layer(axum::middleware::from_fn(switchyard_http::linger))
        .with_state(shared)
}

async fn run_named(
    State(shared): State<Arc<Shared>>,
    Path(algorithm): Path<String>,
    request: Request,
) -> Response {
    answer(&shared, Some(&algorithm), request).await
}

/// The series' Part II contract: the payload posted to the runner's root.
async fn run_default(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    answer(&shared, None, request).await
}

/// The series' shape: `{"<algorithm>": <schema>}`, of the algorithms that can run here.
async fn schemas(State(shared): State<Arc<Shared>>) -> axum::Json<BTreeMap<String, Value>> {
    let schemas = shared
        .algorithms
        .values()
        .filter(|hosted| hosted.unavailable_reason().is_none())
        .map(|hosted| (hosted.name.clone(), hosted.schema.clone()));
    axum::Json(schemas.collect())
}

/// Liveness: the process answers. Loading or draining does not make it unhealthy.
async fn health(State(shared): State<Arc<Shared>>) -> axum::Json<Value> {
    axum::Json(json!({"status": "alive", "runner_id": shared.runner_id}))
}

/// Readiness: every algorithm loaded (or found unavailable, which waiting would not change) and
/// not shutting down.
async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    let loading = shared.still_loading();
    let draining = shared.is_draining();
    let ready = loading.is_empty() && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let unavailable: BTreeMap<&str, &str> = shared
        .algorithms
        .values()
        .filter_map(|hosted| Some((hosted.name.as_str(), hosted.unavailable_reason()?)))
        .collect();
    let body = json!({
        "ready": ready, "loading": loading, "draining": draining, "unavailable": unavailable
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let content_type = [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)];
    (content_type, shared.metrics.render()).into_response()
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}
