//! The RabbitMQ backend under the contract, against the real broker at 127.0.0.1:5672
//! (`scripts/ensure-rabbitmq.sh`): queues of their own in the default vhost, or a vhost of its
//! own when a case closes connections. Removed when the harness drops, even after a failed
//! assertion.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};

use super::{Harness, LosesConnections, Orphan, orphan_by_losing_connections};
use crate::amqp::{AmqpBroker, AmqpConfig, QueueType};
use crate::{Deliveries, QueueNames};

/// The local RabbitMQ `scripts/ensure-rabbitmq.sh` starts, as its default user.
pub const HOST: &str = "amqp://guest:guest@127.0.0.1:5672";
/// Short tiers keep delay cases quick.
pub const TEST_TIERS_MS: [u64; 3] = [250, 500, 1000];

/// The RabbitMQ backend on queues of the case's own, deleted when the harness drops.
#[derive(Debug)]
pub struct AmqpHarness {
    /// The broker under test.
    pub broker: Arc<AmqpBroker>,
    /// What it was opened with, to open other handles or raw channels on the same queues.
    pub config: AmqpConfig,
    /// Set when the harness has a vhost of its own (deleting it deletes its queues).
    vhost: Option<String>,
}

impl AmqpHarness {
    /// A broker of `queue_type` on fresh queues, in `vhost` (the default one when `None`).
    pub async fn with(queue_type: QueueType, vhost: Option<String>) -> AmqpHarness {
        let config = test_config(queue_type, vhost.as_deref());
        let broker = AmqpBroker::connect(config.clone())
            .await
            .expect("connect to the local RabbitMQ");
        AmqpHarness {
            broker: Arc::new(broker),
            config,
            vhost,
        }
    }

    /// The queues this harness's broker uses.
    pub fn queues(&self) -> &QueueNames {
        &self.config.queues
    }

    /// The vhost of a harness from [`Harness::open_alone`].
    pub fn vhost(&self) -> &str {
        self.vhost.as_deref().expect("a harness opened alone")
    }

    /// A plain channel of a connection of its own, to look behind the broker's back.
    pub async fn raw_channel(&self) -> Channel {
        raw_connection(&self.config.url)
            .await
            .create_channel()
            .await
            .expect("raw channel")
    }

    /// Messages RabbitMQ holds ready in `queue`, as it counts them.
    pub async fn message_count(&self, queue: &str) -> u32 {
        message_count(&self.raw_channel().await, queue).await
    }

    fn delay_queues(&self) -> impl Iterator<Item = String> + '_ {
        self.config
            .delay_tiers
            .iter()
            .map(|tier| format!("{}.delay.{}", self.queues().tasks, tier.as_millis()))
    }
}

async fn raw_connection(url: &str) -> Connection {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("raw connection")
}

async fn message_count(channel: &Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .expect("queue exists")
        .message_count()
}

#[async_trait]
impl Harness for AmqpHarness {
    type Broker = AmqpBroker;

    async fn open() -> Self {
        AmqpHarness::with(QueueType::Classic, None).await
    }

    async fn open_alone() -> Self {
        let vhost = format!("switchyard-test-{}", uuid::Uuid::new_v4().simple());
        add_vhost(&vhost);
        AmqpHarness::with(QueueType::Classic, Some(vhost)).await
    }

    fn broker(&self) -> &Arc<AmqpBroker> {
        &self.broker
    }

    async fn another_handle(&self) -> Arc<AmqpBroker> {
        let broker = AmqpBroker::connect(self.config.clone())
            .await
            .expect("connect to the local RabbitMQ again");
        Arc::new(broker)
    }

    /// RabbitMQ requeues a delivery the moment its channel closes.
    fn redelivery(&self) -> Duration {
        Duration::ZERO
    }

    async fn reply_queue(&self) -> (String, Deliveries) {
        self.broker.reply_queue().await.expect("reply queue")
    }

    async fn orphan_next_task(&self) -> Orphan {
        orphan_by_losing_connections(self).await
    }
}

#[async_trait]
impl LosesConnections for AmqpHarness {
    /// Every connection of the harness's vhost, as an operator or a broker restart would.
    async fn lose_connections(&self) {
        let vhost = self.vhost().to_owned();
        tokio::task::spawn_blocking(move || {
            rabbitmqctl(&["close_all_connections", "--vhost", &vhost, "test"])
        })
        .await
        .expect("join");
    }
}

impl Drop for AmqpHarness {
    fn drop(&mut self) {
        if let Some(vhost) = &self.vhost {
            rabbitmqctl(&["delete_vhost", vhost]);
            return;
        }
        let url = self.config.url.clone();
        let queues = self.queues();
        let mut names = vec![
            queues.tasks.clone(),
            queues.results.clone(),
            queues.dead.clone(),
            queues.cancelled.clone(),
        ];
        names.extend(self.delay_queues());
        let exchange = format!("{}.dlx", queues.tasks);
        // A runtime of its own: Drop may run while the test's runtime unwinds from a panic.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("cleanup runtime");
            runtime.block_on(async move {
                let channel = raw_connection(&url)
                    .await
                    .create_channel()
                    .await
                    .expect("cleanup channel");
                for queue in names {
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

/// A config on fresh queues in `vhost` (the default one when `None`), with short delay tiers.
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

/// Creates `vhost` with every permission for guest.
pub fn add_vhost(vhost: &str) {
    rabbitmqctl(&["add_vhost", vhost]);
    rabbitmqctl(&["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]);
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
