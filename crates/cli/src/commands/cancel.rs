//! `switchyard cancel ID...`: cancels tasks so that they are never run: through `up`'s task API
//! (`--server`, the default), or on RabbitMQ itself (`--amqp`) for controllers running apart
//! from `up`, which read the cancellations from the broker.

use anyhow::{Context, bail};
use switchyard_broker::Cancellations;
use switchyard_wire::task::check_task_id;

use crate::amqp_flags::AmqpFlags;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Ids of the tasks to cancel (as `submit` printed them).
    #[arg(required = true)]
    ids: Vec<String>,
    /// The task API of `switchyard up`.
    #[arg(
        long,
        env = "SWITCHYARD_SERVER",
        default_value = "http://127.0.0.1:8080",
        conflicts_with = "AmqpFlags"
    )]
    server: String,
    #[command(flatten)]
    token: crate::shared_flags::TokenFlags,
    /// Given `--amqp` (or another RabbitMQ flag): record the cancellations on RabbitMQ, where
    /// every `switchyard controller` on that queue reads them, instead of asking `up`.
    #[command(flatten)]
    amqp: Option<AmqpFlags>,
}

/// Prints one line per id. Through `up`: cancelled, or why not (running, finished, unknown),
/// exiting non-zero unless every task was cancelled. On RabbitMQ: that the cancel is recorded,
/// which is all the broker can say (whether a controller already ran the task, it cannot know).
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    for id in &args.ids {
        check_task_id(id)?;
    }
    match &args.amqp {
        Some(amqp) => record_on_broker(amqp, &args.ids).await,
        None => cancel_through_up(&args).await,
    }
}

async fn record_on_broker(amqp: &AmqpFlags, ids: &[String]) -> anyhow::Result<()> {
    let broker = amqp.connect().await?;
    for id in ids {
        broker
            .cancel(id)
            .await
            .with_context(|| format!("recording the cancellation of task {id}"))?;
        println!(
            "{id}\tcancel recorded: no controller starts it from now on; a run already started \
             finishes"
        );
    }
    Ok(())
}

async fn cancel_through_up(args: &Args) -> anyhow::Result<()> {
    let http = args.token.api_client()?;
    let server = args.server.trim_end_matches('/');
    let mut refused = 0;
    for id in &args.ids {
        let response = http
            .delete(format!("{server}/v1/tasks/{id}"))
            .send()
            .await
            .with_context(|| format!("cancelling task {id} at {server}"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            println!("{id}\tcancelled");
        } else {
            refused += 1;
            let why = body["status"]
                .as_str()
                .map(|state| format!("not cancelled: it is {state}"))
                .or_else(|| body["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("not cancelled ({status})"));
            println!("{id}\t{why}");
        }
    }
    if refused > 0 {
        bail!("{refused} of {} tasks not cancelled", args.ids.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    type Cli = crate::commands::FlagsOnly<Args>;

    #[test]
    fn an_amqp_flag_chooses_rabbitmq_and_none_chooses_up() {
        let up = Cli::try_parse_from(["cancel", "t1"]).unwrap();
        assert!(up.args.amqp.is_none());
        assert_eq!(up.args.server, "http://127.0.0.1:8080");
        let rabbit = Cli::try_parse_from(["cancel", "t1", "--amqp", "amqp://r:5672/%2f"]).unwrap();
        let amqp = rabbit.args.amqp.expect("--amqp given");
        assert_eq!(amqp.amqp, "amqp://r:5672/%2f");
        assert_eq!(amqp.queue, "tasks");
        let both = Cli::try_parse_from(["cancel", "t1", "--amqp", "amqp://r", "--server", "x"]);
        assert!(both.is_err(), "--server and --amqp at once");
    }
}
