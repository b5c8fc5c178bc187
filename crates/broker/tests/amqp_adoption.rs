//! Queues someone else declared first: the series' producer declares `tasks` not durable and
//! without arguments, which RabbitMQ will not let Switchyard redeclare durable. Against the
//! real local RabbitMQ, each test in a vhost of its own.

mod support;

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use support::Vhost;
use switchyard_broker::amqp::{AmqpBroker, QueueType, TaskQueueProperties};
use switchyard_broker::conformance::next;
use switchyard_broker::{Broker, BrokerError, Message};

/// `queue_declare(queue=name)` with pika's defaults, then `basic_publish` of each body.
async fn declare_and_publish_the_series_way(vhost: &Vhost, queue: &str, bodies: &[&str]) {
    let channel = vhost.channel().await;
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("the series' declaration of a new queue succeeds");
    for body in bodies {
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("published");
    }
}

#[tokio::test]
async fn a_task_queue_declared_the_series_way_is_adopted_with_its_waiting_tasks() {
    let vhost = Vhost::new();
    let config = vhost.config();
    let tasks = config.queues.tasks.clone();
    declare_and_publish_the_series_way(&vhost, &tasks, &[r#"{"text": "waiting"}"#]).await;

    let broker = AmqpBroker::connect(config)
        .await
        .expect("an existing queue with other properties is adopted, not fatal");
    let mut deliveries = broker.consume_tasks(10).await.expect("consume");
    let waiting = next(&mut deliveries).await;
    assert_eq!(&waiting.message.body[..], br#"{"text": "waiting"}"#);
    waiting.ack().await.unwrap();

    broker
        .publish_task(
            Message::new(b"retry".to_vec()).with_id("r"),
            Duration::from_millis(300),
        )
        .await
        .expect("a retry goes through the delay queues back to the adopted queue");
    let retried = next(&mut deliveries).await;
    assert_eq!(retried.message.id.as_deref(), Some("r"));
    retried.ack().await.unwrap();

    let described = vhost.describe(&tasks).expect("the queue still exists");
    assert_eq!(
        described,
        format!("{tasks}\tfalse\t[]"),
        "the queue keeps the properties it was declared with"
    );
    // A second broker (another component) adopts it too, and the series' producer can still
    // declare it: nothing was changed behind its back.
    AmqpBroker::connect(vhost.config_for(&tasks))
        .await
        .expect("adopted again");
    declare_and_publish_the_series_way(&vhost, &tasks, &[]).await;
}

#[tokio::test]
async fn series_properties_declare_the_task_queue_so_the_series_producer_still_can() {
    let vhost = Vhost::new();
    let mut config = vhost.config();
    config.task_queue = TaskQueueProperties::Series;
    let tasks = config.queues.tasks.clone();
    let broker = AmqpBroker::connect(config).await.expect("connect");
    assert_eq!(vhost.describe(&tasks), Some(format!("{tasks}\tfalse\t[]")));
    declare_and_publish_the_series_way(&vhost, &tasks, &[r#"{"n": 1}"#]).await;
    let mut deliveries = broker.consume_tasks(10).await.expect("consume");
    let delivery = next(&mut deliveries).await;
    assert_eq!(&delivery.message.body[..], br#"{"n": 1}"#);
    delivery.ack().await.unwrap();
    // Results and dead letters stay durable: only the producer's queue follows the series.
    let results = vhost.describe(&format!("{tasks}.results")).unwrap();
    assert!(results.contains("\ttrue\t"), "{results}");
}

#[tokio::test]
async fn a_delay_queue_with_other_properties_is_fatal_and_says_how_to_fix_it() {
    let vhost = Vhost::new();
    let config = vhost.config();
    let delay_queue = format!(
        "{}.delay.{}",
        config.queues.tasks,
        config.delay_tiers[0].as_millis()
    );
    declare_and_publish_the_series_way(&vhost, &delay_queue, &[]).await;
    let error = AmqpBroker::connect(config).await.expect_err("fatal");
    assert!(matches!(error, BrokerError::Fatal { .. }), "{error:#}");
    let text = format!("{error:#}");
    for needed in [
        format!("delay queue '{delay_queue}'"),
        "inequivalent arg".to_owned(),
        format!("rabbitmqctl delete_queue {delay_queue}"),
    ] {
        assert!(text.contains(&needed), "{needed:?} missing from: {text}");
    }
    assert!(!text.contains('\n'), "one line: {text}");
}

#[tokio::test]
async fn series_properties_cannot_be_quorum() {
    let vhost = Vhost::new();
    let mut config = vhost.config();
    config.task_queue = TaskQueueProperties::Series;
    config.queue_type = QueueType::Quorum;
    let error = AmqpBroker::connect(config).await.expect_err("refused");
    assert!(
        matches!(&error, BrokerError::Fatal { context: text, .. } if text.contains("--queue-type quorum")),
        "{error}"
    );
}
