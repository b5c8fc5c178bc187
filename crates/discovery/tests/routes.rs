//! Every route and every refusal of the router, without sockets.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use switchyard_discovery::{AppState, MAX_BODY_BYTES, Registry, app};
use tower::ServiceExt;

const TOKEN: &str = "s3cret";

fn open_app() -> Router {
    app(AppState::new(
        Registry::new(Duration::from_secs(15), Duration::from_secs(5)),
        None,
    ))
}

fn locked_app() -> Router {
    app(AppState::new(
        Registry::new(Duration::from_secs(15), Duration::from_secs(5)),
        Some(TOKEN.to_string()),
    ))
}

/// Sends one request; `authorization` is the whole header value.
async fn send(
    app: &Router,
    method: Method,
    path: &str,
    body: Option<String>,
    authorization: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let request = request
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, body)
}

async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    send(app, Method::POST, path, Some(body.to_string()), None).await
}

async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    send(app, Method::GET, path, None, None).await
}

fn runner_body(id: &str, base_url: &str) -> Value {
    serde_json::to_value(support::registration(id, base_url, &["echo"])).unwrap()
}

/// Asserts a refusal: its status, and that its `{"message"}` contains `fragment`.
#[track_caller]
fn assert_refused((status, body): (StatusCode, Value), expected: StatusCode, fragment: &str) {
    assert_eq!(
        status, expected,
        "{body}, expected a refusal with '{fragment}'"
    );
    let message = body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body}"));
    assert!(message.contains(fragment), "'{message}' lacks '{fragment}'");
    assert_eq!(body.as_object().unwrap().len(), 1, "only a message: {body}");
}

#[tokio::test]
async fn the_series_registration_and_listing_work_byte_for_byte() {
    let app = open_app();
    let registration = json!({"algorithm": "meme_classifier", "host": "http://meme:5000"});
    assert_eq!(
        post(&app, "/algorithms", registration.clone()).await,
        (StatusCode::CREATED, registration.clone())
    );
    assert_eq!(
        post(&app, "/algorithms", registration.clone()).await,
        (StatusCode::OK, registration),
        "a repeat"
    );
    post(
        &app,
        "/algorithms",
        json!({"algorithm": "ocr", "host": "http://meme:5000"}),
    )
    .await;
    assert_eq!(
        get(&app, "/algorithms").await,
        (
            StatusCode::OK,
            json!({"meme_classifier": "http://meme:5000", "ocr": "http://meme:5000"})
        )
    );
    let (status, runners) = get(&app, "/runners").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runners[0]["id"], "legacy:http://meme:5000");
    assert_eq!(runners[0]["legacy"], true);
    assert_eq!(
        runners[0]["algorithms"][1],
        json!({"name": "ocr", "schema": null})
    );
}

