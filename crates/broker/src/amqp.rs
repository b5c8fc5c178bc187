//! RabbitMQ (AMQP 0-9-1) backend on `lapin`.
//!
//! # Topology
//! Declared idempotently every time a connection opens and before each `consume_*` (so a broker
//! restarted with an empty store, or a queue deleted by hand, comes back):
//! - `<tasks>`: durable task queue; rejects and expiries from other consumers go to the
//!   dead-letter exchange rather than vanishing; a classic one is a priority queue
//!   (`x-max-priority: 9`, a message's `priority` property). RabbitMQ 3.10 refuses
//!   `x-max-priority` on quorum queues, so a quorum task queue serves tasks in arrival order;
//!   an adopted queue without it too, and its adoption warning says so;
//! - `<tasks>.results`: durable, results of tasks that had no `reply_to`;
//! - `<tasks>.dlx`: durable fanout exchange, bound to the durable queue `<tasks>.dead`;
//! - `<tasks>.delay.<ms>`: one durable delay queue per delay tier (see below);
//! - `<tasks>.cancelled`: a stream of cancelled task ids (`x-max-age` of
//!   [`CANCELLATION_RETENTION`](crate::CANCELLATION_RETENTION)), which every controller reads
//!   whole, declared by the first cancel and never with the rest (see [`Cancellations`]);
//!   RabbitMQ 3.9 or later.
//!
//! Every durable queue but the stream gets the configured [`QueueType`] (`x-queue-type`).
//!
//! # Queues declared by someone else
//! RabbitMQ refuses to declare an existing queue with other properties (`PRECONDITION_FAILED`).
//! A task, results or dead-letter queue that already exists that way (the series' producer
//! declares `tasks` not durable, with no arguments) is adopted as it is, with one warning that
//! names the property and what it costs: a queue that is not durable loses its tasks when
//! RabbitMQ restarts. [`TaskQueueProperties::Series`] declares the task queue the series' way
//! when Switchyard comes first, so that producer's own `queue_declare` keeps working. Delay
//! queues are Switchyard's alone and must have its properties: a mismatch there is
//! [`BrokerError::Fatal`] with the command that fixes it (switching a deployment from classic to
//! quorum means deleting its queues first).
//!
//! # Delays
//! RabbitMQ 3.10 has no delayed delivery without a plugin, so a delayed task waits in a delay
//! queue with `x-dead-letter-exchange: ""` and `x-dead-letter-routing-key: <tasks>`: its own
//! `expiration` (the exact, jittered delay in ms) moves it to the task queue when it runs out.
//! Messages only expire at the head of a queue, so one queue for every delay would hold a 0.5 s
//! retry behind a 60 s one. Tiers bound that: a delay goes to the smallest tier `T` that is not
//! shorter than it, where every message expires within `T` of being published, so the head
//! clears by then too. A delayed task therefore becomes visible no earlier than its delay and no
//! later than its tier: with the default power-of-two tiers (512 ms .. 131 s), under twice the
//! delay from 256 ms up, and at its delay when no longer one waits ahead of it. Jitter survives;
//! per-queue TTLs would have rounded every delay up to its tier. Delays longer than the largest
//! tier are shortened to it (and logged).
//!
//! Quorum queues: RabbitMQ 3.10 supports per-message TTL on quorum queues and dead-letters
//! expired messages. Its default quorum dead-lettering is at-most-once (a broker crash between
//! expiry and re-publish loses the message), so quorum delay queues use
//! `x-dead-letter-strategy: at-least-once`, which needs `x-overflow: reject-publish`; the tests
//! check a delayed task goes through a quorum delay queue. The reply queue of
//! [`AmqpBroker::reply_queue`] is always classic: quorum queues cannot be exclusive.
//!
//! # Publishing
//! Messages are persistent (delivery mode 2), published `mandatory` on channels in confirm
//! mode; a publish returns once its confirm arrives. Concurrent publishes do not wait for each
//! other: each awaits only its own confirm, many are in flight on a channel at once.
//! A nack, or a message returned as unroutable, is [`BrokerError::NotConfirmed`]. `lapin`
//! hands a `basic.return` to whichever confirm it resolves next (confirms arrive batched), so a
//! return is only attributable to the right publish when every publish on its channel goes to
//! the same place: there is one channel per destination (task queue, each delay queue, results,
//! dead letters), and one shared channel for replies, where a return (the caller's exclusive
//! reply queue is gone) counts as delivered: nobody is left to read that result, and failing
//! would make the controller retry it forever.
//!
//! # Connections
//! Publishing and consuming use separate connections, as RabbitMQ advises: when a resource alarm
//! blocks publishers, consumers keep acknowledging, which is what frees the resources. A lost
//! connection (broker restart, `rabbitmqctl close_all_connections`) is reopened lazily by the
//! next call that needs it, with backoff, for at most [`AmqpConfig::reconnect_timeout`]; then
//! the call fails with [`BrokerError::Disconnected`]. A publish whose confirm was lost with the
//! connection is published again on the new one: it may arrive twice, never zero times
//! (at-least-once). A consumer stream yields `Err(Disconnected)` and ends with its connection;
//! calling `consume_*` again resumes. Settling a delivery of a dead channel returns
//! `Disconnected`: the broker has already put it back in the queue.

