//! The figures of one run, as a table for people and as JSON for scripts.

use serde_json::{Value, json};

use super::classify::{ClassifyFigures, CpuPerImage, SizeFigures};
use super::peer::DirectFigures;
use super::roundtrip::Percentiles;

/// What the classifier has instead of request batching, and why (measured, not guessed).
const BATCHING: &str = "not implemented, see docs/benchmarks.md";

/// One queue: the ceiling and the worker on it.
#[derive(Debug, Clone, Copy)]
pub(super) struct QueueFigures {
    pub ceiling_tps: f64,
    pub worker_tps: f64,
    pub latency: LatencyFigures,
}

/// Publish-to-result latency of the ceiling and of the worker at the same offered load.
#[derive(Debug, Clone, Copy)]
pub(super) struct LatencyFigures {
    pub offered_tps: f64,
    pub ceiling: Percentiles,
    pub worker: Percentiles,
}

impl QueueFigures {
    fn ratio(&self) -> f64 {
        self.worker_tps / self.ceiling_tps
    }

    fn added_latency(&self) -> Percentiles {
        self.latency.worker.minus(self.latency.ceiling)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Figures {
    pub rabbitmq: QueueFigures,
    pub embedded: QueueFigures,
    pub classify: ClassifyFigures,
    /// The peer and the runner called directly; absent with `--no-peer`.
    pub direct: Option<DirectFigures>,
    pub controller_rss_mb: f64,
    pub runner_rss_mb: f64,
    pub engine: &'static str,
    pub cores: usize,
    pub concurrency: usize,
    pub quick: bool,
}

impl Figures {
    pub(super) fn to_json(&self) -> Value {
        let (rabbitmq, embedded, classify) = (&self.rabbitmq, &self.embedded, &self.classify);
        let mut decode_resize_by_size = by_size(classify, |size| size.decode_resize_ips);
        decode_resize_by_size[WHOLE_DECODE_KEY] = json!(classify.phone_photo_whole_decode_ips);
        let mut figures = json!({
            "broker_ceiling_tps": rabbitmq.ceiling_tps,
            "dispatch_tps": rabbitmq.worker_tps,
            "dispatch_ratio": rabbitmq.ratio(),
            "offered_load_tps": rabbitmq.latency.offered_tps,
            "broker_ceiling_latency_ms": rabbitmq.latency.ceiling,
            "dispatch_latency_ms": rabbitmq.latency.worker,
            "echo_added_latency_ms": rabbitmq.added_latency(),
            "embedded_ceiling_tps": embedded.ceiling_tps,
            "embedded_tps": embedded.worker_tps,
            "embedded_ratio": embedded.ratio(),
            "embedded_offered_load_tps": embedded.latency.offered_tps,
            "embedded_ceiling_latency_ms": embedded.latency.ceiling,
            "embedded_latency_ms": embedded.latency.worker,
            "embedded_added_latency_ms": embedded.added_latency(),
            "model_alone_ips": classify.model_alone_ips,
            "decode_resize_ips": classify.decode_resize_ips,
            "algorithm_ips": classify.algorithm_ips,
            "worker_ips": classify.worker_ips,
            "classify_ratio": classify.worker_ips / classify.model_alone_ips,
            "bytes_by_size": by_size(classify, |size| size.mean_bytes as f64),
            "decode_resize_ips_by_size": decode_resize_by_size,
            "algorithm_ips_by_size": by_size(classify, |size| size.algorithm_ips),
            "worker_ips_by_size": by_size(classify, |size| size.worker_ips),
            "worker_cpu_ms_per_image_by_size": worker_cpu_by_size(classify),
            "embedded_worker_ips": classify.embedded.ips,
            "embedded_worker_cpu_ms_per_image": cpu_object(&classify.embedded.cpu_ms),
            "phone_photo_end_to_end_slowdown": classify.phone_photo_slowdown(),
            "worker_to_algorithm_ratio": classify.worker_ips / classify.algorithm_ips,
            "batching": BATCHING,
            "controller_rss_mb": self.controller_rss_mb,
            "runner_rss_mb": self.runner_rss_mb,
            "engine": self.engine,
            "cores": self.cores,
            "concurrency": self.concurrency,
            "quick": self.quick,
        });
        if let Some(direct) = &self.direct {
            figures["peer_ips"] = json!(direct.peer_ips);
            figures["peer_latency_ms"] = json!(direct.peer_latency);
            figures["runner_direct_ips"] = json!(direct.runner_direct_ips);
            figures["runner_direct_latency_ms"] = json!(direct.runner_latency);
            figures["runner_direct_to_peer_ratio"] =
                json!(direct.runner_direct_ips / direct.peer_ips);
            figures["worker_to_peer_ratio"] = json!(classify.worker_ips / direct.peer_ips);
            figures["embedded_worker_to_peer_ratio"] =
                json!(classify.embedded.ips / direct.peer_ips);
            figures["peer_cpu_ms_per_image"] = json!(direct.peer_cpu_ms);
            figures["runner_direct_cpu_ms_per_image"] = json!(direct.runner_cpu_ms);
        }
        figures
    }

    /// A Markdown table: pastes into docs/benchmarks.md as it is.
    pub(super) fn table(&self) -> String {
        let classify = &self.classify;
        let mut rows = vec![
            "| measure | ceiling | through Switchyard | ratio or added | target |".to_owned(),
            "| --- | --- | --- | --- | --- |".to_owned(),
        ];
        for (queue, figures, target) in [
            ("RabbitMQ", &self.rabbitmq, ">= 0.50x and >= 4,000 tasks/s"),
            ("embedded queue", &self.embedded, ""),
        ] {
            rows.push(format!(
                "| {queue} round trip, echo, tasks/s | {} | {} | {:.2}x | {target} |",
                thousands(figures.ceiling_tps),
                thousands(figures.worker_tps),
                figures.ratio()
            ));
            let target = if queue == "RabbitMQ" {
                "added p50 < 2 ms, p99 < 10 ms"
            } else {
                ""
            };
            rows.push(format!(
                "| {queue} latency at {} tasks/s, p50 / p95 / p99 ms | {} | {} | {} | {target} |",
                thousands(figures.latency.offered_tps),
                percentiles(figures.latency.ceiling, false),
                percentiles(figures.latency.worker, false),
                percentiles(figures.added_latency(), true)
            ));
        }
        rows.push(format!(
            "| image_classifier, images/s (ceiling: the model alone) | {:.1} | {:.1} | {:.2}x | >= 0.90x |",
            classify.model_alone_ips,
            classify.worker_ips,
            classify.worker_ips / classify.model_alone_ips
        ));
        rows.push(format!(
            "| decode + resize alone, images/s | {:.1} | | | |",
            classify.decode_resize_ips
        ));
        rows.push(format!(
            "| the classifier called in process (no worker), images/s | {:.1} | {:.1} | {:.2}x | |",
            classify.algorithm_ips,
            classify.worker_ips,
            classify.worker_ips / classify.algorithm_ips
        ));
        if let Some(direct) = &self.direct {
            rows.push(format!(
                "| the peer (FastAPI + onnxruntime + Pillow) against Switchyard's runner, both called over HTTP, images/s | {:.1} | {:.1} | {:.2}x | >= 1.5x |",
                direct.peer_ips,
                direct.runner_direct_ips,
                direct.runner_direct_ips / direct.peer_ips
            ));
            rows.push(format!(
                "| the same, latency p50 / p95 / p99 ms | {} | {} | | |",
                percentiles(direct.peer_latency, false),
                percentiles(direct.runner_latency, false)
            ));
            rows.push(format!(
                "| the same, CPU ms per image (the peer's workers / the runner) | {:.2} | {:.2} | {:.2}x | |",
                direct.peer_cpu_ms,
                direct.runner_cpu_ms,
                direct.runner_cpu_ms / direct.peer_cpu_ms
            ));
            rows.push(format!(
                "| the peer called directly against the whole worker on RabbitMQ, images/s | {:.1} | {:.1} | {:.2}x | >= 1.0x |",
                direct.peer_ips,
                classify.worker_ips,
                classify.worker_ips / direct.peer_ips
            ));
            let (cpu, names) = cpu_columns(&classify.embedded.cpu_ms);
            rows.push(format!(
                "| the same against the whole worker on the embedded queue (`up`), images/s; CPU ms per image {names}: {cpu} | {:.1} | {:.1} | {:.2}x | >= 1.0x |",
                direct.peer_ips,
                classify.embedded.ips,
                classify.embedded.ips / direct.peer_ips
            ));
        }
        rows.push(format!(
            "| peak RSS, controller / runner | | {:.1} MB / {:.1} MB | | controller < 50 MB |",
            self.controller_rss_mb, self.runner_rss_mb
        ));
        rows.push(String::new());
        rows.push(format!(
            "engine {}, {} cores, controller concurrency {}, request batching: {BATCHING}{}",
            self.engine,
            self.cores,
            self.concurrency,
            if self.quick { ", --quick" } else { "" }
        ));
        rows.push(String::new());
        rows.extend(self.sizes_table());
        rows.join("\n")
    }

    /// The classifier's figures for each input size, and the time per image against the samples'.
    fn sizes_table(&self) -> Vec<String> {
        let classify = &self.classify;
        let mut rows = vec![
            format!(
                "| image_classifier input | mean size | decode + resize alone, images/s | in process, images/s | through the worker, images/s | time per image vs 600x400, through the worker | CPU ms per image through the worker: {} |",
                cpu_columns(&classify.by_size[0].worker_cpu_ms).1
            ),
            "| --- | --- | --- | --- | --- | --- | --- |".to_owned(),
        ];
        let samples_worker_ips = classify.by_size[0].worker_ips;
        for size in &classify.by_size {
            rows.push(format!(
                "| {} | {:.2} MB | {:.1} | {:.1} | {:.1} | {:.2}x | {} |",
                size.key,
                size.mean_bytes as f64 / 1e6,
                size.decode_resize_ips,
                size.algorithm_ips,
                size.worker_ips,
                samples_worker_ips / size.worker_ips,
                cpu_columns(&size.worker_cpu_ms).0
            ));
        }
        rows.push(format!(
            "| {WHOLE_DECODE_KEY} (every pixel, as before reduced-scale decoding) | | {:.1} | | | | |",
            classify.phone_photo_whole_decode_ips
        ));
        rows
    }
}

/// The key of the phone photo's decode + resize when decoded whole, next to the per-size keys.
const WHOLE_DECODE_KEY: &str = "4032x3024_jpeg_decoded_whole";

/// `{"600x400": .., "4032x3024_jpeg": .., "2560x1600_png": ..}`: one figure of each input size.
fn by_size(classify: &ClassifyFigures, figure: impl Fn(&SizeFigures) -> f64) -> Value {
    classify
        .by_size
        .iter()
        .map(|size| (size.key.to_owned(), json!(figure(size))))
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// `{"600x400": {"runner": .., "controller": .., ..}, ..}`: CPU ms per image through the worker,
/// of each watched process, for each input size.
fn worker_cpu_by_size(classify: &ClassifyFigures) -> Value {
    classify
        .by_size
        .iter()
        .map(|size| (size.key.to_owned(), cpu_object(&size.worker_cpu_ms)))
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// `{"runner": .., "controller": .., ..}`
fn cpu_object(cpu: &CpuPerImage) -> Value {
    cpu.iter()
        .map(|(name, ms)| ((*name).to_owned(), json!(ms)))
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

/// `38.1 / 1.6 / ..`, and the names in the same order: `runner / controller / ..`.
fn cpu_columns(cpu: &CpuPerImage) -> (String, String) {
    let names: Vec<&str> = cpu.iter().map(|(name, _)| *name).collect();
    let figures: Vec<String> = cpu.iter().map(|(_, ms)| format!("{ms:.1}")).collect();
    (figures.join(" / "), names.join(" / "))
}

/// `1.00 / 2.00 / 3.00`, or signed for a difference: `+1.00 / +2.00 / -0.10`.
fn percentiles(p: Percentiles, signed: bool) -> String {
    let one = |ms: f64| match signed {
        true => format!("{ms:+.2}"),
        false => format!("{ms:.2}"),
    };
    format!("{} / {} / {}", one(p.p50), one(p.p95), one(p.p99))
}

/// 12345.6 as `12,346`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(4_000.2), "4,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
