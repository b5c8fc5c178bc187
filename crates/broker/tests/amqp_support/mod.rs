//! Shared by the AMQP tests: a broker on queues (and, when a test disconnects it, a vhost) of
//! its own, removed when the fixture drops, even after a failed assertion.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use switchyard_broker::amqp::{AmqpBroker, AmqpConfig, QueueType};
use switchyard_broker::{BrokerError, Deliveries, Delivery, QueueNames};

pub const HOST: &str = "amqp://guest:guest@127.0.0.1:5672";
/// Short tiers keep delay tests quick.
pub const TEST_TIERS_MS: [u64; 3] = [250, 500, 1000];

pub struct Fixture {
    pub broker: AmqpBroker,
    pub config: AmqpConfig,
    /// Set when the test has a vhost of its own (deleting it deletes its queues).
    vhost: Option<String>,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with(QueueType::Classic, None).await
    }

    /// In a vhost of its own, for tests that close every connection of their vhost.
    pub async fn isolated() -> Fixture {
        let vhost = format!("switchyard-test-{}", uuid::Uuid::new_v4().simple());
        rabbitmqctl(&["add_vhost", &vhost]);
        rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
        Fixture::with(QueueType::Classic, Some(vhost)).await
    }

    pub async fn with(queue_type: QueueType, vhost: Option<String>) -> Fixture {
        let config = test_config(queue_type, vhost.as_deref());
        let broker = AmqpBroker::connect(config.clone())
            .await
            .expect("connect to the local RabbitMQ");
        Fixture {
            broker,
            config,
            vhost,
        }
    }

    pub fn queues(&self) -> &QueueNames {
        &self.config.queues
    }

    pub fn vhost(&self) -> &str {
        self.vhost.as_deref().expect("an isolated fixture")
    }

    /// A plain channel of a connection of its own, to look behind the broker's back.
    pub async fn raw_channel(&self) -> Channel {
        let connection = Connection::connect(&self.config.url, ConnectionProperties::default())
            .await
            .expect("raw connection");
        connection.create_channel().await.expect("raw channel")
    }

    pub async fn message_count(&self, queue: &str) -> u32 {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        self.raw_channel()
            .await
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .expect("queue exists")
            .message_count()
    }

    fn queue_names(&self) -> Vec<String> {
        let queues = self.queues();
        let mut names = vec![
            queues.tasks.clone(),
            queues.results.clone(),
            queues.dead.clone(),
        ];
        names.extend(
            self.config
                .delay_tiers
                .iter()
                .map(|tier| format!("{}.delay.{}", queues.tasks, tier.as_millis())),
        );
        names
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(vhost) = &self.vhost {
            rabbitmqctl(&["delete_vhost", vhost]);
            return;
        }
        let url = self.config.url.clone();
        let queues = self.queue_names();
        let exchange = format!("{}.dlx", self.queues().tasks);
        // A runtime of its own: Drop may run while the test's runtime unwinds from a panic.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("cleanup runtime");
            runtime.block_on(async move {
                let connection = Connection::connect(&url, ConnectionProperties::default())
                    .await
                    .expect("cleanup connection");
                let channel = connection.create_channel().await.expect("cleanup channel");
                for queue in queues {
                    let _ = channel
                        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                        .await;
                }
                let _ = channel
                    .exchange_delete(exchange.as_str().into(), Default::default())
                    .await;
            });
        })
        .join()
        .expect("cleanup");
    }
}

pub fn test_config(queue_type: QueueType, vhost: Option<&str>) -> AmqpConfig {
    let url = match vhost {
        Some(vhost) => format!("{HOST}/{vhost}"),
        None => format!("{HOST}/%2f"),
    };
    let tasks = format!("test-{}", uuid::Uuid::new_v4().simple());
    let mut config = AmqpConfig::new(url, QueueNames::new(tasks));
    config.queue_type = queue_type;
    config.delay_tiers = TEST_TIERS_MS.map(Duration::from_millis).to_vec();
    config.reconnect_timeout = Duration::from_secs(15);
    config
}

/// Runs `rabbitmqctl` and insists it succeeded (blocking: for set-up and clean-up).
pub fn rabbitmqctl(args: &[&str]) -> String {
    let output = Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .expect("run rabbitmqctl");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Closes every connection of `vhost`, as an operator or a broker restart would.
pub async fn close_connections(vhost: &str) {
    let output = tokio::process::Command::new("rabbitmqctl")
        .args(["-q", "close_all_connections", "--vhost", vhost, "test"])
        .output()
        .await
        .expect("run rabbitmqctl");
    assert!(
        output.status.success(),
        "rabbitmqctl close_all_connections: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The next delivery, failing the test if none comes within `within`.
pub async fn next(deliveries: &mut Deliveries, within: Duration) -> Delivery {
    match tokio::time::timeout(within, deliveries.next()).await {
        Ok(Some(Ok(delivery))) => delivery,
        Ok(Some(Err(error))) => panic!("delivery failed: {error}"),
        Ok(None) => panic!("the delivery stream ended"),
        Err(_) => panic!("no delivery within {within:?}"),
    }
}

/// `Some` when a delivery arrives within `within`, `None` when nothing does.
pub async fn maybe_next(deliveries: &mut Deliveries, within: Duration) -> Option<Delivery> {
    match tokio::time::timeout(within, deliveries.next()).await {
        Ok(Some(Ok(delivery))) => Some(delivery),
        Ok(Some(Err(error))) => panic!("delivery failed: {error}"),
        Ok(None) => panic!("the delivery stream ended"),
        Err(_) => None,
    }
}

pub fn is_disconnected(error: &BrokerError) -> bool {
    matches!(error, BrokerError::Disconnected(_))
}

/// A vhost of its own with no broker connected yet, for tests that declare queues the way
/// another client would before Switchyard arrives. Deleted, with its queues, on drop.
pub struct Vhost {
    pub name: String,
}

impl Vhost {
    pub fn new() -> Vhost {
        let name = format!("switchyard-test-{}", uuid::Uuid::new_v4().simple());
        rabbitmqctl(&["add_vhost", &name]);
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        Vhost { name }
    }

    pub fn config(&self) -> AmqpConfig {
        test_config(QueueType::Classic, Some(&self.name))
    }

    /// A config for an existing task queue of this vhost.
    pub fn config_for(&self, tasks: &str) -> AmqpConfig {
        let mut config = self.config();
        config.queues = QueueNames::new(tasks);
        config
    }

    /// A plain channel, as another client (the series' producer) would use.
    pub async fn channel(&self) -> Channel {
        let connection = Connection::connect(
            &format!("{HOST}/{}", self.name),
            ConnectionProperties::default(),
        )
        .await
        .expect("raw connection");
        connection.create_channel().await.expect("raw channel")
    }

    /// `name<TAB>durable<TAB>arguments` of one queue, as rabbitmqctl lists it.
    pub fn describe(&self, queue: &str) -> Option<String> {
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
