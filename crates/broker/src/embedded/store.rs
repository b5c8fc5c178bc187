//! The one connection to the queue file, owned by a dedicated thread that commits in groups.
//!
//! SQLite calls block, so none runs on the async reactor: each operation is a closure sent to
//! this thread. The thread runs everything waiting in one IMMEDIATE transaction (each operation
//! in its own savepoint, so one failing leaves the others intact) and answers each caller only
//! after COMMIT returned: an answer means durable. Grouping makes many concurrent publishes and
//! acks cost one fsync between them instead of one each.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};
use tokio::sync::oneshot;

use crate::BrokerError;

/// The most operations one transaction takes, so a flood of callers cannot delay the first of
/// them indefinitely.
const MAX_GROUP: usize = 256;

/// Each step takes a file from version `n` (`PRAGMA user_version`) to `n + 1`: a new file runs
/// them all, a file of an older build the ones it lacks.
const MIGRATIONS: [&str; 3] = [SCHEMA_V1, PRIORITIES, CANCELLATIONS];

/// The schema version this code writes.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS messages (
    -- AUTOINCREMENT: a lease is (seq, deliveries); reusing the seq of an acked row could let a
    -- stale holder match a new message.
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue          TEXT NOT NULL,
    message_id     TEXT,
    body           BLOB NOT NULL,
    reply_to       TEXT,
    correlation_id TEXT,
    headers        TEXT NOT NULL,
    -- Unix ms after which a consumer may take it: publish time + delay, or its lease's end.
    visible_at     INTEGER NOT NULL,
    -- Times taken. Each take bumps it, so it doubles as the lease token. A row with
    -- deliveries > 0 and visible_at in the future is leased; one with deliveries = 0 is delayed.
    deliveries     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_at);