mod cancellations;
mod connection;
mod consume;
mod convert;
mod dead_letters;
mod errors;
mod publish;
mod topology;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{debug, info, warn};

use crate::{
    Broker, BrokerError, Cancellations, DeadLetter, DeadLetterStore, Deliveries, Depths, Message,
    QueueNames, QueueStats, ResultSource, StoredDeadLetter,
};
use cancellations::{Followed, StreamSession};
use connection::Link;
use consume::ConsumeSession;
use publish::{Published, Publishers};
use topology::{Route, Topology};

/// Where and how to reach RabbitMQ, and the topology to declare there.
#[derive(Clone)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:port/vhost`; the default vhost `/` is written `%2f`. The
    /// nodes of a cluster: several URLs separated by commas, tried in turn, so a lost node's
    /// clients move to the next live one.
    pub url: String,
    /// The task queue and the results and dead-letter queues named after it.
    pub queues: QueueNames,
    /// Type of every durable queue declared; must match queues that already exist.
    pub queue_type: QueueType,
    /// How the task queue itself is declared.
    pub task_queue: TaskQueueProperties,
    /// One delay queue per tier; a delayed task waits at least its delay and at most the
    /// smallest tier that is not shorter than it. Whole milliseconds, at least 1 ms.
    pub delay_tiers: Vec<Duration>,
    /// How long one call keeps trying to (re)connect before it fails with `Disconnected`.
    pub reconnect_timeout: Duration,
}

/// The URL holds the password, so logs and panics show the rest of the settings without it.
impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &"<redacted>")
            .field("queues", &self.queues)
            .field("queue_type", &self.queue_type)
            .field("task_queue", &self.task_queue)
            .field("delay_tiers", &self.delay_tiers)
            .field("reconnect_timeout", &self.reconnect_timeout)
            .finish()
    }
}

impl AmqpConfig {
    /// Classic queues, power-of-two delay tiers from 512 ms to 131 s, 30 s to reconnect.
    pub fn new(url: impl Into<String>, queues: QueueNames) -> Self {
        AmqpConfig {
            url: url.into(),
            queues,
            queue_type: QueueType::Classic,
            task_queue: TaskQueueProperties::Switchyard,
            delay_tiers: (9..=17)
                .map(|bits| Duration::from_millis(1 << bits))
                .collect(),
            reconnect_timeout: Duration::from_secs(30),
        }
    }
}

/// RabbitMQ queue type (`x-queue-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    /// Single-node queue; the default, and what a plain `queue_declare` creates.
    #[default]
    Classic,
    /// Raft-replicated queue, for clusters that must survive losing a node.
    Quorum,
}

