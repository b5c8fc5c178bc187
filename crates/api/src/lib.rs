//! The HTTP task API of `switchyard up`: producers submit tasks and read their outcome over HTTP
//! instead of speaking AMQP, on whichever broker backend `up` runs.
//!
//! Flow: `POST /v1/tasks` checks the payload against the algorithm's schema, records the task in
//! the [`store::TaskStore`], publishes it to the task queue and marks it published. The controller
//! (elsewhere) runs it and publishes a result to the results queue; [`collector::collect_results`]
//! records that result, which `GET /v1/tasks/{id}` (optionally long-polling) then shows.
//!
//! **Architecture Invariant:** a task is in the store before it is on the queue, and the store
//! republishes at start what it accepted but never saw confirmed: an accepted `202` is never lost.

pub mod catalog;
pub mod collector;
mod dashboard;
mod error;
mod openapi;
pub mod overview;
pub mod retention;
mod routes;
pub mod store;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use switchyard_broker::{
    Broker, Cancellations, DeadLetterStore, Message, QueueStats, StoredDeadLetter,
};
use switchyard_wire::{Task, new_task_id};
use tokio::sync::broadcast;

pub use catalog::Catalog;
pub use error::ApiError;
pub use routes::router;
pub use store::{Cursor, TaskRecord, TaskStatus, TaskStore};

/// What `DELETE /v1/tasks/{id}` did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Cancellation {
    /// The task.
    pub id: String,
    /// True: it will not be run. False: it already ran, runs, or finished; `status` says which.
    pub cancelled: bool,
    /// The task's status after the request.
    pub status: TaskStatus,
}

/// One page of `GET /v1/tasks`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    /// Newest first.
    pub tasks: Vec<TaskRecord>,
    /// Pass as `cursor` for the next (older) page; `null` after the last one. A page may hold
    /// fewer than `limit` tasks when a `running`/`queued` filter drops some: follow the cursor.
    pub next_cursor: Option<String>,
}

/// Which dead letters `POST /v1/dead-letters/requeue` replays.
#[derive(Debug, Clone, PartialEq)]
pub enum Requeue {
    /// Every dead letter.
    All,
    /// Keys from `GET /v1/dead-letters`.
    Keys(Vec<String>),
    /// Every dead letter whose task names this algorithm.
    Algorithm(String),
}

/// A dead letter's original body: JSON when it parses, else the text as received.
fn letter_body(stored: &StoredDeadLetter) -> Value {
    let body = &stored.letter.message.body;
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The longest a `GET /v1/tasks/{id}?wait=` may hold a connection.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// What a submit did.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// A new task, with its id.
    New(String),
    /// The idempotency key was seen before: the existing task.
    Existing(String),
}

/// The broker, seen through each trait the API needs.
#[derive(Clone)]
pub struct Queues {
    /// Where tasks are published.
    pub broker: Arc<dyn Broker>,
    /// Where dead letters are listed and replayed.
    pub dead_letters: Arc<dyn DeadLetterStore>,
    /// Where the depths are read.
    pub stats: Arc<dyn QueueStats>,
    /// Where cancels are recorded too, for controllers that run apart from `up` on the same
    /// queue (`up --amqp` beside `switchyard controller`s) and have no task store to ask.
    pub cancellations: Arc<dyn Cancellations>,
}

/// The views are trait objects of one backend; there is nothing to show but that they exist.
impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues").finish_non_exhaustive()
    }
}

impl Queues {
    /// Every view of one backend.
    pub fn of<B: Broker + DeadLetterStore + QueueStats + Cancellations>(broker: Arc<B>) -> Queues {
        Queues {
            broker: broker.clone(),
            dead_letters: broker.clone(),
            stats: broker.clone(),
            cancellations: broker,
        }
    }
}

