//! The HTTP routes of the task API. Handlers parse and answer; the work is in `TaskApi`.
//!
//! Each handler's `#[utoipa::path]` is its operation in the OpenAPI document, and `routes!`
//! registers both at once: a route added any other way, or a query or body field its
//! attribute leaves out, fails the tests in `openapi.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_broker::MAX_PRIORITY;
use switchyard_wire::duration::parse_duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::catalog::AlgorithmListing;
use crate::error::ApiError;
use crate::openapi::{
    BadRequest, Gone, NotFound, NotImplemented, TooLarge, Unauthorized, Unavailable,
};
use crate::overview::{QueueView, Recent, RunnerView};
use crate::upload::{self, BodyKind, UploadFields, UploadForm};
use crate::{
    Cancellation, Cursor, DeadLetterView, Requeue, Submitted, TaskApi, TaskPage, TaskRecord,
    TaskStatus,
};

/// The body limit, which also bounds the task an uploaded image becomes.
#[derive(Debug, Clone, Copy)]
struct TaskBytes(usize);

/// Longest accepted `Idempotency-Key`, so keys cannot be used to bloat the store.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// The task API, its OpenAPI document at `/openapi.json` and Swagger UI at `/docs`, and the
/// dashboard at `/`.
pub fn router(api: TaskApi, max_body_bytes: usize) -> Router {
    let (routes, document) = api_routes().split_for_parts();
    routes
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(Extension(TaskBytes(max_body_bytes)))
        .layer(middleware::from_fn_with_state(api.clone(), require_token))
        .with_state(api)
        .merge(crate::dashboard::router())
        .merge(docs(document))
        .layer(middleware::from_fn(switchyard_http::linger))
}

/// Every route of the API, each registered with its OpenAPI operation by `routes!`.
fn api_routes() -> OpenApiRouter<TaskApi> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(submit, list))
        .routes(routes!(task, cancel))
        .routes(routes!(algorithms))
        .routes(routes!(schemas))
        .routes(routes!(dead_letters))
        .routes(routes!(requeue))
        .routes(routes!(runners))
        .routes(routes!(queues))
        .routes(routes!(stats))
        .routes(routes!(auth))
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

/// Serves `document` at `/openapi.json` and Swagger UI over it at `/docs` (vendored: offline).
pub(crate) fn docs<S: Clone + Send + Sync + 'static>(
    document: utoipa::openapi::OpenApi,
) -> Router<S> {
    utoipa_swagger_ui::SwaggerUi::new("/docs")
        .url("/openapi.json", document)
        .into()
}

/// With a token set, every request that changes something (any method but GET and HEAD) must
/// present it; reads, the dashboard and the docs stay open.
async fn require_token(
    State(api): State<TaskApi>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    if !is_read && !presents_token(&api, request.headers()) {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(request).await)
}

fn presents_token(api: &TaskApi, headers: &HeaderMap) -> bool {
    api.token.as_deref().is_none_or(|expected| {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        switchyard_wire::auth::bearer_matches(presented, expected)
    })
}

/// What `GET /v1/auth` answers.
#[derive(Serialize, ToSchema)]
struct TokenState {
    /// Whether changes need a token.
    token_required: bool,
    /// Whether this request presents the right one.
    token_valid: bool,
}

/// Whether changes need a token, and whether this request presents the right one (never echoes it)
///
/// What the dashboard asks before offering its actions.
#[utoipa::path(get, path = "/v1/auth", responses(
    (status = 200, description = "Token state", body = TokenState),
))]
async fn auth(State(api): State<TaskApi>, headers: HeaderMap) -> Json<TokenState> {
    Json(TokenState {
        token_required: api.token.is_some(),
        token_valid: presents_token(&api, &headers),
    })
}

/// Live runners, each with its calls in flight
#[utoipa::path(get, path = "/v1/runners", responses(
    (status = 200, description = "Discovery's runners", body = Vec<RunnerView>),
    (status = 503, response = Unavailable),
))]
async fn runners(State(api): State<TaskApi>) -> Result<Json<Vec<RunnerView>>, ApiError> {
    Ok(Json(api.runners().await?))
}

