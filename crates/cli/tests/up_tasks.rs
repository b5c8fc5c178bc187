//! Controlling tasks of a running `switchyard up` from the command line: submitting through its
//! API (waiting for readiness) and cancelling.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::up::{BIN, UpArgs, wait_until_serving};

async fn switchyard(args: &[&str]) -> std::process::Output {
    let run = tokio::process::Command::new(BIN)
        .args(args)
        .env("SWITCHYARD_CONFIG", "/nonexistent/switchyard.toml")
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the command ends within 60 s")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_says_per_task_whether_it_was_cancelled() {
    let up = UpArgs::new();
    let log = up.data.path().join("up.log");
    let mut child = up.command(&["--algorithms", "echo"], &log).spawn().unwrap();
    let api = up.api_url();
    wait_until_serving(&mut child, &api, &["echo"], &log).await;

    let submitted = switchyard(&[
        "submit",
        "echo",
        r#"{"text": "x"}"#,
        "--server",
        &api,
        "--wait",
    ])
    .await;
    assert!(
        submitted.status.success(),
        "{}",
        String::from_utf8_lossy(&submitted.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&submitted.stdout).unwrap();
    let id = result["id"].as_str().unwrap();

    let cancel = switchyard(&["cancel", id, "never-submitted", "--server", &api]).await;
    let stdout = String::from_utf8_lossy(&cancel.stdout);
    assert_eq!(cancel.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("{id}\tnot cancelled: it is done")),
        "{stdout}"
    );
    assert!(
        stdout.contains("never-submitted\tno task with id 'never-submitted'"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&cancel.stderr);
    assert!(stderr.contains("2 of 2 tasks not cancelled"), "{stderr}");
    child.kill().await.unwrap();
}
