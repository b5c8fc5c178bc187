//! Where RabbitMQ is and which queues to use: the flags `controller`, `submit` and
//! `dead-letters` share.

use anyhow::Context;
use switchyard_broker::QueueNames;
use switchyard_broker::amqp::{AmqpBroker, AmqpConfig, QueueType, TaskQueueProperties};

#[derive(clap::Args, Clone)]
pub(crate) struct AmqpFlags {
    /// RabbitMQ URL; the default vhost `/` is written `%2f`. For a cluster, every node's URL,
    /// comma-separated: a client that loses its node moves to the next live one.
    #[arg(
        long,
        env = "SWITCHYARD_AMQP",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp: String,
    /// The task queue; results go to `<queue>.results`, dead letters to `<queue>.dead`.
    #[arg(long, env = "SWITCHYARD_QUEUE", default_value = "tasks")]
    pub queue: String,
    /// Type of the queues Switchyard declares; must match queues that already exist.
    #[arg(long, env = "SWITCHYARD_QUEUE_TYPE", default_value = "classic")]
    pub queue_type: QueueType,
    /// How the task queue is declared when it does not exist yet: `switchyard` (durable) or
    /// `series` (not durable, no arguments: what the series' producer's
    /// `queue_declare(queue='tasks')` expects). A queue that exists is served as it is.
    #[arg(
        long,
        env = "SWITCHYARD_TASK_QUEUE_PROPERTIES",
        default_value = "switchyard"
    )]
    pub task_queue_properties: TaskQueueProperties,
}

/// The URL holds the password, so it is left out.
impl std::fmt::Debug for AmqpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpFlags")
            .field("amqp", &"<redacted>")
            .field("queue", &self.queue)
            .field("queue_type", &self.queue_type)
            .field("task_queue_properties", &self.task_queue_properties)
            .finish()
    }
}

impl AmqpFlags {
    /// Connects and declares the topology.
    pub(crate) async fn connect(&self) -> anyhow::Result<AmqpBroker> {
        let config = AmqpConfig {
            queue_type: self.queue_type,
            task_queue: self.task_queue_properties,
            ..AmqpConfig::new(self.amqp.clone(), QueueNames::new(self.queue.clone()))
        };
        AmqpBroker::connect(config)
            .await
            .with_context(|| format!("connecting to RabbitMQ for queue '{}'", self.queue))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        amqp: AmqpFlags,
    }

    #[test]
    fn debug_leaves_the_password_out() {
        let command =
            Command::try_parse_from(["x", "--amqp", "amqp://worker:hunter2@rabbit:5672/%2f"])
                .unwrap();
        let shown = format!("{:?}", command.amqp);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
