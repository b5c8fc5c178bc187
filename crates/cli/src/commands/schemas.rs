//! `switchyard schemas`: every algorithm's payload schema, from every registered runner.

use anyhow::Context;
use switchyard_discovery::DiscoveryClient;

#[derive(clap::Args)]
pub struct Args {
    /// Discovery's base URL.
    #[arg(
        long,
        env = "SWITCHYARD_DISCOVERY",
        default_value = "http://127.0.0.1:8500"
    )]
    discovery: String,
    /// Sent to discovery as a bearer token.
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Prints `{"<algorithm>": {"<runner base url>": <schema>}}` on stdout; runners that could not be
/// asked are named on stderr and do not fail the command.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = DiscoveryClient::new(args.discovery, args.token);
    let schemas = client.schemas().await.context("listing runners")?;
    for unreachable in &schemas.unreachable {
        eprintln!("warning: {unreachable}");
    }
    println!("{}", serde_json::to_string_pretty(&schemas.by_algorithm)?);
    Ok(())
}