/// What waits in the queues
#[utoipa::path(get, path = "/v1/queues", responses(
    (status = 200, description = "Queue depths", body = QueueView),
    (status = 503, response = Unavailable),
))]
async fn queues(State(api): State<TaskApi>) -> Result<Json<QueueView>, ApiError> {
    Ok(Json(api.queues().await?))
}

/// Queue depths and throughput over the last minutes, and per-algorithm figures
#[utoipa::path(get, path = "/v1/stats", responses(
    (status = 200, description = "Recent figures", body = Recent),
    (status = 503, response = Unavailable),
))]
async fn stats(State(api): State<TaskApi>) -> Result<Json<Recent>, ApiError> {
    Ok(Json(api.recent().await?))
}

/// The body of `POST /v1/tasks`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SubmitRequest {
    /// The algorithm to run, as `GET /v1/algorithms` names it.
    algorithm: String,
    /// Its input, checked against the algorithm's schema (`GET /v1/schemas`); `{}` when absent.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    payload: Value,
    /// RFC 3339; past it the task is never run and its result is `expired`. Not with `ttl`.
    #[schema(format = DateTime)]
    deadline: Option<String>,
    /// The deadline as a duration from now (`30s`, `5m`, `1h`); more than 0. Not with `deadline`.
    ttl: Option<String>,
    /// Higher runs first: a consumer takes the highest-priority waiting task, in submit order
    /// within one priority. Ignored on a RabbitMQ quorum task queue, and on an adopted queue
    /// declared without `x-max-priority` (the log says so).
    #[serde(default, deserialize_with = "priority")]
    #[schema(minimum = 0, maximum = 9, default = 0)]
    priority: u8,
}

/// What `POST /v1/tasks` answers: the task's id.
#[derive(Serialize, ToSchema)]
struct TaskId {
    /// Read the task with `GET /v1/tasks/{id}`.
    id: String,
}

/// An integer from 0 to [`MAX_PRIORITY`]; anything else is refused with the field named, not
/// capped, so a client that means 10 to be above 9 learns it is not.
fn priority<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    let value = Value::deserialize(deserializer)?;
    value
        .as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .filter(|&n| n <= MAX_PRIORITY)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected an integer from 0 to {MAX_PRIORITY} (higher runs first), got {value}"
            ))
        })
}

impl SubmitRequest {
    /// The deadline in Unix ms, from `deadline` or `ttl` (not both), checked.
    fn deadline_ms(&self) -> Result<Option<u64>, ApiError> {
        use switchyard_wire::deadline::{DeadlineRefused, from_deadline_or_ttl, now_ms};
        from_deadline_or_ttl(self.deadline.as_deref(), self.ttl.as_deref(), now_ms()).map_err(
            |refused| {
                ApiError::BadRequest(match refused {
                    DeadlineRefused::Both => refused.to_string(),
                    DeadlineRefused::Invalid { field, reason } => {
                        format!("invalid field '{field}': {reason}")
                    }
                })
            },
        )
    }
}

fn empty_object() -> Value {
    json!({})
}

/// Reads a JSON object body, naming the offending field and answering 413 past the body limit.
fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    request_of(body_value(body)?)
}

/// The body as a JSON object; 413 past the body limit.
fn body_value(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.map_err(body_error)?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|error| ApiError::BadRequest(format!("body is not valid JSON: {error}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "body is not a request: expected a JSON object".into(),
        ));
    }
    Ok(value)
}

fn body_error(rejection: BytesRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(rejection.body_text()),
        _ => ApiError::BadRequest(rejection.body_text()),
    }
}

/// Reads a request from a JSON object, naming the offending field. Through a `Value` because
/// serde would otherwise also read a struct from a JSON array (`["echo", {}]`), positionally,
/// which no client means.
fn request_of<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            ApiError::BadRequest(format!("body is not a request: {inner}"))
        } else {
            ApiError::BadRequest(format!("invalid field '{path}': {inner}"))
        }
    })
}

