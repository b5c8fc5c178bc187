//! The controller: consumes tasks from a [`Broker`], routes each to a runner hosting its
//! algorithm, retries transient failures, dead-letters permanent ones, and publishes a result
//! for every task.
//!
//! A delivery's life: [`switchyard_wire::RawTask::parse`] (a bad body is dead-lettered at once);
//! pick a replica from the cached registry (least loaded, untried first); `POST
//! {runner}/run/{algorithm}`; classify the answer ([`classify`]); then publish the outcome: the
//! result, a delayed retry, or a dead letter plus an error result. The delivery is acknowledged
//! only after that publish is confirmed, so a crash at any point loses nothing (at-least-once).
//!
//! **Architecture Invariant:** waiting never holds a concurrency slot: a retry is a new message
//! published with a delay, and the original is acknowledged.

pub mod backoff;
mod call;
pub mod classify;
mod config;
mod consume;
mod handler;
mod metrics;
mod received;
mod registry;
pub mod routing;
mod settle;
mod tombstones;

use std::sync::Arc;

use switchyard_broker::{Broker, BrokerError};
use tokio_util::sync::CancellationToken;

pub use backoff::Backoff;
pub use config::{ControllerConfig, Timeouts};
pub use handler::ATTEMPTS_EXHAUSTED;
pub use metrics::Metrics;
pub use registry::{RunnerSource, SourceError};
pub use tombstones::{BrokerTombstones, Tombstones};

use call::RunnerClient;
use handler::Worker;
use registry::Routes;

/// Why a controller cannot start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// A setting makes no sense; fix the configuration.
    #[error("invalid controller configuration: {0}")]
    InvalidConfig(String),
    /// The HTTP client for runners could not be built (TLS set-up); retrying will not help.
    #[error("cannot build the HTTP client for runners: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The broker failed in a way reconnecting cannot fix (missing queue, refused credentials...).
    #[error(transparent)]
    Broker(BrokerError),
}

/// One controller over one broker. Cheap to share: all state is behind an `Arc`.
pub struct Controller {
    worker: Arc<Worker>,
}

/// The worker's state is queues, clients and tasks in flight: nothing a log line can use.
impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller routing with the registry `runners` reads (a `DiscoveryClient` in production).
    pub fn new(
        broker: Arc<dyn Broker>,
        config: ControllerConfig,
        runners: impl RunnerSource,
    ) -> Result<Self, ControllerError> {
        config.validate()?;
        let client = RunnerClient::new(config.concurrency, config.token.clone())
            .map_err(ControllerError::HttpClient)?;
        let routes = Routes::new(Box::new(runners), config.registry_min_refresh);
        Ok(Controller {
            worker: Arc::new(Worker::new(broker, config, routes, client)),
        })
    }

    /// Checks `tombstones` before every call to a runner: a task cancelled there is not run,
    /// and its result says `cancelled`.
    pub fn with_tombstones(mut self, tombstones: Arc<dyn Tombstones>) -> Self {
        Arc::get_mut(&mut self.worker)
            .expect("the worker is shared only once the controller runs")
            .tombstones = tombstones;
        self
    }

    /// This controller's metrics; `metrics().router()` serves them at `GET /metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.worker.metrics
    }

    /// Consumes tasks until `shutdown` fires, then lets in-flight tasks finish within the grace
    /// period and requeues the rest. Connection losses are retried forever; only a broker error
    /// that reconnecting cannot fix ends it early.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), ControllerError> {
        consume::run(self.worker.clone(), shutdown).await
    }
}
