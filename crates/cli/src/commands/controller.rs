//! `switchyard controller`: consume the task queue, route tasks to runners, publish results.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_controller::{Backoff, BrokerTombstones, Controller, ControllerConfig, Timeouts};

use crate::amqp_flags::AmqpFlags;
use crate::duration::parse_duration;
use crate::shared_flags::DiscoveryFlags;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    amqp: AmqpFlags,
    #[command(flatten)]
    discovery: DiscoveryFlags,
    /// Tasks handled at once (also the broker prefetch).
    #[arg(long, env = "SWITCHYARD_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
    /// Tries per task before a task that keeps failing is dead-lettered.
    #[arg(long, env = "SWITCHYARD_MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: u32,
    /// Algorithm for messages without an `algorithm` field (the series' `{"url": ...}` bodies).
    #[arg(long, env = "SWITCHYARD_DEFAULT_ALGORITHM")]
    default_algorithm: Option<String>,
    /// How long a runner call may take.
    #[arg(long, env = "SWITCHYARD_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// A per-algorithm call timeout, `NAME=DURATION` (repeatable, or comma-separated).
    #[arg(long, env = "SWITCHYARD_ALGORITHM_TIMEOUT", value_delimiter = ',', value_parser = parse_algorithm_timeout)]
    algorithm_timeout: Vec<(String, Duration)>,
    /// How long a task whose algorithm no runner hosts waits for one before it is dead-lettered.
    #[arg(long, env = "SWITCHYARD_NO_RUNNER_DEADLINE", default_value = "60s", value_parser = parse_duration)]
    no_runner_deadline: Duration,
    /// Longest wait before the first retry; it doubles with each retry.
    #[arg(long, env = "SWITCHYARD_BACKOFF_BASE", default_value = "500ms", value_parser = parse_duration)]
    backoff_base: Duration,
    /// Longest wait before any retry.
    #[arg(long, env = "SWITCHYARD_BACKOFF_CAP", default_value = "30s", value_parser = parse_duration)]
    backoff_cap: Duration,
    /// On shutdown, how long in-flight tasks may take before they are requeued.
    #[arg(long, env = "SWITCHYARD_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration)]
    grace_period: Duration,
    /// How often the runner registry is re-read.
    #[arg(long, env = "SWITCHYARD_REGISTRY_REFRESH", default_value = "10s", value_parser = parse_duration)]
    registry_refresh: Duration,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    #[arg(long, env = "SWITCHYARD_METRICS_LISTEN")]
    metrics_listen: Option<String>,
}

fn parse_algorithm_timeout(text: &str) -> Result<(String, Duration), String> {
    let (name, duration) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not NAME=DURATION (e.g. ocr=2m)"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("'{text}' names no algorithm"));
    }
    Ok((name.to_string(), parse_duration(duration)?))
}

impl Args {
    fn controller_config(&self) -> anyhow::Result<ControllerConfig> {
        Ok(ControllerConfig {
            concurrency: self.concurrency,
            max_attempts: self.max_attempts,
            default_algorithm: self.default_algorithm.clone(),
            timeouts: Timeouts {
                default: self.timeout,
                per_algorithm: self
                    .algorithm_timeout
                    .iter()
                    .cloned()
                    .collect::<BTreeMap<_, _>>(),
            },
            no_runner_deadline: self.no_runner_deadline,
            backoff: Backoff {
                base: self.backoff_base,
                cap: self.backoff_cap,
            },
            token: self.discovery.token.token()?,
            grace_period: self.grace_period,
            registry_refresh: self.registry_refresh,
            ..ControllerConfig::default()
        })
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.controller_config()?;
    let shutdown = crate::shutdown::on_signal();
    let broker = Arc::new(args.amqp.connect().await?);
    let discovery = args.discovery.client()?;
    // `switchyard cancel --amqp` records cancellations on the broker itself.
    let controller = Controller::new(broker.clone(), config, discovery)?
        .with_tombstones(Arc::new(BrokerTombstones::new(broker)));
    let metrics_server = match &args.metrics_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("listening for metrics on {address}"))?;
            tracing::info!(address = %listener.local_addr()?, "serving metrics at /metrics");
            let router = controller.metrics().router();
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }))
        }
        None => None,
    };
    let outcome = controller.run(shutdown.clone()).await;
    // The controller may have stopped on its own (a fatal broker error): stop the metrics too.
    shutdown.cancel();
    if let Some(server) = metrics_server {
        server.await?.context("serving metrics")?;
    }
    outcome.context("running the controller")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    type Cli = crate::commands::FlagsOnly<Args>;

    #[test]
    fn flags_become_the_controller_config() {
        let cli = Cli::try_parse_from([
            "controller",
            "--concurrency",
            "3",
            "--max-attempts",
            "7",
            "--default-algorithm",
            "image_classifier",
            "--timeout",
            "10s",
            "--algorithm-timeout",
            "ocr=2m,echo=500ms",
            "--backoff-base",
            "100ms",
            "--token",
            "t0ken",
        ])
        .unwrap();
        let config = cli.args.controller_config().unwrap();
        assert_eq!((config.concurrency, config.max_attempts), (3, 7));
        assert_eq!(
            config.default_algorithm.as_deref(),
            Some("image_classifier")
        );
        assert_eq!(
            config.timeouts.for_algorithm("ocr"),
            Duration::from_secs(120)
        );
        assert_eq!(
            config.timeouts.for_algorithm("echo"),
            Duration::from_millis(500)
        );
        assert_eq!(
            config.timeouts.for_algorithm("other"),
            Duration::from_secs(10)
        );
        assert_eq!(config.backoff.base, Duration::from_millis(100));
        assert_eq!(config.token.as_deref(), Some("t0ken"));
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(Cli::try_parse_from(["controller", "--algorithm-timeout", "ocr"]).is_err());
        assert!(Cli::try_parse_from(["controller", "--algorithm-timeout", "=2s"]).is_err());
        assert!(Cli::try_parse_from(["controller", "--queue-type", "fancy"]).is_err());
        let empty_token = Cli::try_parse_from(["controller", "--token", ""]).unwrap();
        assert!(empty_token.args.controller_config().is_err());
    }
}
