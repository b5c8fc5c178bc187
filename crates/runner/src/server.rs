//! A runner's life: serve at once (probes answer), load every algorithm, announce the runner
//! to discovery, and on shutdown deregister, stop accepting, and let running calls finish.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use serde_json::Value;
use switchyard_discovery::DiscoveryClient;
use switchyard_wire::discovery::{AlgorithmInfo, RunnerRegistration, UnavailableAlgorithm};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::algorithm::{Loader, panic_message};
use crate::announce::announce;
use crate::config::{default_advertise_url, generate_runner_id, hostname};
use crate::error::RunnerError;
use crate::hosted::Hosted;
use crate::metrics::Metrics;
use crate::openapi::{ApiDescription, document};
use crate::routes::router;
use crate::state::Shared;
use crate::{Algorithm, AlgorithmError, RunnerConfig};

/// Serves `algorithms` on `listener` until `shutdown` is cancelled. Fails if the algorithms
/// or the configuration do not fit together, or if an algorithm fails to load.
pub async fn serve(
    listener: TcpListener,
    algorithms: Vec<Algorithm>,
    config: RunnerConfig,
    shutdown: CancellationToken,
) -> Result<(), RunnerError> {
    Runner::new(algorithms, config)?
        .serve(listener, shutdown)
        .await
}

/// A runner before it serves: its [`router`](Runner::router) can be tested without a socket,
/// [`load`](Runner::load)ed by hand, or the whole runner [`serve`](Runner::serve)d.
pub struct Runner {
    shared: Arc<Shared>,
    /// Built once at start: the algorithms do not change while the runner lives.
    openapi: Value,
    /// Each algorithm's loader, until [`Runner::load`] runs them.
    loaders: Vec<(String, Loader)>,
    advertise_url: Option<String>,
    discovery: Option<DiscoveryClient>,
    grace_period: Duration,
}

/// Shows where the runner says it lives and whom it tells; the rest is shared serving state.
impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("advertise_url", &self.advertise_url)
            .field("discovery", &self.discovery)
            .field("grace_period", &self.grace_period)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Checks the algorithms' names and the configuration; nothing is loaded or bound yet.
    pub fn new(algorithms: Vec<Algorithm>, config: RunnerConfig) -> Result<Runner, RunnerError> {
        if algorithms.is_empty() {
            return Err(RunnerError::NoAlgorithms);
        }
        let metrics = Metrics::new();
        let mut hosted = BTreeMap::new();
        let mut loaders = Vec::new();
        for Algorithm {
            name,
            schema,
            limits,
            loader,
        } in algorithms
        {
            if !is_valid_name(&name) {
                return Err(RunnerError::InvalidName(name));
            }
            if hosted.contains_key(&name) {
                return Err(RunnerError::DuplicateAlgorithm(name));
            }
            hosted.insert(
                name.clone(),
                Hosted::new(name.clone(), schema, limits, &metrics),
            );
            loaders.push((name, loader));
        }
        if let Some(default) = &config.default_algorithm
            && !hosted.contains_key(default)
        {
            return Err(RunnerError::UnknownDefault {
                name: default.clone(),
                hosted: hosted.keys().cloned().collect(),
            });
        }
        let openapi = document(&ApiDescription {
            algorithms: hosted
                .values()
                .map(|hosted| (hosted.name.as_str(), &hosted.schema))
                .collect(),
            default_algorithm: config.default_algorithm.as_deref(),
            token_required: config.token.is_some(),
        });
        let shared = Shared::new(
            config.runner_id.unwrap_or_else(generate_runner_id),
            hosted,
            config.default_algorithm,
            config.token,
            config.max_body_bytes,
            metrics,
        );
        Ok(Runner {
            shared: Arc::new(shared),
            openapi,
            loaders,
            advertise_url: config.advertise_url,
            discovery: config.discovery,
            grace_period: config.grace_period,
        })
    }

    /// The id this runner registers under.
    pub fn runner_id(&self) -> &str {
        &self.shared.runner_id
    }

    /// Every route of the runner. Algorithms answer 503 until [`Runner::load`] has loaded them.
    pub fn router(&self) -> Router {
        router(self.shared.clone(), self.openapi.clone())
    }

    /// Loads every algorithm at once; each starts answering as soon as it is loaded. Fails
    /// on the first algorithm that cannot load, naming it, and stops loading the others.
    pub async fn load(&mut self) -> Result<(), RunnerError> {
        let mut loading = JoinSet::new();
        let mut names = HashMap::new();
        for (name, loader) in std::mem::take(&mut self.loaders) {
            let started = Instant::now();
            let task = loading.spawn(async move { (loader.await, started.elapsed()) });
            names.insert(task.id(), name);
        }
        while let Some(joined) = loading.join_next_with_id().await {
            let (name, outcome) = match joined {
                Ok((id, (outcome, elapsed))) => {
                    let name = names.remove(&id).expect("every loader task is named");
                    if outcome.is_ok() {
                        tracing::info!(
                            algorithm = name,
                            load_ms = elapsed.as_millis() as u64,
                            "algorithm loaded"
                        );
                    }
                    (name, outcome)
                }
                Err(join_error) => {
                    let name = names
                        .remove(&join_error.id())
                        .expect("every loader task is named");
                    (
                        name,
                        Err(AlgorithmError::internal(panic_message(join_error))),
                    )
                }
            };
            match outcome {
                Ok(handler) => self.shared.algorithms[&name].set_loaded(handler),
                Err(AlgorithmError::Unavailable { message }) => {
                    tracing::warn!(
                        algorithm = name,
                        "algorithm unavailable on this machine, serving the others: {message}"
                    );
                    self.shared.algorithms[&name].set_unavailable(message);
                }
                Err(source) => return Err(RunnerError::Load { name, source }),
            }
        }
        Ok(())
    }

    /// Serves on `listener` until `shutdown` is cancelled: answers probes at once, loads every
    /// algorithm, then registers with discovery (if configured) and heartbeats. On shutdown it
    /// deregisters, stops accepting, and gives calls in flight the grace period to finish;
    /// calls still running then are answered 503.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), RunnerError> {
        let local = listener.local_addr()?;
        let advertise_url = resolve_advertise_url(self.advertise_url.take(), local);
        let stop_accepting = CancellationToken::new();
        let server = tokio::spawn(
            axum::serve(listener, self.router())
                .with_graceful_shutdown(stop_accepting.clone().cancelled_owned())
                .into_future(),
        );
        tracing::info!(
            address = %local,
            advertise_url,
            runner_id = self.runner_id(),
            algorithms = self.shared.hosted_names().join(","),
            "runner listening; loading algorithms"
        );

        let loaded = tokio::select! {
            loaded = self.load() => Some(loaded),
            _ = shutdown.cancelled() => None,
        };
        let mut announcer = None;
        match loaded {
            Some(Ok(())) => {
                tracing::info!("runner ready");
                announcer = match self.discovery.take() {
                    Some(client) => {
                        let registration = self.registration(advertise_url);
                        Some(tokio::spawn(announce(
                            client,
                            registration,
                            shutdown.clone(),
                        )))
                    }
                    None => {
                        tracing::info!("no discovery configured: serving standalone");
                        None
                    }
                };
            }
            Some(Err(error)) => {
                stop(server, stop_accepting, &self.shared, self.grace_period).await?;
                return Err(error);
            }
            None => {}
        }

        shutdown.cancelled().await;
        self.shared.start_draining();
        if let Some(announcer) = announcer {
            // It deregisters before returning; it never panics, and if it did the runner
            // would still have to stop.
            let _ = announcer.await;
        }
        tracing::info!(grace_period = ?self.grace_period, "shutting down: no new calls, finishing those in flight");
        stop(server, stop_accepting, &self.shared, self.grace_period).await
    }

    fn registration(&self, base_url: String) -> RunnerRegistration {
        let hosted = self.shared.algorithms.values();
        let capacity: usize = hosted.clone().map(|hosted| hosted.limits.concurrency).sum();
        RunnerRegistration {
            id: self.shared.runner_id.clone(),
            base_url,
            algorithms: hosted
                .clone()
                .filter(|hosted| hosted.unavailable_reason().is_none())
                .map(|hosted| AlgorithmInfo {
                    name: hosted.name.clone(),
                    schema: hosted.schema.clone(),
                })
                .collect(),
            unavailable: hosted
                .filter_map(|hosted| {
                    Some(UnavailableAlgorithm {
                        name: hosted.name.clone(),
                        reason: hosted.unavailable_reason()?.to_owned(),
                    })
                })
                .collect(),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
        }
    }
}

