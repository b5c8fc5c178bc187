//! `switchyard bench --quick --json` runs every measurement end to end on the local RabbitMQ
//! (scripts/ensure-rabbitmq.sh) and reports a usable figure for each. The figures themselves
//! depend on the machine and the profile, so nothing here judges them. The peer (bench/peers)
//! runs too, from the environment bench/peers/setup.sh makes.

use std::process::Command;

use serde_json::Value;

/// The keys scripts and docs rely on; each a positive, finite number.
const NUMBERS: [&str; 21] = [
    "broker_ceiling_tps",
    "dispatch_tps",
    "dispatch_ratio",
    "embedded_ceiling_tps",
    "embedded_tps",
    "embedded_ratio",
    "model_alone_ips",
    "worker_ips",
    "classify_ratio",
    "controller_rss_mb",
    "runner_rss_mb",
    "offered_load_tps",
    "phone_photo_end_to_end_slowdown",
    "peer_ips",
    "runner_direct_ips",
    "runner_direct_to_peer_ratio",
    "worker_to_peer_ratio",
    "peer_cpu_ms_per_image",
    "runner_direct_cpu_ms_per_image",
    "embedded_worker_ips",
    "embedded_worker_to_peer_ratio",
];

/// The input sizes each `*_by_size` figure has a number for.
const SIZES: [&str; 3] = ["600x400", "4032x3024_jpeg", "2560x1600_png"];

fn positive(figures: &Value, key: &str) {
    let value = figures[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {}", figures[key]));
    assert!(value.is_finite() && value > 0.0, "{key} = {value}");
}

#[test]
fn quick_bench_reports_every_figure() {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["bench", "--quick", "--json", "--peer"])
        // Made by bench/peers/setup.sh, which scripts/test runs.
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/peers"))
        .output()
        .expect("run switchyard bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    let figures: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("stdout is not JSON ({error}); stderr: {stderr}"));

    for key in NUMBERS {
        positive(&figures, key);
    }
    for latencies in [
        "broker_ceiling_latency_ms",
        "dispatch_latency_ms",
        "embedded_ceiling_latency_ms",
        "embedded_latency_ms",
        "peer_latency_ms",
        "runner_direct_latency_ms",
    ] {
        for percentile in ["p50", "p95", "p99"] {
            positive(&figures[latencies], percentile);
        }
    }
    // Added latency is worker minus ceiling: on a short run a noisy ceiling can exceed the worker
    // at some percentile, so it is only required to be a number.
    for added in ["echo_added_latency_ms", "embedded_added_latency_ms"] {
        for percentile in ["p50", "p95", "p99"] {
            let value = figures[added][percentile].as_f64();
            assert!(
                value.is_some_and(f64::is_finite),
                "{added}.{percentile}: {value:?}"
            );
        }
    }
    for by_size in [
        "bytes_by_size",
        "decode_resize_ips_by_size",
        "algorithm_ips_by_size",
        "worker_ips_by_size",
    ] {
        for size in SIZES {
            positive(&figures[by_size], size);
        }
    }
    positive(
        &figures["decode_resize_ips_by_size"],
        "4032x3024_jpeg_decoded_whole",
    );
    // CPU is counted in 10 ms ticks: a quick run's few images take the runner (inference) past
    // one, not necessarily the others. RabbitMQ runs on this machine (scripts/ensure-rabbitmq.sh).
    let routes = SIZES
        .map(|size| {
            let cpu = &figures["worker_cpu_ms_per_image_by_size"][size];
            (cpu, &["controller", "rabbitmq", "producer"][..])
        })
        .into_iter()
        .chain([(
            &figures["embedded_worker_cpu_ms_per_image"],
            &["producer, embedded queue and controller"][..],
        )]);
    for (cpu, others) in routes {
        positive(cpu, "runner");
        for process in others {
            let value = cpu[process].as_f64();
            assert!(
                value.is_some_and(|ms| ms.is_finite() && ms >= 0.0),
                "CPU of the {process}: {value:?} in {cpu}"
            );
        }
    }
    let engine = figures["engine"].as_str().expect("engine is a string");
    assert!(
        ["tract", "onnxruntime"].contains(&engine),
        "engine {engine}"
    );
}

#[test]
fn a_peer_without_its_environment_is_refused_before_anything_runs() {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["bench", "--quick", "--peer", "/nonexistent/peers"])
        .output()
        .expect("run switchyard bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the peer's environment is missing: run /nonexistent/peers/setup.sh"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("model loaded"),
        "measured before refusing: {stderr}"
    );
}
