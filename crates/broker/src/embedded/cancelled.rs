//! The SQL of the cancellations table: record a cancelled task id, look one up, prune by age.

use rusqlite::{Connection, OptionalExtension, params};

/// Records `task_id` as cancelled at `now` (a second cancel keeps the first time), and prunes
/// the rows older than `oldest_kept`: cancelling is rare, so pruning there costs nothing
/// measurable and needs no timer.
pub(super) fn record(
    db: &Connection,
    tasks: &str,
    task_id: &str,
    now: i64,
    oldest_kept: i64,
) -> rusqlite::Result<()> {
    db.prepare_cached(
        "INSERT INTO cancelled (queue, task_id, cancelled_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (queue, task_id) DO NOTHING",
    )?
    .execute(params![tasks, task_id, now])?;
    db.prepare_cached("DELETE FROM cancelled WHERE cancelled_at < ?1")?
        .execute(params![oldest_kept])?;
    Ok(())
}

/// Whether `task_id` was cancelled no earlier than `oldest_kept` (one primary-key read).
pub(super) fn contains(
    db: &Connection,
    tasks: &str,
    task_id: &str,
    oldest_kept: i64,
) -> rusqlite::Result<bool> {
    db.prepare_cached(
        "SELECT 1 FROM cancelled WHERE queue = ?1 AND task_id = ?2 AND cancelled_at >= ?3",
    )?
    .query_row(params![tasks, task_id, oldest_kept], |_| Ok(()))
    .optional()
    .map(|found| found.is_some())
}
