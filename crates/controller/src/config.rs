//! What a controller can be told, with defaults that suit one machine.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::ControllerError;
use crate::backoff::Backoff;

/// Settings of one controller.
#[derive(Clone)]
pub struct ControllerConfig {
    /// Tasks handled at once. Also the broker prefetch, so the controller never holds deliveries
    /// it has no slot for (another controller can take them).
    pub concurrency: usize,
    /// Tries per task (runner calls, and routings that found no runner) before a task that keeps
    /// failing transiently is dead-lettered. Waiting for a runner to appear is bounded by
    /// `no_runner_deadline` instead.
    pub max_attempts: u32,
    /// Algorithm for bodies without an `algorithm` field, so the series' Part II producer
    /// (`{"url": ...}`) keeps working.
    pub default_algorithm: Option<String>,
    /// How long one runner call may take, per algorithm.
    pub timeouts: Timeouts,
    /// How long, from its first try, a task whose algorithm no runner hosts waits for one to
    /// register before it is dead-lettered with reason `no_runner`.
    pub no_runner_deadline: Duration,
    /// Delays between tries of a task, and between reconnects to the broker.
    pub backoff: Backoff,
    /// Sent to runners as `Authorization: Bearer` (they require the shared `SWITCHYARD_TOKEN`).
    pub token: Option<String>,
    /// On shutdown, how long in-flight tasks may take to finish before they are requeued.
    pub grace_period: Duration,
    /// How often the runner registry is re-read from discovery.
    pub registry_refresh: Duration,
    /// Minimum time between on-demand registry reads (an unknown algorithm, a runner answering
    /// 404), so a burst of such tasks costs discovery one request.
    pub registry_min_refresh: Duration,
}

/// Everything but the token, which would otherwise reach logs and panic messages.
impl std::fmt::Debug for ControllerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field fails to compile here until it is shown or hidden.
        let ControllerConfig {
            concurrency,
            max_attempts,
            default_algorithm,
            timeouts,
            no_runner_deadline,
            backoff,
            token,
            grace_period,
            registry_refresh,
            registry_min_refresh,
        } = self;
        f.debug_struct("ControllerConfig")
            .field("concurrency", concurrency)
            .field("max_attempts", max_attempts)
            .field("default_algorithm", default_algorithm)
            .field("timeouts", timeouts)
            .field("no_runner_deadline", no_runner_deadline)
            .field("backoff", backoff)
            .field("token", &token.as_ref().map(|_| "<redacted>"))
            .field("grace_period", grace_period)
            .field("registry_refresh", registry_refresh)
            .field("registry_min_refresh", registry_min_refresh)
            .finish()
    }
}

/// How long a runner call may take, per algorithm: an OCR run is slower than an echo.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// For every algorithm not named below.
    pub default: Duration,
    /// Algorithms slower (or faster) than the default, by name.
    pub per_algorithm: BTreeMap<String, Duration>,
}

impl Timeouts {
    /// The timeout of one call of `algorithm`.
    pub fn for_algorithm(&self, algorithm: &str) -> Duration {
        self.per_algorithm
            .get(algorithm)
            .copied()
            .unwrap_or(self.default)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            default: Duration::from_secs(30),
            per_algorithm: BTreeMap::new(),
        }
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            concurrency: 16,
            max_attempts: 5,
            default_algorithm: None,
            timeouts: Timeouts::default(),
            no_runner_deadline: Duration::from_secs(60),
            backoff: Backoff::default(),
            token: None,
            grace_period: Duration::from_secs(30),
            registry_refresh: Duration::from_secs(10),
            registry_min_refresh: Duration::from_secs(1),
        }
    }
}

impl ControllerConfig {
    /// The broker prefetch: one unsettled delivery per concurrency slot.
    pub fn prefetch(&self) -> u16 {
        u16::try_from(self.concurrency).unwrap_or(u16::MAX)
    }

    pub(crate) fn validate(&self) -> Result<(), ControllerError> {
        let invalid = |what: &str| Err(ControllerError::InvalidConfig(what.to_string()));
        if self.concurrency == 0 || self.concurrency > usize::from(u16::MAX) {
            return invalid("concurrency must be between 1 and 65535");
        }
        if self.max_attempts == 0 {
            return invalid("max_attempts must be at least 1");
        }
        let zero_timeout = std::iter::once(&self.timeouts.default)
            .chain(self.timeouts.per_algorithm.values())
            .any(Duration::is_zero);
        if zero_timeout {
            return invalid("runner call timeouts must be longer than zero");
        }
        if self.registry_refresh.is_zero() {
            return invalid("registry_refresh must be longer than zero");
        }
        if self.backoff.base > self.backoff.cap {
            return invalid("the backoff base must not exceed its cap");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_the_token_out() {
        let config = ControllerConfig {
            token: Some("s3cret-token".into()),
            ..ControllerConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn timeouts_fall_back_to_the_default() {
        let timeouts = Timeouts {
            default: Duration::from_secs(30),
            per_algorithm: BTreeMap::from([("ocr".to_string(), Duration::from_secs(120))]),
        };
        assert_eq!(timeouts.for_algorithm("ocr"), Duration::from_secs(120));
        assert_eq!(timeouts.for_algorithm("echo"), Duration::from_secs(30));
    }

    #[test]
    fn nonsense_settings_are_refused_with_the_reason() {
        let message = |config: ControllerConfig| config.validate().unwrap_err().to_string();
        assert!(ControllerConfig::default().validate().is_ok());
        assert!(
            message(ControllerConfig {
                concurrency: 0,
                ..Default::default()
            })
            .contains("concurrency")
        );
        assert!(
            message(ControllerConfig {
                max_attempts: 0,
                ..Default::default()
            })
            .contains("max_attempts")
        );
        let mut zero = ControllerConfig::default();
        zero.timeouts
            .per_algorithm
            .insert("echo".into(), Duration::ZERO);
        assert!(message(zero).contains("timeouts"));
        let inverted = ControllerConfig {
            backoff: Backoff {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(1),
            },
            ..Default::default()
        };
        assert!(message(inverted).contains("backoff"));
    }

    #[test]
    fn prefetch_follows_concurrency() {
        assert_eq!(
            ControllerConfig {
                concurrency: 7,
                ..Default::default()
            }
            .prefetch(),
            7
        );
    }
}