/// Stops accepting connections and waits, up to the grace period, for calls in flight; then
/// answers those still running with 503, so their callers can retry elsewhere.
async fn stop(
    mut server: JoinHandle<std::io::Result<()>>,
    stop_accepting: CancellationToken,
    shared: &Shared,
    grace_period: Duration,
) -> Result<(), RunnerError> {
    stop_accepting.cancel();
    let served = match tokio::time::timeout(grace_period, &mut server).await {
        Ok(joined) => joined,
        Err(_) => {
            tracing::warn!(
                ?grace_period,
                "grace period over: answering calls still running with 503"
            );
            shared.abandon.cancel();
            match tokio::time::timeout(ABANDON_TIMEOUT, &mut server).await {
                Ok(joined) => joined,
                Err(_) => {
                    // Connections whose callers do not read their answer; they die with the process.
                    server.abort();
                    tracing::warn!(
                        "connections still open after abandoning their calls; leaving them"
                    );
                    return Ok(());
                }
            }
        }
    };
    match served {
        Ok(served) => {
            tracing::info!("runner stopped");
            Ok(served?)
        }
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    }
}

/// How long abandoned calls get to deliver their 503 before the runner stops regardless.
const ABANDON_TIMEOUT: Duration = Duration::from_secs(2);

fn resolve_advertise_url(configured: Option<String>, local: SocketAddr) -> String {
    if let Some(url) = configured {
        return url.trim_end_matches('/').to_string();
    }
    let url = default_advertise_url(local, hostname().as_deref());
    if local.ip().is_unspecified() {
        tracing::info!(
            advertise_url = url,
            "listening on every interface: advertising {url}; set --advertise if callers reach this runner another way"
        );
    }
    url
}

/// Names end up in URL paths (`/run/{name}`) and metric labels; discovery accepts the same set.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_cannot_be_a_path_segment_are_refused() {
        assert!(is_valid_name("language_detection") && is_valid_name("ocr-v2.1"));
        for bad in ["", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
