//! The queues and exchange of one deployment (see the module doc of `amqp` for why), where each
//! publish goes, and their declaration.

use std::fmt;
use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection, ExchangeKind};

use super::QueueType;
use super::errors::broker_error;
use crate::{BrokerError, QueueNames};

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
    /// Ascending tier lengths in ms, each with its queue `<tasks>.delay.<ms>`.
    delay_tiers: Vec<(u64, String)>,
}

impl Topology {
    pub(crate) fn new(
        queues: QueueNames,
        queue_type: QueueType,
        delay_tiers: &[Duration],
    ) -> Result<Self, BrokerError> {
        let mut tiers: Vec<u64> = delay_tiers
            .iter()
            .map(|tier| u64::try_from(tier.as_millis()).unwrap_or(u64::MAX))
            .collect();
        tiers.sort_unstable();
        tiers.dedup();
        if tiers.first().is_none_or(|&shortest| shortest == 0) {
            return Err(BrokerError::Fatal(
                "delay tiers must be at least one, each at least 1 ms".to_owned(),
            ));
        }
        let names = [&queues.tasks, &queues.results, &queues.dead];
        if let Some(long) = names.iter().find(|name| name.len() > 200) {
            // Leaves room for the `.delay.<ms>` suffix within AMQP's 255-byte names.
            return Err(BrokerError::Fatal(format!(
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

    /// Declares everything; a no-op for what already exists with the same arguments.
    pub(crate) async fn declare(&self, connection: &Connection) -> Result<(), BrokerError> {
        let error = |error| broker_error("declaring the topology", error);
        let channel = connection.create_channel().await.map_err(error)?;
        self.declare_on(&channel).await.map_err(error)?;
        channel
            .close(200, "topology declared".into())
            .await
            .map_err(error)
    }

    async fn declare_on(&self, channel: &Channel) -> lapin::Result<()> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.dead_letter_exchange.as_str().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        let mut tasks = self.queue_arguments();
        insert_str(
            &mut tasks,
            "x-dead-letter-exchange",
            &self.dead_letter_exchange,
        );
        self.declare_queue(channel, &self.queues.tasks, tasks)
            .await?;
        self.declare_queue(channel, &self.queues.results, self.queue_arguments())
            .await?;
        self.declare_queue(channel, &self.queues.dead, self.queue_arguments())
            .await?;
        channel
            .queue_bind(
                self.queues.dead.as_str().into(),
                self.dead_letter_exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        for (_, queue) in &self.delay_tiers {
            self.declare_queue(channel, queue, self.delay_queue_arguments())
                .await?;
        }
        Ok(())
    }

    /// Deletes every queue (with its messages) and the exchange of this topology.
    pub(crate) async fn delete(&self, connection: &Connection) -> Result<(), BrokerError> {
        let error = |error| broker_error("deleting the topology", error);
        let channel = connection.create_channel().await.map_err(error)?;
        let queues = [&self.queues.tasks, &self.queues.results, &self.queues.dead]
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

    async fn declare_queue(
        &self,
        channel: &Channel,
        name: &str,
        arguments: FieldTable,
    ) -> lapin::Result<()> {
        channel
            .queue_declare(name.into(), QueueDeclareOptions::durable(), arguments)
            .await
            .map(drop)
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

fn insert_str(table: &mut FieldTable, key: &str, value: &str) {
    table.insert(key.into(), AMQPValue::LongString(value.into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        let tiers = [4000, 1000, 2000].map(Duration::from_millis);
        Topology::new(QueueNames::new("jobs"), QueueType::Classic, &tiers).unwrap()
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
            let error = Topology::new(QueueNames::default(), QueueType::Classic, &tiers);
            assert!(matches!(error, Err(BrokerError::Fatal(_))));
        }
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
