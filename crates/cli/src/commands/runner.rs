//! `switchyard runner`: built-in algorithms served over HTTP and announced to discovery.

use std::time::Duration;

use anyhow::Context;
use switchyard_runner::{DEFAULT_MAX_BODY_BYTES, RunnerConfig};

use crate::algorithm_flags::AlgorithmFlags;
use crate::duration::parse_duration;
use crate::shared_flags::DiscoveryFlags;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Where the runner registers (unreachable is fine: the runner serves anyway and registers
    /// once discovery answers), and its token, which calls must also carry.
    #[command(flatten)]
    discovery: DiscoveryFlags,
    /// Serve without registering with discovery (callers must be told the runner's URL).
    #[arg(long, env = "SWITCHYARD_STANDALONE")]
    standalone: bool,
    /// Built-in algorithms to host, comma-separated (e.g. `echo,ocr`).
    #[arg(
        long = "algorithms",
        env = "SWITCHYARD_ALGORITHMS",
        value_delimiter = ',',
        required = true
    )]
    hosted: Vec<String>,
    /// The base URL registered with discovery [default: http://<listen address>; a wildcard
    /// address becomes the host name].
    #[arg(long, env = "SWITCHYARD_ADVERTISE")]
    advertise: Option<String>,
    /// Algorithm that `POST /` runs: the series' Part II runner contract.
    #[arg(long, env = "SWITCHYARD_DEFAULT_ALGORITHM")]
    default_algorithm: Option<String>,
    /// Larger request bodies are refused with 413.
    #[arg(long, env = "SWITCHYARD_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// On shutdown, how long calls in flight may take to finish (`10s`, or seconds).
    #[arg(long, env = "SWITCHYARD_GRACE_PERIOD", default_value = "10s", value_parser = parse_duration)]
    grace_period: Duration,
    #[command(flatten)]
    algorithms: AlgorithmFlags,
}

impl Args {
    fn runner_config(&self) -> anyhow::Result<RunnerConfig> {
        let token = self.discovery.token.token()?;
        let discovery = match self.standalone {
            true => None,
            false => Some(self.discovery.client()?),
        };
        Ok(RunnerConfig {
            advertise_url: self.advertise.clone(),
            discovery,
            default_algorithm: self.default_algorithm.clone(),
            token,
            max_body_bytes: self.max_body_bytes,
            grace_period: self.grace_period,
            runner_id: None,
        })
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.runner_config()?;
    let algorithms = switchyard_algorithms::build(&args.hosted, &args.algorithms.to_options())?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    switchyard_runner::serve(listener, algorithms, config, crate::shutdown::on_signal())
        .await
        .context("running the runner")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    type Cli = crate::commands::FlagsOnly<Args>;

    #[test]
    fn flags_become_the_runner_config() {
        let cli = Cli::try_parse_from([
            "runner",
            "--algorithms",
            "echo,language_detection",
            "--discovery",
            "http://discovery:8500",
            "--advertise",
            "http://runner-1:8080",
            "--default-algorithm",
            "echo",
            "--token",
            "t0ken",
            "--max-body-bytes",
            "1024",
            "--grace-period",
            "2m",
        ])
        .unwrap();
        assert_eq!(cli.args.hosted, ["echo", "language_detection"]);
        let config = cli.args.runner_config().unwrap();
        assert_eq!(
            config
                .discovery
                .as_ref()
                .map(switchyard_discovery::DiscoveryClient::base_url),
            Some("http://discovery:8500")
        );
        assert_eq!(
            config.advertise_url.as_deref(),
            Some("http://runner-1:8080")
        );
        assert_eq!(config.default_algorithm.as_deref(), Some("echo"));
        assert_eq!(config.token.as_deref(), Some("t0ken"));
        assert_eq!(
            (config.max_body_bytes, config.grace_period),
            (1024, Duration::from_secs(120))
        );
    }

    #[test]
    fn defaults_and_standalone() {
        let cli =
            Cli::try_parse_from(["runner", "--algorithms", "echo", "--grace-period", "3"]).unwrap();
        let config = cli.args.runner_config().unwrap();
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.grace_period, Duration::from_secs(3));
        assert!(config.discovery.is_some());
        let cli = Cli::try_parse_from(["runner", "--algorithms", "echo", "--standalone"]).unwrap();
        assert!(cli.args.runner_config().unwrap().discovery.is_none());
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(
            Cli::try_parse_from(["runner", "--algorithms", "echo", "--grace-period", "soon"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from(["runner", "--algorithms", "echo", "--max-body-bytes", "-1"])
                .is_err()
        );
        let empty_token =
            Cli::try_parse_from(["runner", "--algorithms", "echo", "--token", ""]).unwrap();
        assert!(empty_token.args.runner_config().is_err());
    }
}
