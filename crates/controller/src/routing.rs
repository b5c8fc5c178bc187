//! Which runner gets a call: the registry as a table, and the choice among replicas.
//!
//! Pure: the table is built from discovery's listing and the choice takes the in-flight counts
//! and a random source as arguments, so the policy is tested without sockets.

use std::cmp::Ordering;
use std::collections::HashMap;

use switchyard_wire::discovery::RunnerEntry;

/// One runner able to serve an algorithm.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    /// Discovery's id for the runner (`legacy:<host>` for a series runner).
    pub id: String,
    /// Where the runner is called: `POST {base_url}/run/{algorithm}`.
    pub base_url: String,
    /// Calls the runner serves at once; load is weighed against it.
    pub capacity: u32,
    /// Heartbeat seen recently: a replica that missed one is used only when no other is left.
    pub healthy: bool,
}

/// The registry, by algorithm.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingTable {
    by_algorithm: HashMap<String, Vec<Replica>>,
}

impl RoutingTable {
    /// The table of discovery's listing: each runner is a replica of every algorithm it hosts.
    pub fn from_entries(entries: &[RunnerEntry]) -> Self {
        let mut by_algorithm: HashMap<String, Vec<Replica>> = HashMap::new();
        for entry in entries {
            for algorithm in &entry.algorithms {
                by_algorithm
                    .entry(algorithm.name.clone())
                    .or_default()
                    .push(Replica {
                        id: entry.id.clone(),
                        base_url: entry.base_url.clone(),
                        capacity: entry.capacity,
                        healthy: entry.healthy,
                    });
            }
        }
        RoutingTable { by_algorithm }
    }

    /// The runners hosting `algorithm`; empty when none does.
    pub fn replicas(&self, algorithm: &str) -> &[Replica] {
        self.by_algorithm.get(algorithm).map_or(&[], Vec::as_slice)
    }

    /// Whether the runner `runner_id` still hosts `algorithm`, to tell a stale registry's 404
    /// from the algorithm's own.
    pub fn hosts(&self, algorithm: &str, runner_id: &str) -> bool {
        self.replicas(algorithm)
            .iter()
            .any(|replica| replica.id == runner_id)
    }

    /// Every algorithm some runner hosts, sorted (for messages to people).
    pub fn algorithms(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_algorithm.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// Picks the replica for a call. In order of preference: one not already `tried` for this task,
/// a healthy one, the least loaded relative to its capacity; ties are broken at random so equal
/// replicas share the work. Returns `None` only when no replica hosts the algorithm.
pub fn choose<'a>(
    replicas: &'a [Replica],
    in_flight: impl Fn(&str) -> u32,
    tried: &[String],
    rng: &mut fastrand::Rng,
) -> Option<&'a Replica> {
    let rank = |replica: &Replica| Rank {
        tried: tried.contains(&replica.id),
        unhealthy: !replica.healthy,
        in_flight: in_flight(&replica.id),
        capacity: replica.capacity.max(1),
    };
    let best = replicas.iter().map(rank).min()?;
    let ties: Vec<&Replica> = replicas.iter().filter(|r| rank(r) == best).collect();
    Some(ties[rng.usize(..ties.len())])
}

/// How desirable a replica is; smaller is better.
#[derive(Debug, Clone, Copy)]
struct Rank {
    tried: bool,
    unhealthy: bool,
    in_flight: u32,
    capacity: u32,
}

