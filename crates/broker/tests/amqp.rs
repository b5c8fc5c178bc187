//! `AmqpBroker` against the real RabbitMQ at 127.0.0.1:5672 (scripts/ensure-rabbitmq.sh): the
//! broker contract, then what only RabbitMQ does (its topology, queue types, tiers of delay
//! queues, reconnecting, refusals).
#![cfg(feature = "amqp")]

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicGetOptions, QueueDeleteOptions};
use lapin::types::AMQPValue;
use support::is_disconnected;
use switchyard_broker::amqp::{AmqpBroker, QueueType};
use switchyard_broker::conformance::amqp::{AmqpHarness, TEST_TIERS_MS, rabbitmqctl, test_config};
use switchyard_broker::conformance::{Harness, LosesConnections, WAIT, next, task};
use switchyard_broker::{
    Broker, BrokerError, Cancellations, DeadLetter, DeadLetterStore, Message, ResultSource,
};
use switchyard_wire::headers;
use tokio::time::Instant;

mod contract {
    switchyard_broker::broker_contract!(super::AmqpHarness);
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
async fn messages_are_persistent() {
    let fixture = AmqpHarness::open().await;
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
async fn a_short_delay_is_not_held_behind_a_long_one() {
    let fixture = AmqpHarness::open().await;
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
    let first = next(&mut tasks).await;
    assert_eq!(first.message.id.as_deref(), Some("quick"));
    assert!(published.elapsed() < longest);
    first.ack().await.unwrap();
    let second = next(&mut tasks).await;
    assert_eq!(second.message.id.as_deref(), Some("slow"));
    assert!(published.elapsed() >= longest);
    second.ack().await.unwrap();
}

#[tokio::test]
async fn a_dead_letter_keeps_its_body_and_says_why_it_died() {
    let fixture = AmqpHarness::open().await;
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
async fn a_task_the_broker_rejects_lands_in_the_dead_letter_queue() {
    let fixture = AmqpHarness::open().await;
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
async fn a_result_for_a_reply_queue_that_is_gone_counts_as_delivered() {
    let fixture = AmqpHarness::open().await;
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
    let fixture = AmqpHarness::open().await;
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
        matches!(&error, BrokerError::NotConfirmed { .. })
            && format!("{error:#}").contains(&results),
        "{error:#}"
    );
    assert!(error.is_transient());

    let result = Message::new("kept").with_id("r2");
    fixture.broker.publish_result(result.clone()).await.unwrap();
    let mut deliveries = fixture.broker.consume_results(10).await.unwrap();
    assert_eq!(next(&mut deliveries).await.message, result);
}

#[tokio::test]
async fn a_consumer_whose_queue_was_deleted_ends_and_consuming_again_brings_it_back() {
    let fixture = AmqpHarness::open().await;
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
    assert_eq!(next(&mut tasks).await.message, task("after-delete"));
}

#[tokio::test]
async fn publishes_from_concurrent_callers_are_all_confirmed() {
    let fixture = AmqpHarness::open().await;
    let broker = &fixture.broker;
    let publishes = (0..200).map(|n| broker.publish_task(task(&n.to_string()), Duration::ZERO));
    for outcome in futures::future::join_all(publishes).await {
        outcome.unwrap();
    }
    assert_eq!(fixture.message_count(&fixture.queues().tasks).await, 200);
}

#[tokio::test]
async fn a_closed_connection_is_reopened_and_nothing_is_lost() {
    let fixture = AmqpHarness::open_alone().await;
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
        fixture.lose_connections().await;
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
async fn quorum_queues_are_declared_and_delays_work_through_them() {
    let fixture = AmqpHarness::with(QueueType::Quorum, None).await;
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
    let delivery = next(&mut tasks).await;
    assert!(published.elapsed() >= Duration::from_millis(300));
    assert_eq!(delivery.message, task("quorum-later"));
    delivery.ack().await.unwrap();
}

#[tokio::test]
async fn redeclaring_a_queue_with_another_type_is_fatal() {
    let classic = AmqpHarness::open().await;
    let mut quorum = classic.config.clone();
    quorum.queue_type = QueueType::Quorum;
    let error = AmqpBroker::connect(quorum).await.err().unwrap();
    assert!(matches!(&error, BrokerError::Fatal { .. }), "{error:#}");
    // RabbitMQ's own words, as lapin's error: the cause, not a copy of its text.
    let cause = std::error::Error::source(&error).expect("a cause");
    assert!(cause.downcast_ref::<lapin::Error>().is_some(), "{cause:?}");
    assert!(cause.to_string().contains("PRECONDITION_FAILED"), "{cause}");
    assert!(
        !error.to_string().contains("PRECONDITION_FAILED"),
        "{error}"
    );
    assert!(
        format!("{error:#}").contains("PRECONDITION_FAILED"),
        "{error:#}"
    );
}

#[tokio::test]
async fn wrong_credentials_and_unknown_vhosts_are_fatal() {
    let mut config = test_config(QueueType::Classic, None);
    config.url = "amqp://guest:wrong@127.0.0.1:5672/%2f".into();
    let started = Instant::now();
    let error = AmqpBroker::connect(config.clone()).await.err().unwrap();
    assert!(matches!(error, BrokerError::Fatal { .. }), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried a refusal"
    );

    config.url = "amqp://guest:guest@127.0.0.1:5672/no-such-vhost".into();
    let error = AmqpBroker::connect(config.clone()).await.err().unwrap();
    assert!(matches!(error, BrokerError::Fatal { .. }), "{error}");

    config.url = "not a url".into();
    let error = AmqpBroker::connect(config).await.err().unwrap();
    assert!(
        matches!(&error, BrokerError::Fatal { context: text, .. } if text.starts_with("invalid AMQP URL"))
    );
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

#[tokio::test]
async fn a_list_of_nodes_is_tried_in_turn_and_a_bad_one_is_named_by_position() {
    let mut config = test_config(QueueType::Classic, None);
    // The first node is down (nothing listens on port 1): the client moves on to the live one.
    let live = config.url.clone();
    config.url = format!("amqp://guest:guest@127.0.0.1:1/%2f, {live}");
    let broker = AmqpBroker::connect(config.clone()).await.unwrap();
    broker
        .publish_task(task("via-the-second-node"), Duration::ZERO)
        .await
        .unwrap();
    let mut tasks = broker.consume_tasks(1).await.unwrap();
    assert_eq!(
        next(&mut tasks).await.message.id.as_deref(),
        Some("via-the-second-node")
    );
    broker.delete_topology().await.unwrap();

    config.url = format!("{live},amqp://guest:secret@[::1");
    let error = AmqpBroker::connect(config).await.err().unwrap();
    let shown = format!("{error:#}");
    assert!(shown.contains("number 2 of the list"), "{shown}");
    assert!(
        !shown.contains("secret"),
        "the password is not repeated: {shown}"
    );
}

#[tokio::test]
async fn an_unusable_cancellation_stream_holds_no_task_up() {
    // The stream's name taken by a classic queue: RabbitMQ refuses to declare the stream, as it
    // does for seconds to minutes while a failed node brings a stream back.
    let fixture = AmqpHarness::open().await;
    fixture
        .raw_channel()
        .await
        .queue_declare(
            fixture.queues().cancelled.as_str().into(),
            lapin::options::QueueDeclareOptions::durable(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let broker = &fixture.broker;

    let refused = broker.cancel("doomed").await.unwrap_err();
    assert!(
        refused.to_string().contains("delete it"),
        "the cancel says what to do: {refused:#}"
    );
    let first = Instant::now();
    let unknown = broker.is_cancelled("t1").await.unwrap_err();
    assert!(is_disconnected(&unknown), "{unknown:#}");
    assert!(
        first.elapsed() < WAIT,
        "the first question waited {:?}",
        first.elapsed()
    );
    let second = Instant::now();
    broker.is_cancelled("t2").await.unwrap_err();
    assert!(
        second.elapsed() < Duration::from_millis(500),
        "a question after a vain wait waits again: {:?}",
        second.elapsed()
    );

    // Tasks go on meanwhile.
    broker
        .publish_task(task("t3"), Duration::ZERO)
        .await
        .unwrap();
    let mut tasks = broker.consume_tasks(1).await.unwrap();
    let delivery = next(&mut tasks).await;
    assert_eq!(delivery.message.id.as_deref(), Some("t3"));
    delivery.ack().await.unwrap();
}
