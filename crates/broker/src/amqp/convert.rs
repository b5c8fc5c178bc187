//! [`Message`] and [`DeadLetter`] to and from AMQP properties.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use switchyard_wire::headers;

use crate::{BrokerError, DeadLetter, MAX_PRIORITY, Message, StoredDeadLetter};

/// Headers RabbitMQ writes when it dead-letters a message. They describe this broker's history
/// of the message, not the task, so they are not copied into [`Message::headers`] (where a
/// republish would carry stale ones along).
const BROKER_HEADER_PREFIXES: [&str; 3] = ["x-death", "x-first-death-", "x-last-death-"];

/// Room for a readable error in a dead letter. Properties travel in one AMQP frame (128 KiB by
/// default); a runner's whole error page there would break the connection instead.
const MAX_LAST_ERROR_BYTES: usize = 4096;

/// The properties of `message` (persistence is set when publishing).
pub(crate) fn properties_of(message: &Message) -> Result<BasicProperties, BrokerError> {
    let mut properties = BasicProperties::default();
    if let Some(id) = &message.id {
        properties = properties.with_message_id(short("message id", id)?);
    }
    if let Some(reply_to) = &message.reply_to {
        properties = properties.with_reply_to(short("reply_to", reply_to)?);
    }
    if let Some(correlation_id) = &message.correlation_id {
        properties = properties.with_correlation_id(short("correlation id", correlation_id)?);
    }
    // Left out at 0, AMQP's own default, so a task that says nothing goes out as before.
    let priority = message.effective_priority();
    if priority > 0 {
        properties = properties.with_priority(priority);
    }
    if !message.headers.is_empty() {
        let mut table = FieldTable::default();
        for (name, value) in &message.headers {
            table.insert(
                short("header name", name)?,
                AMQPValue::LongString(value.as_str().into()),
            );
        }
        properties = properties.with_headers(table);
    }
    Ok(properties)
}

/// The message a delivery carries. Header values that are numbers or booleans (as other
/// clients may send them) become their text; tables, arrays and byte arrays are left out.
pub(crate) fn message_from(properties: &BasicProperties, body: Vec<u8>) -> Message {
    let text = |value: &Option<ShortString>| value.as_ref().map(|v| v.as_str().to_owned());
    let headers = properties
        .headers()
        .iter()
        .flat_map(|table| table.inner())
        .filter(|(name, _)| !is_broker_header(name.as_str()))
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), header_text(value)?)))
        .collect();
    Message {
        id: text(properties.message_id()),
        body: body.into(),
        reply_to: text(properties.reply_to()),
        correlation_id: text(properties.correlation_id()),
        headers,
        priority: properties.priority().unwrap_or(0).min(MAX_PRIORITY),
    }
}

/// The original properties plus why it died (see `switchyard_wire::headers`).
pub(crate) fn dead_letter_properties(letter: &DeadLetter) -> Result<BasicProperties, BrokerError> {
    let mut message = letter.message.clone();
    let headers = &mut message.headers;
    headers.insert(headers::DEAD_REASON.to_owned(), letter.reason.clone());
    headers.insert(
        headers::DEAD_ERROR.to_owned(),
        truncated(&letter.last_error, MAX_LAST_ERROR_BYTES).to_owned(),
    );
    headers.insert(headers::ATTEMPTS.to_owned(), letter.attempts.to_string());
    properties_of(&message)
}

/// A message read from the dead-letter queue. Letters RabbitMQ dead-lettered itself (a task
/// rejected or expired in the task queue) have no Switchyard headers: their reason and queue
/// come from `x-death`.
pub(crate) fn stored_dead_letter(properties: &BasicProperties, body: Vec<u8>) -> StoredDeadLetter {
    let mut message = message_from(properties, body);
    let reason = message.headers.remove(headers::DEAD_REASON);
    let last_error = message.headers.remove(headers::DEAD_ERROR);
    let attempts = message.headers.remove(headers::ATTEMPTS);
    let (reason, last_error) = match (reason, last_error) {
        (Some(reason), last_error) => (reason, last_error.unwrap_or_default()),
        (None, _) => match latest_death(properties) {
            Some((reason, queue)) => (reason, format!("dead-lettered by RabbitMQ from '{queue}'")),
            None => ("unknown".to_owned(), String::new()),
        },
    };
    StoredDeadLetter {
        key: dead_letter_key(&message),
        letter: DeadLetter {
            message,
            reason,
            attempts: attempts.and_then(|a| a.parse().ok()).unwrap_or(0),
            last_error,
        },
    }
}

/// The message id, else a hash of the body: stable across listings, so a key from
/// `list_dead_letters` still finds its letter in `requeue_dead_letters`.
pub(crate) fn dead_letter_key(message: &Message) -> String {
    match &message.id {
        Some(id) => id.clone(),
        None => format!("body-{:016x}", fnv1a(&message.body)),
    }
}

