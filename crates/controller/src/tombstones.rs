//! Cancelled tasks, as whoever cancels them records them: the controller asks before every
//! call to a runner, so a task cancelled while it waited (on the queue, in a prefetch window, in
//! a delay queue for its retry) is never run, whichever controller takes it. The store behind it
//! is the deployment's: `up`'s task store; none by default.

use futures::future::BoxFuture;

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
