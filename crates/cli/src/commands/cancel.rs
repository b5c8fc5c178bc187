//! `switchyard cancel ID...`: cancels tasks through `up`'s task API, so they are never run.

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Ids of the tasks to cancel (as `submit` printed them).
    #[arg(required = true)]
    ids: Vec<String>,
    /// The task API of `switchyard up`.
    #[arg(
        long,
        env = "SWITCHYARD_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    #[command(flatten)]
    token: crate::shared_flags::TokenFlags,
}

/// Prints one line per id: cancelled, or why not (running, finished, unknown). Exits non-zero
/// unless every task was cancelled.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
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
