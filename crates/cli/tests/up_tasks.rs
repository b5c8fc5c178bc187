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

/// `switchyard up` hosting `algorithm`, once it serves: its arguments (which own its data
/// directory), the process and the API's URL.
async fn up_serving(algorithm: &str) -> (UpArgs, tokio::process::Child, String) {
    let up = UpArgs::new();
    let log = up.data.path().join("up.log");
    let mut child = up
        .command(&["--algorithms", algorithm], &log)
        .spawn()
        .unwrap();
    let api = up.api_url();
    wait_until_serving(&mut child, &api, &[algorithm], &log).await;
    (up, child, api)
}

/// `switchyard submit ... --server API --wait`, which must succeed: the result it printed.
async fn submitted(args: &[&str], api: &str) -> serde_json::Value {
    let output = switchyard(&[args, &["--server", api, "--wait"]].concat()).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_says_per_task_whether_it_was_cancelled() {
    let (_up, mut child, api) = up_serving("echo").await;

    let result = submitted(&["submit", "echo", r#"{"text": "x"}"#], &api).await;
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
    let (_up, mut child, api) = up_serving("image_classifier").await;
    let coffee = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../algorithms/testdata/images/coffee.png"
    );

    let args = [
        "submit",
        "image_classifier",
        r#"{"top_k": 2}"#,
        "--image",
        coffee,
    ];
    let result = submitted(&args, &api).await;
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
