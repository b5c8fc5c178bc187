//! The algorithms the API accepts tasks for, with their compiled payload schemas, from discovery.
//!
//! Checking a payload at submit costs no runner call: the schema every runner registered is
//! compiled once and cached. The cache is refreshed when it is older than its lifetime and at once
//! (rate-limited) when a submit names an algorithm it does not know, so a runner that registers
//! after the API started is accepted without a restart.
//!
//! An algorithm the deployment is expected to host (`up`'s own) that has not registered yet is
//! loading, a retryable refusal; one its runner reported unavailable (an engine not installed)
//! is refused with the runner's reason, which says how to install what is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use switchyard_discovery::{ClientError, DiscoveryClient};
use switchyard_wire::discovery::RunnerEntry;
use tokio::sync::Mutex;

/// How long a listing is trusted before it is fetched again.
const MAX_AGE: Duration = Duration::from_secs(2);
/// The least time between two fetches triggered by unknown algorithms, so a producer spamming an
/// unknown name cannot turn the API into a load generator against discovery.
const MIN_REFRESH: Duration = Duration::from_millis(250);

/// One algorithm as `GET /v1/algorithms` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlgorithmListing {
    /// The name tasks give in `algorithm`.
    pub name: String,
    /// The JSON schema a payload must satisfy; a submit is checked against it.
    pub schema: Value,
    /// The runners hosting it now.
    pub replicas: Vec<Replica>,
    /// False when no runner can run it: its runners reported it unavailable.
    pub available: bool,
    /// Why it is unavailable, and how to install what is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<String>,
}

/// What `GET /ready` reports: the expected algorithms not registered yet, and those that
/// cannot run (which waiting will not change, so they do not hold readiness back).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Readiness {
    /// Expected algorithms no runner has registered yet.
    pub loading: Vec<String>,
    /// Algorithms that cannot run here, with the runner's reason.
    pub unavailable: BTreeMap<String, String>,
}

/// One runner hosting an algorithm, as `GET /v1/algorithms` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Replica {
    /// Discovery's id for the runner.
    pub id: String,
    /// Where the controller calls it.
    pub base_url: String,
    /// Its heartbeat is on time; a late runner is called only when no other is left.
    pub healthy: bool,
    /// A series runner registered through `POST /algorithms`: it never heartbeats.
    pub legacy: bool,
}

/// Why a payload is refused at submit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown algorithm '{name}'; registered: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    /// No runner has registered the algorithm, and this deployment does not expect it.
    UnknownAlgorithm {
        /// The name the task gave.
        name: String,
        /// The algorithms registered, for the message.
        known: Vec<String>,
    },
    #[error("payload does not match the schema of '{algorithm}': {detail}")]
    /// The payload does not satisfy the algorithm's schema.
    Invalid {
        /// The algorithm.
        algorithm: String,
        /// The first violation, naming the field.
        detail: String,
    },
    #[error("algorithm '{name}' is still loading; retry shortly")]
    /// The algorithm is hosted here but has not registered yet: a 503 to retry.
    Loading {
        /// The algorithm.
        name: String,
    },
    #[error("algorithm '{name}' is unavailable: {reason}")]
    /// No runner can run the algorithm on its machine: a 501 with what to install.
    Unavailable {
        /// The algorithm.
        name: String,
        /// The runner's reason, naming the command that installs what is missing.
        reason: String,
    },
}

struct Compiled {
    listing: AlgorithmListing,
    /// `None` when the runner published no schema (a legacy runner): the runner alone decides.
    validator: Option<Arc<jsonschema::Validator>>,
}

struct Cache {
    fetched_at: Option<Instant>,
    algorithms: BTreeMap<String, Compiled>,
    /// Reported unavailable by every runner that was asked to host it, with the first reason.
    unavailable: BTreeMap<String, String>,
}

/// The cached catalog; clones share it.
#[derive(Clone)]
pub struct Catalog {
    discovery: DiscoveryClient,
    cache: Arc<Mutex<Cache>>,
    /// Algorithms this deployment hosts itself (`up`'s built-in runner): until they register
    /// they are loading, not unknown.
    expected: Arc<BTreeSet<String>>,
}

