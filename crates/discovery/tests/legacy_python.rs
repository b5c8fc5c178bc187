//! Cross-language: a runner written the series' way in plain Python registers with discovery
//! through the series' `POST /algorithms`, and is found and called through what discovery lists.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_discovery::{Config, DiscoveryClient};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/legacy_runner.py")
}

/// Starts the Python runner against `discovery` and waits for the port it prints once registered.
async fn start_python_runner(discovery: &str) -> (Child, u16) {
    let mut child = Command::new("python3")
        .arg(script())
        .args(["--discovery", discovery, "--port", "0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the Python runner reports its port in time")
        .unwrap()
        .expect("the Python runner printed its port before exiting");
    (
        child,
        first.trim().parse().expect("the first line is the port"),
    )
}

#[tokio::test]
async fn a_python_runner_of_the_series_plugs_in_unchanged() {
    let discovery = support::start(Config::default()).await;
    let (mut python, port) = start_python_runner(&discovery.base_url).await;
    let host = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let algorithms: Value = http
        .get(format!("{}/algorithms", discovery.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(algorithms, json!({"word_count": host}));

    let client = DiscoveryClient::new(&discovery.base_url, None);
    let runners = client.runners().await.unwrap();
    assert_eq!(runners.len(), 1);
    assert_eq!(runners[0].id, format!("legacy:{host}"));
    assert!(runners[0].legacy);
    assert_eq!(runners[0].algorithms[0].name, "word_count");
    assert_eq!(runners[0].algorithms[0].schema, Value::Null);

    let listed = algorithms["word_count"].as_str().unwrap();
    let answer = http
        .post(format!("{listed}/run/word_count"))
        .json(&json!({"text": "the cat saw The dog"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(
        answer,
        json!({"result": {"words": 5, "counts": {"the": 2, "cat": 1, "saw": 1, "dog": 1}}})
    );

    let refused = http
        .post(format!("{listed}/run/word_count"))
        .json(&json!({"txt": "typo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(
        refused,
        json!({"message": "Task body missing field 'text'"})
    );

    let schemas = client.schemas().await.unwrap();
    assert!(schemas.unreachable.is_empty(), "{:?}", schemas.unreachable);
    let schema = &schemas.by_algorithm["word_count"][&host];
    assert_eq!(schema["required"], json!(["text"]));

    python.kill().await.unwrap();
    discovery.stop().await;
}

#[tokio::test]
async fn a_python_runner_joins_a_locked_discovery_with_the_token() {
    let discovery = support::start(Config {
        token: Some("s3cret".into()),
        ..Config::default()
    })
    .await;
    let refused = Command::new("python3")
        .arg(script())
        .args(["--discovery", &discovery.base_url])
        .env_remove("SWITCHYARD_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("discovery refused word_count: 401"),
        "{stderr}"
    );

    let mut python = Command::new("python3")
        .arg(script())
        .args(["--discovery", &discovery.base_url])
        .env("SWITCHYARD_TOKEN", "s3cret")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(python.stdout.take().unwrap()).lines();
    let port = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let listing = DiscoveryClient::new(&discovery.base_url, None)
        .runners()
        .await
        .unwrap();
    assert_eq!(
        listing[0].base_url,
        format!("http://127.0.0.1:{}", port.trim())
    );
    python.kill().await.unwrap();
    discovery.stop().await;
}
