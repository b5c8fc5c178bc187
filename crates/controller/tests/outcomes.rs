//! What becomes of a task, for each kind of runner answer: the controller calling fake runners
//! over real HTTP, on every backend (the cases at the end say which run where).

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use switchyard_broker::conformance::amqp::AmqpHarness;
use switchyard_broker::conformance::embedded::EmbeddedHarness;
use switchyard_broker::conformance::memory::MemoryHarness;
use switchyard_broker::conformance::{Harness, next, wait_until_cancelled};
use switchyard_broker::{Cancellations, Message};
use switchyard_controller::{ATTEMPTS_EXHAUSTED, BrokerTombstones, ControllerConfig};
use switchyard_wire::{ErrorKind, TaskError, TaskOutcome, headers};
use tower::ServiceExt;

use support::*;

const WITHIN: Duration = Duration::from_secs(20);

fn error_of(result: &switchyard_wire::TaskResult) -> &TaskError {
    match &result.outcome {
        TaskOutcome::Error { error } => error,
        TaskOutcome::Ok { result } => panic!("expected an error result, got ok: {result}"),
    }
}

async fn a_runner_answering_503_twice_then_200_gives_one_ok_result_after_3_attempts<H: Harness>() {
    let runner = FakeRunner::start(|call: Incoming| async move {
        match call.n {
            1 => {
                let mut response = answer(503, json!({"message": "runner is full"}));
                response
                    .headers_mut()
                    .insert("retry-after", "1".parse().unwrap());
                response
            }
            2 => answer(503, json!({"message": "runner is full"})),
            _ => ok(json!({"echo": call.payload})),
        }
    })
    .await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["flaky"])]);
    let config = ControllerConfig {
        token: Some("sekrit".into()),
        ..config()
    };
    let running = backend.start(config, &registry);

    backend
        .submit("t-flaky", "flaky", json!({"text": "hi"}))
        .await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    assert_eq!(results.len(), 1);
    let result = &results[0];
    assert_eq!(
        result.outcome,
        TaskOutcome::Ok {
            result: json!({"echo": {"text": "hi"}})
        }
    );
    assert_eq!(
        (
            result.id.as_str(),
            result.algorithm.as_str(),
            result.attempts
        ),
        ("t-flaky", "flaky", 3)
    );
    assert_eq!(result.runner.as_deref(), Some(runner.base_url.as_str()));
    // The two failures travelled with the retries into the result.
    let history: Vec<_> = result
        .history
        .iter()
        .map(|failed| {
            (
                failed.attempt,
                failed.runner.as_deref(),
                failed.kind,
                failed.message.contains("runner is full"),
            )
        })
        .collect();
    let runner_url = Some(runner.base_url.as_str());
    assert_eq!(
        history,
        [
            (1, runner_url, ErrorKind::Unavailable, true),
            (2, runner_url, ErrorKind::Unavailable, true)
        ]
    );
    assert!(backend.dead_letters().await.is_empty());
    backend.wait_for_depth(0, 0).await;

    let calls = runner.calls.all();
    assert_eq!(calls.len(), 3);
    assert!(
        calls[1].at - calls[0].at >= Duration::from_secs(1),
        "Retry-After: 1 is a minimum delay, got {:?}",
        calls[1].at - calls[0].at
    );
    for (attempt, call) in (1..).zip(&calls) {
        assert_eq!(call.payload, json!({"text": "hi"}));
        assert_eq!(call.headers[headers::TASK_ID], "t-flaky");
        assert_eq!(
            call.headers[headers::TRACEPARENT],
            headers::traceparent_for("t-flaky", attempt).as_str()
        );
        assert_eq!(call.headers["authorization"], "Bearer sekrit");
    }
}

async fn a_dead_replica_is_failed_over_to_the_live_one<H: Harness>() {
    let live = FakeRunner::start(|call: Incoming| async move { ok(call.payload) }).await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![
        entry("dead", &dead_url().await, &["echo"]),
        live.entry("live", &["echo"]),
    ]);
    let running = backend.start(config(), &registry);

    for n in 0..8 {
        backend
            .submit(&format!("t{n}"), "echo", json!({"n": n}))
            .await;
    }
    let results = backend.results(8, WITHIN).await;
    running.stop().await.unwrap();

    for result in &results {
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(result.runner.as_deref(), Some(live.base_url.as_str()));
        assert!(
            result.attempts <= 2,
            "at most the dead replica, then the live one: {result:?}"
        );
    }
    assert!(backend.dead_letters().await.is_empty());
    // Fail-over needs no delayed retry.
    backend.wait_for_depth(0, 0).await;
}

