//! `kill -9` a process that publishes tasks, consumes them, publishes their results and acks,
//! all at once, at a random moment, several times over one file; then check that the file opens
//! intact and that nothing the process had been told was durable is lost.
//!
//! The same binary is parent and child (no test harness: `main` picks the role from an
//! environment variable). The child prints a line only after the operation it names returned,
//! so a printed line is a promise the file must keep.
#![cfg(feature = "embedded")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchyard_broker::embedded::{EmbeddedBroker, EmbeddedConfig};
use switchyard_broker::{Broker, Message, QueueNames, ResultSource};

const CHILD_FILE: &str = "SWITCHYARD_CRASH_CHILD_FILE";
const CHILD_ROUND: &str = "SWITCHYARD_CRASH_CHILD_ROUND";
const ROUNDS: usize = 4;
const LEASE: Duration = Duration::from_millis(300);

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match (std::env::var_os(CHILD_FILE), std::env::var(CHILD_ROUND)) {
        (Some(file), Ok(round)) => runtime.block_on(child(PathBuf::from(file), round)),
        _ => {
            runtime.block_on(parent());
            println!("test result: ok. kill -9 during publish/consume/ack lost nothing");
        }
    }
}

async fn open(path: &Path) -> EmbeddedBroker {
    let config = EmbeddedConfig {
        lease: LEASE,
        poll_interval: Duration::from_millis(20),
        busy_timeout: Duration::from_secs(10),
    };
    EmbeddedBroker::open(path, QueueNames::default(), config)
        .await
        .expect("open the queue file")
}

/// Publishes and consumes until killed.
async fn child(path: PathBuf, round: String) {
    let broker = std::sync::Arc::new(open(&path).await);
    let publisher = {
        let broker = broker.clone();
        tokio::spawn(async move {
            for n in 0.. {
                let id = format!("{round}-{n}");
                broker
                    .publish_task(Message::new(id.clone()).with_id(&id), Duration::ZERO)
                    .await
                    .expect("publish");
                println!("published {id}");
            }
        })
    };
    let mut deliveries = broker.consume_tasks(8).await.expect("consume");
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery.expect("delivery");
        let broker = broker.clone();
        tokio::spawn(async move {
            let id = delivery.message.id.clone().expect("id");
            broker
                .publish_result(Message::new(id.clone()).with_id(&id))
                .await
                .expect("publish result");
            println!("resulted {id}");
            delivery.ack().await.expect("ack");
            println!("acked {id}");
        });
    }
    publisher.await.expect("publisher");
}

/// What the children promised, by the lines they printed.
#[derive(Default)]
struct Promises {
    published: BTreeSet<String>,
    resulted: BTreeSet<String>,
    acked: BTreeSet<String>,
    /// Per round, the highest task number printed as published: the child may have committed
    /// the next one and died before printing it.
    last_published: BTreeMap<String, u64>,
}

impl Promises {
    fn record(&mut self, line: &str) {
        let (what, id) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("odd line {line:?}"));
        let id = id.to_owned();
        match what {
            "published" => {
                let (round, n) = split_id(&id);
                let last = self.last_published.entry(round).or_default();
                *last = (*last).max(n);
                self.published.insert(id);
            }
            "resulted" => {
                self.resulted.insert(id);
            }
            "acked" => {
                self.acked.insert(id);
            }
            _ => panic!("odd line {line:?}"),
        }
    }

    /// Published, or the one publish of a round that may have committed unprinted.
    fn may_exist(&self, id: &str) -> bool {
        let (round, n) = split_id(id);
        self.published.contains(id)
            || self.last_published.get(&round).map(|last| last + 1) == Some(n)
    }
}

fn split_id(id: &str) -> (String, u64) {
    let (round, n) = id.split_once('-').expect("round-n");
    (round.to_owned(), n.parse().expect("task number"))
}

async fn parent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("queue.sqlite");
    let mut promises = Promises::default();
    for round in 0..ROUNDS {
        run_and_kill(&path, round, &mut promises);
    }
    assert!(
        !promises.acked.is_empty(),
        "the children never got to acknowledge anything"
    );

    let integrity: String = rusqlite::Connection::open(&path)
        .expect("open raw")
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(integrity, "ok");

    let broker = open(&path).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while broker.queue_depth("tasks").await.expect("depth").leased > 0 {
        assert!(
            Instant::now() < deadline,
            "the dead child's leases never ran out"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tasks = drain(broker.consume_tasks(256).await.expect("consume tasks")).await;
    let results: BTreeSet<String> =
        drain(broker.consume_results(256).await.expect("consume results"))
            .await
            .into_iter()
            .collect();

    let mut unique_tasks = BTreeSet::new();
    for id in &tasks {
        assert!(unique_tasks.insert(id.clone()), "task {id} stored twice");
        assert!(promises.may_exist(id), "task {id} was never published");
        assert!(
            !promises.acked.contains(id),
            "task {id} came back after its ack"
        );
    }
    for id in &promises.published {
        assert!(
            unique_tasks.contains(id) || results.contains(id),
            "task {id} was confirmed, then lost: neither queued nor answered"
        );
    }
    for id in &promises.resulted {
        assert!(
            results.contains(id),
            "the result of {id} was confirmed, then lost"
        );
    }
    println!(
        "{ROUNDS} kills: {} published, {} answered, {} acked (printed); after reopening {} tasks queued, {} results",
        promises.published.len(),
        promises.resulted.len(),
        promises.acked.len(),
        unique_tasks.len(),
        results.len()
    );
}

/// Runs one child until it has acknowledged a random number of tasks, then SIGKILLs it.
fn run_and_kill(path: &Path, round: usize, promises: &mut Promises) {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_FILE, path)
        .env(CHILD_ROUND, format!("r{round}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        // A line cut short by the kill has no newline: it promised nothing, so it is dropped.
        while stdout
            .read_line(&mut line)
            .is_ok_and(|_| line.ends_with('\n'))
        {
            if lines_tx.send(line.trim_end().to_owned()).is_err() {
                break;
            }
            line.clear();
        }
    });

    let acks_before_kill = fastrand::usize(20..300);
    let mut acks = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks < acks_before_kill {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|error| panic!("child of round {round} stopped talking: {error}"));
        acks += usize::from(line.starts_with("acked "));
        promises.record(&line);
    }
    // Child::kill is SIGKILL on Unix: no destructor, no flush, no WAL checkpoint.
    child.kill().expect("kill -9 the child");
    child.wait().expect("reap the child");
    // Lines the child wrote before dying are promises too.
    for line in lines.iter() {
        promises.record(&line);
    }
    reader.join().expect("stdout reader");
}

/// Everything currently visible on a stream, acked, in order.
async fn drain(mut deliveries: switchyard_broker::Deliveries) -> Vec<String> {
    let mut ids = Vec::new();
    while let Ok(Some(delivery)) =
        tokio::time::timeout(Duration::from_millis(500), deliveries.next()).await
    {
        let delivery = delivery.expect("delivery");
        ids.push(delivery.message.id.clone().expect("id"));
        delivery.ack().await.expect("ack");
    }
    ids
}
