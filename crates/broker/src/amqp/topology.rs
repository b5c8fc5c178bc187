//! The queues and exchange of one deployment (see the module doc of `amqp` for why), where each
//! publish goes, and their declaration.

use std::fmt;
use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ExchangeKind};
use tracing::warn;

use super::errors::broker_error;
use super::{QueueType, TaskQueueProperties};
use crate::{BrokerError, CANCELLATION_RETENTION, MAX_PRIORITY, QueueNames};

/// Where a publish goes: an exchange (`""` is the default exchange) and a routing key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Route {
    pub(crate) exchange: String,
    pub(crate) routing_key: String,
}

impl Route {
    /// Straight to a queue, through the default exchange.
    pub(crate) fn queue(name: &str) -> Self {
        Route {
            exchange: String::new(),
            routing_key: name.to_owned(),
        }
    }

    /// To a producer's reply queue; `None` when the name cannot be a queue name (over 255
    /// bytes).
    pub(crate) fn reply(reply_to: &str) -> Option<Self> {
        ShortString::try_new(reply_to).ok()?;
        Some(Route::queue(reply_to))
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exchange.is_empty() {
            write!(f, "queue '{}'", self.routing_key)
        } else {
            write!(f, "exchange '{}'", self.exchange)
        }
    }
}

/// Where a delayed task waits, and the `expiration` it waits with.
#[derive(Debug, PartialEq)]
pub(crate) struct DelayedRoute {
    pub(crate) route: Route,
    pub(crate) expiration_ms: u64,
    /// The delay exceeded the largest tier and was cut to it.
    pub(crate) shortened: bool,
}

#[derive(Debug)]
pub(crate) struct Topology {
    pub(crate) queues: QueueNames,
    /// Fanout exchange in front of the dead-letter queue: RabbitMQ dead-letters rejected or
    /// expired tasks through it, and operators can bind more queues (alerts, archives).
    dead_letter_exchange: String,
    queue_type: QueueType,
    /// How the task queue is declared: Switchyard's durable queue, or the series' plain one.
    task_queue: TaskQueueProperties,
    /// Queues adopted as they are: said once, and only checked for existence from then on.
    adopted: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Ascending tier lengths in ms, each with its queue `<tasks>.delay.<ms>`.
    delay_tiers: Vec<(u64, String)>,
}

impl Topology {
    pub(crate) fn new(
        queues: QueueNames,
        queue_type: QueueType,
        task_queue: TaskQueueProperties,
        delay_tiers: &[Duration],
    ) -> Result<Self, BrokerError> {
        if task_queue == TaskQueueProperties::Series && queue_type == QueueType::Quorum {
            return Err(BrokerError::fatal(
                "--task-queue-properties series declares a classic queue that is not durable, \
                 and --queue-type quorum a durable replicated one: choose one"
                    .to_owned(),
            ));
        }
        let mut tiers: Vec<u64> = delay_tiers
            .iter()
            .map(|tier| u64::try_from(tier.as_millis()).unwrap_or(u64::MAX))
            .collect();
        tiers.sort_unstable();
        tiers.dedup();
        if tiers.first().is_none_or(|&shortest| shortest == 0) {
            return Err(BrokerError::fatal(
                "delay tiers must be at least one, each at least 1 ms".to_owned(),
            ));
        }
        let names = [&queues.tasks, &queues.results, &queues.dead];
        if let Some(long) = names.iter().find(|name| name.len() > 200) {
            // Leaves room for the `.delay.<ms>` suffix within AMQP's 255-byte names.
            return Err(BrokerError::fatal(format!(
                "queue name '{long}' is longer than 200 bytes"
            )));
        }
        Ok(Topology {
            dead_letter_exchange: format!("{}.dlx", queues.tasks),
            delay_tiers: tiers
                .into_iter()
                .map(|ms| (ms, format!("{}.delay.{ms}", queues.tasks)))
                .collect(),
            queues,
            queue_type,
            task_queue,
            adopted: Default::default(),
        })
    }

