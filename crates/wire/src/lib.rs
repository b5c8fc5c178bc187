//! Wire types shared by every Switchyard component.
//!
//! Everything that crosses a process boundary (a task on a queue, a result sent back to a producer,
//! a runner's registration with discovery, a runner's error body) is defined here once, so the
//! components can only disagree about it by changing this crate.
//!
//! **Architecture Invariant:** this crate does no I/O and depends on nothing but serde; every other
//! crate may depend on it.

pub mod auth;
pub mod deadline;
pub mod discovery;
pub mod duration;
pub mod headers;
pub mod result;
pub mod task;

pub use result::{ErrorKind, FailedAttempt, TaskError, TaskOutcome, TaskResult};
pub use task::{RawTask, Task, TaskParseError};

/// The JSON body of a refused or failed call, a runner's or the task API's: the series'
/// `{"message": ...}` shape, with an optional detail.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong, for a human.
    pub message: String,
    /// Internal detail (the series sends it with 500s); absent for client errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A new task id: UUIDv7, so ids sort by creation time in logs and stores.
pub fn new_task_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
