//! The embedded SQLite queue, end to end on real files: the broker contract, then what only a
//! queue of leases on a file does. Two brokers opened on one file stand in for two processes
//! (each has its own connection and thread, and no in-process wake-ups).
#![cfg(feature = "embedded")]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_broker::conformance::embedded::{EmbeddedHarness, config, open};
use switchyard_broker::conformance::{QUIET, next as expect_next, next_within, task};
use switchyard_broker::embedded::{EmbeddedBroker, EmbeddedConfig, QueueDepth};
use switchyard_broker::{
    Broker, BrokerError, DeadLetter, DeadLetterStore, Delivery, Message, QueueNames, ResultSource,
};
use tempfile::TempDir;

mod contract {
    switchyard_broker::broker_contract!(super::EmbeddedHarness);
}

/// Long enough that no lease runs out unless a test means it to.
const LONG_LEASE: Duration = Duration::from_secs(30);

fn id_of(delivery: &Delivery) -> &str {
    delivery.message.id.as_deref().expect("message id")
}

async fn depth(broker: &EmbeddedBroker, queue: &str) -> QueueDepth {
    broker.queue_depth(queue).await.expect("queue depth")
}

fn queue_file() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("queue.sqlite");
    (dir, path)
}

#[tokio::test]
async fn a_dropped_delivery_frees_its_slot_while_its_lease_holds_the_message() {
    let (_dir, path) = queue_file();
    let broker = open(&path, LONG_LEASE).await;
    for id in ["a", "b"] {
        broker.publish_task(task(id), Duration::ZERO).await.unwrap();
    }
    let mut deliveries = broker.consume_tasks(1).await.unwrap();
    drop(expect_next(&mut deliveries).await);
    assert_eq!(id_of(&expect_next(&mut deliveries).await), "b");
    assert!(next_within(&mut deliveries, QUIET).await.is_none());
    assert_eq!(depth(&broker, "tasks").await.leased, 2);
}

#[tokio::test]
async fn a_dead_letter_key_that_is_not_a_number_is_fatal() {
    let (_dir, path) = queue_file();
    let broker = open(&path, LONG_LEASE).await;
    let error = broker
        .requeue_dead_letters(Some(&["nope".into()]))
        .await
        .unwrap_err();
    assert!(matches!(error, BrokerError::Fatal { .. }), "{error}");
}

#[tokio::test]
async fn a_dropped_delivery_comes_back_after_its_lease_and_not_before() {
    let lease = Duration::from_millis(300);
    let (_dir, path) = queue_file();
    let broker = open(&path, lease).await;
    broker
        .publish_task(task("a"), Duration::ZERO)
        .await
        .unwrap();
    let mut deliveries = broker.consume_tasks(4).await.unwrap();

    let before_take = Instant::now();
    let first = expect_next(&mut deliveries).await;
    drop(first);
    assert!(
        next_within(&mut deliveries, lease / 2).await.is_none(),
        "handed out again while its lease was live"
    );
    let again = expect_next(&mut deliveries).await;
    // The lease is stored in whole milliseconds: allow for one of rounding.
    assert!(before_take.elapsed() >= lease - Duration::from_millis(1));
    assert_eq!(id_of(&again), "a");
    assert!(again.redelivered);
    again.ack().await.unwrap();
}

