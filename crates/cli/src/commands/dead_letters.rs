//! `switchyard dead-letters`: see why tasks died, and send them round again.

use anyhow::bail;
use switchyard_broker::{DeadLetterStore, StoredDeadLetter};

use crate::amqp_flags::AmqpFlags;

/// Longest body shown by `list` (without `--json`), so one large payload does not flood a terminal.
const BODY_PREVIEW_CHARS: usize = 200;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Show dead letters, oldest first, without removing them.
    List {
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        amqp: AmqpFlags,
    },
    /// Put dead letters back on the task queue with a fresh attempt budget.
    Requeue {
        /// Every dead letter.
        #[arg(long, conflicts_with = "keys")]
        all: bool,
        /// Keys of the dead letters to requeue, as `list` shows them (the task id).
        #[arg(required_unless_present = "all")]
        keys: Vec<String>,
        #[command(flatten)]
        amqp: AmqpFlags,
    },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::List { limit, json, amqp } => {
            let letters = amqp.connect().await?.list_dead_letters(limit).await?;
            for letter in &letters {
                println!(
                    "{}",
                    if json {
                        as_json(letter)
                    } else {
                        as_text(letter)
                    }
                );
            }
            if !json {
                eprintln!("{} dead letter(s) shown", letters.len());
            }
            Ok(())
        }
        Action::Requeue { all, keys, amqp } => {
            let broker = amqp.connect().await?;
            let requeued = broker
                .requeue_dead_letters(if all { None } else { Some(&keys) })
                .await?;
            eprintln!("requeued {requeued} dead letter(s)");
            if !all && requeued < keys.len() {
                bail!(
                    "{} of the {} keys given matched no dead letter",
                    keys.len() - requeued,
                    keys.len()
                );
            }
            Ok(())
        }
    }
}

fn as_text(stored: &StoredDeadLetter) -> String {
    let letter = &stored.letter;
    let body = String::from_utf8_lossy(&letter.message.body);
    let preview: String = body.chars().take(BODY_PREVIEW_CHARS).collect();
    let ellipsis = if body.chars().count() > BODY_PREVIEW_CHARS {
        "…"
    } else {
        ""
    };
    format!(
        "{key}  reason={reason} attempts={attempts}\n  error: {error}\n  body:  {preview}{ellipsis}",
        key = stored.key,
        reason = letter.reason,
        attempts = letter.attempts,
        error = if letter.last_error.is_empty() {
            "(none)"
        } else {
            &letter.last_error
        },
    )
}

fn as_json(stored: &StoredDeadLetter) -> String {
    let letter = &stored.letter;
    serde_json::json!({
        "key": stored.key,
        "id": letter.message.id,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "last_error": letter.last_error,
        "body": String::from_utf8_lossy(&letter.message.body),
        "reply_to": letter.message.reply_to,
        "correlation_id": letter.message.correlation_id,
        "headers": letter.message.headers,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_broker::{DeadLetter, Message};

    fn stored(body: &str) -> StoredDeadLetter {
        StoredDeadLetter {
            key: "t1".into(),
            letter: DeadLetter {
                message: Message::new(body.to_string()).with_id("t1"),
                reason: "rejected".into(),
                attempts: 1,
                last_error: "Task body missing field 'url'".into(),
            },
        }
    }

    #[test]
    fn text_shows_reason_error_and_a_body_preview() {
        let text = as_text(&stored(r#"{"algorithm":"x"}"#));
        assert_eq!(
            text,
            "t1  reason=rejected attempts=1\n  error: Task body missing field 'url'\n  body:  {\"algorithm\":\"x\"}"
        );
        let long = as_text(&stored(&"y".repeat(500)));
        assert!(long.ends_with(&format!("{}…", "y".repeat(BODY_PREVIEW_CHARS))));
    }

    #[test]
    fn json_keeps_everything() {
        let value: serde_json::Value = serde_json::from_str(&as_json(&stored("not json"))).unwrap();
        assert_eq!(value["key"], "t1");
        assert_eq!(value["reason"], "rejected");
        assert_eq!(value["body"], "not json");
        assert_eq!(value["attempts"], 1);
    }
}
