//! `switchyard up` on the embedded queue survives `kill -9`: every task it answered 202 for
//! finishes after a restart on the same `--data`, with its own result.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::up::{UpArgs, read_log, wait_until_serving};
use tokio::process::Child;
use tokio::time::Instant;

const TASKS: usize = 1000;
const CLIENTS: usize = 4;
/// Accepted submits after which the process is killed.
const KILL_AFTER: usize = 300;

/// What the producers share: keys still to submit and the id each submitted key got.
struct Producers {
    /// Task numbers not yet accepted; a submit cut off by the crash goes back here.
    pending: Mutex<VecDeque<usize>>,
    accepted: Mutex<BTreeMap<usize, String>>,
    /// 202 answers since the start of the current phase.
    created: AtomicUsize,
    /// 200 answers: a retried key the crashed process had already accepted.
    repeated: AtomicUsize,
}

/// Tasks the controller received more than once, from its `received` log lines: at-least-once
/// delivery runs a task again when the kill came between its run and its acknowledgement.
fn received_twice(log: &str) -> usize {
    let mut received: BTreeMap<&str, usize> = BTreeMap::new();
    for line in log.lines().filter(|line| line.contains(" received ")) {
        if let Some(id) = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("task_id="))
        {
            *received.entry(id).or_default() += 1;
        }
    }
    received.values().filter(|&&count| count > 1).count()
}

fn text(task: usize) -> String {
    format!("task number {task}")
}

/// Submits pending tasks until none is left or the API stops answering.
async fn produce(http: &reqwest::Client, api_url: &str, shared: &Producers) {
    loop {
        let Some(task) = shared.pending.lock().unwrap().pop_front() else {
            return;
        };
        let sent = http
            .post(format!("{api_url}/v1/tasks"))
            // The key makes a retry after the crash safe: a task accepted just before the kill
            // is answered with its id instead of being created twice.
            .header("idempotency-key", format!("crash-test-{task}"))
            .json(&json!({"algorithm": "echo", "payload": {"text": text(task)}}))
            .send()
            .await;
        let answer = match sent {
            Ok(response) => match (response.status().as_u16(), response.json::<Value>().await) {
                (status @ (200 | 202), Ok(body)) => Some((status, body)),
                // The process died while answering.
                (_, Err(_cut_off)) => None,
                (status, Ok(body)) => panic!("submit of task {task}: {status} {body}"),
            },
            Err(_cut_off) => None,
        };
        let Some((status, body)) = answer else {
            shared.pending.lock().unwrap().push_back(task);
            return;
        };
        let counter = if status == 202 {
            &shared.created
        } else {
            &shared.repeated
        };
        counter.fetch_add(1, Ordering::SeqCst);
        let id = body["id"].as_str().expect("an id").to_string();
        shared.accepted.lock().unwrap().insert(task, id);
    }
}

async fn produce_concurrently(api_url: &str, shared: &Producers) {
    let http = reqwest::Client::new();
    futures::future::join_all((0..CLIENTS).map(|_| produce(&http, api_url, shared))).await;
}

async fn start(up: &UpArgs, log: &Path) -> Child {
    let mut child = up
        .command(&["--algorithms", "echo"], log)
        .spawn()
        .expect("the switchyard binary runs");
    wait_until_serving(&mut child, &up.api_url(), &["echo"], log).await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_task_finishes_after_a_kill_9_and_a_restart() {
    let up = UpArgs::new();
    let log = up.data.path().join("up.log");
    let api_url = up.api_url();
    let shared = Producers {
        pending: Mutex::new((0..TASKS).collect()),
        accepted: Mutex::new(BTreeMap::new()),
        created: AtomicUsize::new(0),
        repeated: AtomicUsize::new(0),
    };

    let mut child = start(&up, &log).await;
    let killer = async {
        let deadline = Instant::now() + Duration::from_secs(120);
        while shared.created.load(Ordering::SeqCst) < KILL_AFTER {
            assert!(
                Instant::now() < deadline,
                "{KILL_AFTER} submits took over 120 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.start_kill().expect("SIGKILL");
    };
    tokio::join!(produce_concurrently(&api_url, &shared), killer);
    child.wait().await.unwrap();
    let before_kill = shared.accepted.lock().unwrap().len();
    let created_before_kill = shared.created.load(Ordering::SeqCst);
    assert!(
        (KILL_AFTER..TASKS).contains(&before_kill),
        "the kill did not land mid-way: {before_kill} accepted"
    );

    let child = start(&up, &log).await;
    produce_concurrently(&api_url, &shared).await;
    let accepted = shared.accepted.into_inner().unwrap();
    assert_eq!(accepted.len(), TASKS, "some submits were never accepted");

    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    for (task, id) in &accepted {
        let record = loop {
            let record: Value = http
                .get(format!("{api_url}/v1/tasks/{id}?wait=30s"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if record["status"] == "done" {
                break record;
            }
            assert!(
                !matches!(record["status"].as_str(), Some("failed" | "dead")),
                "task {task} ended {record}"
            );
            assert!(
                Instant::now() < deadline,
                "task {task} ({id}) not done after 300 s: {record}\n{}",
                read_log(&log)
            );
        };
        assert_eq!(record["result"]["text"], text(*task), "{record}");
    }
    let log_text = read_log(&log);
    assert!(
        log_text.contains(" received "),
        "no `received` lines in the log"
    );
    let ran_twice = received_twice(&log_text);
    // Only what was in flight at the kill may run again: the controller's prefetch (its default
    // concurrency, 8) plus a submit per client caught between its publish and its confirmation.
    assert!(ran_twice <= 8 + CLIENTS, "{ran_twice} tasks ran twice");
    eprintln!(
        "submitted {TASKS}: {before_kill} accepted before the kill, {} created and {} \
         recognised by key after the restart; all {} done, {ran_twice} received twice",
        shared.created.load(Ordering::SeqCst) - created_before_kill,
        shared.repeated.load(Ordering::SeqCst),
        accepted.len(),
    );
    drop(child);
}
