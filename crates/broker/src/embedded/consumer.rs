//! Consuming a queue: the delivery stream (prefetch-bounded, woken by local publishes, polling
//! for everything else) and the lease each delivery carries.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::queue::{self, LeaseToken, Taken};
use super::{Shared, now_ms};
use crate::{Acknowledge, BrokerError, Deliveries, Delivery};

/// The stream of deliveries of `queue`, at most `prefetch` unsettled at once.
pub(super) fn consume(
    shared: Arc<Shared>,
    queue: &str,
    prefetch: u16,
) -> Result<Deliveries, BrokerError> {
    if prefetch == 0 {
        return Err(BrokerError::fatal(
            "prefetch 0 would never deliver anything; use at least 1",
        ));
    }
    let consumer = Consumer {
        wake: shared.waker(queue),
        queue: queue.into(),
        slots: Arc::new(Semaphore::new(usize::from(prefetch))),
        ready: VecDeque::new(),
        shared,
    };
    tracing::debug!(queue, prefetch, "consuming");
    // After a fatal error the stream yields it once and ends; the caller re-consumes.
    Ok(
        futures::stream::unfold(Some(consumer), |consumer| async move {
            let mut consumer = consumer?;
            match consumer.next().await {
                Ok(delivery) => Some((Ok(delivery), Some(consumer))),
                Err(error) => Some((Err(error), None)),
            }
        })
        .boxed(),
    )
}

struct Consumer {
    shared: Arc<Shared>,
    queue: Arc<str>,
    /// One permit per unsettled delivery: the prefetch bound.
    slots: Arc<Semaphore>,
    /// Notified when this process publishes to the queue or requeues onto it.
    wake: Arc<Notify>,
    /// Deliveries taken in one go (one transaction for several free slots), not yet yielded.
    ready: VecDeque<Delivery>,
}

impl Consumer {
    async fn next(&mut self) -> Result<Delivery, BrokerError> {
        loop {
            if let Some(delivery) = self.ready.pop_front() {
                return Ok(delivery);
            }
            let slots = self.free_slots().await;
            self.take(slots).await?;
        }
    }

    /// Waits for one free slot, then claims every other one free right now.
    async fn free_slots(&self) -> Vec<OwnedSemaphorePermit> {
        let first = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the consumer never closes its semaphore");
        let mut slots = vec![first];
        slots.extend(std::iter::from_fn(|| {
            self.slots.clone().try_acquire_owned().ok()
        }));
        slots
    }

    /// Takes up to one message per slot into `ready`, waiting until at least one is visible.
    async fn take(&mut self, mut slots: Vec<OwnedSemaphorePermit>) -> Result<(), BrokerError> {
        let poll = self.shared.config.poll_interval;
        loop {
            // Registered before looking, so a publish landing between the look and the wait
            // still wakes us.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let (queue, max, lease) = (self.queue.clone(), slots.len(), self.shared.lease_ms());
            let outcome = self
                .shared
                .store
                .run("take a message", move |db| {
                    let now = now_ms();
                    queue::take(db, &queue, max, now, now.saturating_add(lease))
                })
                .await;
            let wait = match outcome {
                Ok(outcome) if !outcome.taken.is_empty() => {
                    for (taken, slot) in outcome.taken.into_iter().zip(slots.drain(..)) {
                        self.ready.push_back(self.deliver(taken, slot));
                    }
                    return Ok(());
                }
                Ok(outcome) => outcome.next_visible_at.map_or(poll, |at| {
                    // At least 1 ms: the time is already due when rounding made us look early.
                    let until = u64::try_from(at.saturating_sub(now_ms()))
                        .unwrap_or(0)
                        .max(1);
                    poll.min(Duration::from_millis(until))
                }),
                Err(error) if error.is_transient() => {
                    tracing::warn!(queue = %self.queue, "cannot take a message, retrying: {error:#}");
                    poll
                }
                Err(error) => return Err(error),
            };
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn deliver(&self, taken: Taken, slot: OwnedSemaphorePermit) -> Delivery {
        let redelivered = taken.redelivered();
        tracing::debug!(task = ?taken.message.id, queue = %self.queue, redelivered, "taken");
        let lease = Lease {
            token: taken.token,
            task: taken.message.id.clone(),
            queue: self.queue.clone(),
            renewal: renew_until_settled(
                self.shared.clone(),
                taken.token,
                taken.message.id.clone(),
            ),
            shared: self.shared.clone(),
            _slot: slot,
        };
        Delivery::new(taken.message, redelivered, Box::new(lease))
    }
}

impl Drop for Consumer {
    /// Deliveries taken but never handed to the caller go back at once rather than when their
    /// leases run out.
    fn drop(&mut self) {
        let unseen: Vec<Delivery> = self.ready.drain(..).collect();
        if unseen.is_empty() {
            return;
        }
        // Without a runtime (it is shutting down) the leases simply run out.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for delivery in unseen {
                    if let Err(error) = delivery.requeue().await {
                        tracing::warn!("cannot hand back an unseen delivery: {error:#}");
                    }
                }
            });
        }
    }
}

