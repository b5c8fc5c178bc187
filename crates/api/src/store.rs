//! The task store: what the API knows about every task it accepted, in SQLite.
//!
//! A task is inserted before it is published (so an idempotent resubmit finds it) and marked
//! published after the broker confirmed it; rows still unpublished at start are published again,
//! which is what makes an accepted task survive a crash between the two steps. Results are
//! upserted by id, so a result delivered twice (at-least-once) leaves one row.
//!
//! Finished tasks are pruned after a retention ([`TaskStore::prune`], run by
//! [`crate::retention`]); a pruned task's id is kept in `pruned` so its lookup answers 410 Gone,
//! not 404, at the cost of one short row per task (about 100 bytes with its index), until it is
//! forgotten in turn ([`TaskStore::forget_pruned`]): kept forever, those rows would be all that
//! grows under a steady load.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use switchyard_wire::{ErrorKind, FailedAttempt, TaskError, TaskOutcome, TaskResult};

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Accepted and on the queue (or waiting for a retry).
    Queued,
    /// A consumer holds it (known for the embedded queue only).
    Running,
    /// Finished with a result.
    Done,
    /// Refused by its runner or not a valid task: the input's fault; replaying it as is fails again.
    Failed,
    /// Given up on: no runner, or every attempt failed transiently. Replay once the cause is fixed.
    Dead,
    /// Its deadline (or ttl) passed before a runner answered it.
    Expired,
    /// Cancelled before a runner took it.
    Cancelled,
}

impl TaskStatus {
    fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Dead => "dead",
            TaskStatus::Expired => "expired",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// A status a client names (`?state=`), strictly.
    pub fn from_name(text: &str) -> Option<TaskStatus> {
        Some(match text {
            "queued" => TaskStatus::Queued,
            "running" => TaskStatus::Running,
            "done" => TaskStatus::Done,
            "failed" => TaskStatus::Failed,
            "dead" => TaskStatus::Dead,
            "expired" => TaskStatus::Expired,
            "cancelled" => TaskStatus::Cancelled,
            _ => return None,
        })
    }

    /// A stored status; the store writes only known names, so anything else reads as queued.
    fn parse(text: &str) -> TaskStatus {
        TaskStatus::from_name(text).unwrap_or(TaskStatus::Queued)
    }

    /// Whether the task is over: nothing will change its record again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Done
                | TaskStatus::Failed
                | TaskStatus::Dead
                | TaskStatus::Expired
                | TaskStatus::Cancelled
        )
    }

    fn of_result(result: &TaskResult) -> TaskStatus {
        match &result.outcome {
            TaskOutcome::Ok { .. } => TaskStatus::Done,
            TaskOutcome::Error { error } => match error.kind {
                ErrorKind::NoRunner | ErrorKind::Unavailable => TaskStatus::Dead,
                ErrorKind::InvalidTask | ErrorKind::Rejected | ErrorKind::BadResponse => {
                    TaskStatus::Failed
                }
                ErrorKind::Expired => TaskStatus::Expired,
                ErrorKind::Cancelled => TaskStatus::Cancelled,
            },
        }
    }
}

/// A task as `GET /v1/tasks/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TaskRecord {
    /// The task's id.
    pub id: String,
    /// The algorithm it runs.
    pub algorithm: String,
    /// Where it is now.
    pub status: TaskStatus,
    /// Tries so far.
    pub attempts: u32,
    /// What the algorithm returned, once done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why it failed, once failed, dead, expired or cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskError>,
    /// The runner that gave the outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// From its first try to its outcome, retries included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// When it was submitted, in Unix milliseconds.
    pub submitted_at_ms: u64,
    /// 0 to 9; higher runs first.
    #[schema(maximum = 9)]
    pub priority: u8,
    /// The payload as submitted; only in a single task's record, and absent once
    /// `--retain-payloads` dropped it (or for a task this store only saw the result of).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// Failed attempts, oldest first (at most 20); only in a single task's record, absent when
    /// none failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<FailedAttempt>,
}

