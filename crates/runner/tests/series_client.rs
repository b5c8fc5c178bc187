//! Cross-language: a Python client written to the series' contract (tests/python/series_client.py,
//! standard library only) calls a Switchyard runner and must find everything it was promised.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Output;

use axum::routing::get;
use serde::Serialize;
use support::algorithms::{explode_algorithm, shout_algorithm};
use support::serve;
use switchyard_runner::{AlgorithmError, RunnerConfig, algorithm};
use tokio::net::TcpListener;

const IMAGE: &[u8] = b"\x89PNG\r\n\x1a\n not really a png, but bytes to count";

#[derive(Debug, Serialize)]
struct ImageFacts {
    bytes: usize,
    content_type: Option<String>,
}

/// The series' Part II runner, minus the model: fetches the image and describes it, passing a
/// failed fetch's status through as the series does.
#[algorithm]
async fn image_facts(url: String) -> Result<ImageFacts, AlgorithmError> {
    let response = reqwest::get(&url).await.map_err(|error| {
        AlgorithmError::bad_input(format!("Error fetching request image: {error}"))
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(AlgorithmError::client(
            status,
            format!("Error fetching request image, received {status}"),
        ));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(String::from);
    let image = response.bytes().await.map_err(|error| {
        AlgorithmError::bad_input(format!("Error fetching request image: {error}"))
    })?;
    Ok(ImageFacts {
        bytes: image.len(),
        content_type,
    })
}

/// Serves `/meme.png`; every other path is a 404.
async fn image_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/meme.png",
        get(|| async { ([("content-type", "image/png")], IMAGE) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base_url
}

async fn run_client(runner_url: &str, images: &str) -> Output {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/series_client.py");
    tokio::process::Command::new("python3")
        .arg(script)
        .arg(runner_url)
        .arg(format!("{images}/meme.png"))
        .arg(format!("{images}/missing.png"))
        .output()
        .await
        .expect("python3 runs")
}

#[tokio::test]
async fn a_series_client_gets_everything_the_series_promised() {
    let images = image_server().await;
    let config = RunnerConfig {
        default_algorithm: Some("image_facts".into()),
        ..RunnerConfig::default()
    };
    let runner = serve(
        vec![
            image_facts_algorithm(),
            shout_algorithm(),
            explode_algorithm(),
        ],
        config,
    )
    .await;
    runner.wait_ready().await;

    let output = run_client(&runner.base_url, &images).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("ok - "))
            .count(),
        10,
        "{stdout}"
    );
    assert!(
        stdout.contains("ok - a_failed_fetch_passes_its_status_through"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("series client: 10 checks, 0 failing\n"),
        "{stdout}"
    );
    runner.stop().await.unwrap();
}

/// The client can fail: against a runner without a default algorithm, the `POST /` checks do.
#[tokio::test]
async fn the_series_client_notices_a_runner_that_breaks_the_contract() {
    let images = image_server().await;
    let runner = serve(
        vec![
            image_facts_algorithm(),
            shout_algorithm(),
            explode_algorithm(),
        ],
        RunnerConfig::default(),
    )
    .await;
    runner.wait_ready().await;

    let output = run_client(&runner.base_url, &images).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL - root_runs_the_default_algorithm: AssertionError: status 404"),
        "{stdout}"
    );
    assert!(stdout.contains("ok - run_names_the_algorithm"), "{stdout}");
    runner.stop().await.unwrap();
}
