//! Reading and replaying the dead-letter queue with `basic.get` on a channel of its own: what is
//! taken and not acknowledged goes back to the queue, in place, when the channel closes. Also
//! counting the queues, which needs the same kind of short-lived channel.

use std::future::Future;

use lapin::Channel;
use lapin::message::BasicGetMessage;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use switchyard_wire::headers;
use tracing::{debug, warn};

use super::consume::{ConsumeSession, settled};
use super::convert::stored_dead_letter;
use super::errors::broker_error;
use super::topology::Topology;
use crate::{BrokerError, Depths, Message, StoredDeadLetter};

/// Up to `limit` dead letters, oldest first, all left in the queue.
pub(crate) async fn list(
    session: &ConsumeSession,
    queue: &str,
    limit: usize,
) -> Result<Vec<StoredDeadLetter>, BrokerError> {
    let channel = session.channel().await?;
    let listed = async {
        let mut letters = Vec::new();
        while letters.len() < limit {
            let Some(got) = get(&channel, queue).await? else {
                break;
            };
            let delivery = got.delivery;
            letters.push(stored_dead_letter(&delivery.properties, delivery.data));
        }
        Ok(letters)
    }
    .await;
    close(&channel).await;
    listed
}

/// Publishes the dead letters whose key is in `keys` (all when `None`) as fresh tasks, each
/// acknowledged (removed) only once its publish is confirmed. Only the letters present when
/// it starts are looked at: a replayed task that dies again is not replayed twice.
pub(crate) async fn requeue<F, Fut>(
    session: &ConsumeSession,
    queue: &str,
    keys: Option<&[String]>,
    mut publish: F,
) -> Result<usize, BrokerError>
where
    F: FnMut(Message) -> Fut,
    Fut: Future<Output = Result<(), BrokerError>>,
{
    let channel = session.channel().await?;
    let mut requeued = 0;
    let outcome = async {
        for _ in 0..message_count(&channel, queue).await? {
            let Some(got) = get(&channel, queue).await? else {
                break;
            };
            let delivery = got.delivery;
            let stored = stored_dead_letter(&delivery.properties, delivery.data);
            if keys.is_some_and(|keys| !keys.contains(&stored.key)) {
                continue;
            }
            publish(fresh(stored.letter.message)).await?;
            settled(
                "basic.ack",
                delivery.acker.ack(BasicAckOptions::default()).await,
            )?;
            debug!(key = %stored.key, "dead letter requeued");
            requeued += 1;
        }
        Ok(())
    }
    .await;
    close(&channel).await;
    outcome.map(|()| requeued).map_err(|error: BrokerError| {
        warn!(requeued, "requeueing dead letters stopped: {error:#}");
        error
    })
}

/// The task as if never tried: attempts and the first-seen time start over, so the controller
/// neither counts old attempts nor finds its no-runner deadline long past.
fn fresh(mut message: Message) -> Message {
    message.headers.remove(headers::ATTEMPTS);
    message.headers.remove(headers::FIRST_SEEN_MS);
    message
}

/// Ready messages on the task queue, its delay queues and the dead-letter queue, on a channel
/// of its own.
pub(crate) async fn depths(
    session: &ConsumeSession,
    topology: &Topology,
) -> Result<Depths, BrokerError> {
    let channel = session.channel().await?;
    let counted = async {
        let mut delayed = 0;
        for queue in topology.delay_queues() {
            delayed += u64::from(message_count(&channel, queue).await?);
        }
        Ok(Depths {
            tasks: message_count(&channel, &topology.queues.tasks)
                .await?
                .into(),
            delayed,
            dead_letters: message_count(&channel, &topology.queues.dead).await?.into(),
        })
    }
    .await;
    close(&channel).await;
    counted
}

async fn message_count(channel: &Channel, queue: &str) -> Result<u32, BrokerError> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .map_err(|error| broker_error("queue.declare", error))?;
    Ok(queue.message_count())
}

async fn get(channel: &Channel, queue: &str) -> Result<Option<BasicGetMessage>, BrokerError> {
    channel
        .basic_get(queue.into(), BasicGetOptions::default())
        .await
        .map_err(|error| broker_error("basic.get", error))
}

/// Closes and waits for the broker to agree, so what the channel held is back in the queue
/// before the caller looks again. A failure means the connection is gone, which returns them
/// just the same.
async fn close(channel: &Channel) {
    if let Err(error) = channel.close(200, "done".into()).await {
        debug!(%error, "closing the dead-letter channel");
    }
}