/// One finished task, as [`TaskStore::finished_since`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The algorithm it ran.
    pub algorithm: String,
    /// How it ended.
    pub status: TaskStatus,
    /// From its first try to its outcome, when known.
    pub duration_ms: Option<u64>,
}

/// Which tasks [`TaskStore::list`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// As stored: `Running` is never stored (see [`TaskStatus`]), so ask for `Queued`.
    pub status: Option<TaskStatus>,
    /// Only tasks of this algorithm.
    pub algorithm: Option<String>,
    /// The most tasks on a page.
    pub limit: usize,
    /// Only tasks older than this one (the last of the previous page).
    pub after: Option<Cursor>,
}

/// Where a page ends: the newest-first order is by submit time, then id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last task's submit time.
    pub submitted_at_ms: u64,
    /// The last task's id, which breaks ties.
    pub id: String,
}

impl Cursor {
    /// The cursor that continues after `record`.
    pub fn of(record: &TaskRecord) -> Cursor {
        Cursor {
            submitted_at_ms: record.submitted_at_ms,
            id: record.id.clone(),
        }
    }

    /// Opaque to clients: `<ms>.<id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.submitted_at_ms, self.id)
    }

    /// Reads a cursor a client sent back; `None` when it is not one of ours.
    pub fn decode(text: &str) -> Option<Cursor> {
        let (ms, id) = text.split_once('.')?;
        Some(Cursor {
            submitted_at_ms: ms.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

/// A task accepted but not yet confirmed by the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpublished {
    /// The task's id.
    pub id: String,
    /// The algorithm it runs.
    pub algorithm: String,
    /// Its payload, kept until it is published.
    pub payload: Value,
    /// When it expires, in Unix milliseconds, if it does.
    pub deadline_ms: Option<u64>,
    /// Its priority, 0 to 9.
    pub priority: u8,
}

/// The outcome of an insert.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// A new task was recorded.
    New,
    /// The idempotency key was used before: this is that task's id.
    Existing(String),
}

/// SQLite failed under the task store.
#[derive(Debug, thiserror::Error)]
#[error("task store: {0}")]
pub struct StoreError(#[from] rusqlite::Error);

/// The store; clones share one connection.
#[derive(Debug, Clone)]
pub struct TaskStore {
    /// One connection behind a mutex: SQLite serialises writers anyway, and every call is short.
    connection: Arc<Mutex<Connection>>,
}

impl TaskStore {
    /// Opens (creating when missing) the store at `path`, durably: WAL, synchronous writes.
    pub fn open(path: &Path) -> Result<TaskStore, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS tasks (
                id TEXT PRIMARY KEY,
                algorithm TEXT NOT NULL,
                payload TEXT NOT NULL,
                idempotency_key TEXT UNIQUE,
                published INTEGER NOT NULL DEFAULT 0,
                status TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                result TEXT,
                error TEXT,
                runner TEXT,
                duration_ms INTEGER,
                submitted_at_ms INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS tasks_unpublished ON tasks(published) WHERE published = 0;
            CREATE INDEX IF NOT EXISTS tasks_newest ON tasks(submitted_at_ms DESC, id DESC);
            CREATE TABLE IF NOT EXISTS pruned (id TEXT PRIMARY KEY) WITHOUT ROWID;",
        )?;
        // Stores made before retention have no finish time: their finished tasks count as
        // finished at the upgrade.
        if add_column_if_missing(&connection, "tasks", "finished_at_ms INTEGER")? {
            connection.execute(
                "UPDATE tasks SET finished_at_ms = ?1 WHERE status IN ('done', 'failed', 'dead')",
                [now_ms()],
            )?;
        }
        add_column_if_missing(&connection, "tasks", "deadline_ms INTEGER")?;
        // Tasks of an older store were all submitted without one: 0.
        add_column_if_missing(&connection, "tasks", "priority INTEGER NOT NULL DEFAULT 0")?;
        add_column_if_missing(&connection, "tasks", "history TEXT")?;
        // Ids pruned by an older build count as finished at the upgrade.
        if add_column_if_missing(&connection, "pruned", "finished_at_ms INTEGER")? {
            connection.execute("UPDATE pruned SET finished_at_ms = ?1", [now_ms()])?;
        }
        connection.execute_batch(
            "CREATE INDEX IF NOT EXISTS tasks_finished ON tasks(finished_at_ms)
             WHERE finished_at_ms IS NOT NULL;
             CREATE INDEX IF NOT EXISTS pruned_finished ON pruned(finished_at_ms);",
        )?;
        Ok(TaskStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` with the connection on the blocking pool: SQLite calls block.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            work(&mut connection)
        })
        .await
        .expect("store calls do not panic")
        .map_err(StoreError)
    }

    /// Records a submitted task, unless its idempotency key names an existing one.
    pub async fn insert(
        &self,
        id: String,
        algorithm: String,
        payload: Value,
        idempotency_key: Option<String>,
        deadline_ms: Option<u64>,
        priority: u8,
    ) -> Result<Inserted, StoreError> {
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            if let Some(key) = &idempotency_key {
                let existing: Option<String> = transaction
                    .query_row(
                        "SELECT id FROM tasks WHERE idempotency_key = ?1",
                        [key],
                        |row| row.get(0),
                    )
                    .optional()?;
                if let Some(existing) = existing {
                    return Ok(Inserted::Existing(existing));
                }
            }
            transaction.execute(
                "INSERT INTO tasks (id, algorithm, payload, idempotency_key, status, submitted_at_ms,
                                    deadline_ms, priority)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7)",
                params![
                    id,
                    algorithm,
                    payload.to_string(),
                    idempotency_key,
                    now_ms(),
                    deadline_ms.map(|ms| ms as i64),
                    priority
                ],
            )?;
            transaction.commit()?;
            Ok(Inserted::New)
        })
        .await
    }

    /// The broker confirmed the task: it no longer needs publishing at start.
    pub async fn mark_published(&self, id: String) -> Result<(), StoreError> {
        self.with(move |connection| {
            connection.execute("UPDATE tasks SET published = 1 WHERE id = ?1", [id])?;
            Ok(())
        })
        .await
    }

    /// Forgets a task whose publish failed, so the client's retry is not answered with its id.
    pub async fn remove(&self, id: String) -> Result<(), StoreError> {
        self.with(move |connection| {
            connection.execute("DELETE FROM tasks WHERE id = ?1 AND published = 0", [id])?;
            Ok(())
        })
        .await
    }

    /// Tasks accepted before a crash whose publish was never confirmed.
    pub async fn unpublished(&self) -> Result<Vec<Unpublished>, StoreError> {
        self.with(|connection| {
            let mut statement = connection.prepare(
                "SELECT id, algorithm, payload, deadline_ms, priority FROM tasks WHERE published = 0",
            )?;
            let rows = statement.query_map([], |row| {
                let payload: String = row.get(2)?;
                Ok(Unpublished {
                    id: row.get(0)?,
                    algorithm: row.get(1)?,
                    payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
                    deadline_ms: row.get::<_, Option<i64>>(3)?.map(|ms| ms as u64),
                    priority: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Records a result; returns the task's new status. A result for a task this store never saw
    /// (submitted straight to the queue) is recorded too.
    pub async fn record_result(&self, result: TaskResult) -> Result<TaskStatus, StoreError> {
        let status = TaskStatus::of_result(&result);
        self.with(move |connection| {
            let (value, error) = match &result.outcome {
                TaskOutcome::Ok { result } => (Some(result.to_string()), None),
                TaskOutcome::Error { error } => (
                    None,
                    Some(serde_json::to_string(error).expect("errors serialise")),
                ),
            };
            let history = (!result.history.is_empty()).then(|| {
                serde_json::to_string(&result.history).expect("a history always serialises")
            });
            connection.execute(
                "INSERT INTO tasks (id, algorithm, payload, published, status, attempts, result,
                                    error, runner, duration_ms, submitted_at_ms, finished_at_ms,
                                    history)
                 VALUES (?1, ?2, 'null', 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)
                 ON CONFLICT(id) DO UPDATE SET status = ?3, attempts = ?4, result = ?5, error = ?6,
                                               runner = ?7, duration_ms = ?8, published = 1,
                                               finished_at_ms = ?9, history = ?10",
                params![
                    result.id,
                    result.algorithm,
                    status.as_str(),
                    result.attempts,
                    value,
                    error,
                    result.runner,
                    result.duration_ms as i64,
                    now_ms(),
                    history
                ],
            )?;
            Ok(status)
        })
        .await
    }

    /// Puts replayed tasks back to `queued`, clearing their last outcome.
    pub async fn mark_requeued(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            for id in ids {
                transaction.execute(
                    "UPDATE tasks SET status = 'queued', result = NULL, error = NULL,
                                      finished_at_ms = NULL WHERE id = ?1",
                    [id],
                )?;
            }
            transaction.commit()
        })
        .await
    }

    /// The full record of task `id`, payload and history included; `None` when unknown.
    pub async fn get(&self, id: String) -> Result<Option<TaskRecord>, StoreError> {
        self.with(move |connection| {
            connection
                .query_row(
                    "SELECT id, algorithm, status, attempts, result, error, runner, duration_ms,
                            submitted_at_ms, priority, payload, history FROM tasks WHERE id = ?1",
                    [id],
                    |row| {
                        let status: String = row.get(2)?;
                        let result: Option<String> = row.get(4)?;
                        let error: Option<String> = row.get(5)?;
                        let payload: String = row.get(10)?;
                        let history: Option<String> = row.get(11)?;
                        Ok(TaskRecord {
                            id: row.get(0)?,
                            algorithm: row.get(1)?,
                            status: TaskStatus::parse(&status),
                            attempts: row.get(3)?,
                            result: result.and_then(|text| serde_json::from_str(&text).ok()),
                            error: error.and_then(|text| serde_json::from_str(&text).ok()),
                            runner: row.get(6)?,
                            duration_ms: row.get::<_, Option<i64>>(7)?.map(|ms| ms as u64),
                            submitted_at_ms: row.get::<_, i64>(8)? as u64,
                            priority: row.get(9)?,
                            // 'null' is what retention leaves, and what a result-only row holds.
                            payload: serde_json::from_str(&payload)
                                .ok()
                                .filter(|payload: &Value| !payload.is_null()),
                            history: history
                                .and_then(|text| serde_json::from_str(&text).ok())
                                .unwrap_or_default(),
                        })
                    },
                )
                .optional()
        })
        .await
    }

    /// Forgets up to `batch` tasks that finished before `finished_before_ms` (Unix ms),
    /// remembering their ids as pruned; the number forgotten. Batches keep each write short, so
    /// submissions are never held up behind a large prune.
    pub async fn prune(&self, finished_before_ms: i64, batch: usize) -> Result<usize, StoreError> {
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            let selected = "FROM tasks WHERE finished_at_ms < ?1 LIMIT ?2";
            transaction.execute(
                &format!(
                    "INSERT OR IGNORE INTO pruned (id, finished_at_ms) SELECT id, finished_at_ms \
                     {selected}"
                ),
                params![finished_before_ms, batch as i64],
            )?;
            let pruned = transaction.execute(
                &format!("DELETE FROM tasks WHERE id IN (SELECT id {selected})"),
                params![finished_before_ms, batch as i64],
            )?;
            transaction.commit()?;
            Ok(pruned)
        })
        .await
    }

    /// Forgets up to `batch` pruned ids of tasks that finished before `finished_before_ms` (Unix
    /// ms): from then on their lookup answers 404 like an id never known; the number forgotten.
    pub async fn forget_pruned(
        &self,
        finished_before_ms: i64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        self.with(move |connection| {
            connection.execute(
                "DELETE FROM pruned WHERE id IN (
                     SELECT id FROM pruned WHERE finished_at_ms < ?1 LIMIT ?2)",
                params![finished_before_ms, batch as i64],
            )
        })
        .await
    }

    /// Drops the payloads of up to `batch` tasks that finished before `finished_before_ms`,
    /// keeping their results; the number dropped.
    pub async fn drop_payloads(
        &self,
        finished_before_ms: i64,
        batch: usize,
    ) -> Result<usize, StoreError> {
        self.with(move |connection| {
            connection.execute(
                "UPDATE tasks SET payload = 'null' WHERE id IN (
                     SELECT id FROM tasks WHERE finished_at_ms < ?1 AND payload != 'null' LIMIT ?2)",
                params![finished_before_ms, batch as i64],
            )
        })
        .await
    }

    /// Marks a task that is not final yet as cancelled (its tombstone, which controllers check
    /// before calling a runner); the status it had, or `None` for an id never stored.
    pub async fn cancel(&self, id: String) -> Result<Option<TaskStatus>, StoreError> {
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            let status: Option<String> = transaction
                .query_row("SELECT status FROM tasks WHERE id = ?1", [&id], |row| {
                    row.get(0)
                })
                .optional()?;
            let Some(status) = status.map(|status| TaskStatus::parse(&status)) else {
                return Ok(None);
            };
            if !status.is_final() {
                transaction.execute(
                    "UPDATE tasks SET status = 'cancelled', finished_at_ms = ?2 WHERE id = ?1",
                    params![id, now_ms()],
                )?;
            }
            transaction.commit()?;
            Ok(Some(status))
        })
        .await
    }

    /// Whether `id` was cancelled: what controllers ask before calling a runner.
    pub async fn is_cancelled(&self, id: String) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM tasks WHERE id = ?1 AND status = 'cancelled'",
            id,
        )
        .await
    }

    /// Whether `id` was a task pruned after its retention.
    pub async fn was_pruned(&self, id: String) -> Result<bool, StoreError> {
        self.exists("SELECT 1 FROM pruned WHERE id = ?1", id).await
    }

    async fn exists(&self, query: &'static str, id: String) -> Result<bool, StoreError> {
        self.with(move |connection| connection.prepare(query)?.exists([id]))
            .await
    }

    /// Tasks newest first, at most `limit`, after `page.after` when given, of one status and
    /// one algorithm when asked. Results are left out: a listing is a summary.
    pub async fn list(&self, page: ListQuery) -> Result<Vec<TaskRecord>, StoreError> {
        self.with(move |connection| {
            // No cursor: before the end of time, which every row is.
            let (after_ms, after_id) = page.after.map_or((i64::MAX, String::new()), |cursor| {
                (cursor.submitted_at_ms as i64, cursor.id)
            });
            let mut statement = connection.prepare(
                "SELECT id, algorithm, status, attempts, error, runner, duration_ms, submitted_at_ms,
                        priority
                 FROM tasks
                 WHERE (submitted_at_ms < ?1 OR (submitted_at_ms = ?1 AND id < ?2))
                   AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR algorithm = ?4)
                 ORDER BY submitted_at_ms DESC, id DESC LIMIT ?5",
            )?;
            let rows = statement.query_map(
                params![
                    after_ms,
                    after_id,
                    page.status.map(TaskStatus::as_str),
                    page.algorithm,
                    page.limit as i64
                ],
                |row| {
                    let status: String = row.get(2)?;
                    let error: Option<String> = row.get(4)?;
                    Ok(TaskRecord {
                        id: row.get(0)?,
                        algorithm: row.get(1)?,
                        status: TaskStatus::parse(&status),
                        attempts: row.get(3)?,
                        result: None,
                        error: error.and_then(|text| serde_json::from_str(&text).ok()),
                        runner: row.get(5)?,
                        duration_ms: row.get::<_, Option<i64>>(6)?.map(|ms| ms as u64),
                        submitted_at_ms: row.get::<_, i64>(7)? as u64,
                        priority: row.get(8)?,
                        payload: None,
                        history: Vec::new(),
                    })
                },
            )?;
            rows.collect()
        })
        .await
    }

    /// Per algorithm, the tasks that finished since `since_ms` (Unix ms): their statuses and
    /// durations, for the dashboard's figures. Cancelled tasks never ran and are left out.
    pub async fn finished_since(&self, since_ms: i64) -> Result<Vec<Finished>, StoreError> {
        self.with(move |connection| {
            let mut statement = connection.prepare(
                "SELECT algorithm, status, duration_ms FROM tasks
                 WHERE finished_at_ms >= ?1 AND status != 'cancelled'",
            )?;
            let rows = statement.query_map([since_ms], |row| {
                let status: String = row.get(1)?;
                Ok(Finished {
                    algorithm: row.get(0)?,
                    status: TaskStatus::parse(&status),
                    duration_ms: row.get::<_, Option<i64>>(2)?.map(|ms| ms as u64),
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// How many tasks were submitted since `since_ms` (Unix ms), for the dashboard's chart.
    pub async fn submitted_since(&self, since_ms: i64) -> Result<u64, StoreError> {
        self.with(move |connection| {
            connection.query_row(
                "SELECT COUNT(*) FROM tasks WHERE submitted_at_ms >= ?1",
                [since_ms],
                |row| row.get::<_, i64>(0).map(|count| count as u64),
            )
        })
        .await
    }

    /// Task counts by status, for metrics and the demo.
    pub async fn counts(&self) -> Result<Vec<(TaskStatus, u64)>, StoreError> {
        self.with(|connection| {
            let mut statement =
                connection.prepare("SELECT status, COUNT(*) FROM tasks GROUP BY status")?;
            let rows = statement.query_map([], |row| {
                let status: String = row.get(0)?;
                Ok((TaskStatus::parse(&status), row.get::<_, i64>(1)? as u64))
            })?;
            rows.collect()
        })
        .await
    }
}

/// Adds `column` (a name and a type) to `table` unless a store made before it has it; whether it
/// was added.
fn add_column_if_missing(
    connection: &Connection,
    table: &str,
    column: &str,
) -> rusqlite::Result<bool> {
    let name = column.split_whitespace().next().unwrap_or(column);
    let present = connection
        .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
        .exists([table, name])?;
    if !present {
        connection.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column}"))?;
    }
    Ok(!present)
}

/// Unix milliseconds; SQLite integers are signed.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> (tempfile::TempDir, TaskStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = TaskStore::open(&dir.path().join("tasks.db")).unwrap();
        (dir, store)
    }

    fn ok_result(id: &str) -> TaskResult {
        TaskResult {
            id: id.into(),
            algorithm: "echo".into(),
            outcome: TaskOutcome::Ok {
                result: json!({"length": 1}),
            },
            attempts: 1,
            runner: Some("http://r".into()),
            duration_ms: 3,
            history: vec![],
        }
    }

    #[tokio::test]
    async fn idempotency_key_returns_the_first_task() {
        let (_dir, store) = store();
        let key = Some("k1".to_string());
        let first = store
            .insert("a".into(), "echo".into(), json!({}), key.clone(), None, 0)
            .await
            .unwrap();
        let second = store
            .insert("b".into(), "echo".into(), json!({}), key, None, 0)
            .await
            .unwrap();
        assert_eq!(first, Inserted::New);
        assert_eq!(second, Inserted::Existing("a".into()));
        assert!(store.get("b".into()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn unpublished_tasks_are_found_until_marked() {
        let (_dir, store) = store();
        store
            .insert(
                "a".into(),
                "echo".into(),
                json!({"text": "x"}),
                None,
                Some(4_102_444_800_000),
                5,
            )
            .await
            .unwrap();
        store
            .insert("b".into(), "echo".into(), json!({}), None, None, 0)
            .await
            .unwrap();
        store.mark_published("b".into()).await.unwrap();
        let pending = store.unpublished().await.unwrap();
        assert_eq!(
            pending,
            vec![Unpublished {
                id: "a".into(),
                algorithm: "echo".into(),
                payload: json!({"text": "x"}),
                deadline_ms: Some(4_102_444_800_000),
                priority: 5,
            }]
        );
    }

    #[tokio::test]
    async fn results_are_recorded_once_per_id() {
        let (_dir, store) = store();
        store
            .insert("a".into(), "echo".into(), json!({}), None, None, 0)
            .await
            .unwrap();
        assert_eq!(
            store.record_result(ok_result("a")).await.unwrap(),
            TaskStatus::Done
        );
        store.record_result(ok_result("a")).await.unwrap();
        let record = store.get("a".into()).await.unwrap().unwrap();
        assert_eq!(record.status, TaskStatus::Done);
        assert_eq!(record.result, Some(json!({"length": 1})));
        assert_eq!(store.counts().await.unwrap(), vec![(TaskStatus::Done, 1)]);
    }

    #[tokio::test]
    async fn finished_tasks_lose_their_payload_then_themselves_and_queued_ones_stay() {
        let (_dir, store) = store();
        for id in ["done", "queued"] {
            store
                .insert(id.into(), "echo".into(), json!({"text": id}), None, None, 0)
                .await
                .unwrap();
        }
        store.record_result(ok_result("done")).await.unwrap();
        let later = now_ms() + 1_000;
        assert_eq!(store.drop_payloads(later, 10).await.unwrap(), 1);
        assert_eq!(store.drop_payloads(later, 10).await.unwrap(), 0, "once");
        assert!(
            store
                .get("done".into())
                .await
                .unwrap()
                .unwrap()
                .result
                .is_some()
        );
        assert_eq!(
            store.prune(now_ms() - 60_000, 10).await.unwrap(),
            0,
            "not old enough"
        );
        assert_eq!(store.prune(later, 10).await.unwrap(), 1);
        assert_eq!(store.get("done".into()).await.unwrap(), None);
        assert!(store.was_pruned("done".into()).await.unwrap());
        assert!(!store.was_pruned("queued".into()).await.unwrap());
        assert!(store.get("queued".into()).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn pruned_ids_are_forgotten_in_turn_so_the_store_stops_growing() {
        let (_dir, store) = store();
        store.record_result(ok_result("old")).await.unwrap();
        let later = now_ms() + 1_000;
        assert_eq!(store.prune(later, 10).await.unwrap(), 1);
        assert_eq!(
            store.forget_pruned(now_ms() - 60_000, 10).await.unwrap(),
            0,
            "finished too recently"
        );
        assert!(store.was_pruned("old".into()).await.unwrap());
        assert_eq!(store.forget_pruned(later, 10).await.unwrap(), 1);
        assert!(!store.was_pruned("old".into()).await.unwrap());
    }

    #[tokio::test]
    async fn ids_pruned_by_an_older_build_are_forgotten_like_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE pruned (id TEXT PRIMARY KEY) WITHOUT ROWID;
                 INSERT INTO pruned (id) VALUES ('before-the-upgrade');",
            )
            .unwrap();
        let store = TaskStore::open(&path).unwrap();
        assert!(store.was_pruned("before-the-upgrade".into()).await.unwrap());
        assert_eq!(store.forget_pruned(now_ms() + 1_000, 10).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn error_kinds_decide_failed_or_dead() {
        let (_dir, store) = store();
        let mut result = ok_result("x");
        for (kind, status) in [
            (ErrorKind::Rejected, TaskStatus::Failed),
            (ErrorKind::NoRunner, TaskStatus::Dead),
            (ErrorKind::Unavailable, TaskStatus::Dead),
        ] {
            result.outcome = TaskOutcome::Error {
                error: TaskError {
                    kind,
                    message: "m".into(),
                    status: None,
                },
            };
            assert_eq!(store.record_result(result.clone()).await.unwrap(), status);
        }
        store.mark_requeued(vec!["x".into()]).await.unwrap();
        let record = store.get("x".into()).await.unwrap().unwrap();
        assert_eq!((record.status, record.error), (TaskStatus::Queued, None));
    }
}