impl Rank {
    /// `in_flight / capacity`, compared without division.
    fn load_cmp(&self, other: &Rank) -> Ordering {
        (u64::from(self.in_flight) * u64::from(other.capacity))
            .cmp(&(u64::from(other.in_flight) * u64::from(self.capacity)))
    }
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.tried, self.unhealthy)
            .cmp(&(other.tried, other.unhealthy))
            .then_with(|| self.load_cmp(other))
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Rank {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Rank {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_wire::discovery::AlgorithmInfo;

    fn replica(id: &str, capacity: u32, healthy: bool) -> Replica {
        Replica {
            id: id.into(),
            base_url: format!("http://{id}:1"),
            capacity,
            healthy,
        }
    }

    fn entry(id: &str, algorithms: &[&str], legacy: bool) -> RunnerEntry {
        RunnerEntry {
            id: id.into(),
            base_url: format!("http://{id}:1"),
            algorithms: algorithms
                .iter()
                .map(|name| AlgorithmInfo {
                    name: name.to_string(),
                    schema: json!({}),
                })
                .collect(),
            unavailable: Vec::new(),
            capacity: 4,
            legacy,
            healthy: true,
            last_heartbeat_ms_ago: 0,
        }
    }

    fn loads(pairs: &[(&str, u32)]) -> impl Fn(&str) -> u32 {
        let map: HashMap<String, u32> = pairs.iter().map(|(id, n)| (id.to_string(), *n)).collect();
        move |id| map.get(id).copied().unwrap_or(0)
    }

    fn pick(
        replicas: &[Replica],
        in_flight: &[(&str, u32)],
        tried: &[&str],
        seed: u64,
    ) -> Option<String> {
        let tried: Vec<String> = tried.iter().map(|id| id.to_string()).collect();
        let mut rng = fastrand::Rng::with_seed(seed);
        choose(replicas, loads(in_flight), &tried, &mut rng).map(|r| r.id.clone())
    }

    #[test]
    fn the_table_lists_every_replica_of_every_algorithm_legacy_included() {
        let table = RoutingTable::from_entries(&[
            entry("a", &["echo", "ocr"], false),
            entry("b", &["echo"], false),
            entry("legacy:http://py:5000", &["meme_classifier"], true),
        ]);
        let ids = |algorithm| {
            table
                .replicas(algorithm)
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("echo"), ["a", "b"]);
        assert_eq!(ids("ocr"), ["a"]);
        assert_eq!(ids("meme_classifier"), ["legacy:http://py:5000"]);
        assert!(table.replicas("nope").is_empty());
        assert!(table.hosts("ocr", "a") && !table.hosts("ocr", "b"));
        assert_eq!(table.algorithms(), ["echo", "meme_classifier", "ocr"]);
    }

    #[test]
    fn no_replica_no_choice() {
        assert_eq!(pick(&[], &[], &[], 1), None);
    }

    #[test]
    fn the_least_loaded_replica_wins() {
        let replicas = [
            replica("a", 1, true),
            replica("b", 1, true),
            replica("c", 1, true),
        ];
        for seed in 0..20 {
            assert_eq!(
                pick(&replicas, &[("a", 3), ("b", 1), ("c", 2)], &[], seed).as_deref(),
                Some("b")
            );
        }
    }

    #[test]
    fn load_is_weighed_against_capacity() {
        let replicas = [replica("small", 1, true), replica("big", 8, true)];
        assert_eq!(
            pick(&replicas, &[("small", 1), ("big", 4)], &[], 3).as_deref(),
            Some("big")
        );
        assert_eq!(
            pick(&replicas, &[("small", 0), ("big", 1)], &[], 3).as_deref(),
            Some("small")
        );
    }

    #[test]
    fn ties_are_broken_at_random() {
        let replicas = [replica("a", 2, true), replica("b", 2, true)];
        let picks: Vec<String> = (0..40)
            .filter_map(|seed| pick(&replicas, &[], &[], seed))
            .collect();
        assert!(
            picks.iter().any(|id| id == "a") && picks.iter().any(|id| id == "b"),
            "{picks:?}"
        );
    }

    #[test]
    fn a_replica_already_tried_comes_last_even_if_idle() {
        let replicas = [replica("a", 1, true), replica("b", 1, true)];
        for seed in 0..20 {
            assert_eq!(
                pick(&replicas, &[("b", 5)], &["a"], seed).as_deref(),
                Some("b")
            );
        }
        assert_eq!(
            pick(&replicas, &[], &["a", "b"], 1).map(|id| id == "a" || id == "b"),
            Some(true)
        );
    }

    #[test]
    fn an_unhealthy_replica_is_the_last_resort() {
        let replicas = [replica("sick", 8, false), replica("busy", 1, true)];
        assert_eq!(
            pick(&replicas, &[("busy", 5)], &[], 1).as_deref(),
            Some("busy")
        );
        assert_eq!(pick(&replicas, &[], &["busy"], 1).as_deref(), Some("sick"));
    }

    #[test]
    fn zero_capacity_counts_as_one() {
        let replicas = [replica("zero", 0, true), replica("one", 1, true)];
        assert_eq!(
            pick(&replicas, &[("zero", 1)], &[], 1).as_deref(),
            Some("one")
        );
    }
}
