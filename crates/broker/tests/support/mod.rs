//! Shared by the AMQP tests beside the contract's harness
//! (`switchyard_broker::conformance::amqp`): vhosts that tests fill the way other clients would.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use lapin::{Channel, Connection, ConnectionProperties};
use switchyard_broker::BrokerError;
use switchyard_broker::QueueNames;
use switchyard_broker::amqp::{AmqpConfig, QueueType};
use switchyard_broker::conformance::amqp::{HOST, add_vhost, rabbitmqctl, test_config};

pub(crate) fn is_disconnected(error: &BrokerError) -> bool {
    matches!(error, BrokerError::Disconnected { .. })
}

/// A vhost of its own with no broker connected yet, for tests that declare queues the way
/// another client would before Switchyard arrives. Deleted, with its queues, on drop.
pub(crate) struct Vhost {
    pub name: String,
}

impl Vhost {
    pub(crate) fn new() -> Vhost {
        let name = format!("switchyard-test-{}", uuid::Uuid::new_v4().simple());
        add_vhost(&name);
        Vhost { name }
    }

    pub(crate) fn config(&self) -> AmqpConfig {
        test_config(QueueType::Classic, Some(&self.name))
    }

    /// A config for an existing task queue of this vhost.
    pub(crate) fn config_for(&self, tasks: &str) -> AmqpConfig {
        let mut config = self.config();
        config.queues = QueueNames::new(tasks);
        config
    }

    /// A plain channel, as another client (the series' producer) would use.
    pub(crate) async fn channel(&self) -> Channel {
        let connection = Connection::connect(
            &format!("{HOST}/{}", self.name),
            ConnectionProperties::default(),
        )
        .await
        .expect("raw connection");
        connection.create_channel().await.expect("raw channel")
    }

    /// `name<TAB>durable<TAB>arguments` of one queue, as rabbitmqctl lists it.
    pub(crate) fn describe(&self, queue: &str) -> Option<String> {
        rabbitmqctl(&[
            "list_queues",
            "-p",
            &self.name,
            "name",
            "durable",
            "arguments",
        ])
        .lines()
        .find(|line| line.split('\t').next() == Some(queue))
        .map(str::to_owned)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        rabbitmqctl(&["delete_vhost", &self.name]);
    }
}
