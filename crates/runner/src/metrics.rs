//! Prometheus metrics of one runner. Each runner owns its registry, so several runners in one
//! process (`switchyard up`, tests) keep separate counts.

use std::time::Duration;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The `algorithm` label of calls to an algorithm this runner does not host: a fixed value, so
/// callers cannot grow the label set.
pub(crate) const UNKNOWN_ALGORITHM: &str = "unknown";

/// Algorithms range from microseconds (echo) to a minute (OCR on a large scan).
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

pub(crate) struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGaugeVec,
    queued: IntGaugeVec,
    rejections: IntCounterVec,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "switchyard_runner_requests_total",
                "Calls answered, by algorithm and HTTP status.",
            ),
            &["algorithm", "status"],
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new(
                "switchyard_runner_errors_total",
                "Calls that failed, by algorithm and kind of failure.",
            ),
            &["algorithm", "kind"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_runner_request_duration_seconds",
                "Time from request to answer, waiting for a slot included.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["algorithm"],
        )
        .expect("valid metric");
        let in_flight = IntGaugeVec::new(
            Opts::new("switchyard_runner_in_flight", "Calls running now."),
            &["algorithm"],
        )
        .expect("valid metric");
        let queued = IntGaugeVec::new(
            Opts::new(
                "switchyard_runner_queued",
                "Calls admitted and waiting for a slot.",
            ),
            &["algorithm"],
        )
        .expect("valid metric");
        let rejections = IntCounterVec::new(
            Opts::new(
                "switchyard_runner_queue_rejections_total",
                "Calls refused with 503 because the algorithm's queue was full.",
            ),
            &["algorithm"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(duration.clone()),
            Box::new(in_flight.clone()),
            Box::new(queued.clone()),
            Box::new(rejections.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique within a runner");
        }
        Metrics {
            registry,
            requests,
            errors,
            duration,
            in_flight,
            queued,
            rejections,
        }
    }

    /// The gauges an algorithm's admission control moves; creating them also makes the
    /// algorithm's series appear (at 0) before its first call.
    pub(crate) fn gauges(&self, algorithm: &str) -> (IntGauge, IntGauge) {
        self.rejections.with_label_values(&[algorithm]);
        (
            self.in_flight.with_label_values(&[algorithm]),
            self.queued.with_label_values(&[algorithm]),
        )
    }

    pub(crate) fn record(
        &self,
        algorithm: &str,
        status: u16,
        elapsed: Duration,
        error_kind: Option<&str>,
    ) {
        self.requests
            .with_label_values(&[algorithm, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[algorithm])
            .observe(elapsed.as_secs_f64());
        if let Some(kind) = error_kind {
            self.errors.with_label_values(&[algorithm, kind]).inc();
            if kind == "saturated" {
                self.rejections.with_label_values(&[algorithm]).inc();
            }
        }
    }

    /// The text exposition format Prometheus scrapes.
    pub(crate) fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .expect("text encoding of valid metrics cannot fail")
    }
}

/// Holds a gauge up by one for as long as it lives, so a call that is dropped midway (the
/// client went away) still brings it back down.
pub(crate) struct GaugeGuard(IntGauge);

impl GaugeGuard {
    pub(crate) fn raise(gauge: &IntGauge) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series_of_a_hosted_algorithm() {
        let metrics = Metrics::new();
        let (in_flight, _queued) = metrics.gauges("echo");
        let guard = GaugeGuard::raise(&in_flight);
        metrics.record("echo", 503, Duration::from_millis(2), Some("saturated"));
        let text = metrics.render();
        assert!(
            text.contains(r#"switchyard_runner_requests_total{algorithm="echo",status="503"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchyard_runner_errors_total{algorithm="echo",kind="saturated"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchyard_runner_queue_rejections_total{algorithm="echo"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchyard_runner_in_flight{algorithm="echo"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"switchyard_runner_queued{algorithm="echo"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"switchyard_runner_request_duration_seconds_count{algorithm="echo"} 1"#
            ),
            "{text}"
        );
        drop(guard);
        assert!(
            metrics
                .render()
                .contains(r#"switchyard_runner_in_flight{algorithm="echo"} 0"#)
        );
    }

    #[test]
    fn each_runner_counts_on_its_own() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.record("echo", 200, Duration::ZERO, None);
        assert!(a.render().contains("switchyard_runner_requests_total"));
        assert!(!b.render().contains("switchyard_runner_requests_total{"));
    }
}