    /// The tier for a (non-zero) delay: the smallest not shorter than it, else the largest.
    pub(crate) fn delay_route(&self, delay: Duration) -> DelayedRoute {
        // Sub-millisecond delays round up: an `expiration` of 0 would not wait at all.
        let wanted = u64::try_from(delay.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
        let (tier, queue) = self
            .delay_tiers
            .iter()
            .find(|(tier, _)| *tier >= wanted)
            .unwrap_or_else(|| self.delay_tiers.last().expect("checked non-empty in new"));
        DelayedRoute {
            route: Route::queue(queue),
            expiration_ms: wanted.min(*tier),
            shortened: wanted > *tier,
        }
    }

    pub(crate) fn dead_letter_route(&self) -> Route {
        Route {
            exchange: self.dead_letter_exchange.clone(),
            routing_key: self.queues.dead.clone(),
        }
    }

    /// The queues retries wait in, one per delay tier.
    pub(crate) fn delay_queues(&self) -> impl Iterator<Item = &str> {
        self.delay_tiers.iter().map(|(_, queue)| queue.as_str())
    }

    /// Every destination with a channel of its own (see "Publishing" in the module doc).
    pub(crate) fn fixed_routes(&self) -> Vec<Route> {
        let mut routes = vec![
            Route::queue(&self.queues.tasks),
            Route::queue(&self.queues.results),
            self.dead_letter_route(),
        ];
        routes.extend(
            self.delay_tiers
                .iter()
                .map(|(_, queue)| Route::queue(queue)),
        );
        routes
    }

    /// Declares everything; a no-op for what already exists with the same arguments. A task,
    /// results or dead-letter queue that exists with other properties (a producer declared it
    /// first, the series' way) is adopted as it is (see [`Adoption`]); a delay queue must have
    /// Switchyard's own properties, or retries would never come back.
    pub(crate) async fn declare(&self, connection: &Connection) -> Result<(), BrokerError> {
        let error = |error| broker_error("declaring the topology", error);
        let mut channel = connection.create_channel().await.map_err(error)?;
        channel
            .exchange_declare(
                self.dead_letter_exchange.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(error)?;
        let mut tasks = self.queue_arguments();
        insert_str(
            &mut tasks,
            "x-dead-letter-exchange",
            &self.dead_letter_exchange,
        );
        let tasks_options = QueueDeclareOptions {
            durable: self.task_queue == TaskQueueProperties::Switchyard,
            ..QueueDeclareOptions::default()
        };
        let tasks = match self.task_queue {
            TaskQueueProperties::Switchyard => {
                if self.declares_priorities() {
                    tasks.insert(
                        "x-max-priority".into(),
                        AMQPValue::LongInt(i32::from(MAX_PRIORITY)),
                    );
                }
                tasks
            }
            TaskQueueProperties::Series => FieldTable::default(),
        };
        let adoptable = [
            (&self.queues.tasks, tasks_options, tasks),
            (
                &self.queues.results,
                QueueDeclareOptions::durable(),
                self.queue_arguments(),
            ),
            (
                &self.queues.dead,
                QueueDeclareOptions::durable(),
                self.queue_arguments(),
            ),
        ];
        for (name, options, arguments) in adoptable {
            if self.was_adopted(name) {
                // Known to differ: asking again would only close another channel. Passive
                // still fails if the queue was deleted since, and the next declaration
                // creates it.
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                };
                if declare_queue(&channel, name, passive, FieldTable::default())
                    .await
                    .is_ok()
                {
                    continue;
                }
                channel = connection.create_channel().await.map_err(error)?;
                self.forget_adoption(name);
            }
            let Err(refusal) = declare_queue(&channel, name, options, arguments).await else {
                continue;
            };
            if !is_inequivalent(&refusal) {
                return Err(error(refusal));
            }
            // The refusal closed the channel.
            channel = connection.create_channel().await.map_err(error)?;
            let series_shape = declare_queue(
                &channel,
                name,
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .is_ok();
            if !series_shape {
                channel = connection.create_channel().await.map_err(error)?;
            }
            let broker_said = amqp_reply_text(&refusal);
            let priorities = (*name == self.queues.tasks && self.declares_priorities())
                .then(|| Priorities::of_adopted(series_shape, &broker_said));
            self.adopted(Adoption {
                queue: name,
                broker_said: &broker_said,
                series_shape,
                priorities,
            });
        }
        channel
            .queue_bind(
                self.queues.dead.as_str().into(),
                self.dead_letter_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(error)?;
        for (_, queue) in &self.delay_tiers {
            declare_queue(
                &channel,
                queue,
                QueueDeclareOptions::durable(),
                self.delay_queue_arguments(),
            )
            .await
            .map_err(|refusal| {
                fatal_if_inequivalent(refusal, error, || {
                    format!(
                        "delay queue '{queue}' exists with other properties than Switchyard \
                         declares; it holds only retries waiting for their delay: delete it \
                         (rabbitmqctl delete_queue {queue}) or use the --queue-type it was \
                         declared with"
                    )
                })
            })?;
        }
        channel
            .close(200, "topology declared".into())
            .await
            .map_err(error)
    }

    /// Declares the cancellation stream alone, before a cancel is appended to it (see
    /// `amqp::cancellations`). Never part of [`Topology::declare`]: a stream's replicas have a
    /// home node, and while that node is down, declaring the stream fails; tasks, results and
    /// retries must not wait for it.
    pub(crate) async fn declare_cancellation_stream(
        &self,
        connection: &Connection,
    ) -> Result<(), BrokerError> {
        let error = |error| broker_error("declaring the cancellation stream", error);
        let channel = connection.create_channel().await.map_err(error)?;
        declare_queue(
            &channel,
            &self.queues.cancelled,
            QueueDeclareOptions::durable(),
            cancellation_stream_arguments(),
        )
        .await
        .map_err(|refusal| {
            fatal_if_inequivalent(refusal, error, || {
                format!(
                    "cancellation stream '{0}' exists with other properties than Switchyard \
                     declares; it holds only cancelled task ids: delete it (rabbitmqctl \
                     delete_queue {0}) and the next cancel declares it again",
                    self.queues.cancelled
                )
            })
        })?;
        channel
            .close(200, "cancellation stream declared".into())
            .await
            .map_err(error)
    }

    /// Whether the cancellation stream exists, without declaring it: a controller follows it
    /// only once somebody has cancelled a task, so a deployment that never cancels has none.
    pub(crate) async fn cancellation_stream_exists(
        &self,
        connection: &Connection,
    ) -> Result<bool, BrokerError> {
        let error = |error| broker_error("looking for the cancellation stream", error);
        let channel = connection.create_channel().await.map_err(error)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        match declare_queue(
            &channel,
            &self.queues.cancelled,
            passive,
            FieldTable::default(),
        )
        .await
        {
            Ok(()) => {
                channel
                    .close(200, "cancellation stream found".into())
                    .await
                    .map_err(error)?;
                Ok(true)
            }
            // The refusal closed the channel.
            Err(refusal) if is_not_found(&refusal) => Ok(false),
            Err(refusal) => Err(error(refusal)),
        }
    }

    /// Says, at warning level, that a queue was adopted and what that costs; once per queue, as
    /// later declarations (every reconnect) only check that it still exists.
    fn adopted(&self, adoption: Adoption<'_>) {
        self.adopted_queues().insert(adoption.queue.to_owned());
        warn!("{adoption}");
    }

    fn was_adopted(&self, queue: &str) -> bool {
        self.adopted_queues().contains(queue)
    }

    fn forget_adoption(&self, queue: &str) {
        self.adopted_queues().remove(queue);
    }

    fn adopted_queues(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.adopted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deletes every queue (with its messages) and the exchange of this topology.
    pub(crate) async fn delete(&self, connection: &Connection) -> Result<(), BrokerError> {
        let error = |error| broker_error("deleting the topology", error);
        let channel = connection.create_channel().await.map_err(error)?;
        let queues = [
            &self.queues.tasks,
            &self.queues.results,
            &self.queues.dead,
            &self.queues.cancelled,
        ]
        .into_iter()
        .chain(self.delay_tiers.iter().map(|(_, queue)| queue));
        for queue in queues {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(error)?;
        }
        channel
            .exchange_delete(
                self.dead_letter_exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await
            .map_err(error)?;
        channel
            .close(200, "topology deleted".into())
            .await
            .map_err(error)
    }

    /// Whether Switchyard's own task queue is a priority queue: classic only, as RabbitMQ 3.10
    /// refuses `x-max-priority` on a quorum queue (`invalid arg 'x-max-priority' ... of queue
    /// type rabbit_quorum_queue`); quorum queues serve tasks in arrival order.
    fn declares_priorities(&self) -> bool {
        self.task_queue == TaskQueueProperties::Switchyard && self.queue_type == QueueType::Classic
    }

    fn queue_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        // Classic is RabbitMQ's default: leaving the argument out keeps queues declared by
        // other clients (with no arguments) equivalent to ours.
        if self.queue_type == QueueType::Quorum {
            insert_str(&mut arguments, "x-queue-type", "quorum");
        }
        arguments
    }

    fn delay_queue_arguments(&self) -> FieldTable {
        let mut arguments = self.queue_arguments();
        insert_str(&mut arguments, "x-dead-letter-exchange", "");
        insert_str(
            &mut arguments,
            "x-dead-letter-routing-key",
            &self.queues.tasks,
        );
        if self.queue_type == QueueType::Quorum {
            insert_str(&mut arguments, "x-dead-letter-strategy", "at-least-once");
            insert_str(&mut arguments, "x-overflow", "reject-publish");
        }
        arguments
    }
}

/// The cancellation stream (see `amqp::cancellations`): a stream, because every controller
/// reads every cancel, from the start, however many read it; kept for
/// [`CANCELLATION_RETENTION`]. RabbitMQ drops whole segments only, so segments of 1 MB (some
/// 10,000 cancels each) keep it close to that age, where the default 500 MB would keep millions.
fn cancellation_stream_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    insert_str(&mut arguments, "x-queue-type", "stream");
    let days = CANCELLATION_RETENTION.as_secs().div_ceil(24 * 60 * 60);
    insert_str(&mut arguments, "x-max-age", &format!("{days}D"));
    arguments.insert(
        "x-stream-max-segment-size-bytes".into(),
        AMQPValue::LongInt(1_000_000),
    );
    arguments
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    options: QueueDeclareOptions,
    arguments: FieldTable,
) -> lapin::Result<()> {
    channel
        .queue_declare(name.into(), options, arguments)
        .await
        .map(drop)
}

/// A refused declaration as the error to report: fatal, saying what to do, when the queue exists
/// with other properties (retrying cannot help); as `error` makes it otherwise.
fn fatal_if_inequivalent(
    refusal: lapin::Error,
    error: impl FnOnce(lapin::Error) -> BrokerError,
    what_to_do: impl FnOnce() -> String,
) -> BrokerError {
    if is_inequivalent(&refusal) {
        BrokerError::fatal(what_to_do()).caused_by(refusal)
    } else {
        error(refusal)
    }
}

/// RabbitMQ's answer to declaring an existing queue with other properties.
fn is_inequivalent(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        lapin::ErrorKind::ProtocolError(amqp)
            if amqp.kind() == &AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
    )
}

/// RabbitMQ's answer to a passive declaration of a queue that does not exist.
fn is_not_found(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        lapin::ErrorKind::ProtocolError(amqp)
            if amqp.kind() == &AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)
    )
}