/// Submit a task
///
/// The payload is checked against the algorithm's schema before it is queued. An
/// Idempotency-Key makes a retried submit return the same task. An algorithm this deployment
/// hosts that is still loading is a 503 with Retry-After; one that cannot run on this machine
/// (its engine is not installed) is a 501 whose message says what to install.
///
/// An image can be sent as it is instead of base64 in `payload.image_base64`: as a
/// multipart form (`curl -F algorithm=image_classifier -F image=@cat.jpg`), or as the whole body
/// (`Content-Type: image/*` or `application/octet-stream`) with the other fields in the query.
/// Either is checked and refused as the JSON body it stands for; the image's base64 must fit
/// the body limit. The query parameters go with an image body only.
#[utoipa::path(post, path = "/v1/tasks",
    params(
        ("Idempotency-Key" = Option<String>, Header, max_length = 200,
            description = "A retried submit with the same key returns the same task"),
        UploadFields,
    ),
    request_body(content(
        (SubmitRequest = "application/json"),
        (UploadForm = "multipart/form-data"),
        ("image/*"),
        ("application/octet-stream"),
    )),
    responses(
        (status = 202, description = "Accepted and queued", body = TaskId),
        (status = 200, description = "Idempotent resubmit: the existing task", body = TaskId),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = TooLarge),
        (status = 501, response = NotImplemented),
        (status = 503, response = Unavailable),
    ),
    security(("token" = []), ()),
)]
async fn submit(
    State(api): State<TaskApi>,
    Extension(TaskBytes(limit)): Extension<TaskBytes>,
    headers: HeaderMap,
    query: Result<Query<UploadFields>, axum::extract::rejection::QueryRejection>,
    body: Request,
) -> Result<Response, ApiError> {
    let Query(fields) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let request: SubmitRequest = match BodyKind::of(&headers) {
        BodyKind::Json => {
            if !fields.is_empty() {
                return Err(ApiError::BadRequest(
                    "query parameters go with an image body; a JSON submit says them in its body"
                        .into(),
                ));
            }
            let bytes = Bytes::from_request(body, &()).await;
            request_of(body_value(bytes)?)?
        }
        BodyKind::Form => {
            let form = Multipart::from_request(body, &())
                .await
                .map_err(|rejection| {
                    ApiError::BadRequest(format!(
                        "malformed multipart body: {}",
                        rejection.body_text()
                    ))
                })?;
            request_of(upload::from_form(form, limit).await?)?
        }
        BodyKind::Image => {
            let image = Bytes::from_request(body, &()).await.map_err(body_error)?;
            request_of(upload::request(fields, &image, limit)?)?
        }
    };
    let deadline_ms = request.deadline_ms()?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value.to_str().map_err(|_| {
                ApiError::BadRequest("Idempotency-Key must be visible ASCII".into())
            })?;
            if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
                return Err(ApiError::BadRequest(format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
                )));
            }
            Some(key.to_string())
        }
    };
    let answer = match api
        .submit(
            request.algorithm,
            request.payload,
            idempotency_key,
            deadline_ms,
            request.priority,
        )
        .await?
    {
        Submitted::New(id) => (StatusCode::ACCEPTED, Json(TaskId { id })),
        Submitted::Existing(id) => (StatusCode::OK, Json(TaskId { id })),
    };
    Ok(answer.into_response())
}

