//! One lazily (re)opened connection, and the retry loop every broker call runs in.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use tokio::time::Instant;
use tracing::{info, warn};

use super::errors::broker_error;
use super::topology::Topology;
use crate::BrokerError;

/// What a connection carries once open (channels, consumers); rebuilt with each connection.
pub(crate) trait Session: Send + Sync + 'static + Sized {
    /// Declares what the session relies on (the whole topology, or the cancellation stream
    /// alone), then opens its channels.
    fn open(
        connection: Connection,
        topology: &Topology,
    ) -> impl Future<Output = Result<Self, BrokerError>> + Send;
    /// False once the connection or any channel the session relies on is gone.
    fn is_open(&self) -> bool;
}

/// A connection that reopens itself, with what its session declares, when a call needs it.
pub(crate) struct Link<S> {
    /// The nodes to try, in turn: one for a single broker, every node of a cluster.
    uris: Arc<[AMQPUri]>,
    /// The node the next connection attempt goes to; moves on after each failed attempt, so
    /// a dead node is left for the next live one.
    next_node: std::sync::atomic::AtomicUsize,
    /// Shown by `rabbitmqctl list_connections client_properties` and the management UI.
    name: &'static str,
    topology: Arc<Topology>,
    reconnect_timeout: Duration,
    current: Mutex<Option<Arc<S>>>,
    /// Held while connecting, so concurrent callers wait for one reconnect instead of each
    /// opening its own connection.
    connecting: tokio::sync::Mutex<()>,
}

