//! Prometheus metrics of one controller, served at `GET /metrics`.

use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The `algorithm` label of a task whose algorithm no runner hosts: names come from producers,
/// and one label value per typo would grow the series without bound.
pub(crate) const UNROUTED: &str = "unrouted";

/// The controller's metrics, in a registry of their own so two controllers in one process (tests,
/// `up`) do not collide.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Tasks finished, by algorithm and outcome (`ok`, or the dead-letter reason).
    tasks: IntCounterVec,
    /// Runner calls and routings, by algorithm and result (`ok`, or the error kind).
    attempts: IntCounterVec,
    /// Retries published, by algorithm.
    retries: IntCounterVec,
    in_flight: IntGauge,
    /// From a task's first try to its outcome, retries included.
    duration: HistogramVec,
    /// Deliveries streams that ended or failed (the broker connection was lost).
    reconnects: IntCounter,
}

/// The values are read through [`Metrics::render`]; the collectors themselves say nothing.
impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let tasks = IntCounterVec::new(
            Opts::new(
                "switchyard_controller_tasks_total",
                "Tasks finished, by algorithm and outcome",
            ),
            &["algorithm", "outcome"],
        )
        .expect("valid metric");
        let attempts = IntCounterVec::new(
            Opts::new(
                "switchyard_controller_attempts_total",
                "Runner calls, by algorithm and result",
            ),
            &["algorithm", "result"],
        )
        .expect("valid metric");
        let retries = IntCounterVec::new(
            Opts::new(
                "switchyard_controller_retries_total",
                "Retries scheduled, by algorithm",
            ),
            &["algorithm"],
        )
        .expect("valid metric");
        let in_flight = IntGauge::new(
            "switchyard_controller_tasks_in_flight",
            "Tasks being handled now",
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_controller_task_duration_seconds",
                "Time from a task's first try to its outcome",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
            &["algorithm"],
        )
        .expect("valid metric");
        let reconnects = IntCounter::new(
            "switchyard_controller_reconnects_total",
            "Times the task stream was lost and consumption restarted",
        )
        .expect("valid metric");
        for collector in [
            Box::new(tasks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(attempts.clone()),
            Box::new(retries.clone()),
            Box::new(in_flight.clone()),
            Box::new(duration.clone()),
            Box::new(reconnects.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            tasks,
            attempts,
            retries,
            in_flight,
            duration,
            reconnects,
        }
    }

    pub(crate) fn task_finished(&self, algorithm: &str, outcome: &str, took: Duration) {
        self.tasks.with_label_values(&[algorithm, outcome]).inc();
        self.duration
            .with_label_values(&[algorithm])
            .observe(took.as_secs_f64());
    }

    pub(crate) fn attempt(&self, algorithm: &str, result: &str) {
        self.attempts.with_label_values(&[algorithm, result]).inc();
    }

    pub(crate) fn retry(&self, algorithm: &str) {
        self.retries.with_label_values(&[algorithm]).inc();
    }

    pub(crate) fn reconnected(&self) {
        self.reconnects.inc();
    }

    /// Counts a task as in flight until the guard drops.
    pub(crate) fn in_flight(&self) -> InFlightTask {
        self.in_flight.inc();
        InFlightTask(self.in_flight.clone())
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .expect("text encoding of gathered metrics cannot fail")
    }

    /// `GET /metrics`.
    pub fn router(&self) -> Router {
        let metrics = self.clone();
        Router::new().route(
            "/metrics",
            get(move || async move {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics.render(),
                )
                    .into_response()
            }),
        )
    }
}

pub(crate) struct InFlightTask(IntGauge);

impl Drop for InFlightTask {
    fn drop(&mut self) {
        self.0.dec();
    }
}