#[tokio::test]
async fn a_live_delivery_keeps_its_lease_however_long_it_is_held() {
    let lease = Duration::from_millis(200);
    let (_dir, path) = queue_file();
    let holder = open(&path, lease).await;
    let other = open(&path, lease).await;
    holder
        .publish_task(task("long"), Duration::ZERO)
        .await
        .unwrap();

    let mut held = holder.consume_tasks(1).await.unwrap();
    let delivery = expect_next(&mut held).await;
    let mut competing = other.consume_tasks(1).await.unwrap();
    assert!(
        next_within(&mut competing, lease * 6).await.is_none(),
        "a renewed lease was handed to a second consumer"
    );
    assert_eq!(depth(&other, "tasks").await.leased, 1);
    delivery.ack().await.unwrap();
    assert_eq!(depth(&other, "tasks").await, QueueDepth::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_on_one_file_never_hold_the_same_message() {
    const TOTAL: usize = 500;
    let (_dir, path) = queue_file();
    let first = Arc::new(open(&path, LONG_LEASE).await);
    let second = Arc::new(open(&path, LONG_LEASE).await);
    for n in 0..TOTAL / 2 {
        first
            .publish_task(task(&format!("m{n}")), Duration::ZERO)
            .await
            .unwrap();
    }
    // The other half arrives while both consume, from the second "process".
    let late_publisher = {
        let second = second.clone();
        tokio::spawn(async move {
            for n in TOTAL / 2..TOTAL {
                second
                    .publish_task(task(&format!("m{n}")), Duration::ZERO)
                    .await
                    .unwrap();
            }
        })
    };

    let held = Arc::new(Mutex::new(HashSet::<String>::new()));
    let acked = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let settled = Arc::new(AtomicUsize::new(0));
    // SQLite's write lock is not fair: one busy connection can starve the other for a whole
    // short run, and then nothing here would be contended. So no delivery is acked until both
    // consumers hold one: the first consumer stops at its prefetch and the second must get some.
    let started: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let consumers: Vec<_> = [first.clone(), second.clone()]
        .into_iter()
        .enumerate()
        .map(|(consumer, broker)| {
            let (held, acked, settled) = (held.clone(), acked.clone(), settled.clone());
            let started = started.clone();
            tokio::spawn(async move {
                let mut deliveries = broker.consume_tasks(16).await.unwrap();
                let mut received = 0;
                let deadline = Instant::now() + Duration::from_secs(60);
                while settled.load(Ordering::SeqCst) < TOTAL {
                    assert!(Instant::now() < deadline, "consumers stalled");
                    let Some(delivery) =
                        next_within(&mut deliveries, Duration::from_millis(100)).await
                    else {
                        continue;
                    };
                    received += 1;
                    started[consumer].fetch_add(1, Ordering::SeqCst);
                    let id = id_of(&delivery).to_owned();
                    assert!(
                        held.lock().unwrap().insert(id.clone()),
                        "{id} handed to two consumers at once"
                    );
                    let (held, acked, settled) = (held.clone(), acked.clone(), settled.clone());
                    let started = started.clone();
                    tokio::spawn(async move {
                        while started
                            .iter()
                            .any(|count| count.load(Ordering::SeqCst) == 0)
                        {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..3))).await;
                        delivery.ack().await.unwrap();
                        *acked.lock().unwrap().entry(id.clone()).or_default() += 1;
                        held.lock().unwrap().remove(&id);
                        settled.fetch_add(1, Ordering::SeqCst);
                    });
                }
                received
            })
        })
        .collect();
    late_publisher.await.unwrap();
    let mut received = Vec::new();
    for consumer in consumers {
        received.push(consumer.await.unwrap());
    }

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert_eq!(acked.len(), TOTAL, "every message acked");
    assert!(
        acked.values().all(|&times| times == 1),
        "each acked exactly once"
    );
    assert!(
        received.iter().all(|&count| count > 0),
        "both consumers worked: {received:?}"
    );
    assert_eq!(depth(&first, "tasks").await, QueueDepth::default());
}

#[tokio::test]
async fn results_consumption_has_the_same_lease_semantics() {
    let lease = Duration::from_millis(150);
    let (_dir, path) = queue_file();
    let broker = open(&path, lease).await;
    broker
        .publish_result(Message::new("r").with_id("t"))
        .await
        .unwrap();
    let mut results = broker.consume_results(1).await.unwrap();
    drop(expect_next(&mut results).await);
    let again = expect_next(&mut results).await;
    assert!(again.redelivered);
    again.ack().await.unwrap();
    assert_eq!(depth(&broker, "tasks.results").await, QueueDepth::default());
}

