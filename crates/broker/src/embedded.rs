//! Embedded backend: a durable queue in one SQLite file, for `switchyard up` on one machine with
//! no RabbitMQ.
//!
//! # Model
//! Every queue (tasks, results, each `reply_to`) is rows of one `messages` table; dead letters
//! have their own table. A message is *visible* once its `visible_at` time has passed. Taking a
//! message gives the consumer a **lease**: `visible_at` moves to the end of the lease and the
//! delivery count goes up, in one IMMEDIATE transaction, so two consumers (threads or processes)
//! never hold the same message at once. While the [`Delivery`](crate::Delivery) lives its lease
//! is renewed in the background; ack deletes the row, requeue makes it visible at once, and a
//! delivery dropped (or a process killed) without settling simply lets the lease run out, after
//! which the message is handed out again with `redelivered = true`.
//!
//! # Durability
//! WAL journal with `synchronous = FULL`: a publish, ack or dead letter returns only after its
//! transaction is committed and synced, so neither `kill -9` nor a power cut loses what was
//! confirmed. The cost is one fsync per commit; concurrent callers share commits (see
//! `store`), which is where the throughput comes from.

mod cancelled;
mod consumer;
mod dead;
mod queue;
mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{
    Broker, BrokerError, CANCELLATION_RETENTION, Cancellations, DeadLetter, DeadLetterStore,
    Deliveries, Depths, Message, QueueNames, QueueStats, ResultSource, StoredDeadLetter,
};
use store::Store;

/// Tuning of the embedded queue.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// How long a taken message stays hidden from other consumers without renewal: after a crash
    /// its messages come back this long after the last renewal.
    pub lease: Duration,
    /// How often an idle consumer looks for work it cannot be woken for: publishes by other
    /// processes. (Publishes in this process wake it at once; delays and leases it times itself.)
    pub poll_interval: Duration,
    /// How long a write waits for another process holding the file's write lock before failing
    /// with a transient error.
    pub busy_timeout: Duration,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl EmbeddedConfig {
    /// Below this the renewal period (a third of the lease) rounds to nothing.
    const MIN_LEASE: Duration = Duration::from_millis(30);

    fn validate(&self) -> Result<(), BrokerError> {
        if self.lease < Self::MIN_LEASE {
            return Err(BrokerError::fatal(format!(
                "embedded queue lease {:?} is shorter than the minimum {:?}",
                self.lease,
                Self::MIN_LEASE
            )));
        }
        if self.poll_interval.is_zero() {
            return Err(BrokerError::fatal(
                "embedded queue poll interval must not be zero",
            ));
        }
        Ok(())
    }
}

/// How many messages a queue holds, by state (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Visible now: waiting for a consumer.
    pub ready: usize,
    /// Held by a consumer whose lease is live.
    pub leased: usize,
    /// Published with a delay that has not passed yet (e.g. a retry waiting for its backoff).
    pub delayed: usize,
}

/// The SQLite-backed broker. Cheap to share behind an `Arc`; every instance opened on the same
/// file (in this process or another) sees the same queues.
pub struct EmbeddedBroker {
    shared: Arc<Shared>,
    names: QueueNames,
}

/// Names the queues; the store is a SQLite connection.
impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// What the broker, its consumer streams and their deliveries all use.
struct Shared {
    store: Store,
    config: EmbeddedConfig,
    /// One per queue consumed in this process, so a local publish wakes its consumers without
    /// waiting for the next poll.
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Shared {
    /// The waker consumers of `queue` wait on, created on first use.
    fn waker(&self, queue: &str) -> Arc<Notify> {
        let mut wakers = self
            .wakers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        wakers.entry(queue.to_owned()).or_default().clone()
    }

    /// Wakes this process's consumers of `queue`, if it has any.
    fn wake(&self, queue: &str) {
        let wakers = self
            .wakers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(waker) = wakers.get(queue) {
            waker.notify_waiters();
        }
    }

    fn lease_ms(&self) -> i64 {
        millis(self.config.lease)
    }
}

impl EmbeddedBroker {
    /// Opens (creating if needed) the queue file at `path`. Fails with [`BrokerError::Fatal`] when
    /// the file is not a Switchyard queue or the configuration is unusable.
    pub async fn open(
        path: impl AsRef<Path>,
        names: QueueNames,
        config: EmbeddedConfig,
    ) -> Result<EmbeddedBroker, BrokerError> {
        config.validate()?;
        let store = Store::open(path.as_ref(), config.busy_timeout).await?;
        tracing::info!(path = %path.as_ref().display(), queue = %names.tasks, "embedded queue open");
        Ok(EmbeddedBroker {
            shared: Arc::new(Shared {
                store,
                config,
                wakers: Mutex::default(),
            }),
            names,
        })
    }

    /// The queue names this broker publishes to and consumes from (for metrics labels).
    pub fn queue_names(&self) -> &QueueNames {
        &self.names
    }

