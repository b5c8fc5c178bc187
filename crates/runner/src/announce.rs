//! Keeping discovery informed: register, heartbeat at the interval discovery asks for,
//! register again when it has forgotten the runner, deregister on shutdown.
//!
//! Discovery being unreachable never stops the runner: calls already routed to it keep
//! working, and it retries with capped, jittered backoff, logging each change of state once.

use std::time::Duration;

use switchyard_discovery::{ClientError, DiscoveryClient};
use switchyard_wire::discovery::RunnerRegistration;
use tokio_util::sync::CancellationToken;

/// Discovery's requested interval is honoured, but never faster than this.
const MIN_HEARTBEAT: Duration = Duration::from_millis(50);
/// How long shutdown waits for discovery to acknowledge the deregistration.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs until `stop` is cancelled, then deregisters if discovery ever knew the runner.
pub(crate) async fn announce(
    client: DiscoveryClient,
    registration: RunnerRegistration,
    stop: CancellationToken,
) {
    let mut link = Link::default();
    let mut backoff = Backoff::default();
    let mut ever_registered = false;
    'register: loop {
        let heartbeat_interval = loop {
            let attempt = tokio::select! {
                _ = stop.cancelled() => break 'register,
                attempt = client.register(&registration) => attempt,
            };
            match attempt {
                Ok(ack) => {
                    backoff.reset();
                    link.up(&client);
                    tracing::info!(
                        discovery = client.base_url(),
                        runner_id = registration.id,
                        base_url = registration.base_url,
                        heartbeat_interval_ms = ack.heartbeat_interval_ms,
                        "registered with discovery"
                    );
                    break Duration::from_millis(ack.heartbeat_interval_ms).max(MIN_HEARTBEAT);
                }
                Err(error) => link.down(&client, &error),
            }
            if !pause(backoff.next(), &stop).await {
                break 'register;
            }
        };
        ever_registered = true;

        let mut wait = heartbeat_interval;
        loop {
            if !pause(wait, &stop).await {
                break 'register;
            }
            let beat = tokio::select! {
                _ = stop.cancelled() => break 'register,
                beat = client.heartbeat(&registration.id) => beat,
            };
            match beat {
                Ok(()) => {
                    backoff.reset();
                    link.up(&client);
                    wait = heartbeat_interval;
                }
                Err(ClientError::UnknownRunner(_)) => {
                    link.up(&client);
                    tracing::info!(
                        discovery = client.base_url(),
                        "discovery no longer knows this runner (restarted, or the entry expired): registering again"
                    );
                    continue 'register;
                }
                Err(error) => {
                    link.down(&client, &error);
                    wait = backoff.next();
                }
            }
        }
    }
    if ever_registered {
        deregister(&client, &registration.id).await;
    }
}

async fn deregister(client: &DiscoveryClient, runner_id: &str) {
    match tokio::time::timeout(DEREGISTER_TIMEOUT, client.deregister(runner_id)).await {
        Ok(Ok(())) => tracing::info!(
            discovery = client.base_url(),
            runner_id,
            "deregistered from discovery"
        ),
        Ok(Err(error)) => tracing::warn!(
            runner_id,
            "could not deregister ({error}); discovery drops this runner when its heartbeats stop"
        ),
        Err(_) => tracing::warn!(
            runner_id,
            "discovery did not answer the deregistration in {DEREGISTER_TIMEOUT:?}; it drops this runner when its heartbeats stop"
        ),
    }
}

/// Sleeps for `duration`; false if `stop` was cancelled meanwhile.
async fn pause(duration: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}

/// The last state of the link to discovery that was logged, so a retry loop logs when the
/// state changes and not on every try.
#[derive(Default, PartialEq)]
enum Link {
    #[default]
    Unknown,
    Up,
    /// Failing, for this kind of reason.
    Down(&'static str),
}

impl Link {
    fn up(&mut self, client: &DiscoveryClient) {
        if matches!(self, Link::Down(_)) {
            tracing::info!(discovery = client.base_url(), "discovery answers again");
        }
        *self = Link::Up;
    }

    fn down(&mut self, client: &DiscoveryClient, error: &ClientError) {
        let (kind, advice) = match error {
            ClientError::Unreachable { .. } => ("unreachable", "serving anyway; retrying"),
            ClientError::Unauthorized => ("unauthorized", "check SWITCHYARD_TOKEN; retrying"),
            // Registration itself got a 404: whatever answers there has no `POST /runners`.
            ClientError::UnknownRunner(_) => (
                "no_runners_route",
                "is this a Switchyard discovery? retrying",
            ),
            ClientError::Unexpected { .. } => ("unexpected", "retrying"),
        };
        if *self != Link::Down(kind) {
            let error = with_causes(error);
            tracing::warn!(
                discovery = client.base_url(),
                "{error}: {advice} (logged again when this changes)"
            );
        }
        *self = Link::Down(kind);
    }
}

/// The error and its causes: reqwest's own message leaves out why a connection failed.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Wrappers often repeat their cause's message; say each thing once.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Exponential backoff from 100 ms to 5 s, each wait drawn from its upper half so that
/// runners restarted together do not retry in step.
struct Backoff {
    ceiling: Duration,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            ceiling: FIRST_BACKOFF,
        }
    }
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = (ceiling * 2).min(MAX_BACKOFF);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    fn reset(&mut self) {
        self.ceiling = FIRST_BACKOFF;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..12).map(|_| backoff.next()).collect();
        assert!(waits[0] >= FIRST_BACKOFF / 2 && waits[0] <= FIRST_BACKOFF);
        assert!(waits.iter().all(|wait| *wait <= MAX_BACKOFF));
        assert!(waits[11] >= MAX_BACKOFF / 2, "reaches the cap: {waits:?}");
        backoff.reset();
        assert!(backoff.next() <= FIRST_BACKOFF);
    }
}