/// The broker's own reason, e.g. "inequivalent arg 'durable' for queue 'tasks' in vhost '/':
/// received 'true' but current is 'false'", which names the property that differs.
fn amqp_reply_text(error: &lapin::Error) -> String {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => amqp.get_message().to_string(),
        _ => error.to_string(),
    }
}

/// A queue Switchyard serves as someone else declared it.
struct Adoption<'a> {
    queue: &'a str,
    /// RabbitMQ's refusal of Switchyard's own declaration: which property differs.
    broker_said: &'a str,
    /// It is exactly what `queue_declare(queue=...)` with no options makes: not durable, no
    /// arguments, which is what the series' producer declares.
    series_shape: bool,
    /// For a task queue Switchyard would have declared with `x-max-priority`: whether the
    /// adopted one honours priorities.
    priorities: Option<Priorities>,
}

/// What an adopted task queue does with a message's priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priorities {
    /// It has no `x-max-priority` (no arguments at all, or RabbitMQ named that one as the
    /// difference): every task is served in arrival order.
    Ignored,
    /// RabbitMQ named another property first; AMQP cannot say whether it has one.
    Unknown,
}

impl Priorities {
    fn of_adopted(series_shape: bool, broker_said: &str) -> Self {
        if series_shape || broker_said.contains("'x-max-priority'") {
            Priorities::Ignored
        } else {
            Priorities::Unknown
        }
    }
}