/// FNV-1a: tiny and, unlike std's hasher, fixed across Rust releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `(reason, queue)` of the most recent death RabbitMQ recorded (`x-death` is newest first).
fn latest_death(properties: &BasicProperties) -> Option<(String, String)> {
    let deaths = properties.headers().as_ref()?.inner().get("x-death")?;
    let AMQPValue::FieldArray(deaths) = deaths else {
        return None;
    };
    let AMQPValue::FieldTable(death) = deaths.as_slice().first()? else {
        return None;
    };
    let field = |name: &str| death.inner().get(name).and_then(header_text);
    Some((field("reason")?, field("queue").unwrap_or_default()))
}

fn is_broker_header(name: &str) -> bool {
    BROKER_HEADER_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

fn header_text(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(text) => String::from_utf8_lossy(text.as_bytes()).into_owned(),
        AMQPValue::ShortString(text) => text.as_str().to_owned(),
        AMQPValue::Boolean(flag) => flag.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        _ => return None,
    })
}

fn short(what: &str, value: &str) -> Result<ShortString, BrokerError> {
    ShortString::try_new(value).map_err(|error| {
        BrokerError::fatal(format!("{what} does not fit an AMQP short string")).caused_by(error)
    })
}

fn truncated(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn task() -> Message {
        let mut message = Message::new(&b"{\"algorithm\":\"echo\"}"[..]).with_id("task-1");
        message.reply_to = Some("amq.gen-1".into());
        message.correlation_id = Some("corr-1".into());
        message.headers.insert(headers::ATTEMPTS.into(), "2".into());
        message.with_priority(7)
    }

    #[test]
    fn a_message_survives_the_trip_through_properties() {
        let message = task();
        let properties = properties_of(&message).unwrap();
        assert_eq!(message_from(&properties, message.body.to_vec()), message);
    }

    #[test]
    fn priority_0_is_left_out_and_one_past_the_maximum_is_capped_both_ways() {
        let plain = properties_of(&Message::new("x")).unwrap();
        assert_eq!(plain.priority(), &None);
        let high = properties_of(&Message::new("x").with_priority(200)).unwrap();
        assert_eq!(high.priority(), &Some(MAX_PRIORITY));
        let from_producer = BasicProperties::default().with_priority(255);
        assert_eq!(
            message_from(&from_producer, Vec::new()).priority,
            MAX_PRIORITY
        );
    }

    #[test]
    fn values_that_do_not_fit_amqp_are_fatal() {
        let message = task().with_id("x".repeat(256));
        let error = properties_of(&message).unwrap_err();
        assert!(
            matches!(error, BrokerError::Fatal { context: text, .. } if text.starts_with("message id"))
        );
    }

    #[test]
    fn numeric_headers_from_other_clients_become_text_and_broker_history_is_dropped() {
        let mut table = FieldTable::default();
        table.insert("x-switchyard-attempts".into(), AMQPValue::LongInt(3));
        table.insert(
            "x-first-death-reason".into(),
            AMQPValue::LongString("expired".into()),
        );
        table.insert("x-death".into(), AMQPValue::FieldArray(Default::default()));
        let properties = BasicProperties::default().with_headers(table);
        let expected = BTreeMap::from([("x-switchyard-attempts".to_owned(), "3".to_owned())]);
        assert_eq!(message_from(&properties, Vec::new()).headers, expected);
    }

    #[test]
    fn a_dead_letter_reads_back_as_written() {
        let letter = DeadLetter {
            message: task(),
            reason: "rejected".into(),
            attempts: 3,
            last_error: "400 bad payload".into(),
        };
        let properties = dead_letter_properties(&letter).unwrap();
        let stored = stored_dead_letter(&properties, letter.message.body.to_vec());
        assert_eq!(stored.key, "task-1");
        let mut expected = letter.clone();
        expected.message.headers.remove(headers::ATTEMPTS);
        assert_eq!(stored.letter, expected);
    }

    #[test]
    fn a_long_last_error_is_cut_on_a_char_boundary() {
        let letter = DeadLetter {
            message: Message::new("x"),
            reason: "rejected".into(),
            attempts: 1,
            // One ASCII byte, then two-byte chars: the limit falls inside a char.
            last_error: format!("x{}", "é".repeat(MAX_LAST_ERROR_BYTES)),
        };
        let properties = dead_letter_properties(&letter).unwrap();
        let stored = stored_dead_letter(&properties, b"x".to_vec());
        assert_eq!(stored.letter.last_error.len(), MAX_LAST_ERROR_BYTES - 1);
    }

    #[test]
    fn a_letter_rabbitmq_dead_lettered_takes_its_reason_from_x_death() {
        let mut death = FieldTable::default();
        death.insert("reason".into(), AMQPValue::LongString("rejected".into()));
        death.insert("queue".into(), AMQPValue::LongString("tasks".into()));
        let mut table = FieldTable::default();
        table.insert(
            "x-death".into(),
            AMQPValue::FieldArray(vec![AMQPValue::FieldTable(death)].into()),
        );
        let properties = BasicProperties::default().with_headers(table);
        let stored = stored_dead_letter(&properties, b"body".to_vec());
        assert_eq!(stored.letter.reason, "rejected");
        assert_eq!(
            stored.letter.last_error,
            "dead-lettered by RabbitMQ from 'tasks'"
        );
        assert_eq!(stored.letter.attempts, 0);
        assert_eq!(stored.key, format!("body-{:016x}", fnv1a(b"body")));
    }
}
