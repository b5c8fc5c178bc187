//! The broker contract, tested once on every backend (feature `conformance`, for tests).
//!
//! What every [`Broker`] must do is written here, once, as generic async functions in [`cases`],
//! each taking a [`Harness`]: how to open a fresh, isolated broker of one backend, how long it
//! takes to hand back an abandoned delivery, and how its consumer's connection dies. Each
//! backend's test file instantiates every case as a `#[tokio::test]` with [`broker_contract!`]
//! (`tests/memory.rs`, `tests/embedded.rs`, `tests/amqp.rs`); the controller's tests use the same
//! harnesses to run on every backend.
//!
//! New broker behaviour (priorities, cancellation, expiry) is added here, never to one backend:
//! one function in [`cases`] and its name in the list of [`broker_contract!`].

// Test code, though it ships in the library: a failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use crate::{
    Broker, BrokerError, Cancellations, DeadLetterStore, Deliveries, Delivery, Depths, Message,
    QueueStats, ResultSource,
};

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod cases;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod memory;

/// How long anything that should happen may take on a loaded machine before a case fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a case watches for something that must not happen (a delivery beyond prefetch).
pub const QUIET: Duration = Duration::from_millis(300);
/// A requeued delivery is back within this; every harness hands back an abandoned one more
/// slowly (or instantly, where it cannot be told apart), so only the requeue explains it.
pub const REQUEUE_WITHIN: Duration = Duration::from_millis(1500);

/// One backend under test.
#[async_trait]
pub trait Harness: Send + Sync + Sized + 'static {
    /// The backend's broker type, with every opt-in capability the contract covers.
    type Broker: Broker + ResultSource + DeadLetterStore + QueueStats + Cancellations;

    /// A broker on queues no other test uses, removed when the harness drops.
    async fn open() -> Self;

    /// Like [`Harness::open`], and its connections can be killed without touching any other
    /// test's (RabbitMQ: a vhost of its own, which costs a second of `rabbitmqctl`).
    async fn open_alone() -> Self {
        Self::open().await
    }

    /// The broker under test.
    fn broker(&self) -> &Arc<Self::Broker>;

    /// Another handle on the same queues, as a second process (another controller) opens it:
    /// the memory broker's clone, the queue file opened again, a RabbitMQ connection of its own.
    async fn another_handle(&self) -> Arc<Self::Broker>;

    /// How long after a consumer lets go of a delivery without settling it (dropped, or its
    /// connection died) the message is visible again, at most.
    fn redelivery(&self) -> Duration;

    /// A queue a result can be addressed to with `reply_to`, and its consumer.
    async fn reply_queue(&self) -> (String, Deliveries);

    /// Takes the next task on a consumer of its own, then kills that consumer's connection the
    /// way this backend loses one, leaving the delivery unsettled.
    async fn orphan_next_task(&self) -> Orphan;
}

/// A backend whose consumers have connections that can be lost while they run (memory's
/// `disconnect`, RabbitMQ's `close_all_connections`); the embedded queue has none to lose.
#[async_trait]
pub trait LosesConnections: Harness {
    /// Kills every connection of this harness's broker; the broker reopens them on next use.
    /// Only on a harness from [`Harness::open_alone`].
    async fn lose_connections(&self);
}

type LateAck = Pin<Box<dyn Future<Output = Result<(), BrokerError>> + Send>>;

/// A delivery whose consumer's connection died before it was settled.
pub struct Orphan {
    /// The message the dead consumer held.
    pub message: Message,
    late_ack: LateAck,
}

impl Orphan {
    /// An orphan whose `late_ack` is the dead consumer's attempt to settle it after all.
    pub fn new(
        message: Message,
        late_ack: impl Future<Output = Result<(), BrokerError>> + Send + 'static,
    ) -> Self {
        Orphan {
            message,
            late_ack: Box::pin(late_ack),
        }
    }

    /// The dead consumer, back from the grave, acknowledges.
    pub async fn ack(self) -> Result<(), BrokerError> {
        self.late_ack.await
    }
}

