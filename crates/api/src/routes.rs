//! The HTTP routes of the task API. Handlers parse and answer; the work is in `TaskApi`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_broker::MAX_PRIORITY;
use switchyard_wire::duration::parse_duration;

use crate::error::ApiError;
use crate::{Cursor, Requeue, Submitted, TaskApi, TaskStatus};

/// The OpenAPI document of these routes, written by hand: the routes are few and the payload
/// schemas are per algorithm, served by `GET /v1/schemas`.
const OPENAPI: &str = include_str!("../openapi.json");

/// Longest accepted `Idempotency-Key`, so keys cannot be used to bloat the store.
const MAX_IDEMPOTENCY_KEY: usize = 200;

pub fn router(api: TaskApi, max_body_bytes: usize) -> Router {
    let openapi: Value = serde_json::from_str(OPENAPI).expect("openapi.json is valid JSON");
    let docs =
        utoipa_swagger_ui::SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", openapi);
    Router::new()
        .route("/v1/tasks", post(submit).get(list))
        .route("/v1/tasks/{id}", get(task).delete(cancel))
        .route("/v1/algorithms", get(algorithms))
        .route("/v1/schemas", get(schemas))
        .route("/v1/dead-letters", get(dead_letters))
        .route("/v1/dead-letters/requeue", post(requeue))
        .route("/v1/runners", get(runners))
        .route("/v1/queues", get(queues))
        .route("/v1/stats", get(stats))
        .route("/v1/auth", get(auth))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(api.clone(), require_token))
        .with_state(api)
        .merge(crate::dashboard::router())
        .merge(docs)
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

/// `GET /v1/auth`: whether changes need a token, and whether this request presents the right
/// one; what the dashboard asks before offering its actions. It never echoes a token.
async fn auth(State(api): State<TaskApi>, headers: HeaderMap) -> Response {
    Json(json!({
        "token_required": api.token.is_some(),
        "token_valid": presents_token(&api, &headers),
    }))
    .into_response()
}

async fn runners(State(api): State<TaskApi>) -> Result<Response, ApiError> {
    Ok(Json(api.runners().await?).into_response())
}

async fn queues(State(api): State<TaskApi>) -> Result<Response, ApiError> {
    Ok(Json(api.queues().await?).into_response())
}

async fn stats(State(api): State<TaskApi>) -> Result<Response, ApiError> {
    Ok(Json(api.recent().await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitRequest {
    algorithm: String,
    #[serde(default = "empty_object")]
    payload: Value,
    /// RFC 3339: past it the task is never run and its result is `expired`.
    deadline: Option<String>,
    /// The same as a duration from now (`30s`).
    ttl: Option<String>,
    /// 0 (the default) to 9: a consumer takes the highest first.
    #[serde(default, deserialize_with = "priority")]
    priority: u8,
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
/// The body is parsed to a `Value` first because serde would otherwise also read a struct from
/// a JSON array (`["echo", {}]`), positionally, which no client means.
fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(rejection.body_text()),
        _ => ApiError::BadRequest(rejection.body_text()),
    })?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|error| ApiError::BadRequest(format!("body is not valid JSON: {error}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "body is not a request: expected a JSON object".into(),
        ));
    }
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

async fn submit(
    State(api): State<TaskApi>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: SubmitRequest = parse_body(body)?;
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
        Submitted::New(id) => (StatusCode::ACCEPTED, Json(json!({"id": id}))),
        Submitted::Existing(id) => (StatusCode::OK, Json(json!({"id": id}))),
    };
    Ok(answer.into_response())
}

/// `DELETE /v1/tasks/{id}`: 200 when cancelled, 409 when it runs or finished already.
async fn cancel(State(api): State<TaskApi>, Path(id): Path<String>) -> Result<Response, ApiError> {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    state: Option<String>,
    algorithm: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /v1/tasks?state=&algorithm=&limit=&cursor=`: newest first, paged by cursor.
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

#[derive(Deserialize)]
struct WaitQuery {
    wait: Option<String>,
}

async fn task(
    State(api): State<TaskApi>,
    Path(id): Path<String>,
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

/// 200 once every algorithm this deployment hosts itself has registered (or was found unable to
/// run here, which waiting would not change); until then 503 naming those still loading. Also
/// 503 while discovery cannot be asked.
async fn ready(State(api): State<TaskApi>) -> Result<Response, ApiError> {
    let readiness = api.catalog.readiness().await?;
    let ready = readiness.loading.is_empty();
    let body = Json(json!({
        "ready": ready,
        "loading": readiness.loading,
        "unavailable": readiness.unavailable,
    }));
    Ok(if ready {
        body.into_response()
    } else {
        let retry_after = [(axum::http::header::RETRY_AFTER, "1")];
        (StatusCode::SERVICE_UNAVAILABLE, retry_after, body).into_response()
    })
}

async fn algorithms(State(api): State<TaskApi>) -> Result<Response, ApiError> {
    Ok(Json(api.catalog.listing().await?).into_response())
}

async fn schemas(State(api): State<TaskApi>) -> Result<Response, ApiError> {
    let schemas: BTreeMap<String, Value> = api
        .catalog
        .listing()
        .await?
        .into_iter()
        .filter(|algorithm| algorithm.available)
        .map(|algorithm| (algorithm.name, algorithm.schema))
        .collect();
    Ok(Json(schemas).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn dead_letters(
    State(api): State<TaskApi>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(api.dead_letters(limit).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequeueRequest {
    /// Keys from `GET /v1/dead-letters`.
    keys: Option<Vec<String>>,
    /// Every dead letter of this algorithm. With neither, every dead letter.
    algorithm: Option<String>,
}

async fn requeue(
    State(api): State<TaskApi>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
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
    Ok(Json(json!({"requeued": requeued})).into_response())
}

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