async fn a_400_is_dead_lettered_at_once_with_the_runners_message<H: Harness>() {
    let runner = FakeRunner::start(|_call: Incoming| async {
        answer(400, json!({"message": "Task body missing field 'url'"}))
    })
    .await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["meme_classifier"])]);
    let running = backend.start(config(), &registry);

    let mut task =
        Message::new(r#"{"algorithm":"meme_classifier","payload":{"link":"x"}}"#).with_id("t-400");
    task.headers.insert("x-producer".into(), "kept".into());
    backend.publish(task.clone()).await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    let letters = backend.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].message, task,
        "the dead letter keeps body and properties"
    );
    assert_eq!(
        (letters[0].reason.as_str(), letters[0].attempts),
        ("rejected", 1)
    );
    assert_eq!(letters[0].last_error, "Task body missing field 'url'");
    assert_eq!(
        error_of(&results[0]),
        &TaskError {
            kind: ErrorKind::Rejected,
            message: "Task body missing field 'url'".into(),
            status: Some(400),
        }
    );
    assert_eq!(
        (results[0].attempts, results[0].runner.as_deref()),
        (1, Some(runner.base_url.as_str()))
    );
    assert_eq!(
        runner.calls.count(),
        1,
        "a permanent failure is not retried"
    );
}

async fn a_runner_failing_every_time_exhausts_the_attempts<H: Harness>() {
    let runner = FakeRunner::start(|_call: Incoming| async {
        answer(500, json!({"message": "Internal error", "error": "boom"}))
    })
    .await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["broken"])]);
    let running = backend.start(
        ControllerConfig {
            max_attempts: 3,
            ..config()
        },
        &registry,
    );

    backend.submit("t-500", "broken", json!({})).await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    let letters = backend.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].reason.as_str(), letters[0].attempts),
        (ATTEMPTS_EXHAUSTED, 3)
    );
    assert_eq!(letters[0].last_error, "Internal error: boom");
    assert_eq!(
        letters[0].message.header(headers::ATTEMPTS),
        Some("2"),
        "the last delivery as it was"
    );
    let error = error_of(&results[0]);
    assert_eq!(
        (error.kind, error.status),
        (ErrorKind::Unavailable, Some(500))
    );
    assert_eq!(results[0].attempts, 3);
    assert_eq!(runner.calls.count(), 3);
}

async fn a_call_slower_than_its_algorithms_timeout_is_retried_then_given_up<H: Harness>() {
    let runner = FakeRunner::start(|_call: Incoming| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        ok(json!("too late"))
    })
    .await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["sluggish"])]);
    let mut config = ControllerConfig {
        max_attempts: 2,
        ..config()
    };
    config.timeouts.per_algorithm =
        BTreeMap::from([("sluggish".to_string(), Duration::from_millis(200))]);
    let running = backend.start(config, &registry);

    backend.submit("t-slow", "sluggish", json!({})).await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    let error = error_of(&results[0]);
    assert_eq!((error.kind, error.status), (ErrorKind::Unavailable, None));
    assert_eq!(error.message, "runner did not answer within 200ms");
    assert_eq!(backend.dead_letters().await[0].reason, ATTEMPTS_EXHAUSTED);
    assert_eq!(runner.calls.count(), 2);
}

async fn a_2xx_without_result_is_a_bad_response<H: Harness>() {
    let runner =
        FakeRunner::start(|_call: Incoming| async { answer(200, json!({"label": "x"})) }).await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["odd"])]);
    let running = backend.start(config(), &registry);

    backend.submit("t-odd", "odd", json!({})).await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    assert_eq!(error_of(&results[0]).kind, ErrorKind::BadResponse);
    assert_eq!(
        (
            backend.dead_letters().await[0].reason.as_str(),
            runner.calls.count()
        ),
        ("bad_response", 1)
    );
}

