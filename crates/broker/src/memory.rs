//! An in-process broker with the semantics of the real ones, for tests of code that sits on top of
//! a [`Broker`].
//!
//! What it keeps from a real broker: a queue hands out its highest-priority message first, in
//! publish order within a priority; a delivery dropped without being settled goes back to the
//! front of its priority marked `redelivered`; at most `prefetch` deliveries per consumer are
//! unsettled at once; a delayed publish is invisible until its delay has passed. What it adds, for
//! tests: a log of every published result and dead letter, reply queues
//! ([`MemoryBroker::reply_queue`], like RabbitMQ's: a result for a `reply_to` nobody consumes is
//! dropped), [`MemoryBroker::disconnect`] to lose
//! the "connection" (streams end, unsettled deliveries are requeued, their acks fail) and
//! [`MemoryBroker::fail_next_publishes`] to make publishes go unconfirmed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::{
    Acknowledge, Broker, BrokerError, Cancellations, DeadLetter, DeadLetterStore, Deliveries,
    Delivery, Depths, Message, QueueStats, ResultSource, StoredDeadLetter,
};
use switchyard_wire::headers;

/// Prefetch of a reply queue's consumer: results are small, one waiter reads each queue.
const REPLY_PREFETCH: u16 = 100;

/// An in-process broker. Clones share the same queues.
#[derive(Clone, Default)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled on every change, so waiting consumers and test helpers re-check the state.
    changed: Notify,
}

#[derive(Default)]
struct State {
    tasks: VecDeque<Queued>,
    /// Results published without `reply_to`, for [`ResultSource`] consumers.
    results_queue: VecDeque<Queued>,
    /// Queues of [`MemoryBroker::reply_queue`], by name.
    replies: HashMap<Arc<str>, VecDeque<Queued>>,
    next_reply: u64,
    /// Deliveries handed out and not yet settled, by delivery tag: a disconnect requeues them.
    unsettled: HashMap<u64, Unsettled>,
    next_tag: u64,
    /// Cancelled by [`MemoryBroker::disconnect`]; every consumer stream watches the token current
    /// when it was opened.
    connection: CancellationToken,
    /// Every published result, RPC replies included, in publish order.
    published_results: Vec<Message>,
    dead_letters: Vec<StoredDeadLetter>,
    next_dead_key: u64,
    /// Tasks published with a delay that has not yet passed.
    delayed: usize,
    /// How many of the next publishes to refuse.
    failing_publishes: usize,
    /// Task ids recorded by [`Cancellations::cancel`]; a test's process never outlives the
    /// retention, so nothing is pruned.
    cancelled: HashSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum QueueKind {
    Tasks,
    Results,
    Reply(Arc<str>),
}

struct Queued {
    message: Message,
    redelivered: bool,
}

struct Unsettled {
    queue: QueueKind,
    message: Message,
}

impl State {
    fn queue(&mut self, kind: &QueueKind) -> &mut VecDeque<Queued> {
        match kind {
            QueueKind::Tasks => &mut self.tasks,
            QueueKind::Results => &mut self.results_queue,
            QueueKind::Reply(name) => self.replies.entry(name.clone()).or_default(),
        }
    }

    /// Puts an unsettled delivery back at the front of its priority, as AMQP does on nack/close.
    fn return_unsettled(&mut self, tag: u64) -> bool {
        let Some(unsettled) = self.unsettled.remove(&tag) else {
            return false;
        };
        let queued = Queued {
            message: unsettled.message,
            redelivered: true,
        };
        enqueue(self.queue(&unsettled.queue), queued, Place::Front);
        true
    }

    fn refuse_publish(&mut self) -> Result<(), BrokerError> {
        if self.failing_publishes == 0 {
            return Ok(());
        }
        self.failing_publishes -= 1;
        Err(BrokerError::not_confirmed(
            "memory broker told to refuse this publish",
        ))
    }
}

/// Where in its priority a message joins a queue.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Behind every message of its priority: a publish.
    Back,
    /// Ahead of every message of its priority: a delivery handed back.
    Front,
}

/// Inserts keeping `queue` ordered by priority, highest first, so `pop_front` takes the next
/// delivery. The priority is capped as the real backends cap it.
fn enqueue(queue: &mut VecDeque<Queued>, mut queued: Queued, place: Place) {
    let priority = queued.message.effective_priority();
    queued.message.priority = priority;
    let at = match place {
        Place::Back => queue.partition_point(|q| q.message.priority >= priority),
        Place::Front => queue.partition_point(|q| q.message.priority > priority),
    };
    queue.insert(at, queued);
}

