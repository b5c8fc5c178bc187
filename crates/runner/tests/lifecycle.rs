//! A runner's life over real sockets: serving while loading, failing on a broken algorithm,
//! and a shutdown that lets calls in flight finish within the grace period.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::algorithms::{Gate, broken, gated, shout_algorithm, slow_loading};
use support::{eventually, sample, serve};
use switchyard_runner::{RunnerConfig, RunnerError};

#[tokio::test]
async fn probes_answer_while_algorithms_load_and_calls_once_they_have() {
    let (slow, release) = slow_loading("slow");
    let runner = serve(vec![slow], RunnerConfig::default()).await;
    let http = reqwest::Client::new();
    eventually("the runner answers its health probe", async || {
        matches!(http.get(runner.url("/health")).send().await, Ok(response) if response.status() == 200)
    })
    .await;
    let ready = http.get(runner.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["loading"],
        json!(["slow"])
    );

    release.send(()).unwrap();
    runner.wait_ready().await;
    let call = http
        .post(runner.url("/run/slow"))
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        call.json::<serde_json::Value>().await.unwrap(),
        json!({"result": "x"})
    );
    runner.stop().await.unwrap();
}

#[tokio::test]
async fn an_algorithm_that_fails_to_load_stops_the_runner_with_its_name() {
    let runner = serve(
        vec![shout_algorithm(), broken("classifier")],
        RunnerConfig::default(),
    )
    .await;
    let error = runner.join().await.unwrap_err();
    assert!(
        matches!(&error, RunnerError::Load { name, .. } if name == "classifier"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "algorithm 'classifier' failed to load: model file missing"
    );
}

#[tokio::test]
async fn shutdown_stops_accepting_but_lets_calls_in_flight_finish() {
    let gate = Gate::closed();
    let runner = serve(vec![gated("slow", &gate, 1, 0)], RunnerConfig::default()).await;
    runner.wait_ready().await;
    let http = reqwest::Client::new();
    let url = runner.url("/run/slow");
    let in_flight = tokio::spawn({
        let http = http.clone();
        async move {
            http.post(url)
                .json(&json!({"text": "finishing"}))
                .send()
                .await
        }
    });
    eventually("the call is running", async || {
        let text = http
            .get(runner.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        sample(&text, r#"switchyard_runner_in_flight{algorithm="slow"}"#) == Some(1.0)
    })
    .await;

    runner.shutdown.cancel();
    eventually("the runner refuses new connections", async || {
        reqwest::Client::new()
            .get(runner.url("/health"))
            .send()
            .await
            .is_err()
    })
    .await;
    assert!(
        !runner.task.is_finished(),
        "the runner waits for the call in flight"
    );
    gate.open();
    let response = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({"result": "finishing"})
    );
    runner.join().await.unwrap();
}

#[tokio::test]
async fn the_grace_period_bounds_how_long_shutdown_waits() {
    let gate = Gate::closed();
    let config = RunnerConfig {
        grace_period: Duration::from_millis(200),
        ..RunnerConfig::default()
    };
    let runner = serve(vec![gated("stuck", &gate, 1, 0)], config).await;
    runner.wait_ready().await;
    let http = reqwest::Client::new();
    let url = runner.url("/run/stuck");
    let in_flight =
        tokio::spawn(async move { http.post(url).json(&json!({"text": "x"})).send().await });
    let metrics_http = reqwest::Client::new();
    eventually("the call is running", async || {
        let text = metrics_http
            .get(runner.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        sample(&text, r#"switchyard_runner_in_flight{algorithm="stuck"}"#) == Some(1.0)
    })
    .await;

    let stopping = std::time::Instant::now();
    runner.stop().await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "stopped after the grace period, not with the call"
    );
    let abandoned = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(abandoned.status(), 503);
    assert_eq!(abandoned.headers()["retry-after"], "1");
    assert_eq!(
        abandoned.json::<serde_json::Value>().await.unwrap(),
        json!({"message": "the runner shut down before the call finished; retry it elsewhere"})
    );
}
