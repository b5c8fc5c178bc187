//! Cancelled tasks, as whoever cancels them records them: the controller asks before every
//! call to a runner, so a task cancelled while it waited (on the queue, in a prefetch window, in
//! a delay queue for its retry) is never run, whichever controller takes it. The store behind it
//! is the deployment's: `up`'s task store, or the broker's own [`Cancellations`] for controllers
//! running apart ([`BrokerTombstones`]); none by default.

use std::sync::Arc;

use futures::future::BoxFuture;
use switchyard_broker::Cancellations;

/// Answers whether a task id was cancelled. An implementation that cannot tell (its store is
/// unreachable) answers `false`: running a task once too often is what at-least-once already
/// allows, dropping one that was not cancelled is not.
pub trait Tombstones: Send + Sync {
    /// Whether `task_id` was cancelled; `false` when that cannot be told.
    fn is_cancelled<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, bool>;
}

/// No cancellations: the default, where nothing records them.
pub(crate) struct NoTombstones;

impl Tombstones for NoTombstones {
    fn is_cancelled<'a>(&'a self, _task_id: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async { false })
    }
}

/// The cancellations recorded on the broker (`switchyard cancel --amqp`), for a controller that
/// has no task store of its own to ask.
pub struct BrokerTombstones(Arc<dyn Cancellations>);

impl BrokerTombstones {
    /// Asks `cancellations`, typically the broker the controller consumes from.
    pub fn new(cancellations: Arc<dyn Cancellations>) -> Self {
        BrokerTombstones(cancellations)
    }
}

impl std::fmt::Debug for BrokerTombstones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerTombstones").finish_non_exhaustive()
    }
}

impl Tombstones for BrokerTombstones {
    fn is_cancelled<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.0.is_cancelled(task_id).await.unwrap_or_else(|error| {
                tracing::warn!(
                    task_id,
                    "cannot read cancellations, running the task: {error:#}"
                );
                false
            })
        })
    }
}