impl FromStr for QueueType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "classic" => Ok(QueueType::Classic),
            "quorum" => Ok(QueueType::Quorum),
            other => Err(format!(
                "unknown queue type '{other}' (use classic or quorum)"
            )),
        }
    }
}

/// The properties Switchyard declares the task queue with, when it declares it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskQueueProperties {
    /// Durable, dead-lettering to `<tasks>.dlx`, of the configured [`QueueType`]: tasks survive
    /// a broker restart.
    #[default]
    Switchyard,
    /// Exactly what the series' producer declares (`queue_declare(queue='tasks')`): classic,
    /// not durable, no arguments, so that producer's own declaration keeps succeeding when
    /// Switchyard started first. Its tasks are lost if RabbitMQ restarts.
    Series,
}

impl FromStr for TaskQueueProperties {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "switchyard" => Ok(TaskQueueProperties::Switchyard),
            "series" => Ok(TaskQueueProperties::Series),
            other => Err(format!(
                "unknown task queue properties '{other}' (use switchyard or series)"
            )),
        }
    }
}

impl fmt::Display for TaskQueueProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskQueueProperties::Switchyard => "switchyard",
            TaskQueueProperties::Series => "series",
        })
    }
}

/// Names the queues; connections and channels say nothing useful, and the URL holds a password.
impl fmt::Debug for AmqpBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpBroker")
            .field("queues", &self.topology.queues)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for QueueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        })
    }
}

/// A RabbitMQ-backed [`Broker`], [`ResultSource`] and [`DeadLetterStore`].
pub struct AmqpBroker {
    topology: Arc<Topology>,
    publishers: Link<Publishers>,
    consumers: Link<ConsumeSession>,
    /// The cancellation stream's own connection, opened by the first cancel or question: only
    /// controllers and `switchyard cancel` use it, and its outages touch nothing else.
    cancellation_stream: Arc<Link<StreamSession>>,
    /// Started by the first [`Cancellations::is_cancelled`]: only controllers follow the stream.
    cancellations: std::sync::OnceLock<Followed>,
}

/// Largest AMQP frame asked for when the URL sets none (`?frame_max=`). lapin zero-fills a read
/// and a write buffer of 32 frames per connection up front, so RabbitMQ's default of 128 KiB
/// keeps 16 MiB resident per broker (two connections) before any message moves; at 32 KiB that is
/// 4 MiB. Larger messages are simply split into more frames.
const DEFAULT_FRAME_MAX: u32 = 32 * 1024;

/// Consumer prefetch of [`AmqpBroker::reply_queue`]: results are small and each waiter reads
/// its own queue, so this only bounds how many sit unacknowledged in memory.
const REPLY_PREFETCH: u16 = 100;

impl AmqpBroker {
    /// Connects (for at most `reconnect_timeout`) and declares the topology, so a wrong URL,
    /// wrong credentials or conflicting queue arguments fail here rather than on first use.
    pub async fn connect(config: AmqpConfig) -> Result<Self, BrokerError> {
        let uris: Arc<[lapin::uri::AMQPUri]> = config
            .url
            .split(',')
            .enumerate()
            .map(|(n, url)| {
                // The URL itself is not repeated: it holds the password.
                let mut uri = lapin::uri::AMQPUri::from_str(url.trim()).map_err(|error| {
                    BrokerError::fatal(format!("invalid AMQP URL (number {} of the list)", n + 1))
                        .caused_by(error)
                })?;
                uri.query.frame_max.get_or_insert(DEFAULT_FRAME_MAX);
                Ok(uri)
            })
            .collect::<Result<Vec<_>, BrokerError>>()?
            .into();
        let topology = Arc::new(Topology::new(
            config.queues,
            config.queue_type,
            config.task_queue,
            &config.delay_tiers,
        )?);
        let broker = AmqpBroker {
            publishers: Link::new(
                uris.clone(),
                "switchyard-publish",
                topology.clone(),
                config.reconnect_timeout,
            ),
            consumers: Link::new(
                uris.clone(),
                "switchyard-consume",
                topology.clone(),
                config.reconnect_timeout,
            ),
            cancellation_stream: Arc::new(Link::new(
                uris,
                "switchyard-cancellations",
                topology.clone(),
                config.reconnect_timeout,
            )),
            cancellations: std::sync::OnceLock::new(),
            topology,
        };
        broker.publishers.run(|_| async { Ok(()) }).await?;
        info!(
            tasks = %broker.topology.queues.tasks,
            queue_type = %config.queue_type,
            "connected to RabbitMQ"
        );
        Ok(broker)
    }

