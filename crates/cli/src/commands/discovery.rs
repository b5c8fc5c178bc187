//! `switchyard discovery`: the registry, as its own process.

use std::time::Duration;

use anyhow::Context;

use crate::duration::parse_duration;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8500")]
    listen: String,
    /// A runner not heard from for this long is dropped.
    #[arg(long, env = "SWITCHYARD_TTL", default_value = "15s", value_parser = parse_duration)]
    ttl: Duration,
    /// How often runners are told to heartbeat; must be shorter than --ttl.
    #[arg(long, env = "SWITCHYARD_HEARTBEAT_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// Require `Authorization: Bearer <token>` to register, heartbeat or deregister.
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.token.as_deref() == Some("") {
        // An empty token would silently leave discovery open to anyone.
        anyhow::bail!(
            "--token (SWITCHYARD_TOKEN) is empty: set a secret, or unset it to run without one"
        );
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let config = switchyard_discovery::Config {
        ttl: args.ttl,
        heartbeat_interval: args.heartbeat_interval,
        token: args.token,
    };
    switchyard_discovery::serve(listener, config, crate::shutdown::on_signal())
        .await
        .context("serving discovery")
}