async fn a_404_from_a_runner_that_dropped_the_algorithm_goes_to_the_one_that_has_it<H: Harness>() {
    let backend = Backend::<H>::open().await;
    let registry = Registry::default();
    let good = FakeRunner::start(|_call: Incoming| async { ok(json!("from good")) }).await;
    let good_entry = good.entry("good", &["moved"]);
    let stale = FakeRunner::start({
        let registry = registry.clone();
        move |_call: Incoming| {
            // The runner restarted without the algorithm and re-registered.
            registry.set(vec![good_entry.clone()]);
            async { answer(404, json!({"message": "no algorithm 'moved' here"})) }
        }
    })
    .await;
    registry.set(vec![stale.entry("stale", &["moved"])]);
    let running = backend.start(config(), &registry);

    backend.submit("t-moved", "moved", json!({})).await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    assert_eq!(
        results[0].outcome,
        TaskOutcome::Ok {
            result: json!("from good")
        }
    );
    assert_eq!(
        (results[0].attempts, results[0].runner.as_deref()),
        (2, Some(good.base_url.as_str()))
    );
    assert!(backend.dead_letters().await.is_empty());
}

async fn a_404_from_a_runner_still_registered_for_the_algorithm_is_permanent<H: Harness>() {
    let runner = FakeRunner::start(|_call: Incoming| async {
        answer(
            404,
            json!({"message": "Error fetching request image, received 404"}),
        )
    })
    .await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["meme_classifier"])]);
    let running = backend.start(config(), &registry);

    backend
        .submit(
            "t-404",
            "meme_classifier",
            json!({"url": "http://x/missing.png"}),
        )
        .await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    let error = error_of(&results[0]);
    assert_eq!((error.kind, error.status), (ErrorKind::Rejected, Some(404)));
    assert_eq!(error.message, "Error fetching request image, received 404");
    assert_eq!(
        (
            backend.dead_letters().await[0].reason.as_str(),
            runner.calls.count()
        ),
        ("rejected", 1)
    );
}

async fn an_algorithm_no_runner_hosts_is_dead_lettered_after_the_deadline<H: Harness>() {
    let backend = Backend::<H>::open().await;
    let echo = FakeRunner::start(|call: Incoming| async move { ok(call.payload) }).await;
    let registry = Registry::with(vec![echo.entry("r1", &["echo"])]);
    let deadline = Duration::from_millis(600);
    let running = backend.start(
        ControllerConfig {
            no_runner_deadline: deadline,
            ..config()
        },
        &registry,
    );

    backend.submit("t-ghost", "ghost", json!({})).await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    let error = error_of(&results[0]);
    assert_eq!(error.kind, ErrorKind::NoRunner);
    assert!(
        error
            .message
            .starts_with("no runner hosts algorithm 'ghost' (registered: echo)"),
        "{}",
        error.message
    );
    assert!(results[0].duration_ms >= 600, "{:?}", results[0]);
    assert!(
        results[0].attempts >= 2,
        "routing was retried before giving up: {:?}",
        results[0]
    );
    let letters = backend.dead_letters().await;
    assert_eq!(
        (letters.len(), letters[0].reason.as_str()),
        (1, "no_runner")
    );
    assert_eq!(echo.calls.count(), 0);
}

async fn bodies_that_are_not_tasks_are_dead_lettered_and_consumption_goes_on<H: Harness>() {
    let runner = FakeRunner::start(|call: Incoming| async move { ok(call.payload) }).await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["echo"])]);
    let running = backend.start(config(), &registry);

    let no_id = Message::new("this is not json");
    let bad_algorithm = Message::new(r#"{"algorithm": 5}"#).with_id("t-alg");
    let no_algorithm = Message::new(r#"{"url": "http://x"}"#).with_id("t-noalg");
    for message in [&no_id, &bad_algorithm, &no_algorithm] {
        backend.publish(message.clone()).await;
    }
    backend
        .submit("t-good", "echo", json!({"fine": true}))
        .await;
    let results = backend.results(4, WITHIN).await;
    running.stop().await.unwrap();

    let by_id = |id: &str| {
        results
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no result for {id}"))
    };
    assert!(by_id("t-good").is_ok());
    let letters = backend.dead_letters().await;
    assert_eq!(letters.len(), 3);
    assert!(
        letters
            .iter()
            .all(|letter| letter.reason == "invalid_task" && letter.attempts == 0)
    );

    let generated = letters
        .iter()
        .find(|l| l.message.body == no_id.body)
        .expect("the non-JSON body, byte for byte");
    let generated_id = generated.message.id.clone().expect("a generated id");
    let error = error_of(by_id(&generated_id));
    assert_eq!(error.kind, ErrorKind::InvalidTask);
    assert!(
        error.message.starts_with("task body is not valid JSON"),
        "{}",
        error.message
    );
    assert_eq!(
        error_of(by_id("t-alg")).message,
        "task field 'algorithm' must be a non-empty string"
    );
    assert_eq!(
        error_of(by_id("t-noalg")).message,
        "task has no 'algorithm' and no default algorithm is configured"
    );
    assert_eq!(runner.calls.count(), 1);
}

async fn a_part_two_body_goes_to_the_default_algorithm<H: Harness>() {
    let runner = FakeRunner::start(|_call: Incoming| async {
        ok(json!({"label": "matrix_morpheus", "score": 0.99}))
    })
    .await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["meme_classifier"])]);
    let config = ControllerConfig {
        default_algorithm: Some("meme_classifier".into()),
        ..config()
    };
    let running = backend.start(config, &registry);

    let body = r#"{"url": "http://images/morpheus.jpg"}"#;
    backend.publish(Message::new(body).with_id("t-part2")).await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    assert_eq!(results[0].algorithm, "meme_classifier");
    assert!(results[0].is_ok());
    let calls = runner.calls.all();
    assert_eq!(
        (calls[0].algorithm.as_str(), &calls[0].payload),
        (
            "meme_classifier",
            &json!({"url": "http://images/morpheus.jpg"})
        )
    );
}