impl std::fmt::Debug for Orphan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orphan")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// [`Harness::orphan_next_task`] for a backend that can lose connections: take on the harness's
/// own broker, then lose its connections with the delivery and its stream still held.
pub async fn orphan_by_losing_connections<H: LosesConnections>(harness: &H) -> Orphan {
    let mut tasks = harness.broker().consume_tasks(1).await.expect("consume");
    let delivery = next(&mut tasks).await;
    harness.lose_connections().await;
    // Dropped only now: dropping a stream (closing its channel) would hand the delivery back
    // before the connection died.
    drop(tasks);
    Orphan::new(delivery.message.clone(), delivery.ack())
}

/// A task body with id `id`.
pub fn task(id: &str) -> Message {
    Message::new(format!(
        r#"{{"algorithm":"echo","payload":{{"id":"{id}"}}}}"#
    ))
    .with_id(id)
}

/// The next delivery; panics if none comes within [`WAIT`], or the stream fails or ends.
pub async fn next(deliveries: &mut Deliveries) -> Delivery {
    next_within(deliveries, WAIT)
        .await
        .unwrap_or_else(|| panic!("no delivery within {WAIT:?}"))
}

/// The next delivery if one comes within `within`; panics if the stream fails or ends.
pub async fn next_within(deliveries: &mut Deliveries, within: Duration) -> Option<Delivery> {
    match tokio::time::timeout(within, deliveries.next()).await {
        Err(_) => None,
        Ok(Some(Ok(delivery))) => Some(delivery),
        Ok(Some(Err(error))) => panic!("the delivery stream failed: {error}"),
        Ok(None) => panic!("the delivery stream ended"),
    }
}

/// Polls `handle` until it sees `task_id` cancelled; panics after [`WAIT`].
pub async fn wait_until_cancelled(handle: &dyn Cancellations, task_id: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !handle.is_cancelled(task_id).await.unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{task_id} not seen cancelled within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls the broker's [`QueueStats`] until they are `expected`; panics after [`WAIT`] with the
/// last seen.
pub async fn wait_for_depth<H: Harness>(harness: &H, expected: Depths) {
    wait_for_depth_where(harness, &expected, |depths| *depths == expected).await;
}

/// Polls the broker's [`QueueStats`] until `matches` holds; panics after [`WAIT`] with the last
/// seen and `expected`, which describes what `matches` waits for.
pub async fn wait_for_depth_where<H: Harness>(
    harness: &H,
    expected: &dyn std::fmt::Debug,
    matches: impl Fn(&Depths) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let depth = harness.broker().depths().await.expect("queue depths");
        if matches(&depth) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue depths {depth:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Instantiates cases of the broker contract as `#[tokio::test]`s on one [`Harness`]: every case
/// with `broker_contract!(Harness)`, some with `broker_contract!(Harness; case, case)`.
#[macro_export]
macro_rules! broker_contract {
    ($harness:ty) => {
        $crate::broker_contract!($harness;
            a_round_trip_keeps_every_property,
            an_acked_delivery_is_gone_for_good,
            a_delivery_dropped_unsettled_comes_back_redelivered,
            a_requeued_delivery_comes_back_at_once_redelivered,
            prefetch_bounds_the_unsettled_deliveries,
            a_delayed_task_is_invisible_until_its_delay_passes,
            dead_letters_are_listed_and_requeued_by_key_or_all,
            a_result_goes_to_its_reply_queue_and_not_to_the_results_queue,
            a_result_without_reply_to_goes_to_the_results_queue,
            a_delivery_of_a_dead_connection_comes_back_and_its_late_ack_fails,
            higher_priorities_are_delivered_first_in_publish_order_within_one,
            a_delayed_task_keeps_its_priority_and_goes_first_once_visible,
            a_requeued_dead_letter_keeps_its_priority_and_goes_first,
            queue_stats_count_what_waits_where,
            a_cancel_is_seen_through_every_handle_even_one_opened_after_it,
        );
    };
    ($harness:ty; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                $crate::conformance::cases::$case::<$harness>().await;
            }
        )+
    };
}
