//! Admission control over a real socket: calls beyond concurrency + queue are refused at once
//! with 503 and `Retry-After`, and the queue never grows past its limit.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::algorithms::{Gate, gated, shout_algorithm};
use support::{eventually, sample, serve};
use switchyard_runner::RunnerConfig;
use tokio::sync::mpsc;

const CONCURRENCY: usize = 2;
const QUEUE: usize = 3;
const EXTRA: usize = 4;

#[tokio::test]
async fn calls_beyond_the_queue_are_refused_at_once_and_the_rest_complete() {
    let gate = Gate::closed();
    let runner = serve(
        vec![gated("slow", &gate, CONCURRENCY, QUEUE), shout_algorithm()],
        RunnerConfig::default(),
    )
    .await;
    runner.wait_ready().await;
    let http = reqwest::Client::new();
    let metrics = async || {
        http.get(runner.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };

    let (answers, mut answered) = mpsc::unbounded_channel();
    for i in 0..CONCURRENCY + QUEUE + EXTRA {
        let (http, url, answers) = (http.clone(), runner.url("/run/slow"), answers.clone());
        tokio::spawn(async move {
            let response = http
                .post(url)
                .json(&serde_json::json!({"text": format!("call {i}")}))
                .send()
                .await
                .unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|value| value.to_str().unwrap().to_string());
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            answers.send((status, retry_after, body)).unwrap();
        });
    }

    // The gate is shut: nothing can finish, so every answer now is a refusal.
    let mut refused = Vec::new();
    while refused.len() < EXTRA {
        let answer = tokio::time::timeout(Duration::from_secs(10), answered.recv())
            .await
            .unwrap()
            .unwrap();
        refused.push(answer);
    }
    for (status, retry_after, body) in &refused {
        assert_eq!(*status, 503);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(
            body["message"],
            "algorithm 'slow' is saturated (2 running, 3 waiting); retry shortly"
        );
    }
    eventually("every admitted call is running or queued", async || {
        let text = metrics().await;
        sample(&text, r#"switchyard_runner_in_flight{algorithm="slow"}"#)
            == Some(CONCURRENCY as f64)
            && sample(&text, r#"switchyard_runner_queued{algorithm="slow"}"#) == Some(QUEUE as f64)
    })
    .await;
    assert!(
        answered.try_recv().is_err(),
        "no admitted call answered while the gate was shut"
    );
    let text = metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"switchyard_runner_queue_rejections_total{algorithm="slow"}"#
        ),
        Some(EXTRA as f64)
    );

    // Another algorithm is not held up by the saturated one.
    let other = http
        .post(runner.url("/run/shout"))
        .json(&serde_json::json!({"text": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    gate.open();
    let mut completed = Vec::new();
    while completed.len() < CONCURRENCY + QUEUE {
        let answer = tokio::time::timeout(Duration::from_secs(10), answered.recv())
            .await
            .unwrap()
            .unwrap();
        completed.push(answer);
    }
    for (status, _, body) in &completed {
        assert_eq!(*status, 200, "{body}");
        assert!(body["result"].as_str().unwrap().starts_with("call "));
    }
    let text = metrics().await;
    assert_eq!(
        sample(
            &text,
            r#"switchyard_runner_requests_total{algorithm="slow",status="200"}"#
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"switchyard_runner_requests_total{algorithm="slow",status="503"}"#
        ),
        Some(EXTRA as f64)
    );
    assert_eq!(
        sample(&text, r#"switchyard_runner_queued{algorithm="slow"}"#),
        Some(0.0)
    );
    runner.stop().await.unwrap();
}

#[tokio::test]
async fn a_caller_that_hangs_up_gives_its_place_back() {
    let gate = Gate::closed();
    let runner = serve(vec![gated("slow", &gate, 1, 1)], RunnerConfig::default()).await;
    runner.wait_ready().await;
    let http = reqwest::Client::new();
    let metrics = async || {
        http.get(runner.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let call = |http: reqwest::Client| {
        let url = runner.url("/run/slow");
        tokio::spawn(async move {
            http.post(url)
                .json(&serde_json::json!({"text": "x"}))
                .send()
                .await
        })
    };

    let running = call(http.clone());
    let waiting = call(reqwest::Client::new());
    eventually("one call runs and one waits", async || {
        let text = metrics().await;
        sample(&text, r#"switchyard_runner_in_flight{algorithm="slow"}"#) == Some(1.0)
            && sample(&text, r#"switchyard_runner_queued{algorithm="slow"}"#) == Some(1.0)
    })
    .await;
    waiting.abort();
    eventually("the abandoned place is free again", async || {
        sample(
            &metrics().await,
            r#"switchyard_runner_queued{algorithm="slow"}"#,
        ) == Some(0.0)
    })
    .await;
    let replacement = call(http.clone());
    eventually("the replacement is admitted", async || {
        sample(
            &metrics().await,
            r#"switchyard_runner_queued{algorithm="slow"}"#,
        ) == Some(1.0)
    })
    .await;
    gate.open();
    assert_eq!(running.await.unwrap().unwrap().status(), 200);
    assert_eq!(replacement.await.unwrap().unwrap().status(), 200);
    runner.stop().await.unwrap();
}