/// The API's state; clones share it.
#[derive(Clone)]
pub struct TaskApi {
    queues: Queues,
    store: TaskStore,
    catalog: Catalog,
    /// Ids of tasks whose result was just recorded, for long-polling clients.
    finished: broadcast::Sender<String>,
    metrics: Arc<metrics::ApiMetrics>,
    /// Tells whether a consumer holds a task right now (`running`); only the embedded queue knows.
    lease_probe: Option<LeaseProbe>,
    /// When set, requests that change anything (submit, cancel, requeue) must present it as a
    /// bearer token; reads stay open, like discovery's.
    token: Option<Arc<str>>,
    /// The dashboard's chart: queue depths and throughput, recorded by [`overview::sample`].
    samples: overview::Samples,
    /// Reads runners' `/metrics` for their calls in flight.
    http: reqwest::Client,
}

/// Asks the broker whether a task id is held by a consumer right now.
pub type LeaseProbe =
    Arc<dyn Fn(String) -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

mod metrics {
    use prometheus::{IntCounterVec, Opts, Registry};

    /// The API's own counters; a registry per instance so tests can run several.
    pub(crate) struct ApiMetrics {
        pub registry: Registry,
        pub submitted: IntCounterVec,
        pub refused: IntCounterVec,
    }

    impl ApiMetrics {
        pub(crate) fn new() -> ApiMetrics {
            let registry = Registry::new();
            let submitted = IntCounterVec::new(
                Opts::new(
                    "switchyard_api_tasks_submitted_total",
                    "Tasks accepted by the API",
                ),
                &["algorithm"],
            )
            .expect("valid metric");
            let refused = IntCounterVec::new(
                Opts::new(
                    "switchyard_api_tasks_refused_total",
                    "Submits refused by the API",
                ),
                &["reason"],
            )
            .expect("valid metric");
            registry
                .register(Box::new(submitted.clone()))
                .expect("registers once");
            registry
                .register(Box::new(refused.clone()))
                .expect("registers once");
            ApiMetrics {
                registry,
                submitted,
                refused,
            }
        }
    }
}

/// A dead letter as `GET /v1/dead-letters` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetterView {
    /// Pass to `POST /v1/dead-letters/requeue` to replay it.
    pub key: String,
    /// The task's id, when the producer set one.
    pub id: Option<String>,
    /// The task's algorithm, when its body is a task.
    pub algorithm: Option<String>,
    /// Why it died, e.g. `rejected`, `no_runner`, `attempts_exhausted`.
    pub reason: String,
    /// Tries made before it died.
    pub attempts: u32,
    /// The last error seen.
    pub last_error: String,
    /// The original body: JSON when it parses, else the text as received.
    pub body: Value,
}

