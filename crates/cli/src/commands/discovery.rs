//! `switchyard discovery`: the registry, as its own process.

use std::time::Duration;

use anyhow::Context;

use crate::duration::parse_duration;
use crate::shared_flags::TokenFlags;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8500")]
    listen: String,
    /// A runner not heard from for this long is dropped.
    #[arg(long, env = "SWITCHYARD_TTL", default_value = "15s", value_parser = parse_duration)]
    ttl: Duration,
    /// How often runners are told to heartbeat; must be shorter than --ttl.
    #[arg(long, env = "SWITCHYARD_HEARTBEAT_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    #[command(flatten)]
    token: TokenFlags,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let token = args.token.token()?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let config = switchyard_discovery::Config {
        ttl: args.ttl,
        heartbeat_interval: args.heartbeat_interval,
        token,
    };
    switchyard_discovery::serve(listener, config, crate::shutdown::on_signal())
        .await
        .context("serving discovery")
}