/// First pause between connection attempts; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl<S: Session> Link<S> {
    pub(crate) fn new(
        uris: Arc<[AMQPUri]>,
        name: &'static str,
        topology: Arc<Topology>,
        reconnect_timeout: Duration,
    ) -> Self {
        assert!(!uris.is_empty(), "a link needs at least one node");
        Link {
            uris,
            next_node: std::sync::atomic::AtomicUsize::new(0),
            name,
            topology,
            reconnect_timeout,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// Runs `op` on an open session. When it fails with `Disconnected`, the session is dropped
    /// and `op` runs again on a new connection, until `reconnect_timeout` has passed.
    pub(crate) async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, BrokerError>
    where
        F: FnMut(Arc<S>) -> Fut,
        Fut: Future<Output = Result<T, BrokerError>>,
    {
        let deadline = Instant::now() + self.reconnect_timeout;
        let mut backoff = Backoff::default();
        loop {
            let session = self.session(deadline, &mut backoff).await?;
            match op(session.clone()).await {
                Err(lost @ BrokerError::Disconnected { .. }) => {
                    warn!(
                        connection = self.name,
                        "connection lost; retrying on a new one: {lost:#}"
                    );
                    self.forget(&session);
                    if !backoff.pause_before(deadline).await {
                        return Err(lost);
                    }
                }
                outcome => return outcome,
            }
        }
    }

    /// Drops the current session: the next call reconnects and declares the topology again.
    pub(crate) fn forget_current(&self) {
        self.lock().take();
    }

    fn forget(&self, broken: &Arc<S>) {
        let mut current = self.lock();
        if current.as_ref().is_some_and(|s| Arc::ptr_eq(s, broken)) {
            *current = None;
        }
    }

    fn live(&self) -> Option<Arc<S>> {
        self.lock().clone().filter(|session| session.is_open())
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<S>>> {
        // The guarded value is a plain Option: a panic elsewhere cannot leave it half-written.
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn session(
        &self,
        deadline: Instant,
        backoff: &mut Backoff,
    ) -> Result<Arc<S>, BrokerError> {
        if let Some(session) = self.live() {
            return Ok(session);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(session) = self.live() {
            return Ok(session);
        }
        loop {
            let attempt = tokio::time::timeout_at(deadline, self.open()).await;
            let error = match attempt {
                Ok(Ok((session, node))) => {
                    let session = Arc::new(session);
                    *self.lock() = Some(session.clone());
                    info!(connection = self.name, node, "connected");
                    return Ok(session);
                }
                Ok(Err(fatal @ BrokerError::Fatal { .. })) => return Err(fatal),
                Ok(Err(transient)) => transient,
                Err(_elapsed) => BrokerError::disconnected("connection attempt timed out"),
            };
            warn!(
                connection = self.name,
                "cannot connect to RabbitMQ: {error:#}"
            );
            if !backoff.pause_before(deadline).await {
                return Err(BrokerError::disconnected(format!(
                    "no connection to RabbitMQ within {:?}",
                    self.reconnect_timeout
                ))
                .caused_by(error));
            }
        }
    }

    /// Opens a session on the current node; a failure moves the next attempt to the next node.
    /// Returns the session and the node's `host:port`.
    async fn open(&self) -> Result<(S, String), BrokerError> {
        use std::sync::atomic::Ordering;
        let index = self.next_node.load(Ordering::Relaxed) % self.uris.len();
        let uri = &self.uris[index];
        let node = format!("{}:{}", uri.authority.host, uri.authority.port);
        let opened = self.open_on(uri).await;
        if opened.is_err() {
            self.next_node.store(index + 1, Ordering::Relaxed);
        }
        opened.map(|session| (session, node))
    }

    async fn open_on(&self, uri: &AMQPUri) -> Result<S, BrokerError> {
        let properties = ConnectionProperties::default().with_connection_name(self.name.into());
        let connection = Connection::connect_uri(uri.clone(), properties)
            .await
            .map_err(|error| connect_error(uri, error))?;
        tokio::spawn(say_when_blocked(self.name, connection.events_listener()));
        S::open(connection, &self.topology).await
    }
}

/// Logs RabbitMQ's resource alarms (a memory or disk limit reached: `connection.blocked`) once
/// each way. While blocked, lapin writes nothing: publishes wait for their confirms instead of
/// failing, so nothing is lost and nothing spins, and they go on once RabbitMQ unblocks. Ends
/// with the connection.
async fn say_when_blocked(
    connection: &'static str,
    events: impl futures::Stream<Item = lapin::Event> + Send + 'static,
) {
    use futures::StreamExt;
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            lapin::Event::ConnectionBlocked(reason) => warn!(
                connection,
                "RabbitMQ blocked publishing ({reason}): publishes wait until it unblocks"
            ),
            lapin::Event::ConnectionUnblocked => {
                info!(connection, "RabbitMQ unblocked publishing")
            }
            _ => {}
        }
    }
}

/// A refused connection, with what to do about it: the broker's words alone ("NOT_ALLOWED -
/// vhost x not found") leave a user to guess which setting is wrong.
fn connect_error(uri: &lapin::uri::AMQPUri, error: lapin::Error) -> BrokerError {
    use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
    let advice = match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => Some(format!(
                "the vhost '{}' of the URL does not exist or the user may not use it: create it \
                 (rabbitmqctl add_vhost {0}; rabbitmqctl set_permissions -p {0} {} '.*' '.*' \
                 '.*') or fix the URL (the default vhost / is written %2f)",
                uri.vhost, uri.authority.userinfo.username
            )),
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => Some(format!(
                "RabbitMQ refused user '{}': check the user and password in the URL",
                uri.authority.userinfo.username
            )),
            _ => None,
        },
        lapin::ErrorKind::IOError(_) => Some(format!(
            "is RabbitMQ running and listening at {}:{}?",
            uri.authority.host, uri.authority.port
        )),
        _ => None,
    };
    match advice {
        Some(advice) => broker_error(&format!("connecting; {advice}"), error),
        None => broker_error("connecting", error),
    }
}

/// Exponential backoff with jitter, so clients restarted together do not reconnect in lockstep.
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: FIRST_BACKOFF,
        }
    }
}

impl Backoff {
    /// Sleeps for the next pause; false (without sleeping) when it would end past `deadline`.
    async fn pause_before(&mut self, deadline: Instant) -> bool {
        let pause = self.next.mul_f64(0.5 + fastrand::f64() / 2.0);
        self.next = (self.next * 2).min(MAX_BACKOFF);
        if Instant::now() + pause >= deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        true
    }
}
