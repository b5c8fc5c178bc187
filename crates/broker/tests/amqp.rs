//! `AmqpBroker` against the real RabbitMQ at 127.0.0.1:5672 (scripts/ensure-rabbitmq.sh).
#![cfg(feature = "amqp")]

mod amqp_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use amqp_support::{
    Fixture, TEST_TIERS_MS, close_connections, is_disconnected, maybe_next, next, rabbitmqctl,
    test_config,
};
use futures::StreamExt;
use lapin::options::{BasicGetOptions, QueueDeleteOptions};
use lapin::types::AMQPValue;
use switchyard_broker::amqp::{AmqpBroker, QueueType};
use switchyard_broker::{Broker, BrokerError, DeadLetter, DeadLetterStore, Message, ResultSource};
use switchyard_wire::headers;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(10);

fn task(id: &str) -> Message {
    Message::new(format!(
        r#"{{"algorithm":"echo","payload":{{"id":"{id}"}}}}"#
    ))
    .with_id(id)
}

fn letter(id: &str, reason: &str) -> DeadLetter {
    DeadLetter {
        message: task(id),
        reason: reason.to_owned(),
        attempts: 4,
        last_error: format!("runner said no to {id}"),
    }
}

#[tokio::test]
async fn a_task_round_trips_with_its_properties_and_is_gone_once_acked() {
    let fixture = Fixture::new().await;
    let mut message = task("round-trip");
    message.reply_to = Some("replies-here".into());
    message.correlation_id = Some("corr-7".into());
    message.headers = BTreeMap::from([
        (headers::ATTEMPTS.to_owned(), "2".to_owned()),
        (headers::TRACEPARENT.to_owned(), "00-abc-def-01".to_owned()),
    ]);
    fixture
        .broker
        .publish_task(message.clone(), Duration::ZERO)
        .await
        .unwrap();

    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    let delivery = next(&mut tasks, WAIT).await;
    assert_eq!(delivery.message, message);
    assert!(!delivery.redelivered);
    delivery.ack().await.unwrap();
    drop(tasks);

    let deadline = Instant::now() + WAIT;
    while fixture.message_count(&fixture.queues().tasks).await != 0 {
        assert!(Instant::now() < deadline, "the acked task is still queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    assert!(
        maybe_next(&mut tasks, Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn messages_are_persistent() {
    let fixture = Fixture::new().await;
    fixture
        .broker
        .publish_task(task("persistent"), Duration::ZERO)
        .await
        .unwrap();
    let got = fixture
        .raw_channel()
        .await
        .basic_get(
            fixture.queues().tasks.as_str().into(),
            BasicGetOptions::default(),
        )
        .await
        .unwrap()
        .expect("the task is queued");
    assert_eq!(*got.delivery.properties.delivery_mode(), Some(2));
}

#[tokio::test]
async fn a_delivery_dropped_unsettled_is_delivered_again() {
    let fixture = Fixture::new().await;
    fixture
        .broker
        .publish_task(task("dropped"), Duration::ZERO)
        .await
        .unwrap();
    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    let first = next(&mut tasks, WAIT).await;
    assert!(!first.redelivered);
    // Like a controller that crashed mid-task: nothing settles it, its channel goes away.
    drop(first);
    drop(tasks);

    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    let again = next(&mut tasks, WAIT).await;
    assert_eq!(again.message.id.as_deref(), Some("dropped"));
    assert!(again.redelivered);
    again.ack().await.unwrap();
}

#[tokio::test]
async fn a_requeued_delivery_comes_back_flagged_redelivered() {
    let fixture = Fixture::new().await;
    fixture
        .broker
        .publish_task(task("requeued"), Duration::ZERO)
        .await
        .unwrap();
    let mut tasks = fixture.broker.consume_tasks(1).await.unwrap();
    next(&mut tasks, WAIT).await.requeue().await.unwrap();
    let again = next(&mut tasks, WAIT).await;
    assert_eq!(again.message.id.as_deref(), Some("requeued"));
    assert!(again.redelivered);
    again.ack().await.unwrap();
}

#[tokio::test]
async fn prefetch_bounds_the_unsettled_deliveries() {
    let fixture = Fixture::new().await;
    for id in ["p1", "p2", "p3"] {
        fixture
            .broker
            .publish_task(task(id), Duration::ZERO)
            .await
            .unwrap();
    }
    let mut tasks = fixture.broker.consume_tasks(2).await.unwrap();
    let first = next(&mut tasks, WAIT).await;
    let _second = next(&mut tasks, WAIT).await;
    assert!(
        maybe_next(&mut tasks, Duration::from_millis(300))
            .await
            .is_none()
    );
    first.ack().await.unwrap();
    assert_eq!(
        next(&mut tasks, WAIT).await.message.id.as_deref(),
        Some("p3")
    );
}

#[tokio::test]
async fn a_delayed_task_becomes_visible_after_its_delay_and_within_its_tier() {
    let fixture = Fixture::new().await;
    let delay = Duration::from_millis(400);
    let published = Instant::now();
    fixture
        .broker
        .publish_task(task("later"), delay)
        .await
        .unwrap();
    fixture
        .broker
        .publish_task(task("now"), Duration::ZERO)
        .await
        .unwrap();

    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    let now = next(&mut tasks, WAIT).await;
    assert_eq!(now.message.id.as_deref(), Some("now"));
    now.ack().await.unwrap();
    let later = next(&mut tasks, WAIT).await;
    let waited = published.elapsed();
    assert_eq!(later.message, task("later"));
    assert!(
        waited >= delay,
        "visible after {waited:?}, before its delay"
    );
    // The 500 ms tier bounds the wait; the rest is slack for a loaded machine.
    assert!(waited < Duration::from_secs(3), "took {waited:?}");
    later.ack().await.unwrap();
}

#[tokio::test]
async fn a_short_delay_is_not_held_behind_a_long_one() {
    let fixture = Fixture::new().await;
    let longest = Duration::from_millis(*TEST_TIERS_MS.last().unwrap());
    let published = Instant::now();
    fixture
        .broker
        .publish_task(task("slow"), longest)
        .await
        .unwrap();
    fixture
        .broker
        .publish_task(task("quick"), Duration::from_millis(100))
        .await
        .unwrap();
    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    let first = next(&mut tasks, WAIT).await;
    assert_eq!(first.message.id.as_deref(), Some("quick"));
    assert!(published.elapsed() < longest);
    first.ack().await.unwrap();
    let second = next(&mut tasks, WAIT).await;
    assert_eq!(second.message.id.as_deref(), Some("slow"));
    assert!(published.elapsed() >= longest);
    second.ack().await.unwrap();
}

#[tokio::test]
async fn a_dead_letter_keeps_its_body_and_says_why_it_died() {
    let fixture = Fixture::new().await;
    let mut dead = letter("doomed", "rejected");
    dead.message.body = vec![0, 159, 146, 150, b'{'].into(); // not even UTF-8
    fixture.broker.dead_letter(dead.clone()).await.unwrap();

    let got = fixture
        .raw_channel()
        .await
        .basic_get(
            fixture.queues().dead.as_str().into(),
            BasicGetOptions::default(),
        )
        .await
        .unwrap()
        .expect("the dead letter is queued");
    assert_eq!(got.delivery.data, dead.message.body.to_vec());
    let table = got
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default();
    let header = |name: &str| match table.inner().get(name) {
        Some(AMQPValue::LongString(text)) => text.to_string(),
        other => panic!("header {name} is {other:?}"),
    };
    assert_eq!(header(headers::DEAD_REASON), "rejected");
    assert_eq!(header(headers::DEAD_ERROR), "runner said no to doomed");
    assert_eq!(header(headers::ATTEMPTS), "4");
    assert_eq!(
        got.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str()),
        Some("doomed")
    );
}

#[tokio::test]
async fn dead_letters_are_listed_without_being_removed_and_requeued_by_key_or_all() {
    let fixture = Fixture::new().await;
    for id in ["a", "b", "c"] {
        let mut dead = letter(id, "attempts_exhausted");
        dead.message
            .headers
            .insert(headers::FIRST_SEEN_MS.to_owned(), "1000".to_owned());
        fixture.broker.dead_letter(dead).await.unwrap();
    }
    let listed = fixture.broker.list_dead_letters(10).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|stored| stored.key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(listed[0].letter.reason, "attempts_exhausted");
    assert_eq!(listed[0].letter.attempts, 4);
    assert_eq!(listed[0].letter.last_error, "runner said no to a");
    assert_eq!(listed[0].letter.message.body, task("a").body);
    let limited = fixture.broker.list_dead_letters(2).await.unwrap();
    assert_eq!(limited.len(), 2);
    assert_eq!(fixture.broker.list_dead_letters(10).await.unwrap(), listed);

    let requeued = fixture
        .broker
        .requeue_dead_letters(Some(&["b".to_owned(), "unknown".to_owned()]))
        .await
        .unwrap();
    assert_eq!(requeued, 1);
    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    let replayed = next(&mut tasks, WAIT).await;
    // A fresh start: no attempts, no first-seen time, no dead-letter headers.
    assert_eq!(replayed.message, task("b"));
    replayed.ack().await.unwrap();
    let left = fixture.broker.list_dead_letters(10).await.unwrap();
    let keys: Vec<&str> = left.iter().map(|stored| stored.key.as_str()).collect();
    assert_eq!(keys, ["a", "c"]);

    assert_eq!(fixture.broker.requeue_dead_letters(None).await.unwrap(), 2);
    assert!(
        fixture
            .broker
            .list_dead_letters(10)
            .await
            .unwrap()
            .is_empty()
    );
    let mut ids = BTreeSet::new();
    for _ in 0..2 {
        let delivery = next(&mut tasks, WAIT).await;
        ids.insert(delivery.message.id.clone().unwrap());
        delivery.ack().await.unwrap();
    }
    assert_eq!(ids, BTreeSet::from(["a".to_owned(), "c".to_owned()]));
}

#[tokio::test]
async fn a_task_the_broker_rejects_lands_in_the_dead_letter_queue() {
    let fixture = Fixture::new().await;
    fixture
        .broker
        .publish_task(task("rejected-elsewhere"), Duration::ZERO)
        .await
        .unwrap();
    // Another client (an older worker, a script) rejects it without requeueing.
    let channel = fixture.raw_channel().await;
    let got = channel
        .basic_get(
            fixture.queues().tasks.as_str().into(),
            BasicGetOptions::default(),
        )
        .await
        .unwrap()
        .expect("queued");
    got.delivery
        .reject(lapin::options::BasicRejectOptions { requeue: false })
        .await
        .unwrap();

    let deadline = Instant::now() + WAIT;
    let listed = loop {
        let listed = fixture.broker.list_dead_letters(10).await.unwrap();
        if !listed.is_empty() || Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "rejected-elsewhere");
    assert_eq!(listed[0].letter.reason, "rejected");
    assert_eq!(
        listed[0].letter.last_error,
        format!(
            "dead-lettered by RabbitMQ from '{}'",
            fixture.queues().tasks
        )
    );
}

#[tokio::test]
async fn a_result_goes_to_its_reply_queue() {
    let fixture = Fixture::new().await;
    let (reply_to, mut replies) = fixture.broker.reply_queue().await.unwrap();
    assert!(reply_to.starts_with("amq.gen-"), "server-named: {reply_to}");
    let mut result = Message::new(r#"{"status":"ok"}"#).with_id("rpc-1");
    result.reply_to = Some(reply_to);
    result.correlation_id = Some("rpc-1".into());
    fixture.broker.publish_result(result.clone()).await.unwrap();

    let delivery = next(&mut replies, WAIT).await;
    assert_eq!(delivery.message, result);
    delivery.ack().await.unwrap();
    assert_eq!(fixture.message_count(&fixture.queues().results).await, 0);
}

#[tokio::test]
async fn a_result_without_reply_to_goes_to_the_results_queue() {
    let fixture = Fixture::new().await;
    let result = Message::new(r#"{"status":"ok"}"#).with_id("queued-result");
    fixture.broker.publish_result(result.clone()).await.unwrap();
    let mut results = fixture.broker.consume_results(10).await.unwrap();
    let delivery = next(&mut results, WAIT).await;
    assert_eq!(delivery.message, result);
    delivery.ack().await.unwrap();
}

#[tokio::test]
async fn a_result_for_a_reply_queue_that_is_gone_counts_as_delivered() {
    let fixture = Fixture::new().await;
    let (reply_to, replies) = fixture.broker.reply_queue().await.unwrap();
    // The producer stopped waiting: its exclusive, auto-delete queue goes with its consumer.
    drop(replies);
    let channel = fixture.raw_channel().await;
    let _ = channel
        .queue_delete(reply_to.as_str().into(), QueueDeleteOptions::default())
        .await;
    let mut result = Message::new("late").with_id("late-result");
    result.reply_to = Some(reply_to);
    fixture.broker.publish_result(result).await.unwrap();

    let mut too_long = Message::new("x").with_id("bad-reply-to");
    too_long.reply_to = Some("q".repeat(300));
    fixture.broker.publish_result(too_long).await.unwrap();
    assert_eq!(fixture.message_count(&fixture.queues().results).await, 0);
}

#[tokio::test]
async fn a_deleted_queue_fails_the_publish_then_is_declared_again() {
    let fixture = Fixture::new().await;
    let results = fixture.queues().results.clone();
    fixture
        .raw_channel()
        .await
        .queue_delete(results.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();

    let error = fixture
        .broker
        .publish_result(Message::new("lost?").with_id("r1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, BrokerError::NotConfirmed(text) if text.contains(&results)),
        "{error}"
    );
    assert!(error.is_transient());

    let result = Message::new("kept").with_id("r2");
    fixture.broker.publish_result(result.clone()).await.unwrap();
    let mut deliveries = fixture.broker.consume_results(10).await.unwrap();
    assert_eq!(next(&mut deliveries, WAIT).await.message, result);
}

#[tokio::test]
async fn a_consumer_whose_queue_was_deleted_ends_and_consuming_again_brings_it_back() {
    let fixture = Fixture::new().await;
    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    fixture
        .raw_channel()
        .await
        .queue_delete(
            fixture.queues().tasks.as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    let ended = tokio::time::timeout(WAIT, async { while tasks.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the stream outlived its queue");

    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    fixture
        .broker
        .publish_task(task("after-delete"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(next(&mut tasks, WAIT).await.message, task("after-delete"));
}

#[tokio::test]
async fn publishes_from_concurrent_callers_are_all_confirmed() {
    let fixture = Fixture::new().await;
    let broker = &fixture.broker;
    let publishes = (0..200).map(|n| broker.publish_task(task(&n.to_string()), Duration::ZERO));
    for outcome in futures::future::join_all(publishes).await {
        outcome.unwrap();
    }
    assert_eq!(fixture.message_count(&fixture.queues().tasks).await, 200);
}

#[tokio::test]
async fn a_closed_connection_is_reopened_and_nothing_is_lost() {
    let fixture = Fixture::isolated().await;
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let restarts = AtomicUsize::new(0);
    let published = AtomicUsize::new(0);
    let closed = AtomicBool::new(false);

    // A consumer like the controller's: when its stream ends, it consumes again.
    let consumer = async {
        loop {
            let mut tasks = match fixture.broker.consume_tasks(20).await {
                Ok(tasks) => tasks,
                Err(error) => panic!("consume_tasks after a reconnect: {error}"),
            };
            while let Some(Ok(delivery)) = tasks.next().await {
                let id = delivery.message.id.clone().unwrap();
                // A failed ack means the broker delivers it again: at-least-once.
                if delivery.ack().await.is_ok() {
                    let _ = seen_tx.send(id);
                }
            }
            restarts.fetch_add(1, Ordering::SeqCst);
        }
    };
    // Publishes in waves of concurrent publishes until well after the close, so some are in
    // flight (sent, confirm pending) when the connection goes.
    let publisher = async {
        let mut n = 0;
        while !closed.load(Ordering::SeqCst) || n < 300 {
            let wave = (n..n + 20).map(|id| {
                let broker = &fixture.broker;
                async move {
                    broker
                        .publish_task(task(&id.to_string()), Duration::ZERO)
                        .await
                        .unwrap_or_else(|error| panic!("publish {id} across the close: {error}"))
                }
            });
            futures::future::join_all(wave).await;
            n += 20;
            published.store(n, Ordering::SeqCst);
        }
        n
    };
    let closer = async {
        while published.load(Ordering::SeqCst) < 100 {
            tokio::task::yield_now().await;
        }
        close_connections(fixture.vhost()).await;
        closed.store(true, Ordering::SeqCst);
    };
    let collector = async {
        let (total, ()) = tokio::join!(publisher, closer);
        let mut ids = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while ids.len() < total {
            match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
                Ok(Some(id)) => {
                    ids.insert(id);
                }
                _ => break,
            }
        }
        (total, ids)
    };
    let (total, ids) = tokio::select! {
        never = consumer => never,
        outcome = collector => outcome,
    };
    assert_eq!(
        ids.len(),
        total,
        "distinct tasks consumed of {total} published"
    );
    assert!(
        restarts.load(Ordering::SeqCst) >= 1,
        "the consumer never lost its connection"
    );
}

#[tokio::test]
async fn settling_a_delivery_of_a_closed_connection_is_disconnected_and_it_comes_back() {
    let fixture = Fixture::isolated().await;
    fixture
        .broker
        .publish_task(task("orphan"), Duration::ZERO)
        .await
        .unwrap();
    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    let delivery = next(&mut tasks, WAIT).await;
    close_connections(fixture.vhost()).await;
    // The stream reports the loss (an error, then its end).
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(item) = tasks.next().await {
            if let Err(error) = item {
                assert!(is_disconnected(&error), "{error}");
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its connection");

    let error = delivery.ack().await.unwrap_err();
    assert!(is_disconnected(&error), "{error}");
    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    let again = next(&mut tasks, WAIT).await;
    assert_eq!(again.message.id.as_deref(), Some("orphan"));
    assert!(again.redelivered);
    again.ack().await.unwrap();
}

#[tokio::test]
async fn quorum_queues_are_declared_and_delays_work_through_them() {
    let fixture = Fixture::with(QueueType::Quorum, None).await;
    let types = rabbitmqctl(&["list_queues", "name", "type"]);
    let type_of = |queue: &str| {
        types
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{queue}\t")))
            .map(str::to_owned)
    };
    assert_eq!(type_of(&fixture.queues().tasks).as_deref(), Some("quorum"));
    assert_eq!(type_of(&fixture.queues().dead).as_deref(), Some("quorum"));
    let delay_queue = format!("{}.delay.500", fixture.queues().tasks);
    assert_eq!(type_of(&delay_queue).as_deref(), Some("quorum"));

    let published = Instant::now();
    fixture
        .broker
        .publish_task(task("quorum-later"), Duration::from_millis(300))
        .await
        .unwrap();
    let mut tasks = fixture.broker.consume_tasks(10).await.unwrap();
    let delivery = next(&mut tasks, WAIT).await;
    assert!(published.elapsed() >= Duration::from_millis(300));
    assert_eq!(delivery.message, task("quorum-later"));
    delivery.ack().await.unwrap();
}

#[tokio::test]
async fn redeclaring_a_queue_with_another_type_is_fatal() {
    let classic = Fixture::new().await;
    let mut quorum = classic.config.clone();
    quorum.queue_type = QueueType::Quorum;
    let error = AmqpBroker::connect(quorum).await.err().unwrap();
    assert!(
        matches!(&error, BrokerError::Fatal(text) if text.contains("PRECONDITION_FAILED")),
        "{error}"
    );
}

#[tokio::test]
async fn wrong_credentials_and_unknown_vhosts_are_fatal() {
    let mut config = test_config(QueueType::Classic, None);
    config.url = "amqp://guest:wrong@127.0.0.1:5672/%2f".into();
    let started = Instant::now();
    let error = AmqpBroker::connect(config.clone()).await.err().unwrap();
    assert!(matches!(error, BrokerError::Fatal(_)), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried a refusal"
    );

    config.url = "amqp://guest:guest@127.0.0.1:5672/no-such-vhost".into();
    let error = AmqpBroker::connect(config.clone()).await.err().unwrap();
    assert!(matches!(error, BrokerError::Fatal(_)), "{error}");

    config.url = "not a url".into();
    let error = AmqpBroker::connect(config).await.err().unwrap();
    assert!(matches!(&error, BrokerError::Fatal(text) if text.starts_with("invalid AMQP URL")));
}

#[tokio::test]
async fn an_unreachable_broker_is_disconnected_after_the_reconnect_timeout() {
    let mut config = test_config(QueueType::Classic, None);
    // Nothing listens on port 1.
    config.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    config.reconnect_timeout = Duration::from_millis(800);
    let started = Instant::now();
    let error = AmqpBroker::connect(config).await.err().unwrap();
    assert!(is_disconnected(&error), "{error}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
}
