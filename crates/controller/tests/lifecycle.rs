//! How the controller lives: concurrency, runners appearing late, lost connections, refused
//! publishes and shutdown, with fake runners, on every backend (the cases at the end say which
//! run where).

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use switchyard_broker::QueueStats;
use switchyard_broker::conformance::amqp::AmqpHarness;
use switchyard_broker::conformance::embedded::EmbeddedHarness;
use switchyard_broker::conformance::memory::MemoryHarness;
use switchyard_broker::conformance::{Harness, LosesConnections};
use switchyard_broker::memory::MemoryBroker;
use switchyard_broker::{Broker, BrokerError, DeadLetter, Deliveries, Message};
use switchyard_controller::{Controller, ControllerConfig, ControllerError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use support::*;

const WITHIN: Duration = Duration::from_secs(20);

/// A runner whose every call takes `delay`.
async fn slow_runner(delay: Duration) -> FakeRunner {
    FakeRunner::start(move |call: Incoming| async move {
        tokio::time::sleep(delay).await;
        ok(call.payload)
    })
    .await
}

fn ids(results: &[switchyard_wire::TaskResult]) -> BTreeSet<String> {
    results.iter().map(|result| result.id.clone()).collect()
}

async fn tasks_run_concurrently_up_to_the_limit<H: Harness>() {
    let runner = slow_runner(Duration::from_millis(300)).await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["slow"])]);
    let running = backend.start(
        ControllerConfig {
            concurrency: 4,
            ..config()
        },
        &registry,
    );
    // The first registry read is done before timing starts.
    backend.submit("warm-up", "slow", json!({})).await;
    backend.results(1, WITHIN).await;

    let started = Instant::now();
    for n in 0..8 {
        backend
            .submit(&format!("t{n}"), "slow", json!({"n": n}))
            .await;
    }
    backend.results(9, WITHIN).await;
    let elapsed = started.elapsed();
    running.stop().await.unwrap();

    let serial = Duration::from_millis(8 * 300);
    assert!(
        elapsed < serial.mul_f64(0.6),
        "8 tasks of 300 ms at concurrency 4 took {elapsed:?} (serial: {serial:?})"
    );
}

async fn a_slow_task_does_not_hold_up_the_others<H: Harness>() {
    let runner = FakeRunner::start(|call: Incoming| async move {
        if call.algorithm == "slow" {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        ok(call.payload)
    })
    .await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["slow", "fast"])]);
    let running = backend.start(
        ControllerConfig {
            concurrency: 2,
            ..config()
        },
        &registry,
    );

    backend.submit("slow", "slow", json!({})).await;
    for n in 0..6 {
        backend
            .submit(&format!("fast{n}"), "fast", json!({"n": n}))
            .await;
    }
    let fast = backend.results(6, Duration::from_millis(2500)).await;
    assert!(
        fast.iter().all(|result| result.id.starts_with("fast")),
        "{fast:?}"
    );
    backend.results(7, WITHIN).await;
    running.stop().await.unwrap();
}