CREATE INDEX IF NOT EXISTS messages_by_id ON messages (message_id);
CREATE TABLE IF NOT EXISTS dead_letters (
    -- AUTOINCREMENT: the seq is the key a user replays by; it must never name another letter.
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue          TEXT NOT NULL,
    message_id     TEXT,
    body           BLOB NOT NULL,
    reply_to       TEXT,
    correlation_id TEXT,
    headers        TEXT NOT NULL,
    reason         TEXT NOT NULL,
    attempts       INTEGER NOT NULL,
    last_error     TEXT NOT NULL,
    dead_at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_queue ON dead_letters (queue, seq);
";

/// Rows of an older file keep priority 0, the priority of a task that says nothing. A dead
/// letter keeps its task's, so a replay runs at it again.
const PRIORITIES: &str = "
ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE dead_letters ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
-- A take seeks each priority's visible rows in visibility order: one range per priority.
CREATE INDEX messages_by_priority ON messages (queue, priority, visible_at);
";

/// Cancelled task ids of each task queue (see `Cancellations`), pruned by age.
const CANCELLATIONS: &str = "
CREATE TABLE cancelled (
    queue        TEXT NOT NULL,
    task_id      TEXT NOT NULL,
    -- Unix ms of the first cancel: rows older than the retention are pruned.
    cancelled_at INTEGER NOT NULL,
    PRIMARY KEY (queue, task_id)
) WITHOUT ROWID;
CREATE INDEX cancelled_by_age ON cancelled (cancelled_at);
";

/// The handle operations are sent through; the thread stops when the last handle is dropped.
pub(super) struct Store {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Store {
    /// Starts the thread and opens the file on it, so even opening never blocks the reactor.
    pub(super) async fn open(path: &Path, busy_timeout: Duration) -> Result<Store, BrokerError> {
        let (jobs, queued) = mpsc::channel();
        let (opened, open_result) = oneshot::channel();
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("switchyard-sqlite".into())
            .spawn(move || match open_connection(&path, busy_timeout) {
                Ok(db) => {
                    let _ = opened.send(Ok(()));
                    serve(&db, &queued);
                }
                Err(error) => {
                    let _ = opened.send(Err(error));
                }
            })
            .map_err(|error| {
                BrokerError::fatal("cannot start the SQLite thread").caused_by(error)
            })?;
        open_result.await.map_err(|_| stopped())??;
        Ok(Store { jobs })
    }

    /// Runs `op` inside the next group transaction and returns its value once committed.
    /// `what` names the operation in errors.
    pub(super) async fn run<T, F>(&self, what: &'static str, op: F) -> Result<T, BrokerError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Box::new(Operation { what, op, reply }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// One operation on its way through the thread.
trait Job: Send {
    /// Runs the operation inside the open transaction; its answer waits for the commit.
    fn run(self: Box<Self>, db: &Connection) -> Box<dyn Pending>;
    /// The transaction could not start: answers without running.
    fn fail(self: Box<Self>, error: &Shared);
}

/// An operation that ran and waits for its transaction's fate.
trait Pending: Send {
    fn settle(self: Box<Self>, commit: Result<(), &Shared>);
}

struct Operation<T, F> {
    what: &'static str,
    op: F,
    reply: oneshot::Sender<Result<T, BrokerError>>,
}

struct Ran<T> {
    what: &'static str,
    outcome: rusqlite::Result<T>,
    reply: oneshot::Sender<Result<T, BrokerError>>,
}

impl<T, F> Job for Operation<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
{
    fn run(self: Box<Self>, db: &Connection) -> Box<dyn Pending> {
        let outcome = in_savepoint(db, self.op);
        Box::new(Ran {
            what: self.what,
            outcome,
            reply: self.reply,
        })
    }

    fn fail(self: Box<Self>, error: &Shared) {
        let _ = self.reply.send(Err(classify(self.what, error.clone())));
    }
}

impl<T: Send> Pending for Ran<T> {
    fn settle(self: Box<Self>, commit: Result<(), &Shared>) {
        let answer = match (self.outcome, commit) {
            (Ok(value), Ok(())) => Ok(value),
            (Err(error), _) => Err(classify(self.what, Arc::new(error))),
            (Ok(_), Err(error)) => Err(classify(self.what, error.clone())),
        };
        // The caller may have given up waiting; the work is done either way.
        let _ = self.reply.send(answer);
    }
}

fn in_savepoint<T>(
    db: &Connection,
    op: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    db.execute_batch("SAVEPOINT operation")?;
    match op(db) {
        Ok(value) => {
            db.execute_batch("RELEASE operation")?;
            Ok(value)
        }
        Err(error) => {
            // If even the rollback fails, the COMMIT below fails too and reports it.
            let _ = db.execute_batch("ROLLBACK TO operation; RELEASE operation");
            Err(error)
        }
    }
}

/// The thread's loop: take what is waiting, run it in one transaction, commit, answer.
fn serve(db: &Connection, queued: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = queued.recv() {
        let group: Vec<Box<dyn Job>> = std::iter::once(first)
            .chain(queued.try_iter().take(MAX_GROUP - 1))
            .collect();
        // IMMEDIATE takes the write lock up front (waiting up to busy_timeout for another
        // process): a take's SELECT and UPDATE then see and change the same state.
        if let Err(error) = db.execute_batch("BEGIN IMMEDIATE") {
            let error = Arc::new(error);
            group.into_iter().for_each(|job| job.fail(&error));
            continue;
        }
        let ran: Vec<Box<dyn Pending>> = group.into_iter().map(|job| job.run(db)).collect();
        let commit = db.execute_batch("COMMIT").map_err(Arc::new);
        if commit.is_err() && !db.is_autocommit() {
            let _ = db.execute_batch("ROLLBACK");
        }
        for pending in ran {
            pending.settle(commit.as_ref().map(|_| ()));
        }
    }
}

fn open_connection(path: &Path, busy_timeout: Duration) -> Result<Connection, BrokerError> {
    let unusable = |why: String| {
        BrokerError::fatal(format!("cannot use queue file {}: {why}", path.display()))
    };
    let db = Connection::open(path).map_err(|error| open_error(path, error))?;
    db.busy_timeout(busy_timeout)
        .map_err(|error| open_error(path, error))?;
    let mode: String = db
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|error| open_error(path, error))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(unusable(format!(
            "it cannot use write-ahead logging (journal mode {mode})"
        )));
    }
    // FULL syncs the WAL on every commit: a confirmed publish survives a power cut, not just a
    // killed process (NORMAL would only promise the latter).
    db.pragma_update(None, "synchronous", "FULL")
        .map_err(|error| open_error(path, error))?;
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|error| open_error(path, error))?;
    if version > SCHEMA_VERSION {
        return Err(unusable(format!(
            "its schema version {version} is newer than this build understands ({SCHEMA_VERSION})"
        )));
    }
    if version < SCHEMA_VERSION {
        migrate(&db).map_err(|error| open_error(path, error))?;
    }
    Ok(db)
}

/// Brings the file to [`SCHEMA_VERSION`]. The version is read again under the write lock, so
/// of two processes opening an old file at once, the second finds it migrated.
fn migrate(db: &Connection) -> rusqlite::Result<()> {
    db.execute_batch("BEGIN IMMEDIATE")?;
    let migrated = db
        .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .and_then(|version| {
            if version >= SCHEMA_VERSION {
                return Ok(());
            }
            let done = usize::try_from(version).unwrap_or(0);
            for step in &MIGRATIONS[done..] {
                db.execute_batch(step)?;
            }
            db.pragma_update(None, "user_version", SCHEMA_VERSION)
        });
    match migrated {
        Ok(()) => db.execute_batch("COMMIT"),
        Err(error) => {
            let _ = db.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}

fn open_error(path: &Path, error: rusqlite::Error) -> BrokerError {
    match classify("open the queue file", Arc::new(error)) {
        BrokerError::Fatal { source, .. } => BrokerError::Fatal {
            context: format!("cannot open queue file {}", path.display()),
            source,
        },
        transient => transient,
    }
}

/// Busy, locked, full or failing disks pass; anything else (a corrupt or foreign file, a bug)
/// fails the same way again.
/// One failed commit answers every job of its group: each error keeps the same cause.
type Shared = Arc<rusqlite::Error>;

fn classify(what: &str, error: Shared) -> BrokerError {
    let transient = matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
        )
    );
    let kind = if transient {
        BrokerError::disconnected(format!("SQLite queue cannot {what} for now"))
    } else {
        BrokerError::fatal(format!("SQLite queue failed to {what}"))
    };
    // Shared only by the jobs of one failed commit; otherwise SQLite's error itself.
    match Arc::try_unwrap(error) {
        Ok(error) => kind.caused_by(error),
        Err(shared) => kind.caused_by(shared),
    }
}

fn stopped() -> BrokerError {
    BrokerError::fatal("the SQLite queue thread stopped")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::queue;

    #[test]
    fn a_file_of_schema_1_is_migrated_once_and_its_rows_get_priority_0() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.sqlite");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(SCHEMA_V1).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute_batch(
            "INSERT INTO messages (queue, message_id, body, headers, visible_at)
             VALUES ('tasks', 'from-v1', x'7b7d', '{}', 0);
             INSERT INTO dead_letters (queue, message_id, body, headers, reason, attempts,
                                       last_error, dead_at)
             VALUES ('tasks.dead', 'dead-v1', x'7b7d', '{}', 'rejected', 1, '400', 0);",
        )
        .unwrap();
        drop(old);

        let db = open_connection(&path, Duration::from_secs(1)).unwrap();
        let version: i64 = db
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let dead_priority: u8 = db
            .query_row("SELECT priority FROM dead_letters", [], |row| row.get(0))
            .unwrap();
        assert_eq!(dead_priority, 0);
        let taken = queue::take(&db, "tasks", 10, 1, 2).unwrap().taken;
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].message.id.as_deref(), Some("from-v1"));
        assert_eq!(taken[0].message.priority, 0);
        drop(db);
        // Opening the migrated file again changes nothing (and adds no column twice).
        open_connection(&path, Duration::from_secs(1)).unwrap();
    }
}