    /// Consumes any queue of the file, e.g. a `reply_to` queue an RPC client waits on.
    pub async fn consume_queue(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Deliveries, BrokerError> {
        consumer::consume(self.shared.clone(), queue, prefetch)
    }

    /// Counts the messages of `queue` by state.
    pub async fn queue_depth(&self, queue: &str) -> Result<QueueDepth, BrokerError> {
        let queue = queue.to_owned();
        self.shared
            .store
            .run("count messages", move |db| {
                queue::depth(db, &queue, now_ms())
            })
            .await
    }

    /// How many dead letters wait to be looked at.
    pub async fn dead_letter_count(&self) -> Result<usize, BrokerError> {
        let dead = self.names.dead.clone();
        self.shared
            .store
            .run("count dead letters", move |db| {
                dead::count_letters(db, &dead)
            })
            .await
    }

    /// Whether a consumer holds the task with this message id right now (its lease is live):
    /// what lets the task API report a task as running.
    pub async fn is_leased(&self, message_id: &str) -> Result<bool, BrokerError> {
        let (tasks, id) = (self.names.tasks.clone(), message_id.to_owned());
        self.shared
            .store
            .run("look up a lease", move |db| {
                queue::is_leased(db, &tasks, &id, now_ms())
            })
            .await
    }

    async fn publish(
        &self,
        queue: &str,
        message: Message,
        delay: Duration,
    ) -> Result<(), BrokerError> {
        let target = queue.to_owned();
        let id = message.id.clone();
        self.shared
            .store
            .run("publish", move |db| {
                let visible_at = now_ms().saturating_add(millis(delay));
                queue::insert(db, &target, &message, visible_at)
            })
            .await?;
        tracing::debug!(task = ?id, queue, ?delay, "published");
        self.shared.wake(queue);
        Ok(())
    }
}

#[async_trait]
impl Broker for EmbeddedBroker {
    async fn consume_tasks(&self, prefetch: u16) -> Result<Deliveries, BrokerError> {
        self.consume_queue(&self.names.tasks, prefetch).await
    }

    async fn publish_task(&self, message: Message, delay: Duration) -> Result<(), BrokerError> {
        self.publish(&self.names.tasks, message, delay).await
    }

    async fn publish_result(&self, message: Message) -> Result<(), BrokerError> {
        let queue = message
            .reply_to
            .clone()
            .unwrap_or_else(|| self.names.results.clone());
        self.publish(&queue, message, Duration::ZERO).await
    }

    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), BrokerError> {
        let dead = self.names.dead.clone();
        let (id, reason) = (letter.message.id.clone(), letter.reason.clone());
        self.shared
            .store
            .run("dead-letter", move |db| {
                dead::bury(db, &dead, &letter, now_ms())
            })
            .await?;
        tracing::debug!(task = ?id, %reason, "dead-lettered");
        Ok(())
    }
}

#[async_trait]
impl QueueStats for EmbeddedBroker {
    async fn depths(&self) -> Result<Depths, BrokerError> {
        let tasks = self.queue_depth(&self.names.tasks).await?;
        Ok(Depths {
            tasks: tasks.ready as u64,
            delayed: tasks.delayed as u64,
            dead_letters: self.dead_letter_count().await? as u64,
        })
    }
}

#[async_trait]
impl ResultSource for EmbeddedBroker {
    async fn consume_results(&self, prefetch: u16) -> Result<Deliveries, BrokerError> {
        self.consume_queue(&self.names.results, prefetch).await
    }
}

#[async_trait]
impl DeadLetterStore for EmbeddedBroker {
    async fn list_dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, BrokerError> {
        let dead = self.names.dead.clone();
        self.shared
            .store
            .run("list dead letters", move |db| dead::list(db, &dead, limit))
            .await
    }

    async fn requeue_dead_letters(&self, keys: Option<&[String]>) -> Result<usize, BrokerError> {
        let keys = keys.map(dead::parse_keys).transpose()?;
        let names = self.names.clone();
        let requeued = self
            .shared
            .store
            .run("requeue dead letters", move |db| {
                dead::requeue(db, &names, keys.as_deref(), now_ms())
            })
            .await?;
        tracing::info!(requeued, queue = %self.names.tasks, "dead letters requeued");
        self.shared.wake(&self.names.tasks);
        Ok(requeued)
    }
}

/// A row per cancelled task id, in the queue file every process opens: a cancel is seen by the
/// next lookup anywhere, at the cost of one primary-key read per lookup.
#[async_trait]
impl Cancellations for EmbeddedBroker {
    async fn cancel(&self, task_id: &str) -> Result<(), BrokerError> {
        let (tasks, id) = (self.names.tasks.clone(), task_id.to_owned());
        self.shared
            .store
            .run("record a cancellation", move |db| {
                let now = now_ms();
                cancelled::record(db, &tasks, &id, now, now - millis(CANCELLATION_RETENTION))
            })
            .await?;
        tracing::info!(task_id, "cancellation recorded");
        Ok(())
    }

    async fn is_cancelled(&self, task_id: &str) -> Result<bool, BrokerError> {
        let (tasks, id) = (self.names.tasks.clone(), task_id.to_owned());
        self.shared
            .store
            .run("look up a cancellation", move |db| {
                cancelled::contains(db, &tasks, &id, now_ms() - millis(CANCELLATION_RETENTION))
            })
            .await
    }
}

/// Wall-clock time in Unix milliseconds: what the file stores, so every process agrees on it.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
