//! How a runner is set up: where it says it lives, whom it tells, and what it lets in.

use std::net::SocketAddr;
use std::time::Duration;

use switchyard_discovery::DiscoveryClient;

/// The body limit when none is configured: an inline image or a long text fits, a runaway
/// upload does not.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Settings of one runner. `RunnerConfig::default()` serves standalone, without a token.
#[derive(Clone)]
pub struct RunnerConfig {
    /// The base URL registered with discovery, which the controller calls. `None`: derived from
    /// the bound address (a wildcard address is replaced by the host name, else 127.0.0.1).
    pub advertise_url: Option<String>,
    /// The registry to announce this runner to; `None` runs standalone, reachable only by
    /// callers told its URL some other way.
    pub discovery: Option<DiscoveryClient>,
    /// The algorithm `POST /` runs, so the series' Part II contract (`POST /` with the payload)
    /// keeps working; `None` answers `POST /` with 404.
    pub default_algorithm: Option<String>,
    /// When set, `POST /run/*` and `POST /` need `Authorization: Bearer <token>`; probes,
    /// metrics, schemas and docs stay open.
    pub token: Option<String>,
    /// Larger request bodies are refused with 413 before they are buffered whole.
    pub max_body_bytes: usize,
    /// How long calls already running may take to finish once shutdown starts.
    pub grace_period: Duration,
    /// Names this process in discovery; `None` generates one, unique per start.
    pub runner_id: Option<String>,
}

/// Everything but the token, which would otherwise reach logs and panic messages.
impl std::fmt::Debug for RunnerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field fails to compile here until it is shown or hidden.
        let RunnerConfig {
            advertise_url,
            discovery,
            default_algorithm,
            token,
            max_body_bytes,
            grace_period,
            runner_id,
        } = self;
        f.debug_struct("RunnerConfig")
            .field("advertise_url", advertise_url)
            .field("discovery", discovery)
            .field("default_algorithm", default_algorithm)
            .field("token", &token.as_ref().map(|_| "<redacted>"))
            .field("max_body_bytes", max_body_bytes)
            .field("grace_period", grace_period)
            .field("runner_id", runner_id)
            .finish()
    }
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            advertise_url: None,
            discovery: None,
            default_algorithm: None,
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            grace_period: Duration::from_secs(10),
            runner_id: None,
        }
    }
}

/// A fresh runner id: `runner-` and a random UUID, which discovery accepts as an id.
pub(crate) fn generate_runner_id() -> String {
    format!("runner-{}", uuid::Uuid::new_v4().simple())
}

/// The URL to advertise when none is configured. A wildcard bind address cannot be called, so
/// it is replaced by the machine's host name (what other containers resolve) or, without
/// one, by the loopback address, which only works on this machine.
pub(crate) fn default_advertise_url(local: SocketAddr, hostname: Option<&str>) -> String {
    if !local.ip().is_unspecified() {
        return format!("http://{local}");
    }
    match hostname.map(str::trim).filter(|name| !name.is_empty()) {
        Some(name) => format!("http://{name}:{}", local.port()),
        None => format!("http://127.0.0.1:{}", local.port()),
    }
}

/// The kernel's host name (Linux), or `$HOSTNAME`.
pub(crate) fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_the_tokens_out() {
        let config = RunnerConfig {
            token: Some("s3cret-token".into()),
            discovery: Some(DiscoveryClient::new(
                "http://discovery:8500",
                Some("s3cret-token".into()),
            )),
            ..RunnerConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn a_concrete_address_is_advertised_as_is() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            default_advertise_url(local, Some("box")),
            "http://127.0.0.1:8080"
        );
        let local: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(default_advertise_url(local, None), "http://[::1]:8080");
    }

    #[test]
    fn a_wildcard_address_is_replaced_by_the_host_name_or_loopback() {
        let local: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(
            default_advertise_url(local, Some("runner-1\n")),
            "http://runner-1:9000"
        );
        assert_eq!(
            default_advertise_url(local, Some("  ")),
            "http://127.0.0.1:9000"
        );
        assert_eq!(default_advertise_url(local, None), "http://127.0.0.1:9000");
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(generate_runner_id(), generate_runner_id());
        assert!(generate_runner_id().starts_with("runner-"));
    }
}
