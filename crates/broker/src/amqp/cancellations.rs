//! Cancellations on RabbitMQ: a stream every controller reads whole.
//!
//! A cancel is one persistent, confirmed message on the stream `<tasks>.cancelled`, its
//! `message_id` the task id. The first time a broker handle is asked whether a task is cancelled,
//! it starts following the stream: from its oldest message into a set of ids, then on as cancels
//! arrive, and again from where it stopped after a lost connection. That first answer waits until
//! the set holds every cancel recorded before the question: the follower appends a marker of its
//! own to the stream and answers once it has read its way to it. Later answers are the set as it
//! is: a cancel recorded meanwhile is seen after the stream's delivery latency (milliseconds).
//!
//! A stream rather than a queue: a queue hands each message to one consumer, a stream lets every
//! controller read every cancel, including controllers started after it. Its cost: one stream
//! message per cancel (and per follower start), and every id cancelled within the retention held
//! in each controller's memory, some 100 bytes each.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::connection::Link;
use super::consume::{ConsumeSession, StreamOffset};
use super::convert;
use super::publish::Publishers;
use super::publish_durably;
use super::topology::{Route, Topology};
use crate::{BrokerError, Message};

/// Header that marks a follower's own marker, as opposed to a cancel.
const MARKER: &str = "x-switchyard-marker";

/// Unacknowledged stream messages a follower holds at once: its read-ahead.
const READ_AHEAD: u16 = 1000;

/// Pause before reading the stream again after it ended or failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The cancelled ids as one handle follows them; the follower stops when this drops.
pub(crate) struct Followed {
    ids: Arc<Mutex<HashSet<String>>>,
    /// True once the set holds every cancel recorded before the follower started.
    caught_up: watch::Receiver<bool>,
    follower: JoinHandle<()>,
}

impl Drop for Followed {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// The connections and names a follower reads and writes through.
pub(crate) struct Links {
    pub(crate) publishers: Arc<Link<Publishers>>,
    pub(crate) consumers: Arc<Link<ConsumeSession>>,
    pub(crate) topology: Arc<Topology>,
}

impl Followed {
    /// Starts following the stream in the background.
    pub(crate) fn start(links: Links) -> Self {
        let ids = Arc::new(Mutex::new(HashSet::new()));
        let (caught_up_tx, caught_up) = watch::channel(false);
        let follower = tokio::spawn(follow(links, ids.clone(), caught_up_tx));
        Followed {
            ids,
            caught_up,
            follower,
        }
    }

    /// Whether `task_id` was cancelled; waits (at most `patience`) until the follower has read
    /// every cancel recorded before it started.
    pub(crate) async fn contains(
        &self,
        task_id: &str,
        patience: Duration,
    ) -> Result<bool, BrokerError> {
        let mut caught_up = self.caught_up.clone();
        match tokio::time::timeout(patience, caught_up.wait_for(|done| *done)).await {
            Ok(Ok(_)) => Ok(lock(&self.ids).contains(task_id)),
            Ok(Err(_stopped)) => Err(BrokerError::fatal("the cancellation follower stopped")),
            Err(_elapsed) => Err(BrokerError::disconnected(format!(
                "the cancellation stream was not read within {patience:?}"
            ))),
        }
    }
}

fn lock(ids: &Mutex<HashSet<String>>) -> MutexGuard<'_, HashSet<String>> {
    // A set of strings: a panic elsewhere cannot leave it half-written.
    ids.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads the stream for as long as the handle lives, again after every failure.
async fn follow(links: Links, ids: Arc<Mutex<HashSet<String>>>, caught_up: watch::Sender<bool>) {
    let mut from = StreamOffset::First;
    loop {
        let failure = read(&links, &mut from, &ids, &caught_up).await;
        warn!(
            stream = %links.topology.queues.cancelled,
            "reading cancellations again: {failure:#}"
        );
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Reads the stream from `from` until it fails, moving `from` past every message read.
async fn read(
    links: &Links,
    from: &mut StreamOffset,
    ids: &Mutex<HashSet<String>>,
    caught_up: &watch::Sender<bool>,
) -> BrokerError {
    let stream = &links.topology.queues.cancelled;
    let start = *from;
    let reading = links
        .consumers
        .run(|session| async move { session.read_stream(stream, start, READ_AHEAD).await })
        .await;
    let mut deliveries = match reading {
        Ok(deliveries) => deliveries,
        Err(error) => return error,
    };
    let still_catching_up = !*caught_up.borrow();
    let marker = if still_catching_up {
        let marker = format!("{:016x}", fastrand::u64(..));
        if let Err(error) = append_marker(links, &marker).await {
            return error;
        }
        Some(marker)
    } else {
        None
    };
    while let Some(delivery) = deliveries.next().await {
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(error) => return error,
        };
        let message = &delivery.message;
        if let Some(offset) = message
            .header("x-stream-offset")
            .and_then(|offset| offset.parse::<i64>().ok())
        {
            *from = StreamOffset::At(offset + 1);
        }
        match (&message.id, message.header(MARKER).is_some()) {
            (Some(id), true) if marker.as_ref() == Some(id) => {
                caught_up.send_replace(true);
                info!(stream, cancelled = lock(ids).len(), "cancellations read");
            }
            (Some(task_id), false) if lock(ids).insert(task_id.clone()) => {
                debug!(task_id, "cancellation seen");
            }
            _ => {}
        }
        if let Err(error) = delivery.ack().await {
            return error;
        }
    }
    BrokerError::disconnected("the cancellation stream's consumer ended")
}

/// Appends a marker behind every cancel recorded so far: reading up to it means having read them.
async fn append_marker(links: &Links, marker: &str) -> Result<(), BrokerError> {
    let mut message = Message::new(bytes::Bytes::new()).with_id(marker);
    message.headers.insert(MARKER.to_owned(), "1".to_owned());
    append(&links.publishers, &links.topology, &message).await
}

/// Appends `message` to the cancellation stream; returns once it is durable.
pub(crate) async fn append(
    publishers: &Link<Publishers>,
    topology: &Topology,
    message: &Message,
) -> Result<(), BrokerError> {
    let route = Route::queue(&topology.queues.cancelled);
    let properties = convert::properties_of(message)?;
    publish_durably(publishers, &route, message, properties).await
}
