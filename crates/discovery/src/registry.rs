//! The registry's state and rules, with no sockets and no clock of its own: every method that
//! depends on time takes `now`, so expiry is tested by passing a later instant instead of sleeping.
//!
//! Two kinds of entries live side by side:
//! - Switchyard runners (`POST /runners`) heartbeat, and drop out when silent for longer than the ttl;
//! - legacy runners (the series' `POST /algorithms`) register once and never heartbeat, so they
//!   never expire; they are grouped by host, so one series runner hosting several algorithms
//!   (which registers each of them) is one entry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_wire::discovery::{
    AlgorithmInfo, LegacyListing, LegacyRegistration, RegistrationAck, RunnerEntry,
    RunnerRegistration,
};

/// The prefix of a legacy entry's id in the detailed listing; the rest is its host.
pub const LEGACY_ID_PREFIX: &str = "legacy:";

/// Every registration discovery knows, and the timing rules that age them.
#[derive(Debug)]
pub struct Registry {
    /// Silence after which a Switchyard runner is dropped.
    ttl: Duration,
    /// How often runners are told to heartbeat; health is judged against it.
    heartbeat_interval: Duration,
    runners: BTreeMap<String, Runner>,
    /// Keyed by host, as the series' runners name themselves.
    legacy: BTreeMap<String, LegacyHost>,
}

#[derive(Debug)]
struct Runner {
    registration: RunnerRegistration,
    /// The last registration or heartbeat.
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct LegacyHost {
    /// When each algorithm was last registered at this host: the most recent host wins an
    /// algorithm in the series' one-host-per-algorithm listing.
    algorithms: BTreeMap<String, Instant>,
}

/// How well a replica serves an algorithm in the series' listing, which shows only one:
/// a runner that is heartbeating is preferred, then a legacy runner (which cannot prove it is
/// alive), then a runner that has missed heartbeats but not yet expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Preference {
    LateRunner,
    Legacy,
    HealthyRunner,
}

impl Registry {
    /// An empty registry that forgets a runner silent for `ttl` and tells runners to heartbeat
    /// every `heartbeat_interval`.
    pub fn new(ttl: Duration, heartbeat_interval: Duration) -> Registry {
        Registry {
            ttl,
            heartbeat_interval,
            runners: BTreeMap::new(),
            legacy: BTreeMap::new(),
        }
    }

    /// What a registering runner is told about the timing rules.
    pub fn ack(&self) -> RegistrationAck {
        RegistrationAck {
            ttl_ms: millis(self.ttl),
            heartbeat_interval_ms: millis(self.heartbeat_interval),
        }
    }

    /// Adds a runner, or replaces the registration with the same id; true when it replaced one.
    pub fn register(&mut self, registration: RunnerRegistration, now: Instant) -> bool {
        tracing::info!(
            runner = %registration.id,
            base_url = %registration.base_url,
            algorithms = %names(&registration.algorithms),
            capacity = registration.capacity,
            "runner registered"
        );
        let runner = Runner {
            registration,
            last_seen: now,
        };
        self.runners
            .insert(runner.registration.id.clone(), runner)
            .is_some()
    }

    /// Records the series' registration of one algorithm at one host; true when it is new (not a
    /// repeat of the same algorithm and host, which only refreshes its time).
    pub fn register_legacy(&mut self, registration: LegacyRegistration, now: Instant) -> bool {
        tracing::info!(
            runner = %legacy_id(&registration.host),
            base_url = %registration.host,
            algorithms = %registration.algorithm,
            "legacy runner registered"
        );
        self.legacy
            .entry(registration.host)
            .or_default()
            .algorithms
            .insert(registration.algorithm, now)
            .is_none()
    }

    /// Renews a runner's registration; false when the runner is unknown or already expired, which
    /// tells it to register again.
    pub fn renew(&mut self, id: &str, now: Instant) -> bool {
        let ttl = self.ttl;
        let Some(runner) = self.runners.get_mut(id) else {
            return false;
        };
        if age(runner.last_seen, now) <= ttl {
            runner.last_seen = now;
            return true;
        }
        // Silent too long: gone, even if the sweep has not run yet.
        self.expire(now);
        false
    }

    /// Removes a runner, or a legacy host by its `legacy:<host>` id; false when there was none.
    pub fn deregister(&mut self, id: &str) -> bool {
        if let Some(runner) = self.runners.remove(id) {
            log_removal("runner deregistered", &runner.registration);
            return true;
        }
        let legacy = id
            .strip_prefix(LEGACY_ID_PREFIX)
            .and_then(|host| self.legacy.remove_entry(host));
        match legacy {
            Some((host, entry)) => {
                tracing::info!(
                    runner = %id,
                    base_url = %host,
                    algorithms = %entry.algorithms.keys().cloned().collect::<Vec<_>>().join(","),
                    "legacy runner deregistered"
                );
                true
            }
            None => false,
        }
    }

