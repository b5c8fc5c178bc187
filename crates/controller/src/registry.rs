//! The controller's view of the registry: a cached [`RoutingTable`], re-read periodically and on
//! demand, plus the calls in flight to each replica.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use switchyard_discovery::DiscoveryClient;
use switchyard_wire::discovery::RunnerEntry;
use tokio::time::Instant;

use crate::routing::{Replica, RoutingTable, choose};

/// A failure to read the registry; the controller keeps routing with the last table it read.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where the controller reads the registry from: discovery in production.
#[async_trait]
pub trait RunnerSource: Send + Sync + 'static {
    /// Every live replica of every algorithm.
    async fn runners(&self) -> Result<Vec<RunnerEntry>, SourceError>;
}

#[async_trait]
impl RunnerSource for DiscoveryClient {
    async fn runners(&self) -> Result<Vec<RunnerEntry>, SourceError> {
        Ok(DiscoveryClient::runners(self).await?)
    }
}

/// The cached table and the in-flight counts the routing choice weighs.
pub(crate) struct Routes {
    source: Box<dyn RunnerSource>,
    table: RwLock<RoutingTable>,
    /// Calls in flight, by replica id: the load `choose` balances.
    in_flight: Mutex<HashMap<String, u32>>,
    /// When the table was last read. Held across the read, so concurrent callers wait for one
    /// read instead of each sending their own.
    last_read: tokio::sync::Mutex<Option<Instant>>,
    /// See `ControllerConfig::registry_min_refresh`.
    min_interval: Duration,
    rng: Mutex<fastrand::Rng>,
}

impl Routes {
    pub(crate) fn new(source: Box<dyn RunnerSource>, min_interval: Duration) -> Self {
        Routes {
            source,
            table: RwLock::default(),
            in_flight: Mutex::default(),
            last_read: tokio::sync::Mutex::new(None),
            min_interval,
            rng: Mutex::new(fastrand::Rng::new()),
        }
    }

    /// Re-reads the registry now (the periodic refresh).
    pub(crate) async fn refresh(&self) {
        let mut last_read = self.last_read.lock().await;
        self.read(&mut last_read).await;
    }

    /// Re-reads the registry unless it was read within the minimum interval: for tasks naming an
    /// algorithm the table does not have, or runners answering 404.
    pub(crate) async fn refresh_if_stale(&self) {
        let mut last_read = self.last_read.lock().await;
        if last_read.is_some_and(|at| at.elapsed() < self.min_interval) {
            return;
        }
        self.read(&mut last_read).await;
    }

    /// Re-reads the registry unless it was read after `since`: after a runner answered 404 to a
    /// call started at `since`, only a table at least that recent can say whether the runner
    /// still claims the algorithm.
    pub(crate) async fn refresh_unless_read_since(&self, since: Instant) {
        let mut last_read = self.last_read.lock().await;
        if last_read.is_some_and(|at| at >= since) {
            return;
        }
        self.read(&mut last_read).await;
    }

    async fn read(&self, last_read: &mut Option<Instant>) {
        *last_read = Some(Instant::now());
        match self.source.runners().await {
            Ok(entries) => {
                let table = RoutingTable::from_entries(&entries);
                let mut current = write(&self.table);
                if *current != table {
                    tracing::info!(
                        runners = entries.len(),
                        algorithms = ?table.algorithms(),
                        "registry changed"
                    );
                    *current = table;
                }
            }
            // The last table stays: runners that were up a moment ago most likely still are.
            Err(error) => {
                tracing::warn!(%error, "cannot read the runner registry; routing with the last one read")
            }
        }
    }

    /// The replica for the next call of `algorithm`; `None` if no runner hosts it.
    pub(crate) fn pick(&self, algorithm: &str, tried: &[String]) -> Option<Replica> {
        let table = read(&self.table);
        let in_flight = lock(&self.in_flight);
        let mut rng = lock(&self.rng);
        choose(
            table.replicas(algorithm),
            |id| in_flight.get(id).copied().unwrap_or(0),
            tried,
            &mut rng,
        )
        .cloned()
    }

    /// Whether some replica of `algorithm` has not been tried yet, for an immediate fail-over.
    pub(crate) fn has_untried(&self, algorithm: &str, tried: &[String]) -> bool {
        read(&self.table)
            .replicas(algorithm)
            .iter()
            .any(|replica| !tried.contains(&replica.id))
    }

    pub(crate) fn hosts(&self, algorithm: &str, runner_id: &str) -> bool {
        read(&self.table).hosts(algorithm, runner_id)
    }

    pub(crate) fn knows(&self, algorithm: &str) -> bool {
        !read(&self.table).replicas(algorithm).is_empty()
    }

