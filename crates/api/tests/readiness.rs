//! `up` is ready only when it can take what it advertises: an algorithm it hosts that is still
//! loading is a retryable 503, not an unknown algorithm, and one its runner cannot run (an
//! engine not installed) is a 501 with the runner's reason. The loading window is held open
//! by a loader that waits for the test.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_api::{Catalog, Queues, TaskApi, TaskStore};
use switchyard_broker::memory::MemoryBroker;
use switchyard_discovery::DiscoveryClient;
use switchyard_runner::{Algorithm, AlgorithmError, RunnerConfig};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const WITHIN: Duration = Duration::from_secs(60);
const MISSING_REASON: &str = "the engine is not installed; install it with `apt-get install it`";

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Nothing {}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Loads once `release` sends.
fn gated(release: mpsc::Receiver<()>) -> Algorithm {
    let release = Mutex::new(release);
    Algorithm::with_state(
        "gated",
        move || {
            release
                .lock()
                .unwrap()
                .recv()
                .map_err(|_| AlgorithmError::internal("the test went away"))
        },
        |_: Arc<()>, _: Nothing| async { Ok("loaded") },
    )
}

fn missing() -> Algorithm {
    Algorithm::with_state(
        "missing",
        || Err::<(), _>(AlgorithmError::unavailable(MISSING_REASON)),
        |_: Arc<()>, _: Nothing| async { Ok("never") },
    )
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_algorithms_are_retryable_and_unavailable_ones_say_how_to_install_them() {
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let (listener, discovery_url) = bind().await;
    tokio::spawn(switchyard_discovery::serve(
        listener,
        switchyard_discovery::Config::default(),
        shutdown.clone(),
    ));
    let discovery = DiscoveryClient::new(discovery_url, None);
    let (release, gate) = mpsc::channel();
    let (listener, runner_url) = bind().await;
    tokio::spawn(switchyard_runner::serve(
        listener,
        vec![
            switchyard_algorithms::echo_algorithm(),
            gated(gate),
            missing(),
        ],
        RunnerConfig {
            advertise_url: Some(runner_url.clone()),
            discovery: Some(discovery.clone()),
            ..RunnerConfig::default()
        },
        shutdown.clone(),
    ));
    let broker = MemoryBroker::new();
    let data = tempfile::tempdir().unwrap();
    let api = TaskApi::new(
        Queues::of(Arc::new(broker.clone())),
        TaskStore::open(&data.path().join("tasks.db")).unwrap(),
        Catalog::new(discovery.clone()).expecting(["echo", "gated", "missing"].map(String::from)),
    );
    let (listener, url) = bind().await;
    let router = switchyard_api::router(api, 64 * 1024);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();
    let submit_with = |algorithm: &str, payload: Value| {
        http.post(format!("{url}/v1/tasks"))
            .json(&json!({"algorithm": algorithm, "payload": payload}))
    };
    let submit = |algorithm: &str| submit_with(algorithm, json!({}));

    // The window: the runner is loading `gated`, so it has registered nothing yet.
    let (status, retry_after, body) = answer(http.get(format!("{url}/ready"))).await;
    assert_eq!((status, retry_after.as_deref()), (503, Some("1")), "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["loading"], json!(["echo", "gated", "missing"]));
    let (status, retry_after, body) = answer(submit("echo")).await;
    assert_eq!((status, retry_after.as_deref()), (503, Some("1")), "{body}");
    assert_eq!(
        body["message"],
        "algorithm 'echo' is still loading; retry shortly"
    );
    let (status, _, body) = answer(submit("nope")).await;
    assert_eq!(
        status, 400,
        "an algorithm nobody hosts stays unknown: {body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown algorithm 'nope'")
    );
    assert!(
        broker.queued_tasks().is_empty(),
        "nothing was queued while loading"
    );

    release.send(()).unwrap();
    let deadline = Instant::now() + WITHIN;
    let ready = loop {
        let (status, _, body) = answer(http.get(format!("{url}/ready"))).await;
        if status == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        ready,
        json!({"ready": true, "loading": [], "unavailable": {"missing": MISSING_REASON}})
    );

    let (status, _, body) = answer(submit_with("echo", json!({"text": "hi"}))).await;
    assert_eq!(status, 202, "{body}");
    let (status, retry_after, body) = answer(submit("missing")).await;
    assert_eq!((status, retry_after), (501, None), "{body}");
    assert_eq!(
        body["message"],
        format!("algorithm 'missing' is unavailable: {MISSING_REASON}")
    );

    let (_, _, listing) = answer(http.get(format!("{url}/v1/algorithms"))).await;
    let entry = |name: &str| {
        listing
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {listing}"))
            .clone()
    };
    assert_eq!(entry("gated")["available"], true);
    assert_eq!(entry("missing")["available"], false);
    assert_eq!(entry("missing")["unavailable_reason"], MISSING_REASON);
    let (_, _, schemas) = answer(http.get(format!("{url}/v1/schemas"))).await;
    assert!(
        schemas.get("gated").is_some() && schemas.get("missing").is_none(),
        "{schemas}"
    );

    // The runner itself: 501 for the unavailable algorithm, never routed to by discovery.
    let (status, _, body) = answer(
        http.post(format!("{runner_url}/run/missing"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 501, "{body}");
    assert_eq!(
        body["message"],
        format!("algorithm 'missing' is unavailable on this runner: {MISSING_REASON}")
    );
    let runners = discovery.runners().await.unwrap();
    let names: Vec<&str> = runners[0]
        .algorithms
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["echo", "gated"]);
    assert_eq!(runners[0].unavailable[0].name, "missing");
    let (status, _, body) = answer(http.get(format!("{runner_url}/ready"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["unavailable"]["missing"], MISSING_REASON);
}
