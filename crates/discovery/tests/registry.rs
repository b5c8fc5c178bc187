//! The registry's rules, with an injected clock: expiry is tested by passing later instants.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::registration;
use switchyard_discovery::Registry;
use switchyard_wire::discovery::{LegacyRegistration, RegistrationAck};

const TTL: Duration = Duration::from_secs(15);
const HEARTBEAT: Duration = Duration::from_secs(5);

fn registry() -> Registry {
    Registry::new(TTL, HEARTBEAT)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn legacy(algorithm: &str, host: &str) -> LegacyRegistration {
    LegacyRegistration {
        algorithm: algorithm.to_string(),
        host: host.to_string(),
    }
}

fn ids(registry: &Registry, now: Instant) -> Vec<String> {
    registry
        .list(now)
        .into_iter()
        .map(|entry| entry.id)
        .collect()
}

#[test]
fn the_ack_states_the_timing_rules() {
    assert_eq!(
        registry().ack(),
        RegistrationAck {
            ttl_ms: 15_000,
            heartbeat_interval_ms: 5_000
        }
    );
}

#[test]
fn a_registered_runner_is_listed_with_its_details() {
    let mut registry = registry();
    let t0 = Instant::now();
    assert!(!registry.register(registration("r1", "http://a:1", &["echo", "ocr"]), t0));
    let listed = registry.list(t0 + Duration::from_millis(1500));
    assert_eq!(listed.len(), 1);
    let entry = &listed[0];
    assert_eq!(entry.id, "r1");
    assert_eq!(entry.base_url, "http://a:1");
    assert_eq!(
        entry.algorithms,
        registration("r1", "http://a:1", &["echo", "ocr"]).algorithms
    );
    assert_eq!(entry.capacity, 4);
    assert!(!entry.legacy);
    assert!(entry.healthy);
    assert_eq!(entry.last_heartbeat_ms_ago, 1500);
}

#[test]
fn registering_the_same_id_again_replaces_the_entry() {
    let mut registry = registry();
    let t0 = Instant::now();
    registry.register(registration("r1", "http://a:1", &["echo"]), t0);
    assert!(registry.register(registration("r1", "http://b:2", &["ocr"]), t0 + secs(1)));
    let listed = registry.list(t0 + secs(1));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].base_url, "http://b:2");
    assert_eq!(listed[0].algorithms[0].name, "ocr");
    assert_eq!(registry.legacy_listing(t0 + secs(1)).get("echo"), None);
}

#[test]
fn a_silent_runner_expires_after_the_ttl_even_before_a_sweep() {
    let mut registry = registry();
    let t0 = Instant::now();
    registry.register(registration("r1", "http://a:1", &["echo"]), t0);
    assert_eq!(ids(&registry, t0 + TTL), ["r1"]);
    let after = t0 + TTL + Duration::from_millis(1);
    assert!(
        ids(&registry, after).is_empty(),
        "hidden on read before any sweep"
    );
    assert!(registry.legacy_listing(after).is_empty());
    assert_eq!(registry.expire(t0 + TTL), Vec::<String>::new());
    assert_eq!(registry.expire(after), ["r1"]);
    assert_eq!(
        registry.expire(after),
        Vec::<String>::new(),
        "removed by the sweep"
    );
}

#[test]
fn heartbeats_keep_a_runner_alive() {
    let mut registry = registry();
    let t0 = Instant::now();
    registry.register(registration("r1", "http://a:1", &["echo"]), t0);
    assert!(registry.renew("r1", t0 + secs(10)));
    assert!(registry.renew("r1", t0 + secs(20)));
    assert_eq!(ids(&registry, t0 + secs(30)), ["r1"]);
    assert!(registry.expire(t0 + secs(35)).is_empty());
    assert_eq!(registry.expire(t0 + secs(36)), ["r1"]);
}

#[test]
fn renewing_an_unknown_or_expired_runner_fails_so_it_registers_again() {
    let mut registry = registry();
    let t0 = Instant::now();
    assert!(!registry.renew("nobody", t0));
    registry.register(registration("r1", "http://a:1", &["echo"]), t0);
    assert!(
        !registry.renew("r1", t0 + secs(16)),
        "expired, though not yet swept"
    );
    assert!(!registry.renew("r1", t0 + secs(16)), "and forgotten");
    registry.register(registration("r1", "http://a:1", &["echo"]), t0 + secs(17));
    assert!(registry.renew("r1", t0 + secs(18)));
}

#[test]
fn a_runner_that_misses_two_heartbeats_is_listed_unhealthy_until_it_expires() {
    let mut registry = registry();
    let t0 = Instant::now();
    registry.register(registration("r1", "http://a:1", &["echo"]), t0);
    assert!(registry.list(t0 + HEARTBEAT * 2).remove(0).healthy);
    let late = registry
        .list(t0 + HEARTBEAT * 2 + Duration::from_millis(1))
        .remove(0);
    assert!(!late.healthy);
    assert_eq!(late.last_heartbeat_ms_ago, 10_001);
}