    pub(crate) fn algorithms(&self) -> Vec<String> {
        read(&self.table)
            .algorithms()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Counts a call to `replica` as in flight until the guard drops.
    pub(crate) fn begin_call(&self, replica: &Replica) -> InFlight<'_> {
        *lock(&self.in_flight).entry(replica.id.clone()).or_default() += 1;
        InFlight {
            routes: self,
            runner_id: replica.id.clone(),
        }
    }
}

/// One call in flight; dropping it ends the call, however the call ended.
pub(crate) struct InFlight<'a> {
    routes: &'a Routes,
    runner_id: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.routes.in_flight);
        if let Some(count) = in_flight.get_mut(&self.runner_id) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.runner_id);
            }
        }
    }
}

// The locks guard plain data updated in single statements, so a poisoned lock is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use switchyard_wire::discovery::AlgorithmInfo;

    /// Counts reads and answers with whatever `entries` holds at the time.
    #[derive(Clone, Default)]
    struct CountingSource {
        reads: Arc<AtomicUsize>,
        entries: Arc<Mutex<Option<Vec<RunnerEntry>>>>,
    }

    #[async_trait]
    impl RunnerSource for CountingSource {
        async fn runners(&self) -> Result<Vec<RunnerEntry>, SourceError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            lock(&self.entries)
                .clone()
                .ok_or_else(|| "discovery is down".into())
        }
    }

    fn echo_runner(id: &str) -> RunnerEntry {
        RunnerEntry {
            id: id.into(),
            base_url: format!("http://{id}:1"),
            algorithms: vec![AlgorithmInfo {
                name: "echo".into(),
                schema: serde_json::json!({}),
            }],
            unavailable: Vec::new(),
            capacity: 1,
            legacy: false,
            healthy: true,
            last_heartbeat_ms_ago: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn on_demand_reads_are_rate_limited() {
        let source = CountingSource::default();
        *lock(&source.entries) = Some(vec![echo_runner("a")]);
        let routes = Routes::new(Box::new(source.clone()), Duration::from_secs(1));
        routes.refresh_if_stale().await;
        routes.refresh_if_stale().await;
        assert_eq!(source.reads.load(Ordering::SeqCst), 1);
        assert!(routes.knows("echo"));
        tokio::time::advance(Duration::from_millis(1001)).await;
        routes.refresh_if_stale().await;
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
        routes.refresh().await;
        assert_eq!(
            source.reads.load(Ordering::SeqCst),
            3,
            "the periodic refresh is not limited"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_404_the_table_is_read_unless_it_is_newer_than_the_call() {
        let source = CountingSource::default();
        *lock(&source.entries) = Some(vec![echo_runner("a")]);
        let routes = Routes::new(Box::new(source.clone()), Duration::from_secs(60));
        let call_started = Instant::now();
        routes.refresh_unless_read_since(call_started).await;
        assert_eq!(
            source.reads.load(Ordering::SeqCst),
            1,
            "never read: read now"
        );
        routes.refresh_unless_read_since(call_started).await;
        assert_eq!(
            source.reads.load(Ordering::SeqCst),
            1,
            "read after the call started"
        );
        tokio::time::advance(Duration::from_millis(5)).await;
        routes.refresh_unless_read_since(Instant::now()).await;
        assert_eq!(
            source.reads.load(Ordering::SeqCst),
            2,
            "the minimum interval does not apply"
        );
    }

    #[tokio::test]
    async fn a_failed_read_keeps_the_last_table() {
        let source = CountingSource::default();
        *lock(&source.entries) = Some(vec![echo_runner("a")]);
        let routes = Routes::new(Box::new(source.clone()), Duration::ZERO);
        routes.refresh().await;
        *lock(&source.entries) = None;
        routes.refresh().await;
        assert_eq!(source.reads.load(Ordering::SeqCst), 2);
        assert!(routes.hosts("echo", "a"));
    }

    #[tokio::test]
    async fn calls_in_flight_steer_the_next_pick() {
        let source = CountingSource::default();
        *lock(&source.entries) = Some(vec![echo_runner("a"), echo_runner("b")]);
        let routes = Routes::new(Box::new(source), Duration::ZERO);
        routes.refresh().await;
        let first = routes.pick("echo", &[]).unwrap();
        let call = routes.begin_call(&first);
        for _ in 0..10 {
            assert_ne!(routes.pick("echo", &[]).unwrap().id, first.id);
        }
        drop(call);
        assert!(lock(&routes.in_flight).is_empty());
        assert!(routes.has_untried("echo", std::slice::from_ref(&first.id)));
        assert!(!routes.has_untried("echo", &["a".into(), "b".into()]));
    }
}
