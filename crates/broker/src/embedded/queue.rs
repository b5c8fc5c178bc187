//! The SQL of one queue: publish, take with a lease, settle, count. Each function runs inside
//! the store's IMMEDIATE transaction, so a read and the write that follows it are atomic even
//! against other processes.

use std::collections::BTreeMap;

use bytes::Bytes;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::QueueDepth;
use crate::{MAX_PRIORITY, Message};

/// The right to settle one taken message: its row and the delivery count the take produced.
/// A later take bumps the count, so a holder whose lease ran out and was re-taken no longer
/// matches and cannot ack, requeue or renew the new holder's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LeaseToken {
    pub seq: i64,
    pub deliveries: i64,
}

/// A message taken from a queue.
pub(super) struct Taken {
    pub token: LeaseToken,
    pub message: Message,
}

impl Taken {
    /// Taken before (and not acked): a lease ran out or the message was requeued.
    pub(super) fn redelivered(&self) -> bool {
        self.token.deliveries > 1
    }
}

/// What one take found.
pub(super) struct TakeOutcome {
    pub taken: Vec<Taken>,
    /// When nothing was visible: the earliest time something will be (a delay or a lease
    /// ending), so the consumer can sleep exactly that long.
    pub next_visible_at: Option<i64>,
}

pub(super) fn insert(
    db: &Connection,
    queue: &str,
    message: &Message,
    visible_at: i64,
) -> rusqlite::Result<()> {
    db.prepare_cached(
        "INSERT INTO messages (queue, message_id, body, reply_to, correlation_id, headers, priority,
                               visible_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        queue,
        message.id,
        message.body.as_ref(),
        message.reply_to,
        message.correlation_id,
        encode_headers(&message.headers)?,
        message.effective_priority(),
        visible_at,
    ])?;
    Ok(())
}

/// Takes up to `max` visible messages, highest priority first and oldest-visible first within
/// one, leasing each until `lease_until`.
pub(super) fn take(
    db: &Connection,
    queue: &str,
    max: usize,
    now: i64,
    lease_until: i64,
) -> rusqlite::Result<TakeOutcome> {
    // One index range per priority: a single `ORDER BY priority DESC` scan would also walk every
    // leased and delayed row of the higher priorities before reaching a visible one.
    let mut select = db.prepare_cached(
        "SELECT seq, deliveries, message_id, body, reply_to, correlation_id, headers, priority
         FROM messages WHERE queue = ?1 AND priority = ?2 AND visible_at <= ?3
         ORDER BY visible_at, seq LIMIT ?4",
    )?;
    let mut taken: Vec<Taken> = Vec::new();
    for priority in (0..=MAX_PRIORITY).rev() {
        let left = max.saturating_sub(taken.len());
        if left == 0 {
            break;
        }
        let limit = i64::try_from(left).unwrap_or(i64::MAX);
        let found = select.query_map(params![queue, priority, now, limit], |row| {
            Ok(Taken {
                token: LeaseToken {
                    seq: row.get(0)?,
                    deliveries: row.get(1)?,
                },
                message: message_from(row, 2)?,
            })
        })?;
        for message in found {
            taken.push(message?);
        }
    }
    let mut lease = db.prepare_cached(
        "UPDATE messages SET visible_at = ?2, deliveries = deliveries + 1 WHERE seq = ?1",
    )?;
    for message in &mut taken {
        lease.execute(params![message.token.seq, lease_until])?;
        message.token.deliveries += 1;
    }
    let next_visible_at = if taken.is_empty() {
        db.prepare_cached("SELECT MIN(visible_at) FROM messages WHERE queue = ?1")?
            .query_row([queue], |row| row.get(0))?
    } else {
        None
    };
    Ok(TakeOutcome {
        taken,
        next_visible_at,
    })
}

/// Deletes the message if `token` still holds it.
pub(super) fn ack(db: &Connection, token: LeaseToken) -> rusqlite::Result<bool> {
    let deleted = db
        .prepare_cached("DELETE FROM messages WHERE seq = ?1 AND deliveries = ?2")?
        .execute(params![token.seq, token.deliveries])?;
    Ok(deleted == 1)
}

/// Makes the message visible at `now` if `token` still holds it.
pub(super) fn release(db: &Connection, token: LeaseToken, now: i64) -> rusqlite::Result<bool> {
    set_visible_at(db, token, now)
}

/// Extends the lease to `lease_until` if `token` still holds it. A lease that ran out but was
/// not re-taken yet is still ours: extending it is safe, nobody else has the message.
pub(super) fn renew(
    db: &Connection,
    token: LeaseToken,
    lease_until: i64,
) -> rusqlite::Result<bool> {
    set_visible_at(db, token, lease_until)
}

fn set_visible_at(db: &Connection, token: LeaseToken, visible_at: i64) -> rusqlite::Result<bool> {
    let updated = db
        .prepare_cached("UPDATE messages SET visible_at = ?3 WHERE seq = ?1 AND deliveries = ?2")?
        .execute(params![token.seq, token.deliveries, visible_at])?;
    Ok(updated == 1)
}

pub(super) fn depth(db: &Connection, queue: &str, now: i64) -> rusqlite::Result<QueueDepth> {
    db.prepare_cached(
        "SELECT COUNT(*) FILTER (WHERE visible_at <= ?2),
                COUNT(*) FILTER (WHERE visible_at > ?2 AND deliveries > 0),
                COUNT(*) FILTER (WHERE visible_at > ?2 AND deliveries = 0)
         FROM messages WHERE queue = ?1",
    )?
    .query_row(params![queue, now], |row| {
        Ok(QueueDepth {
            ready: count(row, 0)?,
            leased: count(row, 1)?,
            delayed: count(row, 2)?,
        })
    })
}

pub(super) fn is_leased(
    db: &Connection,
    queue: &str,
    message_id: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(db
        .prepare_cached(
            "SELECT 1 FROM messages
             WHERE message_id = ?2 AND queue = ?1 AND deliveries > 0 AND visible_at > ?3",
        )?
        .query_row(params![queue, message_id, now], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Reads the six message columns starting at `first`: id, body, reply_to, correlation_id,
/// headers, priority (the order every query of both tables selects them in).
pub(super) fn message_from(row: &Row<'_>, first: usize) -> rusqlite::Result<Message> {
    let headers: String = row.get(first + 4)?;
    Ok(Message {
        id: row.get(first)?,
        body: Bytes::from(row.get::<_, Vec<u8>>(first + 1)?),
        reply_to: row.get(first + 2)?,
        correlation_id: row.get(first + 3)?,
        headers: serde_json::from_str(&headers).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(first + 4, Type::Text, Box::new(error))
        })?,
        priority: row.get(first + 5)?,
    })
}

pub(super) fn encode_headers(headers: &BTreeMap<String, String>) -> rusqlite::Result<String> {
    serde_json::to_string(headers)
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
}

pub(super) fn count(row: &Row<'_>, column: usize) -> rusqlite::Result<usize> {
    let value: i64 = row.get(column)?;
    usize::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(column, value))
}
