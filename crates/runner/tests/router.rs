//! The runner's HTTP surface, driven without a socket.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use axum::http::{StatusCode, header};
use serde_json::{Value, json};
use support::algorithms::*;
use support::{get, loaded_router, post, sample, send};
use switchyard_runner::{Runner, RunnerConfig, RunnerError};

fn everything() -> Vec<switchyard_runner::Algorithm> {
    vec![
        shout_algorithm(),
        add_algorithm(),
        lenient(),
        fail(),
        explode_algorithm(),
        explode_async_algorithm(),
    ]
}

async fn router() -> axum::Router {
    loaded_router(everything(), RunnerConfig::default()).await
}

#[tokio::test]
async fn runs_an_algorithm_and_answers_its_result() {
    let router = router().await;
    let reply = send(&router, post("/run/shout", r#"{"text": "hi"}"#)).await;
    assert_eq!(
        (reply.status, reply.json()),
        (StatusCode::OK, json!({"result": "HI"}))
    );
    let reply = send(&router, post("/run/sum", r#"{"a": 2, "b": 3}"#)).await;
    assert_eq!(
        (reply.status, reply.json()),
        (StatusCode::OK, json!({"result": 5}))
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400() {
    let reply = send(&router().await, post("/run/shout", "{text: hi")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .message()
            .starts_with("Task body not valid JSON: key must be a string"),
        "{}",
        reply.message()
    );
}

/// The controller forwards payloads without parsing them, so the runner is where nesting stops.
#[tokio::test]
async fn a_payload_nested_beyond_the_limit_is_a_400() {
    let text = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let reply = send(
        &router().await,
        post("/run/shout", format!(r#"{{"text": {text}}}"#)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.message().contains("recursion limit"),
        "{}",
        reply.message()
    );
}

#[tokio::test]
async fn a_missing_mistyped_or_unknown_field_is_a_400_naming_it() {
    let router = router().await;
    for (body, expected) in [
        (r#"{}"#, "invalid payload: missing field `text`"),
        (
            r#"{"text": 1}"#,
            "invalid payload at 'text': invalid type: integer `1`, expected a string",
        ),
        (r#"{"text": "a", "colour": 1}"#, "unknown field `colour`"),
        (
            r#"["a"]"#,
            "invalid payload: expected a JSON object of fields, got an array",
        ),
    ] {
        let reply = send(&router, post("/run/shout", body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            reply.message().contains(expected),
            "{body}: {}",
            reply.message()
        );
        assert_eq!(
            reply.json().get("error"),
            None,
            "client errors carry no detail"
        );
    }
    let reply = send(&router, post("/run/sum", r#"{"a": 1, "b": "2"}"#)).await;
    assert!(reply.message().contains("'b'"), "{}", reply.message());
}

#[tokio::test]
async fn an_unknown_field_is_refused_even_when_the_payload_type_would_ignore_it() {
    let router = router().await;
    let reply = send(
        &router,
        post("/run/lenient", r#"{"text": "abc", "colour": 1}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.message(),
        "invalid payload: unknown field `colour`, expected one of: `text`"
    );
    let reply = send(&router, post("/run/lenient", r#"{"text": "abc"}"#)).await;
    assert_eq!(reply.json(), json!({"result": 3}));
}

#[tokio::test]
async fn an_algorithm_not_hosted_is_a_404_listing_those_that_are() {
    let reply = send(&router().await, post("/run/ocr", r#"{"url": "x"}"#)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.message(),
        "algorithm 'ocr' is not hosted by this runner; it hosts: explode, explode_async, fail, lenient, shout, sum"
    );
}

#[tokio::test]
async fn an_algorithms_client_error_keeps_its_status_and_message() {
    let router = router().await;
    for status in [404u16, 422, 502] {
        let body = json!({"status": status, "message": format!("Error fetching request image, received {status}")});
        let reply = send(&router, post("/run/fail", body.to_string())).await;
        assert_eq!(reply.status.as_u16(), status);
        assert_eq!(
            reply.json(),
            json!({"message": format!("Error fetching request image, received {status}")})
        );
    }
}

#[tokio::test]
async fn an_internal_error_is_a_500_in_the_series_shape() {
    let body = json!({"status": 500, "message": "tensor shape mismatch"}).to_string();
    let reply = send(&router().await, post("/run/fail", body)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.json(),
        json!({"message": "Internal error", "error": "tensor shape mismatch"})
    );
}

#[tokio::test]
async fn a_panic_is_a_500_and_the_runner_keeps_serving() {
    let router = router().await;
    for (algorithm, detail) in [
        ("explode", "algorithm panicked: exploded on x"),
        ("explode_async", "algorithm panicked: async exploded on x"),
    ] {
        let reply = send(
            &router,
            post(&format!("/run/{algorithm}"), r#"{"text": "x"}"#),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{algorithm}"
        );
        assert_eq!(
            reply.json(),
            json!({"message": "Internal error", "error": detail})
        );
    }
    let reply = send(&router, post("/run/shout", r#"{"text": "still here"}"#)).await;
    assert_eq!(reply.json(), json!({"result": "STILL HERE"}));
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let config = RunnerConfig {
        max_body_bytes: 64,
        ..RunnerConfig::default()
    };
    let router = loaded_router(vec![shout_algorithm()], config).await;
    let too_long = json!({"text": "x".repeat(64)}).to_string();
    let reply = send(&router, post("/run/shout", too_long)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.message(), "Task body is larger than 64 bytes");
    let fits = json!({"text": "x".repeat(40)}).to_string();
    assert_eq!(
        send(&router, post("/run/shout", fits)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn post_root_runs_the_default_algorithm() {
    let config = RunnerConfig {
        default_algorithm: Some("shout".into()),
        ..RunnerConfig::default()
    };
    let router = loaded_router(everything(), config).await;
    let reply = send(&router, post("/", r#"{"text": "series"}"#)).await;
    assert_eq!(
        (reply.status, reply.json()),
        (StatusCode::OK, json!({"result": "SERIES"}))
    );
    let reply = send(&router, post("/", "not json")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.message().starts_with("Task body not valid JSON"));
}

#[tokio::test]
async fn without_a_default_post_root_is_a_404_saying_what_to_do() {
    let reply = send(&router().await, post("/", r#"{"text": "x"}"#)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.message(),
        "this runner has no default algorithm: POST /run/{algorithm} with one of: \
         explode, explode_async, fail, lenient, shout, sum (or start it with --default-algorithm)"
    );
}

#[tokio::test]
async fn the_token_guards_calls_but_not_probes_metrics_or_docs() {
    let config = RunnerConfig {
        token: Some("s3cret".into()),
        default_algorithm: Some("shout".into()),
        ..RunnerConfig::default()
    };
    let router = loaded_router(vec![shout_algorithm()], config).await;
    let with_token = |path: &str, token: &str| {
        let mut request = post(path, r#"{"text": "a"}"#);
        request.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        request
    };
    for request in [
        post("/run/shout", r#"{"text": "a"}"#),
        with_token("/run/shout", "wrong"),
        post("/", "{}"),
    ] {
        let reply = send(&router, request).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.message(),
            "missing or wrong token: calls need 'Authorization: Bearer <token>'"
        );
    }
    let reply = send(&router, post("/run/not-hosted", "{}")).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "the hosted algorithms are not revealed without a token"
    );
    assert_eq!(
        send(&router, with_token("/run/shout", "s3cret"))
            .await
            .json(),
        json!({"result": "A"})
    );
    assert_eq!(
        send(&router, with_token("/", "s3cret")).await.json(),
        json!({"result": "A"})
    );
    for open in [
        "/health",
        "/ready",
        "/metrics",
        "/schemas",
        "/openapi.json",
        "/docs/",
    ] {
        assert_eq!(
            send(&router, get(open)).await.status,
            StatusCode::OK,
            "{open}"
        );
    }
}

#[tokio::test]
async fn ready_and_calls_wait_for_each_algorithm_to_load() {
    let (slow, release) = slow_loading("slow");
    let mut runner = Runner::new(vec![slow, shout_algorithm()], RunnerConfig::default()).unwrap();
    let router = runner.router();

    let reply = send(&router, get("/ready")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        json!({"ready": false, "loading": ["shout", "slow"], "draining": false, "unavailable": {}})
    );
    assert_eq!(
        send(&router, get("/health")).await.status,
        StatusCode::OK,
        "alive while loading"
    );

    let loading = tokio::spawn(async move { runner.load().await });
    support::eventually("shout is loaded", async || {
        send(&router, post("/run/shout", r#"{"text": "a"}"#))
            .await
            .status
            == StatusCode::OK
    })
    .await;
    assert_eq!(
        send(&router, get("/ready")).await.json()["loading"],
        json!(["slow"])
    );
    let reply = send(&router, post("/run/slow", r#"{"text": "a"}"#)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    assert_eq!(
        reply.message(),
        "algorithm 'slow' is still loading; retry shortly"
    );

    release.send(()).unwrap();
    loading.await.unwrap().unwrap();
    let reply = send(&router, get("/ready")).await;
    assert_eq!(
        (reply.status, reply.json()),
        (
            StatusCode::OK,
            json!({"ready": true, "loading": [], "draining": false, "unavailable": {}})
        )
    );
    assert_eq!(
        send(&router, post("/run/slow", r#"{"text": "a"}"#))
            .await
            .json(),
        json!({"result": "a"})
    );
}

#[tokio::test]
async fn a_loader_that_fails_or_panics_is_named() {
    for (algorithm, detail) in [
        (broken("ocr"), "model file missing"),
        (
            panicking_loader("ocr"),
            "algorithm panicked: loader blew up",
        ),
    ] {
        let mut runner =
            Runner::new(vec![shout_algorithm(), algorithm], RunnerConfig::default()).unwrap();
        let error = runner.load().await.unwrap_err();
        assert!(
            matches!(&error, RunnerError::Load { name, .. } if name == "ocr"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!("algorithm 'ocr' failed to load: {detail}")
        );
    }
}

#[tokio::test]
async fn metrics_count_calls_by_algorithm_and_status() {
    let router = router().await;
    send(&router, post("/run/shout", r#"{"text": "a"}"#)).await;
    send(&router, post("/run/shout", r#"{"text": "a"}"#)).await;
    send(&router, post("/run/shout", r#"{}"#)).await;
    send(&router, post("/run/explode", r#"{"text": "a"}"#)).await;
    send(&router, post("/run/nope", r#"{}"#)).await;
    let reply = send(&router, get("/metrics")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = reply.text();
    for (series, value) in [
        (
            r#"switchyard_runner_requests_total{algorithm="shout",status="200"}"#,
            2.0,
        ),
        (
            r#"switchyard_runner_requests_total{algorithm="shout",status="400"}"#,
            1.0,
        ),
        (
            r#"switchyard_runner_requests_total{algorithm="explode",status="500"}"#,
            1.0,
        ),
        (
            r#"switchyard_runner_requests_total{algorithm="unknown",status="404"}"#,
            1.0,
        ),
        (
            r#"switchyard_runner_errors_total{algorithm="shout",kind="client"}"#,
            1.0,
        ),
        (
            r#"switchyard_runner_errors_total{algorithm="explode",kind="internal"}"#,
            1.0,
        ),
        (
            r#"switchyard_runner_errors_total{algorithm="unknown",kind="unknown_algorithm"}"#,
            1.0,
        ),
        (
            r#"switchyard_runner_request_duration_seconds_count{algorithm="shout"}"#,
            3.0,
        ),
        (r#"switchyard_runner_in_flight{algorithm="shout"}"#, 0.0),
        (r#"switchyard_runner_queued{algorithm="shout"}"#, 0.0),
        (
            r#"switchyard_runner_queue_rejections_total{algorithm="sum"}"#,
            0.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
}

#[tokio::test]
async fn openapi_describes_one_path_per_algorithm() {
    let config = RunnerConfig {
        default_algorithm: Some("sum".into()),
        ..RunnerConfig::default()
    };
    let router = loaded_router(everything(), config).await;
    let reply = send(&router, get("/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        [
            "/",
            "/run/explode",
            "/run/explode_async",
            "/run/fail",
            "/run/lenient",
            "/run/shout",
            "/run/sum"
        ]
    );
    let body_schema =
        &doc["paths"]["/run/sum"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let pointer = body_schema["$ref"]
        .as_str()
        .unwrap()
        .strip_prefix('#')
        .unwrap();
    assert_eq!(doc.pointer(pointer).unwrap()["required"], json!(["a", "b"]));
}

#[tokio::test]
async fn docs_serve_swagger_ui_from_the_binary() {
    let router = router().await;
    let reply = send(&router, get("/docs")).await;
    assert!(reply.status.is_redirection());
    assert_eq!(reply.headers[header::LOCATION], "/docs/");
    let reply = send(&router, get("/docs/")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(reply.text().contains("swagger-ui"), "{}", reply.text());
    let initializer = send(&router, get("/docs/swagger-initializer.js")).await;
    assert!(
        initializer.text().contains("/openapi.json"),
        "{}",
        initializer.text()
    );
    let bundle = send(&router, get("/docs/swagger-ui-bundle.js")).await;
    assert_eq!(bundle.status, StatusCode::OK);
    assert!(bundle.body.len() > 100_000, "the vendored bundle is served");
}

#[tokio::test]
async fn schemas_list_each_algorithms_payload_schema() {
    let reply = send(&router().await, get("/schemas")).await;
    let schemas = reply.json();
    let names: Vec<&String> = schemas.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "explode",
            "explode_async",
            "fail",
            "lenient",
            "shout",
            "sum"
        ]
    );
    assert_eq!(schemas["shout"]["required"], json!(["text"]));
    assert_eq!(schemas["shout"]["additionalProperties"], json!(false));
    assert_eq!(schemas["sum"]["properties"]["a"]["type"], "integer");
}

#[tokio::test]
async fn health_names_the_runner() {
    let config = RunnerConfig {
        runner_id: Some("runner-a".into()),
        ..RunnerConfig::default()
    };
    let reply = send(
        &loaded_router(vec![shout_algorithm()], config).await,
        get("/health"),
    )
    .await;
    assert_eq!(
        (reply.status, reply.json()),
        (
            StatusCode::OK,
            json!({"status": "alive", "runner_id": "runner-a"})
        )
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let router = router().await;
    let reply = send(&router, get("/nowhere")).await;
    assert_eq!(
        (reply.status, reply.message()),
        (
            StatusCode::NOT_FOUND,
            "no route for GET /nowhere".to_string()
        )
    );
    let reply = send(&router, get("/run/shout")).await;
    assert_eq!(
        (reply.status, reply.message()),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "GET is not allowed on /run/shout".to_string()
        )
    );
}

#[test]
fn inconsistent_setups_are_refused_before_serving() {
    let error = |algorithms, config| {
        Runner::new(algorithms, config)
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        error(vec![], RunnerConfig::default()),
        "a runner needs at least one algorithm"
    );
    assert_eq!(
        error(
            vec![shout_algorithm(), shout_algorithm()],
            RunnerConfig::default()
        ),
        "algorithm 'shout' is registered twice"
    );
    let config = RunnerConfig {
        default_algorithm: Some("ocr".into()),
        ..RunnerConfig::default()
    };
    assert_eq!(
        error(vec![shout_algorithm(), add_algorithm()], config),
        "default algorithm 'ocr' is not hosted by this runner; it hosts: shout, sum"
    );
    let slashed =
        switchyard_runner::Algorithm::blocking("a/b", |input: ShoutPayload| Ok(input.text));
    assert!(
        error(vec![slashed], RunnerConfig::default()).starts_with("algorithm name 'a/b' must be")
    );
}

/// Every answer, success or error, is JSON an old client can read.
#[tokio::test]
async fn every_error_body_has_a_message() {
    let router = router().await;
    for request in [
        post("/run/shout", "x"),
        post("/run/nope", "{}"),
        post("/", "{}"),
        get("/x"),
    ] {
        let reply = send(&router, request).await;
        assert!(matches!(
            reply.json().get("message"),
            Some(Value::String(_))
        ));
    }
}