/// Where it reads from and what it expects; the cache sits behind a lock.
impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("discovery", &self.discovery)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// The discovery this catalog reads, for the runner listing.
    pub fn discovery(&self) -> &DiscoveryClient {
        &self.discovery
    }

    /// A catalog of what `discovery` lists, read again when a name is unknown.
    pub fn new(discovery: DiscoveryClient) -> Catalog {
        Catalog {
            discovery,
            cache: Arc::new(Mutex::new(Cache {
                fetched_at: None,
                algorithms: BTreeMap::new(),
                unavailable: BTreeMap::new(),
            })),
            expected: Arc::default(),
        }
    }

    /// Names algorithms that will register soon: a submit for one of them before it has is
    /// refused as [`Refusal::Loading`], and `/ready` waits for them.
    pub fn expecting(mut self, names: impl IntoIterator<Item = String>) -> Catalog {
        self.expected = Arc::new(names.into_iter().collect());
        self
    }

    /// Which expected algorithms are still loading, and which cannot run; freshly fetched.
    pub async fn readiness(&self) -> Result<Readiness, ClientError> {
        let mut cache = self.cache.lock().await;
        refresh(&self.discovery, &mut cache).await?;
        Ok(Readiness {
            loading: self
                .expected
                .iter()
                .filter(|name| {
                    !cache.algorithms.contains_key(*name) && !cache.unavailable.contains_key(*name)
                })
                .cloned()
                .collect(),
            unavailable: cache.unavailable.clone(),
        })
    }

    /// Refuses a payload its algorithm's schema rejects, naming the offending field.
    pub async fn check(
        &self,
        algorithm: &str,
        payload: &Value,
    ) -> Result<Result<(), Refusal>, ClientError> {
        let mut cache = self.cache.lock().await;
        let stale = cache.fetched_at.is_none_or(|at| at.elapsed() > MAX_AGE);
        let unknown = !cache.algorithms.contains_key(algorithm)
            && cache.fetched_at.is_none_or(|at| at.elapsed() > MIN_REFRESH);
        if stale || unknown {
            refresh(&self.discovery, &mut cache).await?;
        }
        let Some(compiled) = cache.algorithms.get(algorithm) else {
            let name = algorithm.to_string();
            return Ok(Err(
                if let Some(reason) = cache.unavailable.get(algorithm) {
                    Refusal::Unavailable {
                        name,
                        reason: reason.clone(),
                    }
                } else if self.expected.contains(algorithm) {
                    Refusal::Loading { name }
                } else {
                    Refusal::UnknownAlgorithm {
                        name,
                        known: cache.algorithms.keys().cloned().collect(),
                    }
                },
            ));
        };
        let Some(validator) = &compiled.validator else {
            return Ok(Ok(()));
        };
        let problems: Vec<String> = validator
            .iter_errors(payload)
            .take(5)
            .map(|error| {
                let path = error.instance_path().as_str().to_string();
                if path.is_empty() {
                    error.to_string()
                } else {
                    format!("at '{path}': {error}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(Ok(()))
        } else {
            Ok(Err(Refusal::Invalid {
                algorithm: algorithm.to_string(),
                detail: problems.join("; "),
            }))
        }
    }

    /// Every algorithm with its replicas, then those no runner can run; freshly fetched.
    pub async fn listing(&self) -> Result<Vec<AlgorithmListing>, ClientError> {
        let mut cache = self.cache.lock().await;
        refresh(&self.discovery, &mut cache).await?;
        let available = cache
            .algorithms
            .values()
            .map(|compiled| compiled.listing.clone());
        let unavailable = cache
            .unavailable
            .iter()
            .map(|(name, reason)| AlgorithmListing {
                name: name.clone(),
                schema: Value::Null,
                replicas: Vec::new(),
                available: false,
                unavailable_reason: Some(reason.clone()),
            });
        Ok(available.chain(unavailable).collect())
    }
}

async fn refresh(discovery: &DiscoveryClient, cache: &mut Cache) -> Result<(), ClientError> {
    let runners = discovery.runners().await?;
    cache.algorithms = compile(&runners);
    cache.unavailable = BTreeMap::new();
    for runner in &runners {
        for algorithm in &runner.unavailable {
            if !cache.algorithms.contains_key(&algorithm.name) {
                cache
                    .unavailable
                    .entry(algorithm.name.clone())
                    .or_insert_with(|| algorithm.reason.clone());
            }
        }
    }
    cache.fetched_at = Some(Instant::now());
    Ok(())
}

/// Groups replicas by algorithm; the first replica with a schema provides it.
fn compile(runners: &[RunnerEntry]) -> BTreeMap<String, Compiled> {
    let mut algorithms: BTreeMap<String, Compiled> = BTreeMap::new();
    for runner in runners {
        for algorithm in &runner.algorithms {
            let entry = algorithms
                .entry(algorithm.name.clone())
                .or_insert_with(|| Compiled {
                    listing: AlgorithmListing {
                        name: algorithm.name.clone(),
                        schema: Value::Null,
                        replicas: Vec::new(),
                        available: true,
                        unavailable_reason: None,
                    },
                    validator: None,
                });
            if entry.validator.is_none() && !algorithm.schema.is_null() {
                match jsonschema::validator_for(&algorithm.schema) {
                    Ok(validator) => {
                        entry.validator = Some(Arc::new(validator));
                        entry.listing.schema = algorithm.schema.clone();
                    }
                    Err(error) => tracing::warn!(
                        algorithm = %algorithm.name, runner = %runner.id,
                        "runner published a schema that does not compile, not validating at submit: {error}"
                    ),
                }
            }
            entry.listing.replicas.push(Replica {
                id: runner.id.clone(),
                base_url: runner.base_url.clone(),
                healthy: runner.healthy,
                legacy: runner.legacy,
            });
        }
    }
    algorithms
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_wire::discovery::AlgorithmInfo;

    fn runner(id: &str, schema: Value) -> RunnerEntry {
        RunnerEntry {
            id: id.into(),
            base_url: format!("http://{id}"),
            algorithms: vec![AlgorithmInfo {
                name: "echo".into(),
                schema,
            }],
            unavailable: Vec::new(),
            capacity: 2,
            legacy: false,
            healthy: true,
            last_heartbeat_ms_ago: 0,
        }
    }

    #[test]
    fn replicas_are_grouped_and_the_schema_compiled() {
        let schema = json!({"type": "object", "properties": {"text": {"type": "string"}},
                            "required": ["text"], "additionalProperties": false});
        let compiled = compile(&[runner("a", Value::Null), runner("b", schema.clone())]);
        let echo = &compiled["echo"];
        assert_eq!(echo.listing.replicas.len(), 2);
        assert_eq!(echo.listing.schema, schema);
        let validator = echo.validator.as_ref().unwrap();
        assert!(validator.is_valid(&json!({"text": "x"})));
        let payload = json!({"text": 1});
        let error = validator.iter_errors(&payload).next().unwrap();
        assert_eq!(error.instance_path().as_str(), "/text");
    }
}