impl fmt::Display for Adoption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Adoption {
            queue,
            broker_said,
            series_shape,
            priorities,
        } = self;
        write!(
            f,
            "adopted existing queue '{queue}' as it is: it was declared with other properties \
             than Switchyard's (RabbitMQ: {broker_said}); "
        )?;
        if *series_shape {
            write!(
                f,
                "it is not durable, as the series' producer declares it: its messages are lost \
                 if RabbitMQ restarts. To keep that producer unchanged, run every component with \
                 --task-queue-properties series; to make the queue durable, drain and delete it \
                 and let Switchyard declare it first"
            )?;
        } else {
            write!(
                f,
                "Switchyard serves it without knowing its properties (durability, queue type, \
                 dead-lettering); to have Switchyard's, drain and delete it and let Switchyard \
                 declare it"
            )?;
        }
        match priorities {
            None => Ok(()),
            Some(Priorities::Ignored) => write!(
                f,
                ". Task priorities are ignored there: it has no x-max-priority, so tasks run in \
                 arrival order"
            ),
            Some(Priorities::Unknown) => write!(
                f,
                ". Task priorities are honoured only if it was declared with x-max-priority"
            ),
        }
    }
}

fn insert_str(table: &mut FieldTable, key: &str, value: &str) {
    table.insert(key.into(), AMQPValue::LongString(value.into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        let tiers = [4000, 1000, 2000].map(Duration::from_millis);
        Topology::new(
            QueueNames::new("jobs"),
            QueueType::Classic,
            TaskQueueProperties::Switchyard,
            &tiers,
        )
        .unwrap()
    }

    fn delayed(ms: u64) -> DelayedRoute {
        topology().delay_route(Duration::from_millis(ms))
    }

    #[test]
    fn a_delay_waits_in_the_smallest_tier_not_shorter_than_it() {
        assert_eq!(delayed(700).route, Route::queue("jobs.delay.1000"));
        assert_eq!(delayed(700).expiration_ms, 700);
        assert_eq!(delayed(1000).route, Route::queue("jobs.delay.1000"));
        assert_eq!(delayed(1001).route, Route::queue("jobs.delay.2000"));
        assert_eq!(delayed(3999).route, Route::queue("jobs.delay.4000"));
        assert!(!delayed(3999).shortened);
    }

    #[test]
    fn a_delay_past_the_largest_tier_is_shortened_to_it() {
        let route = delayed(60_000);
        assert_eq!(route.route, Route::queue("jobs.delay.4000"));
        assert_eq!(route.expiration_ms, 4000);
        assert!(route.shortened);
    }

    #[test]
    fn a_sub_millisecond_delay_still_waits() {
        let route = topology().delay_route(Duration::from_micros(10));
        assert_eq!(route.expiration_ms, 1);
    }

    #[test]
    fn every_destination_has_a_route() {
        let routes = topology().fixed_routes();
        assert_eq!(routes.len(), 6);
        assert!(routes.contains(&Route::queue("jobs")));
        assert!(routes.contains(&Route::queue("jobs.results")));
        assert!(routes.contains(&Route {
            exchange: "jobs.dlx".into(),
            routing_key: "jobs.dead".into()
        }));
    }

    #[test]
    fn refuses_tiers_that_cannot_delay() {
        for tiers in [vec![], vec![Duration::from_micros(500)]] {
            let error = Topology::new(
                QueueNames::default(),
                QueueType::Classic,
                TaskQueueProperties::Switchyard,
                &tiers,
            );
            assert!(matches!(error, Err(BrokerError::Fatal { .. })));
        }
    }

    #[test]
    fn the_series_task_queue_cannot_be_a_quorum_queue() {
        let error = Topology::new(
            QueueNames::default(),
            QueueType::Quorum,
            TaskQueueProperties::Series,
            &[Duration::from_secs(1)],
        );
        assert!(
            matches!(&error, Err(BrokerError::Fatal { context: text, .. }) if text.contains("choose one")),
            "{error:?}"
        );
    }

    #[test]
    fn an_adoption_says_what_it_costs() {
        let said = "inequivalent arg 'durable' for queue 'tasks' in vhost '/': received 'true' \
                    but current is 'false'";
        let series = Adoption {
            queue: "tasks",
            broker_said: said,
            series_shape: true,
            priorities: None,
        }
        .to_string();
        assert!(
            series.starts_with("adopted existing queue 'tasks' as it is"),
            "{series}"
        );
        assert!(series.contains(said), "{series}");
        assert!(series.contains("lost if RabbitMQ restarts"), "{series}");
        assert!(
            series.contains("--task-queue-properties series"),
            "{series}"
        );
        let other = Adoption {
            queue: "tasks",
            broker_said: said,
            series_shape: false,
            priorities: None,
        }
        .to_string();
        assert!(other.contains("without knowing its properties"), "{other}");
        assert!(!other.contains("priorities"), "{other}");
    }

    #[test]
    fn an_adopted_task_queue_says_whether_priorities_are_ignored() {
        let upgraded = "inequivalent arg 'x-max-priority' for queue 'tasks' in vhost '/': \
                        received the value '9' of type 'signedint' but current is none";
        let durable = "inequivalent arg 'durable' for queue 'tasks' in vhost '/': received \
                       'true' but current is 'false'";
        let said = |broker_said, series_shape| {
            let priorities = Some(Priorities::of_adopted(series_shape, broker_said));
            Adoption {
                queue: "tasks",
                broker_said,
                series_shape,
                priorities,
            }
            .to_string()
        };
        for ignored in [said(upgraded, false), said(durable, true)] {
            assert!(
                ignored.ends_with("Task priorities are ignored there: it has no x-max-priority, so tasks run in arrival order"),
                "{ignored}"
            );
        }
        let unknown = said(durable, false);
        assert!(
            unknown.ends_with("honoured only if it was declared with x-max-priority"),
            "{unknown}"
        );
    }

    #[test]
    fn only_a_classic_switchyard_task_queue_is_a_priority_queue() {
        let declares = |queue_type, task_queue| {
            Topology::new(
                QueueNames::default(),
                queue_type,
                task_queue,
                &[Duration::from_secs(1)],
            )
            .unwrap()
            .declares_priorities()
        };
        assert!(declares(
            QueueType::Classic,
            TaskQueueProperties::Switchyard
        ));
        assert!(!declares(
            QueueType::Quorum,
            TaskQueueProperties::Switchyard
        ));
        assert!(!declares(QueueType::Classic, TaskQueueProperties::Series));
    }

    #[test]
    fn reply_queue_names_must_fit_amqp() {
        assert_eq!(
            Route::reply("amq.gen-abc"),
            Some(Route::queue("amq.gen-abc"))
        );
        assert_eq!(Route::reply(&"x".repeat(256)), None);
    }
}
