//! The SQL of the dead-letter table: bury, list, count, and replay onto the task queue.

use std::collections::BTreeSet;

use rusqlite::{Connection, params};
use switchyard_wire::headers;

use super::queue::{self, count, encode_headers, message_from};
use crate::{BrokerError, DeadLetter, Message, QueueNames, StoredDeadLetter};

/// Headers a replay removes, so the task starts over: a fresh attempt budget, and a fresh
/// no-runner deadline (which counts from the first time the task was seen). The dead-letter
/// headers go too, should a producer have set them on the message.
const RESET_ON_REPLAY: [&str; 4] = [
    headers::ATTEMPTS,
    headers::FIRST_SEEN_MS,
    headers::DEAD_REASON,
    headers::DEAD_ERROR,
];

pub(super) fn bury(
    db: &Connection,
    dead_queue: &str,
    letter: &DeadLetter,
    now: i64,
) -> rusqlite::Result<()> {
    let message = &letter.message;
    db.prepare_cached(
        "INSERT INTO dead_letters (queue, message_id, body, reply_to, correlation_id, headers,
                                   priority, reason, attempts, last_error, dead_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        dead_queue,
        message.id,
        message.body.as_ref(),
        message.reply_to,
        message.correlation_id,
        encode_headers(&message.headers)?,
        message.effective_priority(),
        letter.reason,
        letter.attempts,
        letter.last_error,
        now,
    ])?;
    Ok(())
}

/// Up to `limit` dead letters, oldest first.
pub(super) fn list(
    db: &Connection,
    dead_queue: &str,
    limit: usize,
) -> rusqlite::Result<Vec<StoredDeadLetter>> {
    db.prepare_cached(
        "SELECT seq, message_id, body, reply_to, correlation_id, headers, priority, reason, attempts,
                last_error
         FROM dead_letters WHERE queue = ?1 ORDER BY seq LIMIT ?2",
    )?
    .query_map(
        params![dead_queue, i64::try_from(limit).unwrap_or(i64::MAX)],
        |row| {
            Ok(StoredDeadLetter {
                key: row.get::<_, i64>(0)?.to_string(),
                letter: DeadLetter {
                    message: message_from(row, 1)?,
                    reason: row.get(7)?,
                    attempts: row.get(8)?,
                    last_error: row.get(9)?,
                },
            })
        },
    )?
    .collect()
}

pub(super) fn count_letters(db: &Connection, dead_queue: &str) -> rusqlite::Result<usize> {
    db.prepare_cached("SELECT COUNT(*) FROM dead_letters WHERE queue = ?1")?
        .query_row([dead_queue], |row| count(row, 0))
}

/// Moves the letters with these keys (all of the queue's when `None`) back onto the task queue,
/// visible at `now`, with their retry headers reset. Unknown keys are skipped; returns how many
/// moved. Runs in one transaction: a letter is never both replayed and still dead, nor lost.
pub(super) fn requeue(
    db: &Connection,
    names: &QueueNames,
    keys: Option<&[i64]>,
    now: i64,
) -> rusqlite::Result<usize> {
    let letters: Vec<(i64, Message)> = {
        let mut select = db.prepare_cached(
            "SELECT seq, message_id, body, reply_to, correlation_id, headers, priority
             FROM dead_letters WHERE queue = ?1 AND (?2 IS NULL OR seq = ?2) ORDER BY seq",
        )?;
        let mut read = |key: Option<i64>| -> rusqlite::Result<Vec<(i64, Message)>> {
            select
                .query_map(params![names.dead, key], |row| {
                    Ok((row.get(0)?, message_from(row, 1)?))
                })?
                .collect()
        };
        match keys {
            None => read(None)?,
            Some(keys) => {
                let mut found = Vec::with_capacity(keys.len());
                for &key in keys {
                    found.extend(read(Some(key))?);
                }
                found
            }
        }
    };
    let moved = letters.len();
    let mut remove = db.prepare_cached("DELETE FROM dead_letters WHERE seq = ?1")?;
    for (seq, mut message) in letters {
        for header in RESET_ON_REPLAY {
            message.headers.remove(header);
        }
        queue::insert(db, &names.tasks, &message, now)?;
        remove.execute([seq])?;
    }
    Ok(moved)
}

/// Keys are the decimal row numbers [`list`] hands out; anything else is a caller's mistake.
/// Duplicates collapse, so a key named twice is replayed once.
pub(super) fn parse_keys(keys: &[String]) -> Result<Vec<i64>, BrokerError> {
    let unique: Result<BTreeSet<i64>, BrokerError> = keys
        .iter()
        .map(|key| {
            key.parse().map_err(|_| {
                BrokerError::fatal(format!(
                    "{key:?} is not a dead-letter key of the embedded queue"
                ))
            })
        })
        .collect();
    Ok(unique?.into_iter().collect())
}
