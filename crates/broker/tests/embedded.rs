//! The embedded SQLite queue, end to end on real files. Two brokers opened on one file stand in
//! for two processes (each has its own connection and thread, and no in-process wake-ups).
#![cfg(feature = "embedded")]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchyard_broker::embedded::{EmbeddedBroker, EmbeddedConfig, QueueDepth};
use switchyard_broker::{
    Broker, BrokerError, DeadLetter, DeadLetterStore, Deliveries, Delivery, Message, QueueNames,
    ResultSource,
};
use switchyard_wire::headers;
use tempfile::TempDir;

/// Long enough that no lease runs out unless a test means it to.
const LONG_LEASE: Duration = Duration::from_secs(30);

fn config(lease: Duration) -> EmbeddedConfig {
    EmbeddedConfig {
        lease,
        poll_interval: Duration::from_millis(20),
        busy_timeout: Duration::from_secs(10),
    }
}

fn queue_file() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("queue.sqlite");
    (dir, path)
}

async fn open(path: &Path, lease: Duration) -> EmbeddedBroker {
    EmbeddedBroker::open(path, QueueNames::default(), config(lease))
        .await
        .expect("open the queue file")
}

fn task(id: &str) -> Message {
    Message::new(format!(
        r#"{{"algorithm":"echo","payload":{{"id":"{id}"}}}}"#
    ))
    .with_id(id)
}

/// The next delivery if one comes within `wait`; panics if the stream fails or ends.
async fn next_within(deliveries: &mut Deliveries, wait: Duration) -> Option<Delivery> {
    match tokio::time::timeout(wait, deliveries.next()).await {
        Err(_) => None,
        Ok(Some(Ok(delivery))) => Some(delivery),
        Ok(Some(Err(error))) => panic!("delivery stream failed: {error}"),
        Ok(None) => panic!("delivery stream ended"),
    }
}

async fn expect_next(deliveries: &mut Deliveries) -> Delivery {
    next_within(deliveries, Duration::from_secs(5))
        .await
        .expect("a delivery within 5 s")
}

fn id_of(delivery: &Delivery) -> &str {
    delivery.message.id.as_deref().expect("message id")
}

async fn depth(broker: &EmbeddedBroker, queue: &str) -> QueueDepth {
    broker.queue_depth(queue).await.expect("queue depth")
}

#[tokio::test]
async fn a_task_round_trips_with_body_and_properties() {
    let (_dir, path) = queue_file();
    let broker = open(&path, LONG_LEASE).await;
    let sent = Message {
        id: Some("task-1".into()),
        body: bytes::Bytes::from_static(b"\x00\xffnot utf-8 \xc3"),
        reply_to: Some("rpc.client-7".into()),
        correlation_id: Some("corr-9".into()),
        headers: BTreeMap::from([
            (headers::ATTEMPTS.to_owned(), "2".to_owned()),
            (headers::TRACEPARENT.to_owned(), "00-abc-def-01".to_owned()),
        ]),
    };
    broker
        .publish_task(sent.clone(), Duration::ZERO)
        .await
        .unwrap();

    let mut deliveries = broker.consume_tasks(4).await.unwrap();
    let delivery = expect_next(&mut deliveries).await;
    assert_eq!(delivery.message, sent);
    assert!(!delivery.redelivered, "first delivery is not a redelivery");
}

