//! A runner's `POST /run/{algorithm}` on any body: the payload is parsed against the typed
//! parameters, and whatever the bytes, the answer is a 200 or a 4xx, never a 5xx or a panic.

#![no_main]

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use switchyard_runner::{AlgorithmError, Runner, RunnerConfig};
use tower::ServiceExt;

/// Parameters of several JSON types, so the fuzzer meets every kind of mismatch.
#[switchyard_runner::algorithm]
fn sample(
    text: String,
    count: u32,
    tags: Vec<String>,
    ratio: Option<f64>,
) -> Result<usize, AlgorithmError> {
    Ok(text.len() + count as usize + tags.len() + usize::from(ratio.is_some()))
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

/// A runner that has loaded its algorithms: before that it answers 503 to every call, as it
/// should while starting.
static ROUTER: LazyLock<Router> = LazyLock::new(|| {
    let mut runner =
        Runner::new(vec![sample_algorithm()], RunnerConfig::default()).expect("a runner");
    RUNTIME.block_on(runner.load()).expect("loading the sample algorithm");
    runner.router()
});

fuzz_target!(|body: &[u8]| {
    let request = Request::post("/run/sample")
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let status = RUNTIME
        .block_on(ROUTER.clone().oneshot(request))
        .unwrap()
        .status();
    assert!(
        status.is_success() || status.is_client_error(),
        "{status} for {:?}",
        String::from_utf8_lossy(body)
    );
});