/// Leaves the token out; the rest is shared state with nothing a log line can use.
impl std::fmt::Debug for TaskApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskApi")
            .field("catalog", &self.catalog)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl TaskApi {
    /// An API over `queues`, recording tasks in `store` and checking payloads with `catalog`;
    /// open to every request until [`TaskApi::with_token`].
    pub fn new(queues: Queues, store: TaskStore, catalog: Catalog) -> TaskApi {
        TaskApi {
            queues,
            store,
            catalog,
            finished: broadcast::channel(1024).0,
            metrics: Arc::new(metrics::ApiMetrics::new()),
            lease_probe: None,
            token: None,
            samples: overview::Samples::default(),
            http: reqwest::Client::new(),
        }
    }

    /// Requires `token` of every request that changes something.
    pub fn with_token(mut self, token: Option<String>) -> TaskApi {
        self.token = token.map(Arc::from);
        self
    }

    /// Lets `GET /v1/tasks/{id}` report `running` for a queued task a consumer holds.
    pub fn with_lease_probe(mut self, probe: LeaseProbe) -> TaskApi {
        self.lease_probe = Some(probe);
        self
    }

    /// The task store, for the result collector and the dashboard.
    pub fn store(&self) -> &TaskStore {
        &self.store
    }

    /// The sender the result collector announces finished ids on.
    pub fn finished_sender(&self) -> broadcast::Sender<String> {
        self.finished.clone()
    }

    /// Publishes what was accepted before a crash but never confirmed by the broker.
    pub async fn republish_unconfirmed(&self) -> Result<usize, ApiError> {
        let pending = self.store.unpublished().await?;
        for task in &pending {
            tracing::info!(task = %task.id, algorithm = %task.algorithm, "republishing a task accepted before a restart");
            self.publish(
                &task.id,
                Task::new(task.algorithm.clone(), task.payload.clone()),
                task.deadline_ms,
                task.priority,
            )
            .await?;
        }
        Ok(pending.len())
    }

    /// Checks the payload, records the task and publishes it; a reused idempotency key
    /// answers the task it first created instead.
    pub async fn submit(
        &self,
        algorithm: String,
        payload: Value,
        idempotency_key: Option<String>,
        deadline_ms: Option<u64>,
        priority: u8,
    ) -> Result<Submitted, ApiError> {
        if let Err(refusal) = self.catalog.check(&algorithm, &payload).await? {
            let (reason, error): (_, fn(String) -> ApiError) = match refusal {
                catalog::Refusal::UnknownAlgorithm { .. } => {
                    ("unknown_algorithm", ApiError::BadRequest)
                }
                catalog::Refusal::Invalid { .. } => ("invalid_payload", ApiError::BadRequest),
                catalog::Refusal::Loading { .. } => ("loading", ApiError::Unavailable),
                catalog::Refusal::Unavailable { .. } => ("unavailable", ApiError::NotImplemented),
            };
            self.metrics.refused.with_label_values(&[reason]).inc();
            return Err(error(refusal.to_string()));
        }
        let id = new_task_id();
        let inserted = self
            .store
            .insert(
                id.clone(),
                algorithm.clone(),
                payload.clone(),
                idempotency_key,
                deadline_ms,
                priority,
            )
            .await?;
        if let store::Inserted::Existing(existing) = inserted {
            tracing::info!(task = %existing, "idempotent resubmit: returning the existing task");
            return Ok(Submitted::Existing(existing));
        }
        if let Err(error) = self
            .publish(
                &id,
                Task::new(algorithm.clone(), payload),
                deadline_ms,
                priority,
            )
            .await
        {
            self.store.remove(id).await?;
            return Err(error);
        }
        self.metrics
            .submitted
            .with_label_values(&[&algorithm])
            .inc();
        tracing::info!(task = %id, %algorithm, "task accepted");
        Ok(Submitted::New(id))
    }

    async fn publish(
        &self,
        id: &str,
        task: Task,
        deadline_ms: Option<u64>,
        priority: u8,
    ) -> Result<(), ApiError> {
        let mut message = Message::new(task.to_json_bytes())
            .with_id(id)
            .with_priority(priority);
        if let Some(deadline_ms) = deadline_ms {
            message.headers.insert(
                switchyard_wire::headers::DEADLINE_MS.into(),
                deadline_ms.to_string(),
            );
        }
        self.queues
            .broker
            .publish_task(message, Duration::ZERO)
            .await?;
        self.store.mark_published(id.to_string()).await?;
        Ok(())
    }

    /// Cancels a task that has not started: its tombstone makes every controller skip it. A task
    /// a consumer holds (known on the embedded queue) is running and left alone: a call in
    /// progress cannot be interrupted. `None`: no such task.
    pub async fn cancel(&self, id: String) -> Result<Option<Cancellation>, ApiError> {
        let Some(record) = self.task(id.clone(), Duration::ZERO).await? else {
            return Ok(None);
        };
        if record.status.is_final() || record.status == TaskStatus::Running {
            return Ok(Some(Cancellation {
                id,
                cancelled: false,
                status: record.status,
            }));
        }
        // The broker first: a failure there changes nothing, and the client may ask again.
        self.queues
            .cancellations
            .cancel(&id)
            .await
            .map_err(|error| {
                ApiError::Unavailable(format!(
                    "the cancel could not be recorded on the broker, try again: {error}"
                ))
            })?;
        let Some(before) = self.store.cancel(id.clone()).await? else {
            return Ok(None);
        };
        // It may have finished between the two reads.
        let cancelled = !before.is_final();
        tracing::info!(task = %id, cancelled, "cancel requested");
        Ok(Some(Cancellation {
            id,
            cancelled,
            status: if cancelled {
                TaskStatus::Cancelled
            } else {
                before
            },
        }))
    }

    /// Tasks newest first. `running` is known only on the embedded queue (a lease); elsewhere a
    /// task a controller holds shows as `queued`.
    pub async fn list(
        &self,
        state: Option<TaskStatus>,
        algorithm: Option<String>,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<TaskPage, ApiError> {
        let stored = match state {
            Some(TaskStatus::Running) => Some(TaskStatus::Queued),
            other => other,
        };
        let query = store::ListQuery {
            status: stored,
            algorithm,
            limit,
            after,
        };
        let rows = self.store.list(query).await?;
        let next_cursor = (rows.len() == limit)
            .then(|| rows.last().map(|last| Cursor::of(last).encode()))
            .flatten();
        let mut tasks = Vec::with_capacity(rows.len());
        for mut record in rows {
            if let Some(probe) = &self.lease_probe
                && record.status == TaskStatus::Queued
                && probe(record.id.clone()).await
            {
                record.status = TaskStatus::Running;
            }
            if state.is_none_or(|wanted| wanted == record.status) {
                tasks.push(record);
            }
        }
        Ok(TaskPage { tasks, next_cursor })
    }

    /// The task's record; with `wait`, holds until it is final or the wait (capped) ends.
    pub async fn task(&self, id: String, wait: Duration) -> Result<Option<TaskRecord>, ApiError> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        // Subscribe before reading, so a result recorded in between is not missed.
        let mut finished = self.finished.subscribe();
        loop {
            let mut record = self.store.get(id.clone()).await?;
            if let (Some(record), Some(probe)) = (record.as_mut(), &self.lease_probe)
                && record.status == TaskStatus::Queued
                && probe(record.id.clone()).await
            {
                record.status = TaskStatus::Running;
            }
            let done = record
                .as_ref()
                .is_none_or(|record| record.status.is_final());
            if done || tokio::time::Instant::now() >= deadline {
                return Ok(record);
            }
            loop {
                match tokio::time::timeout_at(deadline, finished.recv()).await {
                    Err(_elapsed) => break,
                    Ok(Ok(finished_id)) if finished_id != id => continue,
                    // Ours, or we lagged and may have missed it: read the store again.
                    Ok(_) => break,
                }
            }
        }
    }

    /// Up to `limit` dead letters, oldest first, with their bodies decoded for people.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetterView>, ApiError> {
        let letters = self.queues.dead_letters.list_dead_letters(limit).await?;
        Ok(letters
            .into_iter()
            .map(|stored| {
                let body = letter_body(&stored);
                DeadLetterView {
                    key: stored.key,
                    id: stored.letter.message.id,
                    algorithm: body["algorithm"].as_str().map(String::from),
                    reason: stored.letter.reason,
                    attempts: stored.letter.attempts,
                    last_error: stored.letter.last_error,
                    body,
                }
            })
            .collect())
    }

    /// Replays dead letters; their tasks go back to `queued`. The number requeued.
    pub async fn requeue(&self, which: Requeue) -> Result<usize, ApiError> {
        let letters = self
            .queues
            .dead_letters
            .list_dead_letters(usize::MAX)
            .await?;
        let chosen: Vec<&StoredDeadLetter> = letters
            .iter()
            .filter(|stored| match &which {
                Requeue::All => true,
                Requeue::Keys(keys) => keys.contains(&stored.key),
                Requeue::Algorithm(algorithm) => {
                    letter_body(stored)["algorithm"].as_str() == Some(algorithm.as_str())
                }
            })
            .collect();
        let keys: Option<Vec<String>> = match &which {
            Requeue::All => None,
            Requeue::Keys(keys) => Some(keys.clone()),
            Requeue::Algorithm(_) if chosen.is_empty() => return Ok(0),
            Requeue::Algorithm(_) => Some(chosen.iter().map(|stored| stored.key.clone()).collect()),
        };
        let ids: Vec<String> = chosen
            .iter()
            .filter_map(|stored| stored.letter.message.id.clone())
            .collect();
        let requeued = self
            .queues
            .dead_letters
            .requeue_dead_letters(keys.as_deref())
            .await?;
        self.store.mark_requeued(ids).await?;
        tracing::info!(requeued, ?which, "dead letters requeued");
        Ok(requeued)
    }

    async fn metrics_text(&self) -> String {
        use prometheus::Encoder;
        let mut text = Vec::new();
        let encoder = prometheus::TextEncoder::new();
        let _ = encoder.encode(&self.metrics.registry.gather(), &mut text);
        if let Ok(counts) = self.store.counts().await {
            text.extend_from_slice(b"# HELP switchyard_api_tasks Tasks in the store by status\n# TYPE switchyard_api_tasks gauge\n");
            for (status, count) in counts {
                let status = serde_json::to_value(status).unwrap_or_default();
                text.extend_from_slice(
                    format!("switchyard_api_tasks{{status={status}}} {count}\n").as_bytes(),
                );
            }
        }
        String::from_utf8_lossy(&text).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cancellations that RabbitMQ cannot take: its stream refused, its node gone.
    struct Unrecordable;

    #[async_trait::async_trait]
    impl Cancellations for Unrecordable {
        async fn cancel(&self, _task_id: &str) -> Result<(), switchyard_broker::BrokerError> {
            Err(switchyard_broker::BrokerError::disconnected("no broker"))
        }

        async fn is_cancelled(
            &self,
            _task_id: &str,
        ) -> Result<bool, switchyard_broker::BrokerError> {
            Ok(false)
        }
    }

    #[tokio::test]
    async fn a_cancel_the_broker_cannot_record_is_a_503_and_changes_nothing() {
        let data = tempfile::tempdir().unwrap();
        let mut queues = Queues::of(Arc::new(switchyard_broker::memory::MemoryBroker::new()));
        queues.cancellations = Arc::new(Unrecordable);
        let store = TaskStore::open(&data.path().join("tasks.db")).unwrap();
        let discovery = switchyard_discovery::DiscoveryClient::new("http://discovery:8500", None);
        let api = TaskApi::new(queues, store.clone(), Catalog::new(discovery));
        store
            .insert(
                "t1".into(),
                "echo".into(),
                serde_json::json!({}),
                None,
                None,
                0,
            )
            .await
            .unwrap();

        let refused = api.cancel("t1".into()).await.unwrap_err();
        assert!(matches!(refused, ApiError::Unavailable(_)), "{refused}");
        assert!(refused.to_string().contains("try again"), "{refused}");
        assert!(
            !store.is_cancelled("t1".into()).await.unwrap(),
            "the store was changed"
        );
    }

    #[test]
    fn debug_leaves_the_token_out() {
        let data = tempfile::tempdir().unwrap();
        let discovery = switchyard_discovery::DiscoveryClient::new(
            "http://discovery:8500",
            Some("s3cret-token".into()),
        );
        let api = TaskApi::new(
            Queues::of(Arc::new(switchyard_broker::memory::MemoryBroker::new())),
            TaskStore::open(&data.path().join("tasks.db")).unwrap(),
            Catalog::new(discovery),
        )
        .with_token(Some("s3cret-token".into()));
        let shown = format!("{api:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
