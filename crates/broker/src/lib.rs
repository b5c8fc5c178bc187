//! The broker seam: what the controller needs from a queue, and nothing more.
//!
//! [`Broker`] is the one trait every backend implements: consume tasks with acknowledgement,
//! publish with confirmation (now or after a delay), publish results, dead-letter. Capabilities
//! only some callers need are opt-in traits: [`ResultSource`] (read the results queue, for `up`'s
//! task store), [`DeadLetterStore`] (list and replay dead letters, for the CLI), [`QueueStats`]
//! (queue depths, for the dashboard) and [`Cancellations`] (cancelled task ids every controller
//! sees, for deployments without `up`'s task store).
//!
//! Backends:
//! - [`amqp::AmqpBroker`] (feature `amqp`): RabbitMQ or any AMQP 0-9-1 broker, on `lapin`;
//! - [`embedded::EmbeddedBroker`] (feature `embedded`): a durable queue in SQLite, for one machine;
//! - [`memory::MemoryBroker`]: in-process, for tests of code that sits on top of a broker.
//!
//! **Architecture Invariant:** a backend confirms a publish only once the message is durable
//! (broker confirm, SQLite commit); the controller acknowledges a task only after the publish of its
//! outcome (result, retry or dead letter) is confirmed. Together they make delivery at-least-once.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod memory;

/// A message on a queue: the body, untouched, and the properties Switchyard reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// The task id (AMQP `message_id`). `None` when the producer set none: the controller then
    /// generates one and logs it.
    pub id: Option<String>,
    /// The raw body; a dead letter keeps it byte for byte.
    pub body: Bytes,
    /// Where the producer wants the result (RPC); `None` sends it to the results queue.
    pub reply_to: Option<String>,
    /// Copied onto the result, so an RPC producer can match it to its request.
    pub correlation_id: Option<String>,
    /// Switchyard's own headers (see `switchyard_wire::headers`), string-valued.
    pub headers: BTreeMap<String, String>,
    /// 0 to [`MAX_PRIORITY`]; a consumer is handed the highest-priority visible message first,
    /// first in first out within one priority (AMQP `priority`). 0, the default, is what a
    /// producer that says nothing gets. Backends deliver a larger value as [`MAX_PRIORITY`], as
    /// RabbitMQ does.
    pub priority: u8,
}

/// The highest task priority (RabbitMQ's `x-max-priority` of the task queue).
pub const MAX_PRIORITY: u8 = 9;

impl Message {
    /// A message of `body` with no id, headers or priority.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Message {
            body: body.into(),
            ..Message::default()
        }
    }

    /// The same message with the task id `id`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The same message with `priority` (0 to [`MAX_PRIORITY`]; more counts as the most).
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// The priority backends order by: [`Message::priority`], capped at [`MAX_PRIORITY`].
    pub fn effective_priority(&self) -> u8 {
        self.priority.min(MAX_PRIORITY)
    }

    /// The value of the header `name`, if the producer set it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A consumed message and the right to settle it. Dropping a delivery without settling it leaves
/// it unacknowledged: the backend hands it out again (AMQP on channel close, embedded when the
/// lease ends), so a crash between consume and ack never loses it.
pub struct Delivery {
    /// What was consumed.
    pub message: Message,
    /// The backend saw this message delivered before (AMQP `redelivered`, an expired lease).
    pub redelivered: bool,
    acker: Box<dyn Acknowledge>,
}

impl Delivery {
    /// A delivery that `acker` settles; backends build them, tests build them by hand.
    pub fn new(message: Message, redelivered: bool, acker: Box<dyn Acknowledge>) -> Self {
        Delivery {
            message,
            redelivered,
            acker,
        }
    }

    /// Removes the message from its queue. Call only after its outcome is durably published.
    pub async fn ack(self) -> Result<(), BrokerError> {
        self.acker.ack().await
    }