#[tokio::test]
async fn reopening_the_file_keeps_everything() {
    let (_dir, path) = queue_file();
    {
        let broker = open(&path, LONG_LEASE).await;
        broker
            .publish_task(task("first"), Duration::ZERO)
            .await
            .unwrap();
        broker
            .publish_task(task("delayed"), Duration::from_secs(60))
            .await
            .unwrap();
        broker
            .publish_task(task("second"), Duration::ZERO)
            .await
            .unwrap();
        broker
            .publish_result(Message::new("result").with_id("done"))
            .await
            .unwrap();
        broker
            .dead_letter(DeadLetter {
                message: task("dead"),
                reason: "no_runner".into(),
                attempts: 1,
                last_error: "no runner hosts nope".into(),
            })
            .await
            .unwrap();
        let mut deliveries = broker.consume_tasks(1).await.unwrap();
        // Taken and dropped unsettled with the broker: its lease outlives the process.
        assert_eq!(id_of(&expect_next(&mut deliveries).await), "first");
    }

    let broker = open(&path, LONG_LEASE).await;
    assert_eq!(
        depth(&broker, "tasks").await,
        QueueDepth {
            ready: 1,
            leased: 1,
            delayed: 1
        }
    );
    assert!(broker.is_leased("first").await.unwrap());
    assert_eq!(depth(&broker, "tasks.results").await.ready, 1);
    let dead = broker.list_dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].letter.message, task("dead"));

    let mut deliveries = broker.consume_tasks(4).await.unwrap();
    assert_eq!(expect_next(&mut deliveries).await.message, task("second"));
    let mut results = broker.consume_results(4).await.unwrap();
    assert_eq!(id_of(&expect_next(&mut results).await), "done");
}

