//! Cancellations on RabbitMQ: a stream every controller reads whole, on a connection of its own.
//!
//! A cancel is one persistent, confirmed message on the stream `<tasks>.cancelled`, its
//! `message_id` the task id; the first cancel creates the stream, so a deployment that never
//! cancels has none, and its controllers only look for it every [`ABSENT_POLL`]. The first time a broker handle is asked whether a task is cancelled,
//! it starts following the stream: from its oldest message into a set of ids, then on as cancels
//! arrive, and again from where it stopped after a lost connection. That first answer waits (at
//! most [`CATCH_UP_PATIENCE`]) until the set holds every cancel recorded before the question: the
//! follower appends a marker of its own to the stream and answers once it has read its way to it.
//! Later answers are the set as it is: a cancel recorded meanwhile is seen after the stream's
//! delivery latency (milliseconds).
//!
//! A stream rather than a queue: a queue hands each message to one consumer, a stream lets every
//! controller read every cancel, including controllers started after it. Its cost: one stream
//! message per cancel (and per follower start), and every id cancelled within the retention held
//! in each controller's memory, some 100 bytes each.
//!
//! **Cancellations never hold tasks up.** The stream lives on its own connection
//! (`switchyard-cancellations`), declared there by a cancel, never with the task topology: a
//! stream's replicas have a home node, and while a restarted or failed-over node brings the
//! stream back, declaring or reading it fails for seconds to minutes. Tasks, results and retries go on meanwhile on their own
//! connections; a handle that has not read the stream yet answers with an error at once after its
//! first wait, and the controller runs the task (running once too often is what at-least-once
//! already allows). A cancel recorded during such an outage is seen once the follower reads again.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::connection::{Link, Session};
use super::consume::consume_on;
use super::convert;
use super::errors::broker_error;
use super::publish::{Published, confirming_channel, publish};
use super::topology::{Route, Topology};
use crate::{BrokerError, Deliveries, Message};

/// Header that marks a follower's own marker, as opposed to a cancel.
const MARKER: &str = "x-switchyard-marker";

/// Unacknowledged stream messages a follower holds at once: its read-ahead.
const READ_AHEAD: u16 = 1000;

/// Pause before reading the stream again after it ended or failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// How often a follower looks for a stream that does not exist yet: the first cancel ever
/// recorded on a queue reaches running controllers within this.
const ABSENT_POLL: Duration = Duration::from_secs(2);

/// How long the first question waits for the follower to read the stream up to its start. A few
/// round trips on a healthy broker; past this the stream is taken as unavailable, and later
/// questions do not wait until the follower has caught up.
pub(crate) const CATCH_UP_PATIENCE: Duration = Duration::from_secs(5);

/// The cancellation stream's connection: appends to the stream with confirms, reads it.
pub(crate) struct StreamSession {
    /// Reads open channels of their own on it.
    connection: Connection,
    /// Confirm-mode channel for cancels and markers.
    appends: Channel,
}

impl Session for StreamSession {
    async fn open(connection: Connection, _topology: &Topology) -> Result<Self, BrokerError> {
        let appends = confirming_channel(&connection).await?;
        Ok(StreamSession {
            connection,
            appends,
        })
    }

    fn is_open(&self) -> bool {
        self.connection.status().connected() && self.appends.status().connected()
    }
}

/// Where reading a stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamOffset {
    /// Its oldest message still kept.
    First,
    /// This offset (one past the last message read before), or the oldest kept if later.
    At(i64),
}

impl StreamSession {
    /// Reads the stream from `offset` on. A stream consumer must acknowledge, and at most
    /// [`READ_AHEAD`] deliveries are unacknowledged: acks are its credit.
    async fn read(&self, stream: &str, offset: StreamOffset) -> Result<Deliveries, BrokerError> {
        let channel = self
            .connection
            .create_channel()
            .await
            .map_err(|error| broker_error("channel.open", error))?;
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-stream-offset".into(),
            match offset {
                StreamOffset::First => AMQPValue::LongString("first".into()),
                StreamOffset::At(offset) => AMQPValue::LongLongInt(offset),
            },
        );
        consume_on(channel, stream, READ_AHEAD, arguments).await
    }
}

/// Appends `message` to the cancellation stream; returns once it is durable.
pub(crate) async fn append(
    link: &Link<StreamSession>,
    topology: &Topology,
    message: &Message,
) -> Result<(), BrokerError> {
    let route = Route::queue(&topology.queues.cancelled);
    let properties = convert::properties_of(message)?;
    link.run(|session| {
        let (route, properties) = (&route, properties.clone());
        async move {
            // Cancels are rare: declaring each time costs a round trip and keeps a deleted
            // stream from swallowing them.
            topology
                .declare_cancellation_stream(&session.connection)
                .await?;
            match publish(&session.appends, route, &message.body, properties).await? {
                Published::Confirmed => Ok(()),
                Published::Returned(reason) => Err(BrokerError::not_confirmed(format!(
                    "{route} did not take the cancel ({reason}); it is declared again on the \
                     next try"
                ))),
            }
        }
    })
    .await
}