async fn results_go_to_reply_to_or_else_to_the_results_queue<H: Harness>() {
    let runner = FakeRunner::start(|call: Incoming| async move { ok(call.payload) }).await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["echo"])]);
    let running = backend.start(config(), &registry);

    let mut rpc =
        Message::new(br#"{"algorithm":"echo","payload":{"rpc":true}}"#.to_vec()).with_id("t-rpc");
    let (reply_to, mut replies) = backend.harness.reply_queue().await;
    rpc.reply_to = Some(reply_to.clone());
    rpc.correlation_id = Some("corr-9".into());
    backend.publish(rpc).await;
    let reply = next(&mut replies).await;
    backend
        .submit("t-plain", "echo", json!({"rpc": false}))
        .await;
    backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    assert_eq!(reply.message.reply_to, Some(reply_to));
    assert_eq!(reply.message.correlation_id.as_deref(), Some("corr-9"));
    assert_eq!(decode(&reply.message).id, "t-rpc");
    let queued = backend.result_messages();
    assert_eq!(queued.len(), 1, "the reply went to its queue only");
    assert_eq!(queued[0].reply_to, None);
    assert_eq!(queued[0].correlation_id.as_deref(), Some("t-plain"));
    assert_eq!(
        decode(&queued[0]).outcome,
        TaskOutcome::Ok {
            result: json!({"rpc": false})
        }
    );
}

async fn metrics_count_tasks_by_algorithm_and_outcome<H: Harness>() {
    let runner = FakeRunner::start(|call: Incoming| async move {
        match call.payload["fail"].as_bool() {
            Some(true) => answer(422, json!({"message": "nope"})),
            _ => ok(Value::Null),
        }
    })
    .await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["echo"])]);
    let running = backend.start(config(), &registry);

    backend.submit("t-ok", "echo", json!({"fail": false})).await;
    backend.submit("t-no", "echo", json!({"fail": true})).await;
    backend
        .publish(Message::new("garbage").with_id("t-bad"))
        .await;
    backend.results(3, WITHIN).await;
    backend.wait_for_depth(0, 0).await;

    let response = running
        .controller
        .metrics()
        .router()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap()
        .into_response();
    assert_eq!(response.status(), 200);
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    running.stop().await.unwrap();

    for line in [
        r#"switchyard_controller_tasks_total{algorithm="echo",outcome="ok"} 1"#,
        r#"switchyard_controller_tasks_total{algorithm="echo",outcome="rejected"} 1"#,
        r#"switchyard_controller_tasks_total{algorithm="unrouted",outcome="invalid_task"} 1"#,
        r#"switchyard_controller_attempts_total{algorithm="echo",result="ok"} 1"#,
        r#"switchyard_controller_attempts_total{algorithm="echo",result="rejected"} 1"#,
        r#"switchyard_controller_task_duration_seconds_count{algorithm="echo"} 2"#,
        "switchyard_controller_tasks_in_flight 0",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
}

/// A task for `algorithm` whose deadline is `in_ms` from now (negative: already passed).
fn with_deadline(id: &str, algorithm: &str, in_ms: i64) -> Message {
    let now = switchyard_wire::deadline::now_ms() as i64;
    let mut message =
        Message::new(switchyard_wire::Task::new(algorithm, json!({})).to_json_bytes()).with_id(id);
    message
        .headers
        .insert(headers::DEADLINE_MS.into(), (now + in_ms).to_string());
    message
}