/// The queues' contents are behind a lock; tests look at them through the broker's methods.
impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBroker").finish_non_exhaustive()
    }
}

impl MemoryBroker {
    /// An empty broker; clone it to give another component the same queues.
    pub fn new() -> Self {
        MemoryBroker::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }

    /// Every result published so far (RPC replies included), oldest first.
    pub fn results(&self) -> Vec<Message> {
        self.state().published_results.clone()
    }

    /// Every dead letter currently stored, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        let state = self.state();
        state
            .dead_letters
            .iter()
            .map(|stored| stored.letter.clone())
            .collect()
    }

    /// Tasks ready for a consumer (not delayed, not handed out).
    pub fn queued_tasks(&self) -> Vec<Message> {
        let state = self.state();
        state
            .tasks
            .iter()
            .map(|queued| queued.message.clone())
            .collect()
    }

    /// Tasks published with a delay that has not yet passed.
    pub fn delayed_tasks(&self) -> usize {
        self.state().delayed
    }

    /// Deliveries handed out and neither acknowledged, requeued nor dropped.
    pub fn unsettled(&self) -> usize {
        self.state().unsettled.len()
    }

    /// Simulates losing the connection: every open consumer stream ends, every unsettled delivery
    /// goes back to its queue, and settling one of those deliveries later fails with
    /// [`BrokerError::Disconnected`]. New `consume_*` calls work at once.
    pub fn disconnect(&self) {
        let mut state = self.state();
        state.connection.cancel();
        state.connection = CancellationToken::new();
        let mut tags: Vec<u64> = state.unsettled.keys().copied().collect();
        // Newest first, so pushing each to the front restores delivery order.
        tags.sort_unstable_by(|a, b| b.cmp(a));
        for tag in tags {
            state.return_unsettled(tag);
        }
        drop(state);
        self.shared.changed.notify_waiters();
    }

    /// Makes the next `count` publishes (tasks, results or dead letters) fail with
    /// [`BrokerError::NotConfirmed`], as a broker that nacks would.
    pub fn fail_next_publishes(&self, count: usize) {
        self.state().failing_publishes = count;
    }

    /// Waits until at least `count` results were published, or `within` passes; returns them all.
    pub async fn wait_for_results(&self, count: usize, within: Duration) -> Vec<Message> {
        self.wait_for(within, |state| state.published_results.len() >= count)
            .await;
        self.results()
    }

    /// Waits until at least `count` dead letters are stored, or `within` passes; returns them all.
    pub async fn wait_for_dead_letters(&self, count: usize, within: Duration) -> Vec<DeadLetter> {
        self.wait_for(within, |state| state.dead_letters.len() >= count)
            .await;
        self.dead_letters()
    }

    async fn wait_for(&self, within: Duration, done: impl Fn(&State) -> bool) {
        let wait = async {
            loop {
                let changed = self.shared.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if done(&self.state()) {
                    return;
                }
                changed.await;
            }
        };
        let _ = tokio::time::timeout(within, wait).await;
    }

    /// Declares a queue of its own and consumes it: the `reply_to` of a producer waiting for its
    /// results, as `AmqpBroker::reply_queue` does on RabbitMQ.
    pub fn reply_queue(&self) -> (String, Deliveries) {
        let mut state = self.state();
        let name: Arc<str> = format!("memory.reply-{}", state.next_reply).into();
        state.next_reply += 1;
        state.replies.insert(name.clone(), VecDeque::new());
        drop(state);
        (
            name.to_string(),
            self.consume(QueueKind::Reply(name), REPLY_PREFETCH),
        )
    }

    fn publish_now(&self, kind: QueueKind, message: Message) {
        let queued = Queued {
            message,
            redelivered: false,
        };
        enqueue(self.state().queue(&kind), queued, Place::Back);
        self.shared.changed.notify_waiters();
    }

    fn consume(&self, kind: QueueKind, prefetch: u16) -> Deliveries {
        let consumer = Consumer {
            shared: self.shared.clone(),
            kind,
            slots: Arc::new(Semaphore::new(usize::from(prefetch.max(1)))),
            connection: self.state().connection.clone(),
        };
        futures::stream::unfold(consumer, |consumer| async move {
            let delivery = consumer.next().await?;
            Some((Ok(delivery), consumer))
        })
        .boxed()
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queues half-updated (every change is
        // one push or remove), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One consumer: a queue, its prefetch slots and the connection it belongs to.
struct Consumer {
    shared: Arc<Shared>,
    kind: QueueKind,
    /// One permit per unsettled delivery: the prefetch bound.
    slots: Arc<Semaphore>,
    connection: CancellationToken,
}

impl Consumer {
    /// The next delivery, or `None` once the connection is lost.
    async fn next(&self) -> Option<Delivery> {
        let slot = tokio::select! {
            slot = self.slots.clone().acquire_owned() => slot.expect("the slots semaphore is never closed"),
            () = self.connection.cancelled() => return None,
        };
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.connection.is_cancelled() {
                return None;
            }
            if let Some((tag, queued)) = self.take() {
                let acker = MemoryAcker {
                    shared: self.shared.clone(),
                    tag,
                    _slot: slot,
                };
                return Some(Delivery::new(
                    queued.message,
                    queued.redelivered,
                    Box::new(acker),
                ));
            }
            tokio::select! {
                () = changed => {}
                () = self.connection.cancelled() => return None,
            }
        }
    }

    fn take(&self) -> Option<(u64, Queued)> {
        let mut state = self.shared.state();
        let queued = state.queue(&self.kind).pop_front()?;
        let tag = state.next_tag;
        state.next_tag += 1;
        state.unsettled.insert(
            tag,
            Unsettled {
                queue: self.kind.clone(),
                message: queued.message.clone(),
            },
        );
        Some((tag, queued))
    }
}

/// Settles one memory delivery; dropping it unsettled puts the message back.
struct MemoryAcker {
    shared: Arc<Shared>,
    tag: u64,
    /// Held until the delivery is settled or dropped: frees one prefetch slot.
    _slot: OwnedSemaphorePermit,
}

impl MemoryAcker {
    fn lost(&self) -> BrokerError {
        BrokerError::disconnected(format!(
            "delivery {} belongs to a lost connection and was requeued",
            self.tag
        ))
    }
}

#[async_trait]
impl Acknowledge for MemoryAcker {
    async fn ack(self: Box<Self>) -> Result<(), BrokerError> {
        let removed = self.shared.state().unsettled.remove(&self.tag).is_some();
        self.shared.changed.notify_waiters();
        if removed { Ok(()) } else { Err(self.lost()) }
    }

    async fn requeue(self: Box<Self>) -> Result<(), BrokerError> {
        let returned = self.shared.state().return_unsettled(self.tag);
        self.shared.changed.notify_waiters();
        if returned { Ok(()) } else { Err(self.lost()) }
    }
}

impl Drop for MemoryAcker {
    fn drop(&mut self) {
        // After ack or requeue the tag is gone and this does nothing.
        if self.shared.state().return_unsettled(self.tag) {
            self.shared.changed.notify_waiters();
        }
    }
}

#[async_trait]
impl QueueStats for MemoryBroker {
    async fn depths(&self) -> Result<Depths, BrokerError> {
        let state = self.state();
        Ok(Depths {
            tasks: state.tasks.len() as u64,
            delayed: state.delayed as u64,
            dead_letters: state.dead_letters.len() as u64,
        })
    }
}

#[async_trait]
impl Cancellations for MemoryBroker {
    async fn cancel(&self, task_id: &str) -> Result<(), BrokerError> {
        self.state().cancelled.insert(task_id.to_owned());
        Ok(())
    }

    async fn is_cancelled(&self, task_id: &str) -> Result<bool, BrokerError> {
        Ok(self.state().cancelled.contains(task_id))
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn consume_tasks(&self, prefetch: u16) -> Result<Deliveries, BrokerError> {
        Ok(self.consume(QueueKind::Tasks, prefetch))
    }

    async fn publish_task(&self, message: Message, delay: Duration) -> Result<(), BrokerError> {
        self.state().refuse_publish()?;
        if delay.is_zero() {
            self.publish_now(QueueKind::Tasks, message);
            return Ok(());
        }
        self.state().delayed += 1;
        let broker = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            broker.state().delayed -= 1;
            broker.publish_now(QueueKind::Tasks, message);
        });
        Ok(())
    }

    async fn publish_result(&self, message: Message) -> Result<(), BrokerError> {
        let mut state = self.state();
        state.refuse_publish()?;
        state.published_results.push(message.clone());
        let queue = match message.reply_to.as_deref() {
            None => Some(&mut state.results_queue),
            // Nobody waits on an unknown reply queue: dropped, as RabbitMQ does.
            Some(reply_to) => state.replies.get_mut(reply_to),
        };
        if let Some(queue) = queue {
            let queued = Queued {
                message,
                redelivered: false,
            };
            enqueue(queue, queued, Place::Back);
        }
        drop(state);
        self.shared.changed.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), BrokerError> {
        let mut state = self.state();
        state.refuse_publish()?;
        let key = state.next_dead_key.to_string();
        state.next_dead_key += 1;
        state.dead_letters.push(StoredDeadLetter { key, letter });
        drop(state);
        self.shared.changed.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl ResultSource for MemoryBroker {
    async fn consume_results(&self, prefetch: u16) -> Result<Deliveries, BrokerError> {
        Ok(self.consume(QueueKind::Results, prefetch))
    }
}

#[async_trait]
impl DeadLetterStore for MemoryBroker {
    async fn list_dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, BrokerError> {
        Ok(self
            .state()
            .dead_letters
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn requeue_dead_letters(&self, keys: Option<&[String]>) -> Result<usize, BrokerError> {
        let mut state = self.state();
        let (chosen, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.dead_letters)
            .into_iter()
            .partition(|stored| keys.is_none_or(|keys| keys.contains(&stored.key)));
        state.dead_letters = kept;
        let count = chosen.len();
        for stored in chosen {
            let mut message = stored.letter.message;
            // A replayed task starts over: a fresh attempt budget and no-runner deadline.
            message.headers.remove(headers::ATTEMPTS);
            message.headers.remove(headers::FIRST_SEEN_MS);
            let queued = Queued {
                message,
                redelivered: false,
            };
            enqueue(&mut state.tasks, queued, Place::Back);
        }
        drop(state);
        self.shared.changed.notify_waiters();
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{next, task};
    use futures::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn disconnect_ends_streams_requeues_and_fails_late_acks() {
        let broker = MemoryBroker::new();
        for id in ["a", "b"] {
            broker.publish_task(task(id), Duration::ZERO).await.unwrap();
        }
        let mut deliveries = broker.consume_tasks(4).await.unwrap();
        let a = next(&mut deliveries).await;
        let b = next(&mut deliveries).await;
        broker.disconnect();
        assert!(deliveries.next().await.is_none(), "the stream ends");
        assert_eq!(
            broker
                .queued_tasks()
                .iter()
                .map(|m| m.id.clone().unwrap())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(matches!(
            a.ack().await,
            Err(BrokerError::Disconnected { .. })
        ));
        assert!(matches!(
            b.requeue().await,
            Err(BrokerError::Disconnected { .. })
        ));
        assert_eq!(
            broker.queued_tasks().len(),
            2,
            "late settles change nothing"
        );

        let mut resumed = broker.consume_tasks(4).await.unwrap();
        let again = next(&mut resumed).await;
        assert_eq!(again.message.id.as_deref(), Some("a"));
        assert!(again.redelivered);
    }

    #[tokio::test]
    async fn every_result_is_logged_and_one_for_an_unknown_reply_queue_is_dropped() {
        let broker = MemoryBroker::new();
        let (reply_to, mut replies) = broker.reply_queue();
        let mut answered = Message::new("answered").with_id("t1");
        answered.reply_to = Some(reply_to);
        let mut unheard = Message::new("unheard").with_id("t2");
        unheard.reply_to = Some("nobody-waits-here".into());
        for result in [&unheard, &answered] {
            broker.publish_result(result.clone()).await.unwrap();
        }
        assert_eq!(broker.results(), [unheard, answered.clone()]);
        assert_eq!(next(&mut replies).await.message, answered);
        assert!(!broker.state().replies.contains_key("nobody-waits-here"));
    }

    #[tokio::test]
    async fn refused_publishes_store_nothing() {
        let broker = MemoryBroker::new();
        broker.fail_next_publishes(3);
        let letter = DeadLetter {
            message: task("a"),
            reason: "rejected".into(),
            attempts: 1,
            last_error: "400".into(),
        };
        assert!(matches!(
            broker.publish_task(task("a"), Duration::ZERO).await,
            Err(BrokerError::NotConfirmed { .. })
        ));
        assert!(broker.publish_result(Message::new("r")).await.is_err());
        assert!(broker.dead_letter(letter.clone()).await.is_err());
        assert!(broker.queued_tasks().is_empty());
        assert!(broker.results().is_empty());
        assert!(broker.dead_letters().is_empty());
        broker.dead_letter(letter.clone()).await.unwrap();
        assert_eq!(broker.dead_letters(), [letter]);
    }

    #[tokio::test]
    async fn waiting_for_results_returns_once_they_arrive() {
        let broker = MemoryBroker::new();
        let publisher = broker.clone();
        tokio::spawn(async move {
            for id in ["x", "y"] {
                publisher
                    .publish_result(Message::new("r").with_id(id))
                    .await
                    .unwrap();
            }
        });
        let results = broker.wait_for_results(2, Duration::from_secs(5)).await;
        assert_eq!(results.len(), 2);
    }
}