#[tokio::test]
async fn a_body_without_content_type_is_read_as_json() {
    // The request built by `send` carries no Content-Type at all.
    let (status, _) = post(
        &open_app(),
        "/algorithms",
        json!({"algorithm": "ocr", "host": "http://h:1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn bad_series_registrations_are_refused_with_the_problem_named() {
    let app = open_app();
    let not_json = send(
        &app,
        Method::POST,
        "/algorithms",
        Some("algorithm=ocr".into()),
        None,
    )
    .await;
    assert_refused(not_json, StatusCode::BAD_REQUEST, "body is not valid JSON");
    let empty = send(&app, Method::POST, "/algorithms", None, None).await;
    assert_refused(empty, StatusCode::BAD_REQUEST, "body is not valid JSON");
    let cases = [
        (json!({"algorithm": "ocr"}), "missing field `host`"),
        (
            json!({"algorithm": "ocr", "host": "http://h:1", "port": 1}),
            "unknown field `port`",
        ),
        (
            json!({"algorithm": 5, "host": "http://h:1"}),
            "invalid type: integer `5`",
        ),
        (
            json!(["ocr", "http://h:1"]),
            "body is not a registration: expected a JSON object",
        ),
        (
            json!({"algorithm": "", "host": "http://h:1"}),
            "algorithm name must be 1 to 128 characters",
        ),
        (
            json!({"algorithm": "o c r", "host": "http://h:1"}),
            "algorithm name must be",
        ),
        (
            json!({"algorithm": "a".repeat(129), "host": "http://h:1"}),
            "algorithm name must be",
        ),
        (
            json!({"algorithm": "ocr", "host": "h:1"}),
            "'host' must be an http or https URL, not 'h'",
        ),
        (
            json!({"algorithm": "ocr", "host": "/runner"}),
            "'host' is not an absolute URL",
        ),
        (
            json!({"algorithm": "ocr", "host": "ftp://h:1"}),
            "must be an http or https URL, not 'ftp'",
        ),
        (
            json!({"algorithm": "ocr", "host": "http://h:1/?x=1"}),
            "'host' must not have a query or fragment",
        ),
        (
            json!({"algorithm": "ocr", "host": "http://h:1/#top"}),
            "must not have a query or fragment",
        ),
        (
            json!({"algorithm": "ocr", "host": "http://u:p@h:1"}),
            "'host' must not carry credentials",
        ),
    ];
    for (body, fragment) in cases {
        assert_refused(
            post(&app, "/algorithms", body).await,
            StatusCode::BAD_REQUEST,
            fragment,
        );
    }
    assert_eq!(
        get(&app, "/algorithms").await,
        (StatusCode::OK, json!({})),
        "nothing stored"
    );
}

#[tokio::test]
async fn a_runner_registers_heartbeats_and_deregisters() {
    let app = open_app();
    let (status, ack) = post(&app, "/runners", runner_body("r1", "https://runner:8080")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        ack,
        json!({"ttl_ms": 15_000, "heartbeat_interval_ms": 5_000})
    );
    let (status, runners) = get(&app, "/runners").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runners.as_array().unwrap().len(), 1);
    assert_eq!(runners[0]["id"], "r1");
    assert_eq!(runners[0]["base_url"], "https://runner:8080");
    assert_eq!(runners[0]["healthy"], true);
    assert_eq!(runners[0]["legacy"], false);
    assert_eq!(
        runners[0]["algorithms"][0]["schema"],
        json!({"type": "object"})
    );
    assert_eq!(
        get(&app, "/algorithms").await.1,
        json!({"echo": "https://runner:8080"})
    );

    let heartbeat = send(&app, Method::PUT, "/runners/r1/heartbeat", None, None).await;
    assert_eq!(heartbeat, (StatusCode::NO_CONTENT, Value::Null));
    let deregister = send(&app, Method::DELETE, "/runners/r1", None, None).await;
    assert_eq!(deregister, (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(get(&app, "/runners").await.1, json!([]));
    let again = send(&app, Method::DELETE, "/runners/r1", None, None).await;
    assert_eq!(again.0, StatusCode::NO_CONTENT, "idempotent");
}

#[tokio::test]
async fn registering_the_same_id_replaces_it() {
    let app = open_app();
    post(&app, "/runners", runner_body("r1", "http://a:1")).await;
    let (status, _) = post(&app, "/runners", runner_body("r1", "http://b:2")).await;
    assert_eq!(status, StatusCode::CREATED);
    let runners = get(&app, "/runners").await.1;
    assert_eq!(runners.as_array().unwrap().len(), 1);
    assert_eq!(runners[0]["base_url"], "http://b:2");
}

#[tokio::test]
async fn a_heartbeat_from_an_unknown_runner_is_told_to_register_again() {
    let response = send(
        &open_app(),
        Method::PUT,
        "/runners/ghost/heartbeat",
        None,
        None,
    )
    .await;
    assert_refused(
        response,
        StatusCode::NOT_FOUND,
        "unknown runner 'ghost': register again",
    );
}

#[tokio::test]
async fn a_legacy_host_can_be_removed_by_its_percent_encoded_id() {
    let app = open_app();
    post(
        &app,
        "/algorithms",
        json!({"algorithm": "ocr", "host": "http://py:5000"}),
    )
    .await;
    let path = "/runners/legacy:http%3A%2F%2Fpy%3A5000";
    assert_eq!(
        send(&app, Method::DELETE, path, None, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(get(&app, "/algorithms").await.1, json!({}));
}

#[tokio::test]
async fn bad_runner_registrations_are_refused_with_the_problem_named() {
    let app = open_app();
    let mut no_algorithms = runner_body("r1", "http://a:1");
    no_algorithms["algorithms"] = json!([]);
    let mut twice = runner_body("r1", "http://a:1");
    twice["algorithms"] = json!([{"name": "echo", "schema": {}}, {"name": "echo", "schema": {}}]);
    let mut bad_name = runner_body("r1", "http://a:1");
    bad_name["algorithms"][0]["name"] = json!("echo/v2");
    let mut no_capacity = runner_body("r1", "http://a:1");
    no_capacity["capacity"] = json!(0);
    let mut negative_capacity = runner_body("r1", "http://a:1");
    negative_capacity["capacity"] = json!(-1);
    let mut no_schema = runner_body("r1", "http://a:1");
    no_schema["algorithms"][0]
        .as_object_mut()
        .unwrap()
        .remove("schema");
    let cases = [
        (no_algorithms, "'algorithms' is empty"),
        (twice, "algorithm 'echo' is listed twice"),
        (bad_name, "algorithm name must be"),
        (no_capacity, "'capacity' must be at least 1"),
        (negative_capacity, "invalid value: integer `-1`"),
        (no_schema, "missing field `schema`"),
        (
            runner_body("", "http://a:1"),
            "'id' must be 1 to 128 characters",
        ),
        (runner_body("r/1", "http://a:1"), "'id' must be"),
        (
            runner_body("legacy:a1", "http://a:1"),
            "'id' must not start with 'legacy:'",
        ),
        (
            runner_body("r1", "not a url"),
            "'base_url' is not an absolute URL",
        ),
        (
            runner_body("r1", "file:///tmp/x"),
            "'base_url' must be an http or https URL, not 'file'",
        ),
        (json!({"id": "r1"}), "missing field `base_url`"),
    ];
    for (body, fragment) in cases {
        assert_refused(
            post(&app, "/runners", body).await,
            StatusCode::BAD_REQUEST,
            fragment,
        );
    }
    assert_eq!(get(&app, "/runners").await.1, json!([]), "nothing stored");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let app = open_app();
    let mut body = runner_body("r1", "http://a:1");
    body["algorithms"][0]["schema"] = json!({"description": "x".repeat(MAX_BODY_BYTES)});
    assert_refused(
        post(&app, "/runners", body).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than 1048576 bytes",
    );
}

#[tokio::test]
async fn health_unknown_routes_and_wrong_methods_answer_json() {
    let app = open_app();
    assert_eq!(
        get(&app, "/health").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_refused(
        get(&app, "/nope").await,
        StatusCode::NOT_FOUND,
        "no route for GET /nope",
    );
    let patch = send(&app, Method::PATCH, "/runners", None, None).await;
    assert_refused(
        patch,
        StatusCode::METHOD_NOT_ALLOWED,
        "PATCH is not allowed on /runners",
    );
}

#[tokio::test]
async fn with_a_token_every_change_needs_it() {
    let app = locked_app();
    let legacy = Some(json!({"algorithm": "ocr", "host": "http://py:1"}).to_string());
    let runner = Some(runner_body("r1", "http://a:1").to_string());
    let changes = [
        (Method::POST, "/algorithms", legacy.clone()),
        (Method::POST, "/runners", runner.clone()),
        (Method::PUT, "/runners/r1/heartbeat", None),
        (Method::DELETE, "/runners/r1", None),
    ];
    let wrong = [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cre"),
        Some("Basic czNjcmV0"),
        Some(TOKEN),
    ];
    for (method, path, body) in &changes {
        for authorization in wrong {
            let response = send(&app, method.clone(), path, body.clone(), authorization).await;
            assert_refused(response, StatusCode::UNAUTHORIZED, "missing or wrong token");
        }
    }
    assert_eq!(get(&app, "/runners").await.1, json!([]), "nothing changed");

    let bearer = format!("Bearer {TOKEN}");
    let lowercase = format!("bearer {TOKEN}");
    let auth = Some(bearer.as_str());
    assert_eq!(
        send(&app, Method::POST, "/algorithms", legacy, auth)
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        send(&app, Method::POST, "/runners", runner, Some(&lowercase))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        send(&app, Method::PUT, "/runners/r1/heartbeat", None, auth)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    // Reads stay open.
    assert_eq!(
        get(&app, "/algorithms").await.1,
        json!({"echo": "http://a:1", "ocr": "http://py:1"})
    );
    assert_eq!(get(&app, "/runners").await.1.as_array().unwrap().len(), 2);
    assert_eq!(get(&app, "/health").await.0, StatusCode::OK);
    assert_eq!(
        send(&app, Method::DELETE, "/runners/r1", None, auth)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}