/// Keeps the lease of one delivery alive until the task is aborted, renewing every third of the
/// lease so one late renewal still leaves time for the next.
fn renew_until_settled(
    shared: Arc<Shared>,
    token: LeaseToken,
    task: Option<String>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(shared.config.lease / 3);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; the take itself just set the lease
        loop {
            ticks.tick().await;
            let lease = shared.lease_ms();
            let renewed = shared
                .store
                .run("renew a lease", move |db| {
                    queue::renew(db, token, now_ms().saturating_add(lease))
                })
                .await;
            match renewed {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(task = ?task, "lease lost: the message was taken again after it ran out, so it will be processed twice");
                    return;
                }
                Err(error) if error.is_transient() => {
                    tracing::warn!(task = ?task, "cannot renew a lease, retrying: {error:#}");
                }
                Err(error) => {
                    tracing::error!(task = ?task, "cannot renew a lease: {error:#}");
                    return;
                }
            }
        }
    })
}

/// The settle handle of one delivery.
struct Lease {
    shared: Arc<Shared>,
    token: LeaseToken,
    /// The message id, for logs.
    task: Option<String>,
    queue: Arc<str>,
    /// Stopped when the delivery is settled or dropped; a dropped delivery's lease then runs out.
    renewal: JoinHandle<()>,
    /// Frees a prefetch slot when the lease is settled or dropped.
    _slot: OwnedSemaphorePermit,
}

impl Lease {
    /// The token no longer matches: the lease ran out and another consumer took the message
    /// (which it will process again), or it was already settled. Like an ack on a closed AMQP
    /// channel: this holder's settlement is void.
    fn lost(&self) -> BrokerError {
        BrokerError::disconnected(format!(
            "lease on message {:?} ran out and it was taken again",
            self.task
        ))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

#[async_trait]
impl Acknowledge for Lease {
    async fn ack(self: Box<Self>) -> Result<(), BrokerError> {
        self.renewal.abort();
        let token = self.token;
        let acked = self
            .shared
            .store
            .run("ack", move |db| queue::ack(db, token))
            .await?;
        if !acked {
            return Err(self.lost());
        }
        tracing::debug!(task = ?self.task, queue = %self.queue, "acked");
        Ok(())
    }

    async fn requeue(self: Box<Self>) -> Result<(), BrokerError> {
        self.renewal.abort();
        let token = self.token;
        let released = self
            .shared
            .store
            .run("requeue", move |db| queue::release(db, token, now_ms()))
            .await?;
        if !released {
            return Err(self.lost());
        }
        tracing::debug!(task = ?self.task, queue = %self.queue, "requeued");
        self.shared.wake(&self.queue);
        Ok(())
    }
}