    /// Drops every runner silent for longer than the ttl, and returns their ids.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .runners
            .values()
            .filter(|runner| self.is_expired(runner, now))
            .map(|runner| runner.registration.id.clone())
            .collect();
        for id in &expired {
            if let Some(runner) = self.runners.remove(id) {
                log_removal(
                    "runner expired: no heartbeat within the ttl",
                    &runner.registration,
                );
            }
        }
        expired
    }

    /// Every live replica: Switchyard runners by id, then legacy hosts.
    pub fn list(&self, now: Instant) -> Vec<RunnerEntry> {
        let runners = self.live_runners(now).map(|runner| {
            let registration = &runner.registration;
            RunnerEntry {
                id: registration.id.clone(),
                base_url: registration.base_url.clone(),
                algorithms: registration.algorithms.clone(),
                unavailable: registration.unavailable.clone(),
                capacity: registration.capacity,
                legacy: false,
                healthy: self.is_healthy(runner, now),
                last_heartbeat_ms_ago: millis(age(runner.last_seen, now)),
            }
        });
        let legacy = self.legacy.iter().map(|(host, entry)| {
            let latest = entry.algorithms.values().max().copied().unwrap_or(now);
            RunnerEntry {
                id: legacy_id(host),
                base_url: host.clone(),
                algorithms: entry
                    .algorithms
                    .keys()
                    .map(|name| AlgorithmInfo {
                        name: name.clone(),
                        // The series' registration carries no schema; the runner serves it at `/schemas`.
                        schema: Value::Null,
                    })
                    .collect(),
                unavailable: Vec::new(),
                // The series' runners serve one call at a time.
                capacity: 1,
                legacy: true,
                healthy: true,
                last_heartbeat_ms_ago: millis(age(latest, now)),
            }
        });
        runners.chain(legacy).collect()
    }

    /// The series' listing: one host per algorithm, the most preferred replica (see
    /// [`Preference`]), the most recently seen among equals.
    pub fn legacy_listing(&self, now: Instant) -> LegacyListing {
        let mut best: BTreeMap<&str, (Preference, Instant, &str)> = BTreeMap::new();
        for runner in self.live_runners(now) {
            let preference = if self.is_healthy(runner, now) {
                Preference::HealthyRunner
            } else {
                Preference::LateRunner
            };
            for algorithm in &runner.registration.algorithms {
                keep_best(
                    &mut best,
                    &algorithm.name,
                    (preference, runner.last_seen, &runner.registration.base_url),
                );
            }
        }
        for (host, entry) in &self.legacy {
            for (algorithm, registered_at) in &entry.algorithms {
                keep_best(
                    &mut best,
                    algorithm,
                    (Preference::Legacy, *registered_at, host),
                );
            }
        }
        best.into_iter()
            .map(|(algorithm, (_, _, host))| (algorithm.to_string(), host.to_string()))
            .collect()
    }

    fn live_runners(&self, now: Instant) -> impl Iterator<Item = &Runner> {
        self.runners
            .values()
            .filter(move |runner| !self.is_expired(runner, now))
    }

    fn is_expired(&self, runner: &Runner, now: Instant) -> bool {
        age(runner.last_seen, now) > self.ttl
    }

    /// One missed heartbeat is jitter; a runner is late once it has missed two.
    fn is_healthy(&self, runner: &Runner, now: Instant) -> bool {
        age(runner.last_seen, now) <= self.heartbeat_interval * 2
    }
}

fn keep_best<'a>(
    best: &mut BTreeMap<&'a str, (Preference, Instant, &'a str)>,
    algorithm: &'a str,
    candidate: (Preference, Instant, &'a str),
) {
    let current = best.entry(algorithm).or_insert(candidate);
    if (candidate.0, candidate.1) > (current.0, current.1) {
        *current = candidate;
    }
}

pub(crate) fn legacy_id(host: &str) -> String {
    format!("{LEGACY_ID_PREFIX}{host}")
}

fn log_removal(event: &'static str, registration: &RunnerRegistration) {
    tracing::info!(
        runner = %registration.id,
        base_url = %registration.base_url,
        algorithms = %names(&registration.algorithms),
        "{event}"
    );
}

fn names(algorithms: &[AlgorithmInfo]) -> String {
    algorithms
        .iter()
        .map(|algorithm| algorithm.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn age(since: Instant, now: Instant) -> Duration {
    now.saturating_duration_since(since)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
