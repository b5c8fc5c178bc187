//! Measures confirmed-publish and consume throughput; not a timed test (figures depend on the
//! machine). Run: `cargo test -p switchyard-broker --test amqp_throughput -- --ignored --nocapture`
#![cfg(feature = "amqp")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_broker::conformance::amqp::AmqpHarness;
use switchyard_broker::conformance::{Harness, next};
use switchyard_broker::{Broker, Message};

const MESSAGES: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run it by name with --ignored --nocapture"]
async fn publish_with_confirms_and_consume_throughput() {
    let fixture = Arc::new(AmqpHarness::open().await);
    // 50 bytes, like the ceiling measured in /work/shared/dependencies.md.
    let body = "x".repeat(50);
    for publishers in [1, 16, 64, 256] {
        let started = Instant::now();
        let workers = (0..publishers).map(|worker| {
            let fixture = fixture.clone();
            let body = body.clone();
            tokio::spawn(async move {
                for n in (worker..MESSAGES).step_by(publishers) {
                    let message = Message::new(body.clone()).with_id(n.to_string());
                    fixture
                        .broker
                        .publish_task(message, Duration::ZERO)
                        .await
                        .unwrap();
                }
            })
        });
        for worker in futures::future::join_all(workers).await {
            worker.unwrap();
        }
        let rate = MESSAGES as f64 / started.elapsed().as_secs_f64();
        println!("publish, {publishers:>3} concurrent publishers: {rate:>8.0} msg/s");

        let started = Instant::now();
        let mut tasks = fixture.broker.consume_tasks(100).await.unwrap();
        for _ in 0..MESSAGES {
            next(&mut tasks).await.ack().await.unwrap();
        }
        let rate = MESSAGES as f64 / started.elapsed().as_secs_f64();
        println!("consume, prefetch 100, ack each:    {rate:>8.0} msg/s");
    }
}
