//! The task API over HTTP, with a real discovery, runner and controller behind it: what a
//! producer sees on every route, the happy paths and every refusal.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{MAX_BODY, Stack, answer};
use switchyard_api::TaskStatus;
use switchyard_broker::Cancellations;

/// Asserts a refusal: its status, and a `{"message"}` that contains every `needle`.
fn assert_refused((status, body): (u16, Value), expected: u16, needles: &[&str]) {
    assert_eq!(status, expected, "{body}");
    let message = body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body}"));
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_task_runs_and_its_result_is_shown() {
    let stack = Stack::start().await;
    let id = stack.accepted("echo", json!({"text": "hi"})).await;
    let record = stack.wait_final(&id).await;
    assert_eq!(record["id"], id);
    assert_eq!(record["algorithm"], "echo");
    assert_eq!(record["status"], "done", "{record}");
    assert_eq!(record["result"], json!({"text": "hi", "length": 2}));
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["runner"], stack.runner_url.as_str());
    assert!(record.get("error").is_none(), "{record}");

    let (status, metrics) = stack.get("/metrics").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains(r#"switchyard_api_tasks_submitted_total{algorithm="echo"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"switchyard_api_tasks{status="done"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_when_the_task_finishes() {
    let stack = Stack::start().await;
    let id = stack.accepted("nap", json!({"ms": 1500})).await;
    let (_, early) = stack.get(&format!("/v1/tasks/{id}")).await;
    assert!(
        matches!(early["status"].as_str(), Some("queued" | "running")),
        "{early}"
    );
    let started = Instant::now();
    let (status, record) = stack.get(&format!("/v1/tasks/{id}?wait=50s")).await;
    assert_eq!(status, 200);
    assert_eq!(record["status"], "done", "{record}");
    assert_eq!(record["result"], 1500);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the wait did not end with the task: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_the_queued_record_when_nothing_finishes() {
    let stack = Stack::start().await;
    // In the store but never published: nothing will ever finish it.
    stack
        .api
        .store()
        .insert(
            "stuck-1".into(),
            "echo".into(),
            json!({"text": "x"}),
            None,
            None,
            0,
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (status, record) = stack.get("/v1/tasks/stuck-1?wait=1500ms").await;
    let waited = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(record["status"], "queued", "{record}");
    assert!(record.get("result").is_none(), "{record}");
    assert!(
        waited >= Duration::from_millis(1400),
        "returned early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(20),
        "held too long: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_returns_the_same_task_run_once() {
    let stack = Stack::start().await;
    let body = json!({"algorithm": "echo", "payload": {"text": "once"}});
    let (first_status, first) = stack.submit(body.clone(), Some("order-17")).await;
    assert_eq!(first_status, 202, "{first}");
    let id = first["id"].as_str().unwrap().to_string();
    stack.wait_final(&id).await;
    let (second_status, second) = stack.submit(body, Some("order-17")).await;
    assert_eq!(second_status, 200, "{second}");
    assert_eq!(second["id"], id);
    // Another key is another task.
    let (other_status, other) = stack
        .submit(
            json!({"algorithm": "echo", "payload": {"text": "once"}}),
            Some("order-18"),
        )
        .await;
    assert_eq!(other_status, 202);
    assert_ne!(other["id"], id);
    stack.wait_final(other["id"].as_str().unwrap()).await;

    assert_eq!(stack.results_for(&id), 1, "the task ran more than once");
    let (_, metrics) = stack.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains(r#"switchyard_api_tasks_submitted_total{algorithm="echo"} 2"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_submits_with_one_key_create_one_task() {
    let stack = Stack::start().await;
    let body = json!({"algorithm": "echo", "payload": {"text": "race"}});
    let answers =
        futures::future::join_all((0..8).map(|_| stack.submit(body.clone(), Some("same-key"))))
            .await;
    let created = answers.iter().filter(|(status, _)| *status == 202).count();
    let repeated = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!((created, repeated), (1, 7), "{answers:?}");
    let ids: BTreeSet<String> = answers
        .iter()
        .map(|(_, body)| body["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    let id = answers[0].1["id"].as_str().unwrap();
    assert_eq!(stack.wait_final(id).await["status"], "done");
    assert_eq!(stack.results_for(id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submitters_lose_no_task() {
    let stack = Stack::start().await;
    let clients = (0..4).map(|client| {
        let stack = &stack;
        async move {
            let mut ids = Vec::new();
            for n in 0..5 {
                let text = format!("client {client} task {n}");
                let key = format!("c{client}-t{n}");
                let (status, body) = stack
                    .submit(
                        json!({"algorithm": "echo", "payload": {"text": text}}),
                        Some(&key),
                    )
                    .await;
                assert_eq!(status, 202, "{body}");
                ids.push((body["id"].as_str().unwrap().to_string(), text));
            }
            ids
        }
    });
    let submitted: Vec<(String, String)> = futures::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
        .collect();
    let distinct: BTreeSet<&String> = submitted.iter().map(|(id, _)| id).collect();
    assert_eq!(distinct.len(), 20);
    for (id, text) in &submitted {
        let record = stack.wait_final(id).await;
        assert_eq!(record["status"], "done", "{record}");
        assert_eq!(record["result"]["text"], text.as_str());
    }
    assert!(stack.broker.queued_tasks().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_docs_and_probes_answer() {
    let stack = Stack::start().await;
    let (status, algorithms) = stack.get("/v1/algorithms").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = algorithms
        .as_array()
        .unwrap()
        .iter()
        .map(|algorithm| algorithm["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "image_echo", "nap", "refuse"]);
    assert_eq!(
        algorithms[0]["replicas"][0]["base_url"],
        stack.runner_url.as_str()
    );
    let (status, schemas) = stack.get("/v1/schemas").await;
    assert_eq!(status, 200);
    assert_eq!(schemas["echo"]["required"], json!(["text"]));
    assert_eq!(schemas["echo"]["properties"]["text"]["type"], "string");
    assert_eq!(stack.get("/health").await, (200, json!({"status": "ok"})));
    let (status, openapi) = stack.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(openapi["paths"].get("/v1/tasks").is_some(), "{openapi}");
    let docs = stack.http.get(stack.at("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_submit_bodies_are_refused_naming_the_problem() {
    let stack = Stack::start().await;
    let raw = |body: Vec<u8>| {
        stack
            .http
            .post(stack.at("/v1/tasks"))
            .header("content-type", "application/json")
            .body(body)
    };
    assert_refused(
        answer(raw(b"not json".to_vec())).await,
        400,
        &["body is not valid JSON", "expected"],
    );
    assert_refused(
        answer(raw(b"{\"algorithm\": \"ec\xffho\"}".to_vec())).await,
        400,
        &["body is not valid JSON", "unicode"],
    );
    assert_refused(
        answer(raw(Vec::new())).await,
        400,
        &["body is not valid JSON", "EOF"],
    );
    assert_refused(
        answer(raw(br#"{"algorithm": "echo"} trailing"#.to_vec())).await,
        400,
        &["body is not valid JSON", "trailing"],
    );
    assert_refused(
        stack.submit(json!({"algorithm": 3}), None).await,
        400,
        &["algorithm", "invalid type: integer `3`, expected a string"],
    );
    assert_refused(
        stack.submit(json!({"payload": {"text": "x"}}), None).await,
        400,
        &["missing field `algorithm`"],
    );
    assert_refused(
        stack
            .submit(
                json!({"algorithm": "echo", "payload": {"text": "x"}, "priorty": 1}),
                None,
            )
            .await,
        400,
        &["unknown field `priorty`"],
    );
    assert_refused(
        stack.submit(json!(["echo", {"text": "x"}]), None).await,
        400,
        &["body is not a request: expected a JSON object"],
    );
    let oversized = json!({"algorithm": "echo", "payload": {"text": "x".repeat(MAX_BODY + 1)}});
    assert_refused(stack.submit(oversized, None).await, 413, &["length limit"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_are_checked_against_the_algorithm_schema() {
    let stack = Stack::start().await;
    assert_refused(
        stack
            .submit(json!({"algorithm": "nope", "payload": {}}), None)
            .await,
        400,
        &[
            "unknown algorithm 'nope'",
            "registered: echo, image_echo, nap, refuse",
        ],
    );
    assert_refused(
        stack
            .submit(json!({"algorithm": "echo", "payload": {"text": 1}}), None)
            .await,
        400,
        &["schema of 'echo'", "/text", "string"],
    );
    assert_refused(
        stack
            .submit(
                json!({"algorithm": "echo", "payload": {"text": "x", "colour": "red"}}),
                None,
            )
            .await,
        400,
        &["schema of 'echo'", "colour"],
    );
    assert_refused(
        stack
            .submit(json!({"algorithm": "echo", "payload": {}}), None)
            .await,
        400,
        &["schema of 'echo'", "text", "required"],
    );
    assert_refused(
        stack
            .submit(json!({"algorithm": "echo", "payload": "hi"}), None)
            .await,
        400,
        &["schema of 'echo'", "object"],
    );
    // Nothing refused reached the queue or the store.
    assert!(stack.broker.queued_tasks().is_empty());
    let (_, metrics) = stack.get("/metrics").await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains(r#"switchyard_api_tasks_refused_total{reason="invalid_payload"} 4"#),
        "{metrics}"
    );
    assert!(!metrics.contains("switchyard_api_tasks{"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_idempotency_keys_are_refused() {
    let stack = Stack::start().await;
    let body = json!({"algorithm": "echo", "payload": {"text": "x"}});
    assert_refused(
        stack.submit(body.clone(), Some("")).await,
        400,
        &["Idempotency-Key must be 1 to 200 characters"],
    );
    assert_refused(
        stack.submit(body.clone(), Some(&"k".repeat(201))).await,
        400,
        &["Idempotency-Key must be 1 to 200 characters"],
    );
    let not_ascii = reqwest::header::HeaderValue::from_bytes("clé".as_bytes()).unwrap();
    let request = stack
        .http
        .post(stack.at("/v1/tasks"))
        .header("idempotency-key", not_ascii)
        .json(&body);
    assert_refused(
        answer(request).await,
        400,
        &["Idempotency-Key must be visible ASCII"],
    );
    // The longest allowed key works.
    let (status, _) = stack.submit(body, Some(&"k".repeat(200))).await;
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_task_ids_and_waits_are_refused() {
    let stack = Stack::start().await;
    assert_refused(
        stack.get("/v1/tasks/..%2F..").await,
        400,
        &["'../..' is not a task id"],
    );
    assert_refused(
        stack.get(&format!("/v1/tasks/{}", "a".repeat(200))).await,
        400,
        &["is not a task id", "up to 128 characters"],
    );
    assert_refused(
        stack.get("/v1/tasks/0190a1b2-unknown").await,
        404,
        &["no task with id '0190a1b2-unknown'"],
    );
    let id = stack.accepted("echo", json!({"text": "x"})).await;
    for wait in ["forever", "-1s", "10parsecs"] {
        assert_refused(
            stack.get(&format!("/v1/tasks/{id}?wait={wait}")).await,
            400,
            &["wait"],
        );
    }
    assert_refused(
        stack.get("/v1/dead-letters?limit=many").await,
        400,
        &["limit"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requeue_bodies_are_refused() {
    let stack = Stack::start().await;
    let requeue = |body: &'static [u8]| {
        stack
            .http
            .post(stack.at("/v1/dead-letters/requeue"))
            .header("content-type", "application/json")
            .body(body)
    };
    assert_refused(
        answer(requeue(b"requeue all")).await,
        400,
        &["body is not valid JSON"],
    );
    assert_refused(
        answer(requeue(b"[]")).await,
        400,
        &["body is not a request: expected a JSON object"],
    );
    assert_refused(
        answer(requeue(br#"{"keys": "all"}"#)).await,
        400,
        &["keys", "invalid type: string \"all\", expected a sequence"],
    );
    assert_refused(
        answer(requeue(br#"{"keys": [1]}"#)).await,
        400,
        &["keys", "invalid type: integer `1`, expected a string"],
    );
    assert_refused(
        answer(requeue(br#"{"key": ["a"]}"#)).await,
        400,
        &["unknown field `key`"],
    );
    // Well formed, nothing to requeue.
    assert_eq!(answer(requeue(b"{}")).await, (200, json!({"requeued": 0})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_the_runner_refuses_is_dead_lettered_and_can_be_requeued() {
    let mut stack = Stack::start().await;
    let id = stack.accepted("refuse", json!({"reason": "no"})).await;
    let record = stack.wait_final(&id).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["error"]["kind"], "rejected", "{record}");
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused: no"),
        "{record}"
    );
    assert!(record.get("result").is_none());

    let (status, letters) = stack.get("/v1/dead-letters").await;
    assert_eq!(status, 200);
    let letters = letters.as_array().unwrap().clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["id"], id);
    assert_eq!(letters[0]["body"]["payload"], json!({"reason": "no"}));
    assert!(
        letters[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("refused: no"),
        "{letters:?}"
    );
    let key = letters[0]["key"].as_str().unwrap().to_string();

    // With no controller running, the replayed task stays visibly queued.
    stack.stop_controller().await;
    let (status, requeued) = answer(
        stack
            .http
            .post(stack.at("/v1/dead-letters/requeue"))
            .json(&json!({"keys": ["not-a-key", key]})),
    )
    .await;
    assert_eq!((status, requeued), (200, json!({"requeued": 1})));
    let (_, record) = stack.get(&format!("/v1/tasks/{id}")).await;
    assert_eq!(record["status"], "queued", "{record}");
    assert!(record.get("error").is_none(), "{record}");
    let (_, letters) = stack.get("/v1/dead-letters").await;
    assert_eq!(letters, json!([]));

    // Replayed as is, it fails again, and is dead-lettered again.
    stack.start_controller();
    let record = stack.wait_final(&id).await;
    assert_eq!(record["status"], "failed", "{record}");
    let (_, letters) = stack.get("/v1/dead-letters").await;
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters}");
    assert_eq!(stack.results_for(&id), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_record_shows_its_payload_and_every_failed_attempt() {
    let stack = Stack::start().await;
    let id = stack.accepted("refuse", json!({"reason": "nope"})).await;
    let record = stack.wait_final(&id).await;
    assert_eq!(record["payload"], json!({"reason": "nope"}), "{record}");
    assert_eq!(record["priority"], 0, "{record}");
    let history = record["history"].as_array().expect("a history");
    assert_eq!(history.len(), 1, "{record}");
    assert_eq!(history[0]["attempt"], 1);
    assert_eq!(history[0]["runner"], stack.runner_url.as_str());
    assert_eq!(history[0]["kind"], "rejected");
    assert!(
        history[0]["message"]
            .as_str()
            .unwrap()
            .contains("refused: nope")
    );

    // A listing is a summary: no payloads, no histories.
    let (_, page) = stack.get("/v1/tasks").await;
    let listed = &page["tasks"][0];
    assert_eq!(listed["id"], id.as_str());
    assert!(
        listed.get("payload").is_none() && listed.get("history").is_none(),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_of_one_algorithm_are_requeued_together() {
    let mut stack = Stack::start().await;
    let refused = [
        stack.accepted("refuse", json!({"reason": "a"})).await,
        stack.accepted("refuse", json!({"reason": "b"})).await,
    ];
    for id in &refused {
        stack.wait_final(id).await;
    }
    let (_, letters) = stack.get("/v1/dead-letters").await;
    let algorithms: Vec<&str> = letters
        .as_array()
        .unwrap()
        .iter()
        .map(|letter| letter["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(algorithms, ["refuse", "refuse"], "{letters}");

    stack.stop_controller().await;
    let requeue = |body: Value| {
        answer(
            stack
                .http
                .post(stack.at("/v1/dead-letters/requeue"))
                .json(&body),
        )
    };
    assert_eq!(
        requeue(json!({"algorithm": "echo"})).await,
        (200, json!({"requeued": 0}))
    );
    assert_refused(
        requeue(json!({"algorithm": "refuse", "keys": []})).await,
        400,
        &["not both"],
    );
    assert_eq!(
        requeue(json!({"algorithm": "refuse"})).await,
        (200, json!({"requeued": 2}))
    );
    for id in &refused {
        let (_, record) = stack.get(&format!("/v1/tasks/{id}")).await;
        assert_eq!(record["status"], "queued", "{record}");
    }
    stack.start_controller();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_queues_and_stats_describe_the_deployment() {
    let stack = Stack::start().await;
    let (status, runners) = stack.get("/v1/runners").await;
    assert_eq!(status, 200, "{runners}");
    let runner = &runners[0];
    assert_eq!(runner["base_url"], stack.runner_url.as_str(), "{runners}");
    assert_eq!(runner["healthy"], true);
    assert_eq!(
        runner["in_flight"], 0,
        "read from the runner's /metrics: {runners}"
    );
    let names: BTreeSet<&str> = runner["algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|algorithm| algorithm["name"].as_str().unwrap())
        .collect();
    assert!(names.contains("echo"), "{runners}");

    let done = stack.accepted("echo", json!({"text": "hi"})).await;
    let refused = stack.accepted("refuse", json!({"reason": "r"})).await;
    stack.wait_final(&done).await;
    stack.wait_final(&refused).await;
    let (status, recent) = stack.get("/v1/stats").await;
    assert_eq!(status, 200, "{recent}");
    let figures = |algorithm: &str| {
        recent["algorithms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|stats| stats["algorithm"] == algorithm)
            .cloned()
            .unwrap_or_else(|| panic!("no {algorithm} in {recent}"))
    };
    assert_eq!(
        (
            figures("echo")["finished"].clone(),
            figures("echo")["failed"].clone()
        ),
        (json!(1), json!(0))
    );
    assert_eq!(figures("refuse")["failed"], 1, "{recent}");
    assert!(figures("echo")["p50_ms"].is_u64(), "{recent}");

    // Queued with no controller: counted as waiting, sampled for the chart.
    stack.stop_controller().await;
    for _ in 0..2 {
        stack.accepted("echo", json!({"text": "later"})).await;
    }
    let (_, queues) = stack.get("/v1/queues").await;
    assert_eq!(queues, json!({"tasks": 2, "delayed": 0, "dead_letters": 1}));
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(switchyard_api::overview::sample(
        stack.api.clone(),
        Duration::from_millis(50),
        stop.clone(),
    ));
    let deadline = Instant::now() + support::WITHIN;
    let series = loop {
        let (_, recent) = stack.get("/v1/stats").await;
        let series = recent["series"].as_array().unwrap().clone();
        if !series.is_empty() {
            break series;
        }
        assert!(Instant::now() < deadline, "no sample taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (
            series[0]["tasks"].clone(),
            series[0]["dead_letters"].clone(),
            series[0]["submitted"].clone()
        ),
        (json!(2), json!(1), json!(0)),
        "the two were submitted before the sampler started"
    );
    // One more: the next sample counts it as submitted in its interval, and waiting.
    stack.accepted("echo", json!({"text": "sampled"})).await;
    let deadline = Instant::now() + support::WITHIN;
    loop {
        let (_, recent) = stack.get("/v1/stats").await;
        let samples = recent["series"].as_array().unwrap();
        if samples
            .iter()
            .any(|sample| sample["submitted"] == 1 && sample["tasks"] == 3)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no sample counted the submit: {recent}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_changes_need_it_and_reads_stay_open() {
    let stack = Stack::start_with_token(Some("s3cret")).await;
    let body = json!({"algorithm": "echo", "payload": {"text": "x"}});
    assert_refused(
        answer(stack.http.post(stack.at("/v1/tasks")).json(&body)).await,
        401,
        &["Authorization: Bearer", "SWITCHYARD_TOKEN"],
    );
    assert_refused(
        answer(
            stack
                .http
                .post(stack.at("/v1/tasks"))
                .bearer_auth("wrong")
                .json(&body),
        )
        .await,
        401,
        &["token"],
    );
    let (status, created) = answer(
        stack
            .http
            .post(stack.at("/v1/tasks"))
            .bearer_auth("s3cret")
            .json(&body),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(stack.wait_final(id).await["status"], "done");
    assert_refused(
        answer(stack.http.delete(stack.at(&format!("/v1/tasks/{id}")))).await,
        401,
        &["token"],
    );
    assert_refused(
        answer(
            stack
                .http
                .post(stack.at("/v1/dead-letters/requeue"))
                .json(&json!({})),
        )
        .await,
        401,
        &["token"],
    );
    for read in [
        "/v1/tasks",
        "/v1/algorithms",
        "/v1/dead-letters",
        "/v1/queues",
        "/",
    ] {
        assert_eq!(stack.get(read).await.0, 200, "{read}");
    }
    assert_eq!(
        stack.get("/v1/auth").await,
        (200, json!({"token_required": true, "token_valid": false}))
    );
    let (_, signed_in) = answer(stack.http.get(stack.at("/v1/auth")).bearer_auth("s3cret")).await;
    assert_eq!(
        signed_in,
        json!({"token_required": true, "token_valid": true})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_page_and_its_assets_are_served_from_the_binary() {
    let stack = Stack::start().await;
    for (path, content_type, needle) in [
        ("/", "text/html", "/ui/app.js"),
        ("/ui", "text/html", "/ui/app.css"),
        ("/ui/app.js", "text/javascript", "/v1/tasks"),
        ("/ui/app.css", "text/css", "font"),
    ] {
        let response = stack.http.get(stack.at(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let served = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(served.starts_with(content_type), "{path}: {served}");
        assert!(response.text().await.unwrap().contains(needle), "{path}");
    }
    assert_eq!(
        stack.get("/v1/auth").await,
        (200, json!({"token_required": false, "token_valid": true}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_publish_is_answered_503_and_forgotten() {
    let stack = Stack::start().await;
    stack.broker.fail_next_publishes(1);
    let body = json!({"algorithm": "echo", "payload": {"text": "x"}});
    let response = stack
        .http
        .post(stack.at("/v1/tasks"))
        .header("idempotency-key", "retry-me")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let refusal: Value = response.json().await.unwrap();
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains("queue unavailable"),
        "{refusal}"
    );
    // The refused task was not kept: the client's retry with the same key creates it.
    assert_eq!(stack.api.republish_unconfirmed().await.unwrap(), 0);
    let (status, retried) = stack.submit(body, Some("retry-me")).await;
    assert_eq!(status, 202, "{retried}");
    let record = stack.wait_final(retried["id"].as_str().unwrap()).await;
    assert_eq!(record["status"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_priority_outside_0_to_9_is_refused_naming_the_field() {
    let stack = Stack::start().await;
    for priority in [json!(10), json!(-1), json!("high"), json!(1.5), json!(256)] {
        let body = json!({"algorithm": "echo", "payload": {"text": "x"}, "priority": priority});
        assert_refused(
            stack.submit(body, None).await,
            400,
            &[
                "invalid field 'priority'",
                "expected an integer from 0 to 9",
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_published_with_its_priority_also_when_republished_at_start() {
    let stack = Stack::start().await;
    stack.stop_controller().await;
    let urgent = json!({"algorithm": "echo", "payload": {"text": "now"}, "priority": 9});
    let (status, urgent) = stack.submit(urgent, None).await;
    assert_eq!(status, 202, "{urgent}");
    let plain = stack.accepted("echo", json!({"text": "later"})).await;
    stack
        .api
        .store()
        .insert(
            "before-crash".into(),
            "echo".into(),
            json!({"text": "again"}),
            None,
            None,
            4,
        )
        .await
        .unwrap();
    assert_eq!(stack.api.republish_unconfirmed().await.unwrap(), 1);
    let queued: Vec<(String, u8)> = stack
        .broker
        .queued_tasks()
        .into_iter()
        .map(|message| (message.id.unwrap(), message.priority))
        .collect();
    assert_eq!(
        queued,
        [
            (urgent["id"].as_str().unwrap().to_owned(), 9),
            ("before-crash".to_owned(), 4),
            (plain, 0),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_accepted_but_never_confirmed_are_republished_at_start() {
    let stack = Stack::start().await;
    let store = stack.api.store();
    for n in 0..3 {
        store
            .insert(
                format!("before-crash-{n}"),
                "echo".into(),
                json!({"text": format!("survivor {n}")}),
                None,
                None,
                0,
            )
            .await
            .unwrap();
    }
    assert_eq!(stack.api.republish_unconfirmed().await.unwrap(), 3);
    for n in 0..3 {
        let record = stack.wait_final(&format!("before-crash-{n}")).await;
        assert_eq!(record["status"], "done", "{record}");
        assert_eq!(record["result"]["text"], format!("survivor {n}"));
    }
    // Confirmed now: a second start publishes nothing again.
    assert_eq!(stack.api.republish_unconfirmed().await.unwrap(), 0);
    let record = store.get("before-crash-0".into()).await.unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Done);
}

#[tokio::test]
async fn an_unreachable_discovery_is_answered_503() {
    use tower::ServiceExt;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let discovery_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let broker = std::sync::Arc::new(switchyard_broker::memory::MemoryBroker::new());
    let data = tempfile::tempdir().unwrap();
    let api = switchyard_api::TaskApi::new(
        switchyard_api::Queues::of(broker),
        switchyard_api::TaskStore::open(&data.path().join("tasks.db")).unwrap(),
        switchyard_api::Catalog::new(switchyard_discovery::DiscoveryClient::new(
            discovery_url,
            None,
        )),
    );
    let request = axum::http::Request::post("/v1/tasks")
        .body(axum::body::Body::from(
            r#"{"algorithm": "echo", "payload": {"text": "x"}}"#,
        ))
        .unwrap();
    let response = switchyard_api::router(api, MAX_BODY)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot list algorithms"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_listed_newest_first_filtered_and_paged_by_cursor() {
    let stack = Stack::start().await;
    let mut echoed = Vec::new();
    for index in 0..5 {
        let id = stack
            .accepted("echo", json!({"text": format!("t{index}")}))
            .await;
        stack.wait_final(&id).await;
        echoed.push(id);
    }
    let refused = stack.accepted("refuse", json!({"reason": "no"})).await;
    stack.wait_final(&refused).await;

    let (status, page) = stack.get("/v1/tasks?limit=4").await;
    assert_eq!(status, 200, "{page}");
    let ids = |page: &Value| -> Vec<String> {
        page["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|task| task["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest: Vec<String> = std::iter::once(refused.clone())
        .chain(echoed.iter().rev().cloned())
        .collect();
    assert_eq!(ids(&page), newest[..4]);
    assert_eq!(page["tasks"][0]["status"], "failed");
    assert_eq!(page["tasks"][0]["error"]["kind"], "rejected");
    assert_eq!(page["tasks"][1]["status"], "done");
    assert!(
        page["tasks"][1].get("result").is_none(),
        "a listing is a summary"
    );
    let cursor = page["next_cursor"].as_str().expect("more pages").to_owned();
    let (status, rest) = stack
        .get(&format!("/v1/tasks?limit=4&cursor={cursor}"))
        .await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(ids(&rest), newest[4..]);
    assert_eq!(rest["next_cursor"], Value::Null);

    let (_, done_echo) = stack.get("/v1/tasks?state=done&algorithm=echo").await;
    assert_eq!(
        ids(&done_echo),
        echoed.iter().rev().cloned().collect::<Vec<_>>()
    );
    let (_, failed) = stack.get("/v1/tasks?state=failed").await;
    assert_eq!(ids(&failed), std::slice::from_ref(&refused));
    let (_, none) = stack.get("/v1/tasks?algorithm=nap").await;
    assert_eq!(none, json!({"tasks": [], "next_cursor": null}));

    for (query, needle) in [
        (
            "state=lost",
            "state: 'lost' is not one of queued, running, done, failed, dead, expired, cancelled",
        ),
        ("limit=0", "limit: '0' is not a number from 1 to 500"),
        ("limit=501", "limit: '501'"),
        ("limit=many", "limit: 'many'"),
        (
            "cursor=garbage",
            "cursor: 'garbage' is not a cursor this API gave",
        ),
        ("colour=red", "unknown field `colour`"),
    ] {
        assert_refused(
            stack.get(&format!("/v1/tasks?{query}")).await,
            400,
            &[needle],
        );
    }
    let (_, openapi) = stack.get("/openapi.json").await;
    let list = &openapi["paths"]["/v1/tasks"]["get"]["parameters"];
    let documented: BTreeSet<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        documented,
        BTreeSet::from(["state", "algorithm", "limit", "cursor"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_pruned_after_its_retention_is_gone_not_unknown() {
    use switchyard_api::retention::{Retention, prune_once};
    let stack = Stack::start().await;
    let finished = stack.accepted("echo", json!({"text": "old"})).await;
    stack.wait_final(&finished).await;
    stack.stop_controller().await;
    let waiting = stack
        .accepted("echo", json!({"text": "still queued"}))
        .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;

    let keep_a_minute = Retention {
        tasks: Some(Duration::from_secs(60)),
        payloads: None,
    };
    assert_eq!(
        prune_once(&stack.store, keep_a_minute, now).await.unwrap(),
        (0, 0)
    );
    assert_eq!(stack.get(&format!("/v1/tasks/{finished}")).await.0, 200);

    // A minute and a second later, the finished task is past its retention; the queued one
    // is never pruned, however old.
    let later = now + 61_000;
    assert_eq!(
        prune_once(&stack.store, keep_a_minute, later)
            .await
            .unwrap(),
        (1, 0)
    );
    assert_refused(
        stack.get(&format!("/v1/tasks/{finished}")).await,
        410,
        &[&format!(
            "task '{finished}' finished and was pruned after its retention"
        )],
    );
    assert_eq!(stack.get(&format!("/v1/tasks/{waiting}")).await.0, 200);
    assert_refused(
        stack.get("/v1/tasks/never-submitted").await,
        404,
        &["no task with id 'never-submitted'"],
    );
    let (_, listed) = stack.get("/v1/tasks").await;
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_or_ttl_is_checked_at_submit_and_travels_with_the_task() {
    let stack = Stack::start().await;
    stack.stop_controller().await;
    let body = |extra: Value| {
        let mut body = json!({"algorithm": "echo", "payload": {"text": "t"}});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let (status, accepted) = stack.submit(body(json!({"ttl": "30s"})), None).await;
    assert_eq!(status, 202, "{accepted}");
    let queued = stack.broker.queued_tasks();
    let deadline: u64 = queued[0]
        .header(switchyard_wire::headers::DEADLINE_MS)
        .expect("the deadline travels in a header")
        .parse()
        .unwrap();
    let now = switchyard_wire::deadline::now_ms();
    assert!(
        (now + 25_000..=now + 30_000).contains(&deadline),
        "{deadline} vs {now}"
    );
    let (status, _) = stack
        .submit(body(json!({"deadline": "2999-01-01T00:00:00Z"})), None)
        .await;
    assert_eq!(status, 202);

    for (extra, needle) in [
        (
            json!({"ttl": "0s"}),
            "invalid field 'ttl': a ttl must be longer than 0",
        ),
        (json!({"ttl": "soon"}), "invalid field 'ttl'"),
        (
            json!({"deadline": "2020-01-01T00:00:00Z"}),
            "invalid field 'deadline': '2020-01-01T00:00:00Z' has already passed",
        ),
        (
            json!({"deadline": "tomorrow"}),
            "is not an RFC 3339 instant",
        ),
        (
            json!({"ttl": "1m", "deadline": "2999-01-01T00:00:00Z"}),
            "give 'deadline' or 'ttl', not both",
        ),
    ] {
        assert_refused(stack.submit(body(extra), None).await, 400, &[needle]);
    }
    assert_eq!(
        stack.broker.queued_tasks().len(),
        2,
        "nothing refused was queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_task_is_cancelled_and_one_that_finished_is_not() {
    let stack = Stack::start().await;
    let finished = stack.accepted("echo", json!({"text": "done"})).await;
    stack.wait_final(&finished).await;
    stack.stop_controller().await;
    let queued = stack.accepted("echo", json!({"text": "never"})).await;
    let delete = |id: &str| answer(stack.http.delete(stack.at(&format!("/v1/tasks/{id}"))));

    assert_eq!(
        delete(&queued).await,
        (
            200,
            json!({"id": queued, "cancelled": true, "status": "cancelled"})
        )
    );
    let (_, record) = stack.get(&format!("/v1/tasks/{queued}")).await;
    assert_eq!(record["status"], "cancelled");
    assert!(
        stack
            .api
            .store()
            .is_cancelled(queued.clone())
            .await
            .unwrap()
    );
    // Recorded on the broker too, where controllers running apart from up look.
    assert!(stack.broker.is_cancelled(&queued).await.unwrap());
    assert_eq!(
        delete(&queued).await,
        (
            409,
            json!({"id": queued, "cancelled": false, "status": "cancelled"})
        )
    );
    assert_eq!(
        delete(&finished).await,
        (
            409,
            json!({"id": finished, "cancelled": false, "status": "done"})
        )
    );
    assert!(
        !stack
            .api
            .store()
            .is_cancelled(finished.clone())
            .await
            .unwrap()
    );
    assert!(!stack.broker.is_cancelled(&finished).await.unwrap());
    assert_refused(
        delete("never-submitted").await,
        404,
        &["no task with id 'never-submitted'"],
    );
    assert_refused(delete("not%20an%20id").await, 400, &["is not a task id"]);
    let (_, cancelled) = stack.get("/v1/tasks?state=cancelled").await;
    assert_eq!(cancelled["tasks"][0]["id"], queued.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_sent_as_a_form_or_as_the_body_reaches_the_runner_as_image_base64() {
    use base64::Engine;
    use reqwest::multipart::{Form, Part};
    let stack = Stack::start().await;
    // Every byte value: what a text field or a JSON string would mangle.
    let image: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&image);
    let tasks = stack.at("/v1/tasks");
    let form = |image: Vec<u8>| {
        Form::new()
            .text("algorithm", "image_echo")
            .part("image", Part::bytes(image).file_name("cat.jpg"))
    };

    let (status, accepted) = answer(
        stack.http.post(&tasks).multipart(
            form(image.clone())
                .text("payload", r#"{"note": "form"}"#)
                .text("priority", "9"),
        ),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let record = stack.wait_final(accepted["id"].as_str().unwrap()).await;
    assert_eq!(record["status"], "done", "{record}");
    assert_eq!(
        record["result"],
        json!({"image_base64": encoded, "note": "form"})
    );

    let (status, accepted) = answer(
        stack
            .http
            .post(format!(
                "{tasks}?algorithm=image_echo&ttl=1m&payload=%7B%22note%22%3A%22body%22%7D"
            ))
            .header("content-type", "image/jpeg")
            .body(image.clone()),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let record = stack.wait_final(accepted["id"].as_str().unwrap()).await;
    assert_eq!(
        record["result"],
        json!({"image_base64": encoded, "note": "body"})
    );

    // Refused as the JSON body they stand for, with the same words.
    let image_body = |query: &str| {
        stack
            .http
            .post(format!("{tasks}?{query}"))
            .header("content-type", "application/octet-stream")
            .body(image.clone())
    };
    assert_refused(
        answer(image_body("algorithm=image_echo&priority=12")).await,
        400,
        &["invalid field 'priority'", "from 0 to 9"],
    );
    assert_refused(
        answer(image_body("algorithm=echo")).await,
        400,
        &["image_base64"],
    );
    assert_refused(
        answer(image_body("algorithm=nowhere")).await,
        400,
        &["nowhere"],
    );
    assert_refused(
        answer(image_body("ttl=1m")).await,
        400,
        &["names its algorithm"],
    );
    assert_refused(
        answer(image_body("algorithm=image_echo&colour=red")).await,
        400,
        &["colour"],
    );
    assert_refused(
        answer(
            stack
                .http
                .post(format!("{tasks}?algorithm=echo"))
                .json(&json!({"algorithm": "echo"})),
        )
        .await,
        400,
        &["query parameters go with an image body"],
    );
    assert_refused(
        answer(
            stack
                .http
                .post(&tasks)
                .multipart(Form::new().text("algorithm", "image_echo")),
        )
        .await,
        400,
        &["no 'image' field"],
    );
    assert_refused(
        answer(
            stack
                .http
                .post(&tasks)
                .multipart(form(image.clone()).text("colour", "red")),
        )
        .await,
        400,
        &["unknown form field 'colour'"],
    );
    assert_refused(
        answer(
            stack
                .http
                .post(&tasks)
                .header("content-type", "multipart/form-data; boundary=x")
                .body("not a form"),
        )
        .await,
        400,
        &["multipart"],
    );
    // Within the body limit, but not once in base64: refused before anything is stored.
    let three_quarters = vec![7u8; MAX_BODY / 4 * 3 + 3];
    assert_refused(
        answer(stack.http.post(&tasks).multipart(form(three_quarters))).await,
        413,
        &[
            "base64",
            &format!("send at most {} bytes", MAX_BODY / 4 * 3),
        ],
    );
    assert_refused(
        answer(
            stack
                .http
                .post(&tasks)
                .multipart(form(vec![7u8; MAX_BODY * 2])),
        )
        .await,
        413,
        &[],
    );
    let (_, listed) = stack.get("/v1/tasks?limit=100").await;
    assert_eq!(
        listed["tasks"].as_array().unwrap().len(),
        2,
        "only the two accepted were stored"
    );
}