fn assert_expired(result: &switchyard_wire::TaskResult, attempts: u32, needle: &str) {
    let error = error_of(result);
    assert_eq!(error.kind, ErrorKind::Expired, "{result:?}");
    assert_eq!(result.attempts, attempts, "{result:?}");
    assert!(
        error.message.contains(needle),
        "{needle:?} not in {:?}",
        error.message
    );
}

async fn a_task_whose_deadline_passed_while_queued_is_never_run<H: Harness>() {
    let runner = FakeRunner::start(|call: Incoming| async move { ok(call.payload) }).await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["echo"])]);
    backend.publish(with_deadline("late", "echo", -1)).await;
    backend
        .publish(with_deadline("in-time", "echo", 60_000))
        .await;
    let running = backend.start(config(), &registry);
    let results = backend.results(2, WITHIN).await;
    running.stop().await.unwrap();

    let by_id: BTreeMap<&str, _> = results
        .iter()
        .map(|result| (result.id.as_str(), result))
        .collect();
    assert_expired(
        by_id["late"],
        0,
        "passed before a runner took it: it was not run",
    );
    assert!(by_id["in-time"].is_ok(), "{:?}", by_id["in-time"]);
    assert_eq!(
        runner.calls.all().len(),
        1,
        "only the task in time reached the runner"
    );
    assert!(
        backend.dead_letters().await.is_empty(),
        "an expired task is not dead-lettered"
    );
}

async fn a_retry_is_not_scheduled_past_the_deadline<H: Harness>() {
    let runner = FakeRunner::start(|_: Incoming| async move {
        let mut response = answer(503, json!({"message": "runner is full"}));
        response
            .headers_mut()
            .insert("retry-after", "5".parse().unwrap());
        response
    })
    .await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["busy"])]);
    backend.publish(with_deadline("soon", "busy", 2_000)).await;
    let running = backend.start(config(), &registry);
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    // Retry-After: 5 would land past the deadline: expired at once, after the one attempt.
    assert_expired(&results[0], 1, "last error: runner is full");
    assert_eq!(runner.calls.all().len(), 1);
    backend.wait_for_depth(0, 0).await;
    assert!(backend.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_task_no_runner_hosts_expires_at_its_deadline_not_the_routing_one() {
    let backend = Backend::<MemoryHarness>::open().await;
    let registry = Registry::with(vec![]);
    // The controller consumes first: the task must reach it before its deadline, or it
    // expires unrouted ("passed before a runner took it") on a loaded machine.
    let running = backend.start(config(), &registry);
    backend
        .publish(with_deadline("orphan", "nobody", 1_500))
        .await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();
    assert_expired(
        &results[0],
        results[0].attempts,
        "no runner hosts algorithm 'nobody'",
    );
    assert!(
        results[0].duration_ms < 5_000,
        "expired at its 1.5 s deadline, before the 5 s no-runner deadline: {:?}",
        results[0]
    );
}

#[tokio::test]
async fn a_call_gets_the_time_left_not_the_algorithms_timeout() {
    let runner = FakeRunner::start(|call: Incoming| async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        ok(call.payload)
    })
    .await;
    let backend = Backend::<MemoryHarness>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["slow"])]);
    // Consuming first, so the task reaches the runner well before its deadline.
    let running = backend.start(config(), &registry);
    let started = std::time::Instant::now();
    backend.publish(with_deadline("hurry", "slow", 1_500)).await;
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();
    assert_expired(
        &results[0],
        1,
        "deadline passed before a runner answered it",
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut at the deadline, not the 5 s algorithm timeout: {:?}",
        started.elapsed()
    );
}