    /// Declares an exclusive, auto-delete, server-named queue and consumes it: the `reply_to`
    /// of a producer that waits for its results. The queue disappears with the consuming
    /// connection, so its stream ending means results sent afterwards are lost.
    pub async fn reply_queue(&self) -> Result<(String, Deliveries), BrokerError> {
        self.consumers
            .run(|session| async move { session.reply_queue(REPLY_PREFETCH).await })
            .await
    }

    /// Deletes the queues and the exchange this broker declared, with every message in them:
    /// for throwaway deployments (benchmarks, tests) that must not leave queues behind. Stop
    /// every consumer of them first; a consumer that resumes declares them again.
    pub async fn delete_topology(&self) -> Result<(), BrokerError> {
        let topology = &self.topology;
        self.consumers
            .run(|session| async move { session.delete_topology(topology).await })
            .await?;
        info!(tasks = %topology.queues.tasks, "queues deleted");
        Ok(())
    }

    /// Publishes to a fixed destination; a return means the queue was deleted behind our back.
    async fn publish_durably(
        &self,
        route: &Route,
        message: &Message,
        properties: lapin::BasicProperties,
    ) -> Result<(), BrokerError> {
        self.publishers
            .run(|session| {
                let properties = properties.clone();
                async move {
                    let channel = session.channel(route)?;
                    let published = publish::publish(channel, route, &message.body, properties)
                        .await
                        .inspect_err(|refused| {
                            // A channel that saw a quorum queue's leader die can go on nacking
                            // every publish to it after a new leader is elected: the retry
                            // gets a new connection and channels.
                            if matches!(refused, BrokerError::NotConfirmed { .. }) {
                                self.publishers.forget_current();
                            }
                        })?;
                    match published {
                        Published::Confirmed => Ok(()),
                        Published::Returned(reason) => {
                            // Reconnecting declares the topology, and so the queue, again.
                            self.publishers.forget_current();
                            Err(BrokerError::not_confirmed(format!(
                                "{route} did not take the message ({reason}); \
                                 it is declared again on the next connection"
                            )))
                        }
                    }
                }
            })
            .await
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Deliveries, BrokerError> {
        let topology = &self.topology;
        self.consumers
            .run(|session| async move { session.consume(topology, queue, prefetch).await })
            .await
    }
}

#[async_trait]
impl Broker for AmqpBroker {
    async fn consume_tasks(&self, prefetch: u16) -> Result<Deliveries, BrokerError> {
        self.consume(&self.topology.queues.tasks, prefetch).await
    }

    async fn publish_task(&self, message: Message, delay: Duration) -> Result<(), BrokerError> {
        let mut properties = convert::properties_of(&message)?;
        let route = if delay.is_zero() {
            Route::queue(&self.topology.queues.tasks)
        } else {
            let delayed = self.topology.delay_route(delay);
            if delayed.shortened {
                warn!(
                    task_id = message.id.as_deref().unwrap_or_default(),
                    delay_ms = delay.as_millis() as u64,
                    max_ms = delayed.expiration_ms,
                    "delay longer than the largest delay tier; shortened to it"
                );
            }
            properties = properties.with_expiration(delayed.expiration_ms.to_string().into());
            delayed.route
        };
        self.publish_durably(&route, &message, properties).await?;
        debug!(
            task_id = message.id.as_deref().unwrap_or_default(),
            %route,
            delay_ms = delay.as_millis() as u64,
            "task published"
        );
        Ok(())
    }