#[tokio::test]
async fn is_leased_follows_the_lease() {
    let lease = Duration::from_millis(150);
    let (_dir, path) = queue_file();
    let broker = open(&path, lease).await;
    broker
        .publish_task(task("a"), Duration::ZERO)
        .await
        .unwrap();
    broker
        .publish_task(task("b"), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(!broker.is_leased("a").await.unwrap(), "queued, not leased");
    assert!(!broker.is_leased("b").await.unwrap(), "delayed, not leased");
    assert!(!broker.is_leased("unknown").await.unwrap());

    let mut deliveries = broker.consume_tasks(1).await.unwrap();
    let delivery = expect_next(&mut deliveries).await;
    assert!(broker.is_leased("a").await.unwrap());
    drop(delivery);
    tokio::time::sleep(lease * 2).await;
    assert!(
        !broker.is_leased("a").await.unwrap(),
        "an expired lease is not running"
    );

    let again = expect_next(&mut deliveries).await;
    assert!(broker.is_leased("a").await.unwrap());
    again.ack().await.unwrap();
    assert!(!broker.is_leased("a").await.unwrap());
}

#[tokio::test]
async fn another_process_publish_is_found_by_polling() {
    let (_dir, path) = queue_file();
    let consumer = open(&path, LONG_LEASE).await;
    let producer = open(&path, LONG_LEASE).await;
    let mut deliveries = consumer.consume_tasks(1).await.unwrap();
    assert!(
        next_within(&mut deliveries, Duration::from_millis(100))
            .await
            .is_none()
    );
    producer
        .publish_task(task("remote"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(id_of(&expect_next(&mut deliveries).await), "remote");
}

#[tokio::test]
async fn dropping_the_stream_hands_back_deliveries_it_never_yielded() {
    let (_dir, path) = queue_file();
    let broker = open(&path, LONG_LEASE).await;
    for n in 0..5 {
        broker
            .publish_task(task(&format!("m{n}")), Duration::ZERO)
            .await
            .unwrap();
    }
    let mut deliveries = broker.consume_tasks(5).await.unwrap();
    // One take claims all five free slots; only the first is yielded.
    let first = expect_next(&mut deliveries).await;
    drop(deliveries);

    let deadline = Instant::now() + Duration::from_secs(5);
    while depth(&broker, "tasks").await.ready != 4 {
        assert!(
            Instant::now() < deadline,
            "unseen deliveries not handed back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        broker.is_leased(id_of(&first)).await.unwrap(),
        "the yielded one stays held"
    );
}

#[tokio::test]
async fn unusable_files_and_settings_are_refused_as_fatal() {
    let dir = tempfile::tempdir().unwrap();

    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, vec![0x42; 8192]).unwrap();
    let error = EmbeddedBroker::open(&garbage, QueueNames::default(), config(LONG_LEASE))
        .await
        .expect_err("a file that is not SQLite");
    assert!(matches!(error, BrokerError::Fatal { .. }), "{error}");
    assert!(
        error.to_string().contains("garbage"),
        "names the file: {error}"
    );
    let cause = std::error::Error::source(&error).expect("SQLite's reason");
    assert!(
        cause.downcast_ref::<rusqlite::Error>().is_some(),
        "{cause:?}"
    );
    assert!(
        format!("{error:#}").ends_with(&format!(": {cause}")),
        "{error:#}"
    );

    let future = dir.path().join("future.sqlite");
    rusqlite::Connection::open(&future)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let error = EmbeddedBroker::open(&future, QueueNames::default(), config(LONG_LEASE))
        .await
        .expect_err("a newer schema");
    assert!(error.to_string().contains("schema version 99"), "{error}");
    assert!(!error.is_transient());

    let missing_dir = dir.path().join("no/such/dir/queue.sqlite");
    let error = EmbeddedBroker::open(&missing_dir, QueueNames::default(), config(LONG_LEASE))
        .await
        .expect_err("a directory that does not exist");
    assert!(matches!(error, BrokerError::Fatal { .. }), "{error}");

    let path = dir.path().join("queue.sqlite");
    let too_short = config(Duration::from_millis(1));
    let error = EmbeddedBroker::open(&path, QueueNames::default(), too_short)
        .await
        .expect_err("a lease too short to renew");
    assert!(error.to_string().contains("lease"), "{error}");
    let no_poll = EmbeddedConfig {
        poll_interval: Duration::ZERO,
        ..config(LONG_LEASE)
    };
    let error = EmbeddedBroker::open(&path, QueueNames::default(), no_poll)
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("poll interval"), "{error}");

    let broker = open(&path, LONG_LEASE).await;
    let error = broker.consume_tasks(0).await.err().expect("prefetch 0");
    assert!(matches!(error, BrokerError::Fatal { .. }), "{error}");
}

#[tokio::test]
async fn queues_of_different_names_in_one_file_stay_apart() {
    let (_dir, path) = queue_file();
    let ours = open(&path, LONG_LEASE).await;
    let theirs = EmbeddedBroker::open(&path, QueueNames::new("other"), config(LONG_LEASE))
        .await
        .unwrap();
    theirs
        .publish_task(task("theirs"), Duration::ZERO)
        .await
        .unwrap();
    theirs
        .dead_letter(DeadLetter {
            message: task("their-dead"),
            reason: "rejected".into(),
            attempts: 1,
            last_error: "400".into(),
        })
        .await
        .unwrap();

    let mut deliveries = ours.consume_tasks(1).await.unwrap();
    assert!(
        next_within(&mut deliveries, Duration::from_millis(200))
            .await
            .is_none()
    );
    assert!(ours.list_dead_letters(10).await.unwrap().is_empty());
    assert_eq!(ours.requeue_dead_letters(None).await.unwrap(), 0);
    assert_eq!(theirs.dead_letter_count().await.unwrap(), 1);
}

/// `cargo test -p switchyard-broker --test embedded -- --ignored --nocapture throughput`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run by hand"]
async fn throughput() {
    const SEQUENTIAL: usize = 500;
    const CONCURRENT: usize = 5_000;
    let (_dir, path) = queue_file();
    let broker = Arc::new(open(&path, LONG_LEASE).await);

    let started = Instant::now();
    for n in 0..SEQUENTIAL {
        broker
            .publish_task(task(&format!("s{n}")), Duration::ZERO)
            .await
            .unwrap();
    }
    report("publish, one at a time", SEQUENTIAL, started.elapsed());

    let started = Instant::now();
    let publishers: Vec<_> = (0..64)
        .map(|publisher| {
            let broker = broker.clone();
            tokio::spawn(async move {
                for n in (publisher..CONCURRENT).step_by(64) {
                    broker
                        .publish_task(task(&format!("c{n}")), Duration::ZERO)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    report(
        "publish, 64 concurrent publishers",
        CONCURRENT,
        started.elapsed(),
    );

    let total = SEQUENTIAL + CONCURRENT;
    let started = Instant::now();
    let mut deliveries = broker.consume_tasks(64).await.unwrap();
    let acks = Arc::new(AtomicUsize::new(0));
    let mut pending = Vec::with_capacity(total);
    for _ in 0..total {
        let delivery = expect_next(&mut deliveries).await;
        let acks = acks.clone();
        pending.push(tokio::spawn(async move {
            delivery.ack().await.unwrap();
            acks.fetch_add(1, Ordering::SeqCst);
        }));
    }
    for ack in pending {
        ack.await.unwrap();
    }
    assert_eq!(acks.load(Ordering::SeqCst), total);
    report("consume + ack, prefetch 64", total, started.elapsed());
}

fn report(what: &str, count: usize, took: Duration) {
    println!(
        "{what}: {count} in {took:.2?} = {:.0} msg/s",
        count as f64 / took.as_secs_f64()
    );
}