/// Cancelled through the broker by another process (`switchyard cancel --amqp`), one task while
/// queued, the other while it waits in the retry delay: the controller asks the broker's
/// cancellations before each call, as `switchyard controller` does.
async fn a_cancelled_task_is_not_run_even_when_it_comes_back_for_a_retry<H: Harness>() {
    let backend = Backend::<H>::open().await;
    let canceller = backend.harness.another_handle().await;
    let controllers_view = backend.harness.broker().clone();
    let runner = FakeRunner::start({
        let canceller = canceller.clone();
        move |call: Incoming| {
            let (canceller, controllers_view) = (canceller.clone(), controllers_view.clone());
            async move {
                // Cancelled before the controller learns it must retry; seen by the controller
                // before the retry's delay is over.
                canceller.cancel("retried").await.unwrap();
                wait_until_cancelled(controllers_view.as_ref(), "retried").await;
                answer(503, json!({"message": "full: try again", "call": call.n}))
            }
        }
    })
    .await;
    let registry = Registry::with(vec![runner.entry("r1", &["echo"])]);
    canceller.cancel("queued").await.unwrap();
    backend.submit("queued", "echo", json!({})).await;
    backend.submit("retried", "echo", json!({})).await;
    let controller =
        switchyard_controller::Controller::new(backend.broker(), config(), registry.clone())
            .unwrap()
            .with_tombstones(Arc::new(BrokerTombstones::new(
                backend.harness.broker().clone(),
            )));
    let running = backend.start_with(controller);
    let results = backend.results(2, WITHIN).await;
    running.stop().await.unwrap();

    let by_id: BTreeMap<&str, _> = results
        .iter()
        .map(|result| (result.id.as_str(), result))
        .collect();
    for (id, attempts) in [("queued", 0), ("retried", 1)] {
        let error = error_of(by_id[id]);
        assert_eq!(error.kind, ErrorKind::Cancelled, "{id}: {:?}", by_id[id]);
        assert_eq!(by_id[id].attempts, attempts, "{id}");
        assert_eq!(
            error.message,
            "the task was cancelled before a runner took it"
        );
    }
    assert_eq!(
        runner.calls.all().len(),
        1,
        "only the retried task's first try reached the runner"
    );
    assert!(
        backend.dead_letters().await.is_empty(),
        "a cancelled task is not dead-lettered"
    );
    backend.wait_for_depth(0, 0).await;
}

on_backend!(memory: MemoryHarness;
    a_runner_answering_503_twice_then_200_gives_one_ok_result_after_3_attempts,
    a_dead_replica_is_failed_over_to_the_live_one,
    a_400_is_dead_lettered_at_once_with_the_runners_message,
    a_runner_failing_every_time_exhausts_the_attempts,
    a_call_slower_than_its_algorithms_timeout_is_retried_then_given_up,
    a_2xx_without_result_is_a_bad_response,
    a_404_from_a_runner_that_dropped_the_algorithm_goes_to_the_one_that_has_it,
    a_404_from_a_runner_still_registered_for_the_algorithm_is_permanent,
    an_algorithm_no_runner_hosts_is_dead_lettered_after_the_deadline,
    bodies_that_are_not_tasks_are_dead_lettered_and_consumption_goes_on,
    a_part_two_body_goes_to_the_default_algorithm,
    results_go_to_reply_to_or_else_to_the_results_queue,
    metrics_count_tasks_by_algorithm_and_outcome,
    a_task_whose_deadline_passed_while_queued_is_never_run,
    a_retry_is_not_scheduled_past_the_deadline,
    a_cancelled_task_is_not_run_even_when_it_comes_back_for_a_retry,
);
// The slow backends run the outcomes that go through the broker differently: a delayed retry
// (delay queues, visible_at), a dead letter that keeps the task whole, and results to reply_to
// or the results queue. How an answer is classified is the controller's, the same on any broker.
on_backend!(embedded: EmbeddedHarness;
    a_runner_answering_503_twice_then_200_gives_one_ok_result_after_3_attempts,
    a_task_whose_deadline_passed_while_queued_is_never_run,
    a_cancelled_task_is_not_run_even_when_it_comes_back_for_a_retry,
    a_400_is_dead_lettered_at_once_with_the_runners_message,
    a_runner_failing_every_time_exhausts_the_attempts,
    results_go_to_reply_to_or_else_to_the_results_queue,
);
// Not the exhausted attempts: RabbitMQ keeps a dead letter's attempts in the message's own
// attempts header, so the last delivery's header is not kept as it was (see the contract's
// dead-letter case).
on_backend!(amqp: AmqpHarness;
    a_runner_answering_503_twice_then_200_gives_one_ok_result_after_3_attempts,
    a_task_whose_deadline_passed_while_queued_is_never_run,
    a_cancelled_task_is_not_run_even_when_it_comes_back_for_a_retry,
    a_400_is_dead_lettered_at_once_with_the_runners_message,
    results_go_to_reply_to_or_else_to_the_results_queue,
);
