//! The HTTP face of the registry: the series' routes and the richer `/runners` routes, the token
//! check on every change, and JSON bodies read with errors in the series' shape.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use switchyard_wire::discovery::{
    LegacyListing, LegacyRegistration, RegistrationAck, RunnerEntry, RunnerRegistration,
};

use crate::error::{ApiError, MAX_BODY_BYTES};
use crate::registry::Registry;
use crate::validate;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    registry: Arc<Mutex<Registry>>,
    /// When set, every request that changes registrations must present it as a bearer token.
    token: Option<Arc<str>>,
}

/// Leaves the token out, and the registry, which would need its lock.
impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state of a discovery serving `registry`, requiring `token` for changes when set.
    pub fn new(registry: Registry, token: Option<String>) -> AppState {
        AppState {
            registry: Arc::new(Mutex::new(registry)),
            token: token.map(Arc::from),
        }
    }

    /// The registry, locked. Its methods never leave it half-updated, so the state left by a
    /// panicking holder is still consistent and discovery keeps serving.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every route of discovery.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/algorithms", get(legacy_listing).post(register_legacy))
        .route("/runners", get(runners).post(register))
        .route("/runners/{id}/heartbeat", put(heartbeat))
        .route("/runners/{id}", delete(deregister))
        .route("/health", get(health))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(switchyard_http::linger))
        .with_state(state)
}

async fn legacy_listing(State(state): State<AppState>) -> Json<LegacyListing> {
    Json(state.registry().legacy_listing(Instant::now()))
}

/// The series' registration: 201 the first time an algorithm is registered at a host, 200 when
/// the same pair is registered again. The ack echoes what was stored.
async fn register_legacy(
    State(state): State<AppState>,
    JsonBody(registration): JsonBody<LegacyRegistration>,
) -> Result<(StatusCode, Json<LegacyRegistration>), ApiError> {
    validate::legacy_registration(&registration)?;
    let is_new = state
        .registry()
        .register_legacy(registration.clone(), Instant::now());
    let status = if is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(registration)))
}

async fn runners(State(state): State<AppState>) -> Json<Vec<RunnerEntry>> {
    Json(state.registry().list(Instant::now()))
}

async fn register(
    State(state): State<AppState>,
    JsonBody(registration): JsonBody<RunnerRegistration>,
) -> Result<(StatusCode, Json<RegistrationAck>), ApiError> {
    validate::runner_registration(&registration)?;
    let mut registry = state.registry();
    registry.register(registration, Instant::now());
    Ok((StatusCode::CREATED, Json(registry.ack())))
}

async fn heartbeat(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.registry().renew(&id, Instant::now()) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::UnknownRunner(id))
    }
}

/// Idempotent: a runner shutting down after discovery forgot it has nothing to fix.
async fn deregister(State(state): State<AppState>, Path(id): Path<String>) -> StatusCode {
    state.registry().deregister(&id);
    StatusCode::NO_CONTENT
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
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

/// Reads stay open (the controller and producers list runners); anything else changes who
/// receives task payloads, so it needs the token when one is configured.
async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    if let Some(expected) = state.token.as_deref().filter(|_| !is_read) {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if !switchyard_wire::auth::bearer_matches(presented, expected) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(next.run(request).await)
}

/// A JSON body read whatever its content type (the series' clients do not all set one), with
/// every failure answered as `{"message"}`.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge
                } else {
                    ApiError::UnreadableBody(rejection.body_text())
                }
            })?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|error| ApiError::NotJson(error.to_string()))?;
        // serde would also accept the struct's fields as an array; the contract is an object.
        if !value.is_object() {
            return Err(ApiError::WrongShape("expected a JSON object".to_string()));
        }
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|error| ApiError::WrongShape(error.to_string()))
    }
}
