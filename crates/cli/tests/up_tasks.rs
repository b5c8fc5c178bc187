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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_file_is_classified_from_submit_image_and_from_a_multipart_upload() {
    let up = UpArgs::new();
    let log = up.data.path().join("up.log");
    let mut child = up
        .command(&["--algorithms", "image_classifier"], &log)
        .spawn()
        .unwrap();
    let api = up.api_url();
    wait_until_serving(&mut child, &api, &["image_classifier"], &log).await;
    let coffee = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../algorithms/testdata/images/coffee.png"
    );

    let submitted = switchyard(&[
        "submit",
        "image_classifier",
        r#"{"top_k": 2}"#,
        "--image",
        coffee,
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
    assert_eq!(result["result"]["label"], "espresso", "{result}");
    assert_eq!(result["result"]["top"].as_array().unwrap().len(), 2);

    // What `curl -F algorithm=image_classifier -F image=@coffee.png` sends.
    let form = reqwest::multipart::Form::new()
        .text("algorithm", "image_classifier")
        .part(
            "image",
            reqwest::multipart::Part::bytes(std::fs::read(coffee).unwrap())
                .file_name("coffee.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let http = reqwest::Client::new();
    let accepted: serde_json::Value = http
        .post(format!("{api}/v1/tasks"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{accepted}"));
    let record: serde_json::Value = http
        .get(format!("{api}/v1/tasks/{id}?wait=60s"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["result"]["label"], "espresso", "{record}");
    child.kill().await.unwrap();
}