#[tokio::test]
async fn ack_removes_the_message_for_good() {
    let (_dir, path) = queue_file();
    let broker = open(&path, Duration::from_millis(200)).await;
    broker
        .publish_task(task("a"), Duration::ZERO)
        .await
        .unwrap();
    let mut deliveries = broker.consume_tasks(4).await.unwrap();
    expect_next(&mut deliveries).await.ack().await.unwrap();

    assert_eq!(depth(&broker, "tasks").await, QueueDepth::default());
    // Well past the lease: an acked message never comes back.
    assert!(
        next_within(&mut deliveries, Duration::from_millis(600))
            .await
            .is_none()
    );
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
async fn a_stalled_holder_cannot_settle_a_message_taken_again() {
    let lease = Duration::from_millis(100);
    let (_dir, path) = queue_file();
    let broker = open(&path, lease).await;
    broker
        .publish_task(task("stalled"), Duration::ZERO)
        .await
        .unwrap();

    // The holder runs on its own single-threaded runtime, which it then blocks: like a process
    // frozen by the OS, it cannot renew its lease.
    let (taken_tx, taken_rx) = std::sync::mpsc::channel();
    let (resume_tx, resume_rx) = std::sync::mpsc::channel::<()>();
    let holder_path = path.clone();
    let holder = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let broker = open(&holder_path, lease).await;
            let mut deliveries = broker.consume_tasks(1).await.unwrap();
            let delivery = expect_next(&mut deliveries).await;
            taken_tx.send(()).unwrap();
            resume_rx.recv().unwrap();
            delivery.ack().await
        })
    });
    tokio::task::spawn_blocking(move || taken_rx.recv().unwrap())
        .await
        .unwrap();

    let mut deliveries = broker.consume_tasks(1).await.unwrap();
    let retaken = expect_next(&mut deliveries).await;
    assert_eq!(id_of(&retaken), "stalled");
    assert!(retaken.redelivered);
    resume_tx.send(()).unwrap();
    let stale_ack = tokio::task::spawn_blocking(move || holder.join().unwrap())
        .await
        .unwrap();
    match stale_ack {
        Err(error @ BrokerError::Disconnected(_)) => {
            assert!(error.to_string().contains("taken again"), "{error}");
        }
        other => panic!("a stale holder's ack must fail, got {other:?}"),
    }
    assert_eq!(
        depth(&broker, "tasks").await.leased,
        1,
        "the new holder still has it"
    );
    retaken.ack().await.unwrap();
    assert_eq!(depth(&broker, "tasks").await, QueueDepth::default());
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
async fn prefetch_bounds_the_unsettled_deliveries() {
    let (_dir, path) = queue_file();
    let broker = open(&path, LONG_LEASE).await;
    for n in 0..10 {
        broker
            .publish_task(task(&format!("m{n}")), Duration::ZERO)
            .await
            .unwrap();
    }
    let mut deliveries = broker.consume_tasks(3).await.unwrap();
    let mut unsettled = Vec::new();
    for _ in 0..3 {
        unsettled.push(expect_next(&mut deliveries).await);
    }
    let quiet = Duration::from_millis(300);
    assert!(
        next_within(&mut deliveries, quiet).await.is_none(),
        "a 4th with prefetch 3"
    );

    unsettled.pop().unwrap().ack().await.unwrap();
    unsettled.push(expect_next(&mut deliveries).await);
    assert!(next_within(&mut deliveries, quiet).await.is_none());

    unsettled.pop().unwrap().requeue().await.unwrap();
    unsettled.push(expect_next(&mut deliveries).await);
    assert!(next_within(&mut deliveries, quiet).await.is_none());

    // Dropping frees the slot too (the message itself waits for its lease).
    drop(unsettled.pop());
    unsettled.push(expect_next(&mut deliveries).await);
    assert!(next_within(&mut deliveries, quiet).await.is_none());
    assert_eq!(
        depth(&broker, "tasks").await.leased,
        4,
        "3 held + 1 dropped, lease live"
    );
}

