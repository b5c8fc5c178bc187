//! Discovery: the registry runners announce themselves to, and the client that talks to it.
//!
//! The service is a thin shell ([`serve`]) around [`Registry`], the pure logic (tested with an
//! injected clock), and [`app`], the router (tested without sockets). State lives in memory only:
//! after a restart it is rebuilt as runners' heartbeats get 404 and they register again.

pub mod client;
mod error;
mod registry;
mod routes;
mod validate;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub use client::{ClientError, DiscoveryClient, RunnerUnreachable, Schemas};
pub use error::MAX_BODY_BYTES;
pub use registry::{LEGACY_ID_PREFIX, Registry};
pub use routes::{AppState, app};

/// How discovery ages registrations, and who may change them.
#[derive(Clone)]
pub struct Config {
    /// A runner silent for longer than this is dropped.
    pub ttl: Duration,
    /// How often runners are told to heartbeat; must be shorter than the ttl.
    pub heartbeat_interval: Duration,
    /// When set, registering, heartbeating and deregistering need `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// Shows the timings, not the token.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Config {
            ttl,
            heartbeat_interval,
            token,
        } = self;
        f.debug_struct("Config")
            .field("ttl", ttl)
            .field("heartbeat_interval", heartbeat_interval)
            .field("token", &token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            ttl: Duration::from_secs(15),
            heartbeat_interval: Duration::from_secs(5),
            token: None,
        }
    }
}

/// Serves discovery on `listener` until `shutdown` is cancelled, sweeping expired runners in the
/// background. Fails at once if the heartbeat interval does not fit in the ttl.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if config.heartbeat_interval.is_zero() || config.heartbeat_interval >= config.ttl {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "heartbeat interval ({:?}) must be non-zero and shorter than the ttl ({:?}), or every runner expires",
                config.heartbeat_interval, config.ttl
            ),
        ));
    }
    if config.token.is_none() {
        tracing::warn!(
            "no token set: anyone who can reach discovery can register a runner and receive tasks"
        );
    }
    let state = AppState::new(
        Registry::new(config.ttl, config.heartbeat_interval),
        config.token,
    );
    let stop_sweeping = shutdown.child_token();
    let sweeper = tokio::spawn(sweep(
        state.clone(),
        sweep_period(config.ttl),
        stop_sweeping.clone(),
    ));
    tracing::info!(
        address = %listener.local_addr()?,
        ttl = ?config.ttl,
        heartbeat_interval = ?config.heartbeat_interval,
        "discovery listening"
    );
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    stop_sweeping.cancel();
    let _ = sweeper.await;
    tracing::info!("discovery stopped");
    served
}

/// Reads already hide expired runners; the sweep only frees their memory and logs their expiry
/// close to when it happened.
fn sweep_period(ttl: Duration) -> Duration {
    (ttl / 2).max(Duration::from_millis(10))
}

async fn sweep(state: AppState, period: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {
                state.registry().expire(Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_the_tokens_out() {
        let config = Config {
            token: Some("s3cret-token".into()),
            ..Config::default()
        };
        let client = DiscoveryClient::new("http://discovery:8500", Some("s3cret-token".into()));
        let state = AppState::new(
            Registry::new(config.ttl, config.heartbeat_interval),
            config.token.clone(),
        );
        for shown in [
            format!("{config:?}"),
            format!("{client:?}"),
            format!("{state:?}"),
        ] {
            assert!(!shown.contains("s3cret-token"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }
}
