//! Discovery, a runner and a controller as child processes of this same binary, started with
//! their ordinary subcommands: the worker as deployed, with memory figures of its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use switchyard_discovery::DiscoveryClient;
use tokio::process::Command;
use tokio::time::Instant;

/// What the runner hosts: the no-op for the queue figures, the classifier for the images.
const HOSTED: [&str; 2] = ["echo", "image_classifier"];
/// Loading the classifier takes seconds, unoptimised builds longer.
const LOAD_LIMIT: Duration = Duration::from_secs(300);

struct Child {
    name: &'static str,
    process: tokio::process::Child,
    /// Its stderr: the logs, kept when the bench fails.
    log: PathBuf,
}

impl Child {
    fn pid(&self) -> anyhow::Result<u32> {
        self.process
            .id()
            .with_context(|| format!("the {} has exited", self.name))
    }
}

pub(super) struct Children {
    discovery_url: String,
    queue: String,
    discovery: Child,
    runner: Child,
    controller: Child,
}

impl Children {
    /// Starts discovery, a runner hosting echo and the classifier on `engine`, and a controller
    /// consuming `queue` on RabbitMQ at `amqp`. Logs go to files in `scratch`.
    pub(super) async fn start(
        scratch: &Path,
        engine: &str,
        amqp: &str,
        queue: &str,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
        let discovery_address = free_local_address()?;
        let discovery_url = format!("http://{discovery_address}");
        let discovery = spawn(
            scratch,
            "discovery",
            &["--listen", &discovery_address.to_string()],
        )?;
        let runner = spawn(
            scratch,
            "runner",
            &[
                "--listen",
                "127.0.0.1:0",
                "--discovery",
                &discovery_url,
                "--algorithms",
                &HOSTED.join(","),
                "--classifier-engine",
                engine,
            ],
        )?;
        let controller = spawn(
            scratch,
            "controller",
            &[
                "--amqp",
                amqp,
                "--queue",
                queue,
                "--discovery",
                &discovery_url,
                "--concurrency",
                &concurrency.to_string(),
            ],
        )?;
        Ok(Children {
            discovery_url,
            queue: queue.to_owned(),
            discovery,
            runner,
            controller,
        })
    }

    pub(super) fn discovery_url(&self) -> &str {
        &self.discovery_url
    }

    /// The task queue the controller consumes.
    pub(super) fn queue(&self) -> &str {
        &self.queue
    }

    /// Waits until the runner is registered with every algorithm loaded.
    pub(super) async fn wait_until_hosted(&mut self) -> anyhow::Result<()> {
        let discovery = DiscoveryClient::new(self.discovery_url.clone(), None);
        let deadline = Instant::now() + LOAD_LIMIT;
        loop {
            for child in [&mut self.discovery, &mut self.runner, &mut self.controller] {
                if let Some(status) = child.process.try_wait()? {
                    bail!(
                        "the {} exited ({status}); see {}",
                        child.name,
                        child.log.display()
                    );
                }
            }
            if let Ok(runners) = discovery.runners().await
                && runners.iter().any(|runner| {
                    HOSTED
                        .iter()
                        .all(|name| runner.algorithms.iter().any(|hosted| hosted.name == *name))
                })
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the runner did not register {} within {LOAD_LIMIT:?}; see {}",
                    HOSTED.join(", "),
                    self.runner.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where the runner serves, as it registered with discovery.
    pub(super) async fn runner_url(&self) -> anyhow::Result<String> {
        let runners = DiscoveryClient::new(self.discovery_url.clone(), None)
            .runners()
            .await
            .context("asking discovery for the runner")?;
        runners
            .into_iter()
            .next()
            .map(|runner| runner.base_url)
            .context("no runner is registered")
    }

    /// The runner's and the controller's process ids.
    pub(super) fn pids(&self) -> anyhow::Result<(u32, u32)> {
        Ok((self.runner.pid()?, self.controller.pid()?))
    }

    /// Peak resident memory of the controller and of the runner, in MiB.
    pub(super) fn peak_rss_mb(&self) -> anyhow::Result<(f64, f64)> {
        let peak = |child: &Child| super::rss::peak_rss_mb(child.pid()?);
        Ok((peak(&self.controller)?, peak(&self.runner)?))
    }

    /// Kills them: nothing is in flight any more, and their queues are deleted next.
    pub(super) async fn stop(mut self) {
        for child in [&mut self.controller, &mut self.runner, &mut self.discovery] {
            if let Err(error) = child.process.kill().await {
                tracing::warn!(child = child.name, %error, "stopping a child process");
            }
        }
    }
}

fn spawn(scratch: &Path, subcommand: &'static str, args: &[&str]) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("finding this program")?;
    let log = scratch.join(format!("{subcommand}.log"));
    let stderr =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let process = Command::new(&exe)
        .arg(subcommand)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        // A worker of its own: the in-process embedded controller calls the runner without one.
        .env_remove("SWITCHYARD_TOKEN")
        // Also when the bench fails or is interrupted.
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} {subcommand}", exe.display()))?;
    Ok(Child {
        name: subcommand,
        process,
        log,
    })
}

/// A loopback address with a port free right now, for a child that must be told its port.
pub(super) fn free_local_address() -> anyhow::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}