#[tokio::test]
async fn a_delayed_task_stays_invisible_until_its_delay_passes() {
    let delay = Duration::from_millis(400);
    let (_dir, path) = queue_file();
    let broker = open(&path, LONG_LEASE).await;
    let published = Instant::now();
    broker.publish_task(task("later"), delay).await.unwrap();
    broker
        .publish_task(task("now"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        depth(&broker, "tasks").await,
        QueueDepth {
            ready: 1,
            leased: 0,
            delayed: 1
        }
    );

    let mut deliveries = broker.consume_tasks(4).await.unwrap();
    assert_eq!(id_of(&expect_next(&mut deliveries).await), "now");
    assert!(next_within(&mut deliveries, delay / 4).await.is_none());
    let later = expect_next(&mut deliveries).await;
    assert_eq!(id_of(&later), "later");
    assert!(published.elapsed() >= delay - Duration::from_millis(1));
    assert!(!later.redelivered);
}

#[tokio::test]
async fn requeue_hands_the_message_out_again_at_once() {
    let (_dir, path) = queue_file();
    let broker = open(&path, LONG_LEASE).await;
    broker
        .publish_task(task("again"), Duration::ZERO)
        .await
        .unwrap();
    let mut deliveries = broker.consume_tasks(1).await.unwrap();
    expect_next(&mut deliveries).await.requeue().await.unwrap();

    // Far sooner than the 30 s lease: only the requeue explains it.
    let again = next_within(&mut deliveries, Duration::from_secs(2))
        .await
        .expect("requeued");
    assert_eq!(id_of(&again), "again");
    assert!(again.redelivered);
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_with_their_attempts_reset() {
    let (_dir, path) = queue_file();
    let broker = open(&path, LONG_LEASE).await;
    let original = Message {
        id: Some("doomed".into()),
        body: bytes::Bytes::from_static(b"{\"algorithm\":\"nope\",\"payload\":{}}"),
        reply_to: Some("rpc.client".into()),
        correlation_id: Some("c-1".into()),
        headers: BTreeMap::from([
            (headers::ATTEMPTS.to_owned(), "5".to_owned()),
            (
                headers::FIRST_SEEN_MS.to_owned(),
                "1700000000000".to_owned(),
            ),
            (headers::TRACEPARENT.to_owned(), "00-aa-bb-01".to_owned()),
        ]),
    };
    let letter = DeadLetter {
        message: original.clone(),
        reason: "attempts_exhausted".into(),
        attempts: 5,
        last_error: "runner answered 503".into(),
    };
    broker.dead_letter(letter.clone()).await.unwrap();
    for n in 0..2 {
        let mut other = letter.clone();
        other.message.id = Some(format!("other-{n}"));
        broker.dead_letter(other).await.unwrap();
    }
    assert_eq!(broker.dead_letter_count().await.unwrap(), 3);
    assert_eq!(depth(&broker, "tasks").await, QueueDepth::default());

    let listed = broker.list_dead_letters(2).await.unwrap();
    assert_eq!(listed.len(), 2, "limit respected");
    assert_eq!(listed[0].letter, letter, "oldest first, stored whole");
    assert_eq!(listed[1].letter.message.id.as_deref(), Some("other-0"));

    let bad_key = broker
        .requeue_dead_letters(Some(&["nope".into()]))
        .await
        .unwrap_err();
    assert!(matches!(bad_key, BrokerError::Fatal(_)), "{bad_key}");
    let unknown = broker
        .requeue_dead_letters(Some(&["999999".into()]))
        .await
        .unwrap();
    assert_eq!(unknown, 0);

    let key = listed[0].key.clone();
    let requeued = broker
        .requeue_dead_letters(Some(&[key.clone(), key]))
        .await
        .unwrap();
    assert_eq!(requeued, 1, "a key named twice replays once");
    let remaining = broker.list_dead_letters(10).await.unwrap();
    assert_eq!(remaining.len(), 2);
    assert!(
        remaining
            .iter()
            .all(|stored| stored.letter.message.id.as_deref() != Some("doomed"))
    );

    let mut deliveries = broker.consume_tasks(4).await.unwrap();
    let replayed = expect_next(&mut deliveries).await;
    assert!(!replayed.redelivered);
    let mut expected = original;
    expected.headers.remove(headers::ATTEMPTS);
    expected.headers.remove(headers::FIRST_SEEN_MS);
    assert_eq!(replayed.message, expected);

    assert_eq!(broker.requeue_dead_letters(None).await.unwrap(), 2);
    assert_eq!(broker.dead_letter_count().await.unwrap(), 0);
    let mut ids: Vec<String> = Vec::new();
    for _ in 0..2 {
        ids.push(id_of(&expect_next(&mut deliveries).await).to_owned());
    }
    assert_eq!(ids, ["other-0", "other-1"]);
}

#[tokio::test]
async fn results_go_to_the_results_queue_or_to_reply_to() {
    let (_dir, path) = queue_file();
    let broker = open(&path, LONG_LEASE).await;
    broker
        .publish_result(Message::new("r1").with_id("t1"))
        .await
        .unwrap();
    let mut rpc = Message::new("r2").with_id("t2");
    rpc.reply_to = Some("rpc.client-1".into());
    rpc.correlation_id = Some("corr-2".into());
    broker.publish_result(rpc.clone()).await.unwrap();

    let mut results = broker.consume_results(8).await.unwrap();
    let result = expect_next(&mut results).await;
    assert_eq!(result.message, Message::new("r1").with_id("t1"));
    result.ack().await.unwrap();
    assert!(
        next_within(&mut results, Duration::from_millis(200))
            .await
            .is_none(),
        "an RPC result does not go to the results queue"
    );

    let mut replies = broker.consume_queue("rpc.client-1", 8).await.unwrap();
    assert_eq!(expect_next(&mut replies).await.message, rpc);
    assert_eq!(depth(&broker, "tasks").await, QueueDepth::default());
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
        .err()
        .expect("a file that is not SQLite");
    assert!(matches!(error, BrokerError::Fatal(_)), "{error}");
    assert!(
        error.to_string().contains("garbage"),
        "names the file: {error}"
    );

    let future = dir.path().join("future.sqlite");
    rusqlite::Connection::open(&future)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let error = EmbeddedBroker::open(&future, QueueNames::default(), config(LONG_LEASE))
        .await
        .err()
        .expect("a newer schema");
    assert!(error.to_string().contains("schema version 99"), "{error}");
    assert!(!error.is_transient());

    let missing_dir = dir.path().join("no/such/dir/queue.sqlite");
    let error = EmbeddedBroker::open(&missing_dir, QueueNames::default(), config(LONG_LEASE))
        .await
        .err()
        .expect("a directory that does not exist");
    assert!(matches!(error, BrokerError::Fatal(_)), "{error}");

    let path = dir.path().join("queue.sqlite");
    let too_short = config(Duration::from_millis(1));
    let error = EmbeddedBroker::open(&path, QueueNames::default(), too_short)
        .await
        .err()
        .expect("a lease too short to renew");
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
    assert!(matches!(error, BrokerError::Fatal(_)), "{error}");
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
