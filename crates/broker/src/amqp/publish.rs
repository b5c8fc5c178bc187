//! Confirmed publishing: one confirm-mode channel per destination (see "Publishing" in the
//! module doc of `amqp`).

use std::collections::HashMap;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use super::connection::Session;
use super::errors::broker_error;
use super::topology::{Route, Topology};
use crate::BrokerError;

/// The publishing connection's channels.
pub(crate) struct Publishers {
    /// Keeps the connection open as long as the session is in use.
    connection: Connection,
    fixed: HashMap<Route, Channel>,
    /// Shared by all reply queues; a return there counts as delivered.
    replies: Channel,
}

impl Publishers {
    pub(crate) fn channel(&self, route: &Route) -> Result<&Channel, BrokerError> {
        self.fixed
            .get(route)
            .ok_or_else(|| BrokerError::fatal(format!("no publishing channel for {route}")))
    }

    pub(crate) fn replies(&self) -> &Channel {
        &self.replies
    }
}

impl Session for Publishers {
    async fn open(connection: Connection, topology: &Topology) -> Result<Self, BrokerError> {
        topology.declare(&connection).await?;
        let mut fixed = HashMap::new();
        for route in topology.fixed_routes() {
            fixed.insert(route, confirming_channel(&connection).await?);
        }
        Ok(Publishers {
            replies: confirming_channel(&connection).await?,
            fixed,
            connection,
        })
    }

    fn is_open(&self) -> bool {
        self.connection.status().connected()
            && self.replies.status().connected()
            && self
                .fixed
                .values()
                .all(|channel| channel.status().connected())
    }
}

pub(crate) async fn confirming_channel(connection: &Connection) -> Result<Channel, BrokerError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|error| broker_error("channel.open", error))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|error| broker_error("confirm.select", error))?;
    Ok(channel)
}

/// How the broker took a confirmed publish.
#[derive(Debug)]
pub(crate) enum Published {
    /// Routed to at least one queue and, for a durable queue, written to disk.
    Confirmed,
    /// Unroutable (no such queue), with the broker's explanation.
    Returned(String),
}

/// Publishes persistently with `mandatory`, and waits for this message's confirm only.
pub(crate) async fn publish(
    channel: &Channel,
    route: &Route,
    body: &[u8],
    properties: BasicProperties,
) -> Result<Published, BrokerError> {
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = channel
        .basic_publish(
            route.exchange.as_str().into(),
            route.routing_key.as_str().into(),
            options,
            body,
            properties.with_delivery_mode(2),
        )
        .await
        .map_err(|error| broker_error("basic.publish", error))?;
    match confirm
        .await
        .map_err(|error| broker_error("publisher confirm", error))?
    {
        Confirmation::Ack(None) => Ok(Published::Confirmed),
        Confirmation::Ack(Some(returned)) => Ok(Published::Returned(format!(
            "{} {} for routing key '{}'",
            returned.reply_code, returned.reply_text, returned.delivery.routing_key
        ))),
        Confirmation::Nack(_) => Err(BrokerError::not_confirmed(format!(
            "the broker nacked the publish to {route}"
        ))),
        Confirmation::NotRequested => Err(BrokerError::fatal(
            "publisher confirms are off on a publishing channel".to_owned(),
        )),
    }
}
