//! The algorithms the API accepts tasks for, with their compiled payload schemas, from discovery.
//!
//! Checking a payload at submit costs no runner call: the schema every runner registered is
//! compiled once and cached. The cache is refreshed when it is older than its lifetime and at once
//! (rate-limited) when a submit names an algorithm it does not know, so a runner that registers
//! after the API started is accepted without a restart.

use std::collections::BTreeMap;
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
#[derive(Debug, Clone, Serialize)]
pub struct AlgorithmListing {
    pub name: String,
    pub schema: Value,
    pub replicas: Vec<Replica>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Replica {
    pub id: String,
    pub base_url: String,
    pub healthy: bool,
    pub legacy: bool,
}

/// Why a payload is refused at submit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown algorithm '{name}'; registered: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownAlgorithm { name: String, known: Vec<String> },
    #[error("payload does not match the schema of '{algorithm}': {detail}")]
    Invalid { algorithm: String, detail: String },
}

struct Compiled {
    listing: AlgorithmListing,
    /// `None` when the runner published no schema (a legacy runner): the runner alone decides.
    validator: Option<Arc<jsonschema::Validator>>,
}

struct Cache {
    fetched_at: Option<Instant>,
    algorithms: BTreeMap<String, Compiled>,
}

/// The cached catalog; clones share it.
#[derive(Clone)]
pub struct Catalog {
    discovery: DiscoveryClient,
    cache: Arc<Mutex<Cache>>,
}

impl Catalog {
    pub fn new(discovery: DiscoveryClient) -> Catalog {
        Catalog {
            discovery,
            cache: Arc::new(Mutex::new(Cache {
                fetched_at: None,
                algorithms: BTreeMap::new(),
            })),
        }
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
            return Ok(Err(Refusal::UnknownAlgorithm {
                name: algorithm.to_string(),
                known: cache.algorithms.keys().cloned().collect(),
            }));
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

    /// Every algorithm with its replicas, freshly fetched.
    pub async fn listing(&self) -> Result<Vec<AlgorithmListing>, ClientError> {
        let mut cache = self.cache.lock().await;
        refresh(&self.discovery, &mut cache).await?;
        Ok(cache
            .algorithms
            .values()
            .map(|compiled| compiled.listing.clone())
            .collect())
    }
}

async fn refresh(discovery: &DiscoveryClient, cache: &mut Cache) -> Result<(), ClientError> {
    let runners = discovery.runners().await?;
    cache.algorithms = compile(&runners);
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