    /// Hands the message back to the queue at once, for another consumer (used on shutdown).
    pub async fn requeue(self) -> Result<(), BrokerError> {
        self.acker.requeue().await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}

/// Settles one delivery; each backend implements it over its own handle.
#[async_trait]
pub trait Acknowledge: Send + Sync {
    /// Removes the message from its queue for good.
    async fn ack(self: Box<Self>) -> Result<(), BrokerError>;
    /// Hands the message back to its queue at once.
    async fn requeue(self: Box<Self>) -> Result<(), BrokerError>;
}

/// A stream of deliveries. It ends, or yields an error, when the connection behind it is lost:
/// the consumer then calls `consume_*` again (with backoff) to resume.
pub type Deliveries = BoxStream<'static, Result<Delivery, BrokerError>>;

/// A dead letter: the original message, untouched, and why it died.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The task as it arrived, body and properties intact, so it can be replayed.
    pub message: Message,
    /// A short machine-readable reason, e.g. `rejected`, `no_runner`, `attempts_exhausted`.
    pub reason: String,
    /// Tries made before it died.
    pub attempts: u32,
    /// The last error seen, for a human.
    pub last_error: String,
}

/// What the controller needs from a queue.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Consumes the task queue with manual acknowledgement, at most `prefetch` unsettled at once.
    async fn consume_tasks(&self, prefetch: u16) -> Result<Deliveries, BrokerError>;

    /// Publishes a task, visible to consumers after `delay` (zero: at once). Returns once the
    /// message is durable. Retries use the delay, so a waiting task holds no consumer slot.
    async fn publish_task(&self, message: Message, delay: Duration) -> Result<(), BrokerError>;

    /// Publishes a result to `reply_to` if set (RPC), else to the results queue. Returns once
    /// the result is durable (or, for a transient reply queue, accepted by the broker).
    async fn publish_result(&self, message: Message) -> Result<(), BrokerError>;

    /// Publishes a dead letter to the dead-letter queue. Returns once it is durable.
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), BrokerError>;
}

/// Opt-in: read the results queue (results of tasks that had no `reply_to`).
#[async_trait]
pub trait ResultSource: Send + Sync + 'static {
    /// Consumes the results queue with manual acknowledgement, at most `prefetch` unsettled.
    async fn consume_results(&self, prefetch: u16) -> Result<Deliveries, BrokerError>;
}

/// A dead letter as stored, with the handle used to replay it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDeadLetter {
    /// Backend-specific handle for [`DeadLetterStore::requeue`].
    pub key: String,
    /// The dead letter itself.
    pub letter: DeadLetter,
}

/// Opt-in: see and replay dead letters.
#[async_trait]
pub trait DeadLetterStore: Send + Sync + 'static {
    /// Up to `limit` dead letters, oldest first, without removing them.
    async fn list_dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, BrokerError>;
    /// Moves the given dead letters (all of them when `keys` is `None`) back to the task queue with
    /// their attempts reset; returns how many were requeued.
    async fn requeue_dead_letters(&self, keys: Option<&[String]>) -> Result<usize, BrokerError>;
}

/// How long a backend keeps a cancellation: a task that waits longer than this before a
/// controller takes it may run after all. A week outlasts any retry schedule and any queue a
/// deployment lets grow, and bounds what every controller holds in memory.
pub const CANCELLATION_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Opt-in: cancellations recorded on the broker itself, so every controller consuming its task
/// queue sees them, whichever process recorded them (`switchyard cancel --amqp`, `up`).
#[async_trait]
pub trait Cancellations: Send + Sync + 'static {
    /// Records that the task `task_id` must not run; returns once the record is durable.
    async fn cancel(&self, task_id: &str) -> Result<(), BrokerError>;

    /// Whether `task_id` was cancelled, through this handle or any other on the same broker,
    /// within [`CANCELLATION_RETENTION`]. A cancel recorded before this handle's first call is
    /// always seen; a later one once it reaches this handle (RabbitMQ: the stream's delivery
    /// latency, milliseconds).
    async fn is_cancelled(&self, task_id: &str) -> Result<bool, BrokerError>;
}

/// How many messages wait where, as a dashboard shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depths {
    /// Tasks a consumer may take now; not those a consumer holds unacknowledged.
    pub tasks: u64,
    /// Tasks published with a delay that has not passed yet: retries waiting for their backoff.
    pub delayed: u64,
    /// Dead letters waiting to be looked at or replayed.
    pub dead_letters: u64,
}