    async fn publish_result(&self, message: Message) -> Result<(), BrokerError> {
        let task_id = message.id.as_deref().unwrap_or_default();
        let Some(reply_to) = message.reply_to.as_deref() else {
            let route = Route::queue(&self.topology.queues.results);
            let properties = convert::properties_of(&message)?;
            self.publish_durably(&route, &message, properties).await?;
            debug!(task_id, %route, "result published");
            return Ok(());
        };
        let Some(route) = Route::reply(reply_to) else {
            warn!(
                task_id,
                "reply_to is longer than any queue name can be; result dropped"
            );
            return Ok(());
        };
        let properties = convert::properties_of(&message)?;
        let published = self
            .publishers
            .run(|session| {
                let properties = properties.clone();
                let route = &route;
                let body = &message.body;
                async move { publish::publish(session.replies(), route, body, properties).await }
            })
            .await?;
        match published {
            Published::Confirmed => debug!(task_id, %route, "result published to reply queue"),
            // The returned message may be another reply's (see the module doc): both outcomes
            // are "delivered", so only the log line must name the queue the broker reported.
            Published::Returned(reason) => warn!(
                task_id,
                %reason,
                "reply queue does not exist (its producer stopped waiting); result dropped"
            ),
        }
        Ok(())
    }

    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), BrokerError> {
        let properties = convert::dead_letter_properties(&letter)?;
        let route = self.topology.dead_letter_route();
        self.publish_durably(&route, &letter.message, properties)
            .await?;
        info!(
            task_id = letter.message.id.as_deref().unwrap_or_default(),
            reason = %letter.reason,
            attempts = letter.attempts,
            "task dead-lettered"
        );
        Ok(())
    }
}

#[async_trait]
impl ResultSource for AmqpBroker {
    async fn consume_results(&self, prefetch: u16) -> Result<Deliveries, BrokerError> {
        self.consume(&self.topology.queues.results, prefetch).await
    }
}

#[async_trait]
impl QueueStats for AmqpBroker {
    /// `queue.declare` (passive) counts on each queue: RabbitMQ counts ready messages only, so a
    /// task a controller holds unacknowledged is in none of them.
    async fn depths(&self) -> Result<Depths, BrokerError> {
        let topology = &self.topology;
        self.consumers
            .run(|session| async move { dead_letters::depths(&session, topology).await })
            .await
    }
}

/// A stream every controller reads whole; see `amqp::cancellations` for the design and its cost.
#[async_trait]
impl Cancellations for AmqpBroker {
    async fn cancel(&self, task_id: &str) -> Result<(), BrokerError> {
        let cancel = Message::new(bytes::Bytes::new()).with_id(task_id);
        cancellations::append(&self.cancellation_stream, &self.topology, &cancel).await?;
        info!(task_id, stream = %self.topology.queues.cancelled, "cancellation recorded");
        Ok(())
    }

    async fn is_cancelled(&self, task_id: &str) -> Result<bool, BrokerError> {
        let followed = self.cancellations.get_or_init(|| {
            Followed::start(self.cancellation_stream.clone(), self.topology.clone())
        });
        followed.contains(task_id).await
    }
}

#[async_trait]
impl DeadLetterStore for AmqpBroker {
    async fn list_dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, BrokerError> {
        let queue = &self.topology.queues.dead;
        self.consumers
            .run(|session| async move { dead_letters::list(&session, queue, limit).await })
            .await
    }

    async fn requeue_dead_letters(&self, keys: Option<&[String]>) -> Result<usize, BrokerError> {
        let queue = &self.topology.queues.dead;
        let requeued = self
            .consumers
            .run(|session| async move {
                dead_letters::requeue(&session, queue, keys, |message| {
                    self.publish_task(message, Duration::ZERO)
                })
                .await
            })
            .await?;
        info!(requeued, "dead letters requeued");
        Ok(requeued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_the_password_out() {
        let config = AmqpConfig::new(
            "amqp://worker:hunter2@rabbit:5672/%2f",
            QueueNames::new("tasks"),
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
