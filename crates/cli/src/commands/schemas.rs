//! `switchyard schemas`: every algorithm's payload schema, from every registered runner.

use crate::shared_flags::DiscoveryFlags;
use anyhow::Context;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    discovery: DiscoveryFlags,
}

/// Prints `{"<algorithm>": {"<runner base url>": <schema>}}` on stdout; runners that could not be
/// asked are named on stderr and do not fail the command.
pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.discovery.client()?;
    let schemas = client.schemas().await.context("listing runners")?;
    for unreachable in &schemas.unreachable {
        eprintln!("warning: {unreachable}");
    }
    println!("{}", serde_json::to_string_pretty(&schemas.by_algorithm)?);
    Ok(())
}
