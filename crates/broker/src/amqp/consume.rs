//! Consuming with manual acknowledgement: one channel per consumer, kept open until the last
//! of its deliveries is settled.

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Acker, Channel, Connection};
use tracing::debug;

use super::connection::Session;
use super::convert::message_from;
use super::errors::broker_error;
use super::topology::Topology;
use crate::{Acknowledge, BrokerError, Deliveries, Delivery};

/// The consuming connection. Consumers and dead-letter listings open their own channels on it.
pub(crate) struct ConsumeSession {
    connection: Connection,
}

impl Session for ConsumeSession {
    async fn open(connection: Connection, topology: &Topology) -> Result<Self, BrokerError> {
        topology.declare(&connection).await?;
        Ok(ConsumeSession { connection })
    }

    fn is_open(&self) -> bool {
        self.connection.status().connected()
    }
}

impl ConsumeSession {
    pub(crate) async fn channel(&self) -> Result<Channel, BrokerError> {
        self.connection
            .create_channel()
            .await
            .map_err(|error| broker_error("channel.open", error))
    }

    /// Consumes `queue`, at most `prefetch` deliveries unsettled (0: no limit). Declares the
    /// topology first: a consumer that stopped because its queue was deleted gets it back.
    pub(crate) async fn consume(
        &self,
        topology: &Topology,
        queue: &str,
        prefetch: u16,
    ) -> Result<Deliveries, BrokerError> {
        topology.declare(&self.connection).await?;
        let channel = self.channel().await?;
        consume_on(channel, queue, prefetch, FieldTable::default()).await
    }

    pub(crate) async fn delete_topology(&self, topology: &Topology) -> Result<(), BrokerError> {
        topology.delete(&self.connection).await
    }

    /// Declares a server-named, exclusive, auto-delete queue and consumes it.
    pub(crate) async fn reply_queue(
        &self,
        prefetch: u16,
    ) -> Result<(String, Deliveries), BrokerError> {
        let channel = self.channel().await?;
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let queue = channel
            .queue_declare("".into(), options, FieldTable::default())
            .await
            .map_err(|error| broker_error("queue.declare", error))?;
        let name = queue.name().as_str().to_owned();
        let deliveries = consume_on(channel, &name, prefetch, FieldTable::default()).await?;
        debug!(queue = %name, "reply queue declared");
        Ok((name, deliveries))
    }
}

/// Consumes `queue` on `channel` with `arguments` (a stream's `x-stream-offset`), at most
/// `prefetch` unacknowledged.
pub(crate) async fn consume_on(
    channel: Channel,
    queue: &str,
    prefetch: u16,
    arguments: FieldTable,
) -> Result<Deliveries, BrokerError> {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(|error| broker_error("basic.qos", error))?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            arguments,
        )
        .await
        .map_err(|error| broker_error("basic.consume", error))?;
    debug!(queue, prefetch, "consuming");
    let deliveries = consumer.map(move |delivery| match delivery {
        Ok(delivery) => {
            let message = message_from(&delivery.properties, delivery.data);
            let acker = AmqpAcker {
                acker: delivery.acker,
                _channel: channel.clone(),
            };
            Ok(Delivery::new(
                message,
                delivery.redelivered,
                Box::new(acker),
            ))
        }
        Err(error) => Err(BrokerError::disconnected("consumer stopped").caused_by(error)),
    });
    Ok(deliveries.boxed())
}

struct AmqpAcker {
    acker: Acker,
    /// Holds the channel open while the delivery is unsettled: closing it would hand the
    /// message to another consumer while this one is still working on it.
    _channel: Channel,
}

#[async_trait]
impl Acknowledge for AmqpAcker {
    async fn ack(self: Box<Self>) -> Result<(), BrokerError> {
        settled(
            "basic.ack",
            self.acker.ack(BasicAckOptions::default()).await,
        )
    }

    async fn requeue(self: Box<Self>) -> Result<(), BrokerError> {
        let requeue = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        settled("basic.nack", self.acker.nack(requeue).await)
    }
}

/// `lapin` answers `Ok(false)` when the delivery's channel is gone (each delivery is settled
/// once, so it cannot mean "already settled"): the broker redelivers it.
pub(crate) fn settled(method: &str, outcome: lapin::Result<bool>) -> Result<(), BrokerError> {
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => Err(BrokerError::disconnected(format!(
            "{method}: the channel that delivered this message is closed; \
             the broker delivers it again"
        ))),
        Err(error) => Err(broker_error(method, error)),
    }
}