/// Cancel a task that has not started
///
/// A queued or delayed task is marked cancelled; the controller checks before every call to a
/// runner, so it is never run, and its result is `cancelled`. A task a controller is running is
/// not interrupted (the runner protocol cannot), nor a finished one: 409 with its status. Known
/// limit: on RabbitMQ a controller that has just taken a task cannot be told apart from the
/// queue, so a task cancelled in that instant may still run once.
#[utoipa::path(delete, path = "/v1/tasks/{id}",
    params(TaskPath),
    responses(
        (status = 200, description = "Cancelled: it will not be run", body = Cancellation),
        (status = 409, description = "Not cancelled: running or finished", body = Cancellation),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 410, response = Gone),
        (status = 503, response = Unavailable),
    ),
    security(("token" = []), ()),
)]
async fn cancel(
    State(api): State<TaskApi>,
    Path(TaskPath { id }): Path<TaskPath>,
) -> Result<Response, ApiError> {
    check_task_id(&id)?;
    let Some(cancellation) = api.cancel(id.clone()).await? else {
        return Err(missing(&api, &id).await?);
    };
    let status = if cancellation.cancelled {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((status, Json(cancellation)).into_response())
}

/// The error for an id with no record: pruned after its retention (410), or never known (404).
async fn missing(api: &TaskApi, id: &str) -> Result<ApiError, ApiError> {
    Ok(if api.store.was_pruned(id.to_owned()).await? {
        ApiError::Gone(format!(
            "task '{id}' finished and was pruned after its retention (up --retain)"
        ))
    } else {
        ApiError::NotFound(format!("no task with id '{id}'"))
    })
}

/// Largest page of `GET /v1/tasks`.
const MAX_PAGE: usize = 500;

/// The query of `GET /v1/tasks`. Read as text, so a wrong value is refused naming it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Only tasks in this state.
    #[param(value_type = Option<TaskStatus>)]
    state: Option<String>,
    /// Only tasks of this algorithm.
    algorithm: Option<String>,
    /// Tasks per page, 1 to 500.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500, default = 50)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List tasks, newest first
///
/// Paged by cursor: pass next_cursor as cursor for the next, older page; it is null after the
/// last. Results are left out (GET /v1/tasks/{id} has them). `running` is known on the embedded
/// queue only; elsewhere a task a controller holds is `queued`. A page filtered by `queued` or
/// `running` may hold fewer than `limit` tasks: follow the cursor.
#[utoipa::path(get, path = "/v1/tasks",
    params(ListParams),
    responses(
        (status = 200, description = "One page", body = TaskPage),
        (status = 400, response = BadRequest),
        (status = 503, response = Unavailable),
    ),
)]
async fn list(
    State(api): State<TaskApi>,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let state = params
        .state
        .map(|state| {
            TaskStatus::from_name(&state).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "state: '{state}' is not one of queued, running, done, failed, dead, expired, cancelled"
                ))
            })
        })
        .transpose()?;
    let limit = match params.limit {
        None => 50,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_PAGE).contains(limit))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit: '{text}' is not a number from 1 to {MAX_PAGE}"
                ))
            })?,
    };
    let after = params
        .cursor
        .map(|text| {
            Cursor::decode(&text).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "cursor: '{text}' is not a cursor this API gave (use next_cursor as it is)"
                ))
            })
        })
        .transpose()?;
    let page = api.list(state, params.algorithm, limit, after).await?;
    Ok(Json(page).into_response())
}

/// The task a path names.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct TaskPath {
    /// The id `POST /v1/tasks` answered.
    id: String,
}

/// The query of `GET /v1/tasks/{id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    /// Long-poll until the task is final, at most this long (e.g. 30s; capped at 60s).
    wait: Option<String>,
}

/// A task's status and outcome
///
/// 410 Gone: the task finished and was pruned after its retention (up --retain); 404: no task
/// ever had this id.
#[utoipa::path(get, path = "/v1/tasks/{id}",
    params(TaskPath, WaitQuery),
    responses(
        (status = 200, description = "The task", body = TaskRecord),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 410, response = Gone),
        (status = 503, response = Unavailable),
    ),
)]
async fn task(
    State(api): State<TaskApi>,
    Path(TaskPath { id }): Path<TaskPath>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    check_task_id(&id)?;
    let wait = match query.wait.as_deref() {
        None => Duration::ZERO,
        Some(text) => {
            parse_duration(text).map_err(|e| ApiError::BadRequest(format!("wait: {e}")))?
        }
    };
    let Some(record) = api.task(id.clone(), wait).await? else {
        return Err(missing(&api, &id).await?);
    };
    Ok(Json(record).into_response())
}

/// What `GET /ready` answers.
#[derive(Serialize, ToSchema)]
struct Readiness {
    ready: bool,
    /// Hosted algorithms not registered yet.
    loading: Vec<String>,
    /// Algorithms that cannot run here, with what to install.
    unavailable: BTreeMap<String, String>,
}