/// The cancelled ids as one handle follows them; the follower stops when this drops.
pub(crate) struct Followed {
    ids: Arc<Mutex<HashSet<String>>>,
    /// True once the set holds every cancel recorded before the follower started.
    caught_up: watch::Receiver<bool>,
    /// Set once a question waited [`CATCH_UP_PATIENCE`] in vain: later ones do not wait.
    waited_in_vain: AtomicBool,
    follower: JoinHandle<()>,
}

impl Drop for Followed {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl Followed {
    /// Starts following the stream in the background, through `link`.
    pub(crate) fn start(link: Arc<Link<StreamSession>>, topology: Arc<Topology>) -> Self {
        let ids = Arc::new(Mutex::new(HashSet::new()));
        let (caught_up_tx, caught_up) = watch::channel(false);
        let follower = tokio::spawn(follow(link, topology, ids.clone(), caught_up_tx));
        Followed {
            ids,
            caught_up,
            waited_in_vain: AtomicBool::new(false),
            follower,
        }
    }

    /// Whether `task_id` was cancelled. Until the follower has read every cancel recorded before
    /// it started, the first question waits for it (at most [`CATCH_UP_PATIENCE`]) and the
    /// questions after a vain wait fail at once.
    pub(crate) async fn contains(&self, task_id: &str) -> Result<bool, BrokerError> {
        let patience = if self.waited_in_vain.load(Ordering::Relaxed) {
            Duration::ZERO
        } else {
            CATCH_UP_PATIENCE
        };
        let mut caught_up = self.caught_up.clone();
        match tokio::time::timeout(patience, caught_up.wait_for(|done| *done)).await {
            Ok(Ok(_)) => Ok(lock(&self.ids).contains(task_id)),
            Ok(Err(_stopped)) => Err(BrokerError::fatal("the cancellation follower stopped")),
            Err(_elapsed) => {
                self.waited_in_vain.store(true, Ordering::Relaxed);
                Err(BrokerError::disconnected(
                    "the cancellation stream is not read yet (see the warnings of the \
                     switchyard-cancellations connection)",
                ))
            }
        }
    }
}

fn lock(ids: &Mutex<HashSet<String>>) -> MutexGuard<'_, HashSet<String>> {
    // A set of strings: a panic elsewhere cannot leave it half-written.
    ids.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads the stream for as long as the handle lives, again after every failure.
async fn follow(
    link: Arc<Link<StreamSession>>,
    topology: Arc<Topology>,
    ids: Arc<Mutex<HashSet<String>>>,
    caught_up: watch::Sender<bool>,
) {
    let mut from = StreamOffset::First;
    loop {
        let exists = link
            .run(|session| {
                let topology = &topology;
                async move {
                    topology
                        .cancellation_stream_exists(&session.connection)
                        .await
                }
            })
            .await;
        match exists {
            Ok(false) => {
                // Nobody has cancelled a task on this queue: the empty set is the whole truth.
                caught_up.send_replace(true);
                tokio::time::sleep(ABSENT_POLL).await;
                continue;
            }
            Ok(true) => {}
            Err(failure) => {
                warn!(
                    stream = %topology.queues.cancelled,
                    "cannot look for cancellations: {failure:#}"
                );
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        }
        let failure = read(&link, &topology, &mut from, &ids, &caught_up).await;
        warn!(
            stream = %topology.queues.cancelled,
            "reading cancellations again: {failure:#}"
        );
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Reads the stream from `from` until it fails, moving `from` past every message read.
async fn read(
    link: &Link<StreamSession>,
    topology: &Topology,
    from: &mut StreamOffset,
    ids: &Mutex<HashSet<String>>,
    caught_up: &watch::Sender<bool>,
) -> BrokerError {
    let stream = &topology.queues.cancelled;
    let start = *from;
    let reading = link
        .run(|session| async move { session.read(stream, start).await })
        .await;
    let mut deliveries = match reading {
        Ok(deliveries) => deliveries,
        Err(error) => return error,
    };
    let marker = if *caught_up.borrow() {
        None
    } else {
        let marker = format!("{:016x}", fastrand::u64(..));
        if let Err(error) = append_marker(link, topology, &marker).await {
            return error;
        }
        Some(marker)
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
async fn append_marker(
    link: &Link<StreamSession>,
    topology: &Topology,
    marker: &str,
) -> Result<(), BrokerError> {
    let mut message = Message::new(bytes::Bytes::new()).with_id(marker);
    message.headers.insert(MARKER.to_owned(), "1".to_owned());
    append(link, topology, &message).await
}
