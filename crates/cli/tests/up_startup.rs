//! `switchyard up` refuses to start on a bad set-up, exiting 1 with a message naming the cause,
//! instead of half-starting.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use support::up::{BIN, UpArgs};

async fn up(up: &UpArgs, data: &Path, extra: &[&str]) -> Output {
    let run = tokio::process::Command::new(BIN)
        .arg("up")
        .args(["--listen", &up.listen])
        .args(["--discovery-listen", &up.discovery_listen])
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("`up` gave up within 60 s")
        .unwrap()
}

fn assert_fails(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
}

#[tokio::test]
async fn an_unknown_algorithm_is_refused_naming_the_hosted_ones() {
    let args = UpArgs::new();
    let output = up(&args, args.data.path(), &["--algorithms", "echo,nope"]).await;
    assert_fails(
        &output,
        &["unknown algorithm 'nope'", "this build hosts: echo"],
    );
}

#[tokio::test]
async fn a_busy_api_port_is_refused_naming_it() {
    let args = UpArgs::new();
    let _taken = std::net::TcpListener::bind(&args.listen).unwrap();
    let output = up(&args, args.data.path(), &["--algorithms", "echo"]).await;
    assert_fails(
        &output,
        &[
            &format!("binding the task API to {}", args.listen),
            "Address already in use",
        ],
    );
}

#[tokio::test]
async fn an_empty_token_is_refused() {
    let args = UpArgs::new();
    let output = up(
        &args,
        args.data.path(),
        &["--algorithms", "echo", "--token", ""],
    )
    .await;
    assert_fails(&output, &["--token (SWITCHYARD_TOKEN) is empty"]);
}

#[tokio::test]
async fn a_data_path_that_is_a_file_is_refused() {
    let args = UpArgs::new();
    let file = args.data.path().join("not-a-directory");
    std::fs::write(&file, b"").unwrap();
    let output = up(&args, &file, &["--algorithms", "echo"]).await;
    assert_fails(&output, &["creating the data directory", "not-a-directory"]);
}

#[tokio::test]
async fn a_configuration_key_no_flag_reads_is_refused_naming_the_one_meant() {
    let args = UpArgs::new();
    let config = args.data.path().join("switchyard.toml");
    std::fs::write(&config, "[up]\nconcurency = 4\n").unwrap();
    let config = config.to_str().unwrap().to_owned();
    let output = up(
        &args,
        args.data.path(),
        &["--algorithms", "echo", "--config", &config],
    )
    .await;
    assert_fails(
        &output,
        &[
            &format!("invalid configuration in {config}"),
            "key 'concurency' of [up] is not a flag of `switchyard up`; did you mean 'concurrency'?",
        ],
    );
}