/// Opt-in: count what waits in the queues, without taking anything.
#[async_trait]
pub trait QueueStats: Send + Sync + 'static {
    /// The depths now; a backend counts them without taking or locking messages.
    async fn depths(&self) -> Result<Depths, BrokerError>;
}

/// What caused a broker failure: lapin's, SQLite's or the OS's own error, or a broker failure
/// underneath (the last refused connection attempt).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A broker failure, saying whether trying again can help: what Switchyard was doing, and the
/// cause as its `source`. `{}` shows the first, `{:#}` both, joined by ": " as anyhow does.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The connection or channel is gone; reconnecting and retrying will likely work.
    Disconnected {
        /// What Switchyard was doing.
        context: String,
        /// The error underneath, when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The broker refused the publish (nack, queue limit): retry later.
    NotConfirmed {
        /// What Switchyard was doing.
        context: String,
        /// The error underneath, when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// Misconfiguration or a broken store: retrying the same thing will fail the same way.
    Fatal {
        /// What Switchyard was doing.
        context: String,
        /// The error underneath, when there is one.
        #[source]
        source: Option<Cause>,
    },
}

impl BrokerError {
    /// The connection was lost while doing `context`.
    pub fn disconnected(context: impl Into<String>) -> Self {
        BrokerError::Disconnected {
            context: context.into(),
            source: None,
        }
    }

    /// The broker refused the publish described by `context`.
    pub fn not_confirmed(context: impl Into<String>) -> Self {
        BrokerError::NotConfirmed {
            context: context.into(),
            source: None,
        }
    }

    /// Doing `context` failed in a way retrying cannot fix.
    pub fn fatal(context: impl Into<String>) -> Self {
        BrokerError::Fatal {
            context: context.into(),
            source: None,
        }
    }

    /// The same failure, caused by `cause`.
    pub fn caused_by(mut self, cause: impl Into<Cause>) -> Self {
        let (BrokerError::Disconnected { source, .. }
        | BrokerError::NotConfirmed { source, .. }
        | BrokerError::Fatal { source, .. }) = &mut self;
        *source = Some(cause.into());
        self
    }

    /// What Switchyard was doing, without the kind's prefix or the cause.
    pub fn context(&self) -> &str {
        let (BrokerError::Disconnected { context, .. }
        | BrokerError::NotConfirmed { context, .. }
        | BrokerError::Fatal { context, .. }) = self;
        context
    }

    /// Whether trying again (after reconnecting) may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, BrokerError::Fatal { .. })
    }
}

impl std::fmt::Display for BrokerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            BrokerError::Disconnected { .. } => "broker connection lost",
            BrokerError::NotConfirmed { .. } => "broker did not confirm the publish",
            BrokerError::Fatal { .. } => "broker error",
        };
        write!(f, "{kind}: {}", self.context())?;
        if f.alternate() {
            let mut cause = std::error::Error::source(self);
            while let Some(error) = cause {
                write!(f, ": {error}")?;
                cause = error.source();
            }
        }
        Ok(())
    }
}

/// The queue names one topology uses, all derived from the task queue's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    /// The task queue producers publish to.
    pub tasks: String,
    /// `<tasks>.results`: results of tasks without `reply_to`.
    pub results: String,
    /// `<tasks>.dead`: the dead letters.
    pub dead: String,
    /// Where cancelled task ids are recorded (RabbitMQ: a stream; see [`Cancellations`]).
    pub cancelled: String,
}

impl QueueNames {
    /// The names of the topology around the task queue `tasks`.
    pub fn new(tasks: impl Into<String>) -> Self {
        let tasks = tasks.into();
        QueueNames {
            results: format!("{tasks}.results"),
            dead: format!("{tasks}.dead"),
            cancelled: format!("{tasks}.cancelled"),
            tasks,
        }
    }
}

impl Default for QueueNames {
    fn default() -> Self {
        QueueNames::new("tasks")
    }
}