#[test]
fn several_runners_can_host_one_algorithm() {
    let mut registry = registry();
    let t0 = Instant::now();
    registry.register(registration("r1", "http://a:1", &["echo"]), t0);
    registry.register(registration("r2", "http://b:2", &["echo", "ocr"]), t0);
    assert_eq!(ids(&registry, t0), ["r1", "r2"]);
    assert!(registry.deregister("r1"));
    assert!(!registry.deregister("r1"), "already gone");
    assert_eq!(ids(&registry, t0), ["r2"]);
}

#[test]
fn legacy_registrations_never_expire_and_group_by_host() {
    let mut registry = registry();
    let t0 = Instant::now();
    assert!(registry.register_legacy(legacy("meme_classifier", "http://py:5000"), t0));
    assert!(registry.register_legacy(legacy("ocr", "http://py:5000"), t0 + secs(1)));
    assert!(
        !registry.register_legacy(legacy("ocr", "http://py:5000"), t0 + secs(2)),
        "a repeat"
    );
    let a_day_later = t0 + secs(86_400);
    assert!(registry.expire(a_day_later).is_empty());
    let listed = registry.list(a_day_later);
    assert_eq!(listed.len(), 1);
    let entry = &listed[0];
    assert_eq!(entry.id, "legacy:http://py:5000");
    assert_eq!(entry.base_url, "http://py:5000");
    let names: Vec<&str> = entry.algorithms.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["meme_classifier", "ocr"]);
    assert!(entry.algorithms.iter().all(|a| a.schema == Value::Null));
    assert!(entry.legacy && entry.healthy);
    assert_eq!(entry.last_heartbeat_ms_ago, (86_400 - 2) * 1000);
    assert!(
        !registry.renew("legacy:http://py:5000", a_day_later),
        "legacy entries do not heartbeat"
    );
}

#[test]
fn a_legacy_host_is_removed_by_its_id() {
    let mut registry = registry();
    let t0 = Instant::now();
    registry.register_legacy(legacy("ocr", "http://py:5000"), t0);
    assert!(!registry.deregister("legacy:http://other:1"));
    assert!(
        !registry.deregister("http://py:5000"),
        "the id carries the prefix"
    );
    assert!(registry.deregister("legacy:http://py:5000"));
    assert!(registry.list(t0).is_empty());
    assert!(registry.legacy_listing(t0).is_empty());
}

#[test]
fn the_series_listing_shows_the_most_recent_legacy_host() {
    let mut registry = registry();
    let t0 = Instant::now();
    registry.register_legacy(legacy("ocr", "http://old:1"), t0);
    registry.register_legacy(legacy("ocr", "http://new:2"), t0 + secs(1));
    registry.register_legacy(legacy("lang", "http://old:1"), t0 + secs(1));
    let listing = registry.legacy_listing(t0 + secs(2));
    assert_eq!(listing.get("ocr").map(String::as_str), Some("http://new:2"));
    assert_eq!(
        listing.get("lang").map(String::as_str),
        Some("http://old:1")
    );
    // Registering the old host again makes it the most recent.
    registry.register_legacy(legacy("ocr", "http://old:1"), t0 + secs(3));
    assert_eq!(registry.legacy_listing(t0 + secs(3))["ocr"], "http://old:1");
}

#[test]
fn the_series_listing_prefers_a_healthy_runner_then_legacy_then_a_late_runner() {
    let mut registry = registry();
    let t0 = Instant::now();
    registry.register(registration("late", "http://late:1", &["ocr"]), t0);
    registry.register_legacy(legacy("ocr", "http://py:5000"), t0);
    registry.register(
        registration("fresh", "http://fresh:2", &["ocr"]),
        t0 + secs(1),
    );
    registry.register(
        registration("fresher", "http://fresher:3", &["ocr"]),
        t0 + secs(2),
    );
    assert_eq!(
        registry.legacy_listing(t0 + secs(3))["ocr"],
        "http://fresher:3",
        "healthy, most recent"
    );
    // At t0 + 13s every runner has missed two heartbeats: the legacy host wins.
    assert_eq!(
        registry.legacy_listing(t0 + secs(13))["ocr"],
        "http://py:5000"
    );
    registry.deregister("legacy:http://py:5000");
    assert_eq!(
        registry.legacy_listing(t0 + secs(13))["ocr"],
        "http://fresher:3",
        "late beats nothing"
    );
    assert!(
        registry.legacy_listing(t0 + secs(18)).is_empty(),
        "all expired"
    );
}