async fn a_runner_registered_after_the_controller_started_is_used<H: Harness>() {
    let backend = Backend::<H>::open().await;
    let registry = Registry::default();
    let config = ControllerConfig {
        no_runner_deadline: Duration::from_secs(30),
        ..config()
    };
    let running = backend.start(config, &registry);

    backend
        .submit("t-early", "late", json!({"hello": "world"}))
        .await;
    let metrics = running.controller.metrics().clone();
    eventually(WITHIN, "a retry while no runner hosts 'late'", || {
        metrics
            .render()
            .contains(r#"switchyard_controller_retries_total{algorithm="unrouted"}"#)
    })
    .await;
    assert!(backend.results_so_far().is_empty());

    let runner = FakeRunner::start(|call: Incoming| async move { ok(call.payload) }).await;
    registry.add(runner.entry("late-runner", &["late"]));
    let results = backend.results(1, WITHIN).await;
    running.stop().await.unwrap();

    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(results[0].runner.as_deref(), Some(runner.base_url.as_str()));
    assert!(results[0].attempts >= 2);
}

async fn shutdown_requeues_unfinished_tasks_and_loses_none<H: Harness>() {
    let runner = slow_runner(Duration::from_millis(400)).await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["slow"])]);
    let config = ControllerConfig {
        concurrency: 2,
        grace_period: Duration::from_millis(100),
        ..config()
    };
    let all: BTreeSet<String> = (0..10).map(|n| format!("t{n}")).collect();
    for id in &all {
        backend.submit(id, "slow", json!({})).await;
    }
    let running = backend.start(config.clone(), &registry);
    backend.results(2, WITHIN).await;
    // Stop while the next calls are in flight: they cannot finish within the 100 ms grace.
    eventually(WITHIN, "two more calls in flight", || {
        runner.calls.count() >= 4
    })
    .await;
    running.stop().await.unwrap();

    // Every task either finished or is back in the queue, none both: a delivery neither settled
    // nor requeued would be missing from the queue (or, on the embedded queue, leased).
    let deadline = Instant::now() + WITHIN;
    let finished = loop {
        let finished = ids(&backend.results_so_far());
        let depth = backend.harness.broker().depths().await.unwrap();
        if finished.len() as u64 + depth.tasks == all.len() as u64 && depth.delayed == 0 {
            break finished;
        }
        assert!(
            Instant::now() < deadline,
            "finished {finished:?}, queue {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(finished.is_subset(&all), "{finished:?}");
    assert!(
        finished.len() <= 4,
        "the in-flight tasks were requeued, not finished: {finished:?}"
    );

    let next = backend.start(config, &registry);
    let results = backend.results(all.len(), WITHIN).await;
    next.stop().await.unwrap();
    assert_eq!(ids(&results), all);
}

async fn shutdown_lets_in_flight_tasks_finish_within_the_grace_period<H: Harness>() {
    let runner = slow_runner(Duration::from_millis(300)).await;
    let backend = Backend::<H>::open().await;
    let registry = Registry::with(vec![runner.entry("r1", &["slow"])]);
    for n in 0..6 {
        backend.submit(&format!("t{n}"), "slow", json!({})).await;
    }
    let running = backend.start(
        ControllerConfig {
            concurrency: 3,
            ..config()
        },
        &registry,
    );
    eventually(WITHIN, "three calls in flight", || {
        runner.calls.count() >= 3
    })
    .await;
    running.stop().await.unwrap();

    backend.wait_for_depth(3, 0).await;
    assert_eq!(
        backend.results(3, WITHIN).await.len(),
        3,
        "the three in flight finished, the rest was never taken"
    );
}

async fn consumption_resumes_after_the_connection_is_lost<H: LosesConnections>() {
    let runner = slow_runner(Duration::from_millis(300)).await;
    let backend = Backend::<H>::open_alone().await;
    let registry = Registry::with(vec![runner.entry("r1", &["slow"])]);
    let running = backend.start(config(), &registry);

    backend.submit("before", "slow", json!({})).await;
    eventually(WITHIN, "the first call in flight", || {
        runner.calls.count() == 1
    })
    .await;
    backend.harness.lose_connections().await;
    backend.submit("after", "slow", json!({})).await;
    eventually(WITHIN, "both tasks finished", || {
        let finished = ids(&backend.results_so_far());
        finished.contains("before") && finished.contains("after")
    })
    .await;
    let text = running.controller.metrics().render();
    running.stop().await.unwrap();
    backend.wait_for_depth(0, 0).await;

    assert!(
        text.contains("switchyard_controller_reconnects_total 1"),
        "{text}"
    );
    assert!(backend.dead_letters().await.is_empty());
}

/// Memory only: no other backend can be told to refuse a publish.
#[tokio::test]
async fn a_refused_result_publish_leaves_the_task_to_be_done_again() {
    let runner = FakeRunner::start(|call: Incoming| async move { ok(call.payload) }).await;
    let backend = Backend::<MemoryHarness>::open().await;
    let broker = backend.harness.broker();
    let registry = Registry::with(vec![runner.entry("r1", &["echo"])]);
    backend.submit("t1", "echo", json!({"n": 1})).await;
    broker.fail_next_publishes(1);
    let running = backend.start(config(), &registry);

    let results = backend.results(1, WITHIN).await;
    eventually(WITHIN, "the task settled", || broker.unsettled() == 0).await;
    running.stop().await.unwrap();

    assert_eq!(results.len(), 1);
    assert!(results[0].is_ok());
    assert_eq!(
        runner.calls.count(),
        2,
        "the first outcome was never confirmed, so the task ran again"
    );
    assert!(broker.queued_tasks().is_empty());
}

/// A broker whose queue does not exist: consuming fails in a way reconnecting cannot fix.
struct MissingQueue;

#[async_trait]
impl Broker for MissingQueue {
    async fn consume_tasks(&self, _prefetch: u16) -> Result<Deliveries, BrokerError> {
        Err(BrokerError::fatal("queue 'tasks' does not exist"))
    }
    async fn publish_task(&self, _message: Message, _delay: Duration) -> Result<(), BrokerError> {
        unreachable!("nothing is consumed, so nothing is published")
    }
    async fn publish_result(&self, _message: Message) -> Result<(), BrokerError> {
        unreachable!("nothing is consumed, so nothing is published")
    }
    async fn dead_letter(&self, _letter: DeadLetter) -> Result<(), BrokerError> {
        unreachable!("nothing is consumed, so nothing is published")
    }
}

#[tokio::test]
async fn a_fatal_broker_error_stops_the_controller_with_it() {
    let controller =
        Controller::new(Arc::new(MissingQueue), config(), Registry::default()).unwrap();
    let error = tokio::time::timeout(WITHIN, controller.run(CancellationToken::new()))
        .await
        .expect("run returns")
        .unwrap_err();
    assert!(matches!(
        error,
        ControllerError::Broker(BrokerError::Fatal { .. })
    ));
    assert_eq!(
        error.to_string(),
        "broker error: queue 'tasks' does not exist"
    );
}

#[tokio::test]
async fn an_invalid_configuration_is_refused() {
    let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    let config = ControllerConfig {
        concurrency: 0,
        ..config()
    };
    let Err(error) = Controller::new(broker, config, Registry::default()) else {
        panic!("concurrency 0 is refused");
    };
    assert_eq!(
        error.to_string(),
        "invalid controller configuration: concurrency must be between 1 and 65535"
    );
}

on_backend!(memory: MemoryHarness;
    tasks_run_concurrently_up_to_the_limit,
    a_slow_task_does_not_hold_up_the_others,
    a_runner_registered_after_the_controller_started_is_used,
    shutdown_requeues_unfinished_tasks_and_loses_none,
    shutdown_lets_in_flight_tasks_finish_within_the_grace_period,
    consumption_resumes_after_the_connection_is_lost,
);
// The slow backends run what depends on the broker: the prefetch window under concurrency,
// requeue at shutdown, and (RabbitMQ, where connections exist) resuming after a lost one. The
// rest is the controller's own logic, the same on any broker.
on_backend!(embedded: EmbeddedHarness;
    tasks_run_concurrently_up_to_the_limit,
    shutdown_requeues_unfinished_tasks_and_loses_none,
);
on_backend!(amqp: AmqpHarness;
    tasks_run_concurrently_up_to_the_limit,
    shutdown_requeues_unfinished_tasks_and_loses_none,
    consumption_resumes_after_the_connection_is_lost,
);