/// Alive
#[utoipa::path(get, path = "/health", responses((status = 200, description = "ok")))]
async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to take every algorithm it hosts
///
/// 200 once every algorithm this deployment hosts itself has registered, or was found unable to
/// run here (which waiting would not change); 503 with Retry-After while some still load, or
/// while discovery cannot be asked.
#[utoipa::path(get, path = "/ready", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "Still loading, or discovery cannot be asked", body = Readiness,
        headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
))]
async fn ready(State(api): State<TaskApi>) -> Result<Response, ApiError> {
    let readiness = api.catalog.readiness().await?;
    let ready = readiness.loading.is_empty();
    let body = Json(Readiness {
        ready,
        loading: readiness.loading,
        unavailable: readiness.unavailable,
    });
    Ok(if ready {
        body.into_response()
    } else {
        let retry_after = [(axum::http::header::RETRY_AFTER, "1")];
        (StatusCode::SERVICE_UNAVAILABLE, retry_after, body).into_response()
    })
}

/// Registered algorithms with their replicas
#[utoipa::path(get, path = "/v1/algorithms", responses(
    (status = 200, description = "Algorithms", body = Vec<AlgorithmListing>),
    (status = 503, response = Unavailable),
))]
async fn algorithms(State(api): State<TaskApi>) -> Result<Json<Vec<AlgorithmListing>>, ApiError> {
    Ok(Json(api.catalog.listing().await?))
}

/// Each algorithm's payload schema
#[utoipa::path(get, path = "/v1/schemas", responses(
    (status = 200, description = "{algorithm: JSON schema}", body = BTreeMap<String, Object>),
    (status = 503, response = Unavailable),
))]
async fn schemas(State(api): State<TaskApi>) -> Result<Json<BTreeMap<String, Value>>, ApiError> {
    let schemas: BTreeMap<String, Value> = api
        .catalog
        .listing()
        .await?
        .into_iter()
        .filter(|algorithm| algorithm.available)
        .map(|algorithm| (algorithm.name, algorithm.schema))
        .collect();
    Ok(Json(schemas))
}

/// The query of `GET /v1/dead-letters`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeadLetterQuery {
    /// At most this many; brought within 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
}

/// Dead-lettered tasks, oldest first
#[utoipa::path(get, path = "/v1/dead-letters",
    params(DeadLetterQuery),
    responses(
        (status = 200, description = "Dead letters", body = Vec<DeadLetterView>),
        (status = 400, response = BadRequest),
        (status = 503, response = Unavailable),
    ),
)]
async fn dead_letters(
    State(api): State<TaskApi>,
    query: Result<Query<DeadLetterQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<DeadLetterView>>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(api.dead_letters(limit).await?))
}

/// The body of `POST /v1/dead-letters/requeue`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RequeueRequest {
    /// Keys from `GET /v1/dead-letters`; not with `algorithm`.
    keys: Option<Vec<String>>,
    /// Every dead letter of this algorithm; not with `keys`. With neither, every dead letter.
    algorithm: Option<String>,
}

/// What `POST /v1/dead-letters/requeue` answers.
#[derive(Serialize, ToSchema)]
struct Requeued {
    /// How many dead letters went back to the task queue.
    requeued: usize,
}

/// Replay dead letters: those of `keys`, every one of `algorithm`, or all of them
#[utoipa::path(post, path = "/v1/dead-letters/requeue",
    request_body = RequeueRequest,
    responses(
        (status = 200, description = "How many were requeued", body = Requeued),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = TooLarge),
        (status = 503, response = Unavailable),
    ),
    security(("token" = []), ()),
)]
async fn requeue(
    State(api): State<TaskApi>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Requeued>, ApiError> {
    let request: RequeueRequest = parse_body(body)?;
    let which = match (request.keys, request.algorithm) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give 'keys' or 'algorithm', not both".into(),
            ));
        }
        (Some(keys), None) => Requeue::Keys(keys),
        (None, Some(algorithm)) => Requeue::Algorithm(algorithm),
        (None, None) => Requeue::All,
    };
    let requeued = api.requeue(which).await?;
    Ok(Json(Requeued { requeued }))
}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "text exposition format", body = String, content_type = "text/plain"),
))]
async fn metrics(State(api): State<TaskApi>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        api.metrics_text().await,
    )
        .into_response()
}

fn check_task_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(ApiError::BadRequest(format!(
            "'{}' is not a task id (ids are up to 128 characters of letters, digits and -_.:)",
            id.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}
