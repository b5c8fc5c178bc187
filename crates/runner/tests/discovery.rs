//! A runner and a real discovery service: registration, heartbeats, coming back after
//! discovery restarts or starts late, and deregistration on shutdown.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::algorithms::{add_algorithm, shout_algorithm};
use support::{Discovery, eventually, quick_discovery, serve, start_discovery};
use switchyard_discovery::DiscoveryClient;
use switchyard_runner::RunnerConfig;
use switchyard_wire::discovery::RunnerEntry;
use tokio::net::TcpListener;

fn config(discovery: &str, id: &str) -> RunnerConfig {
    RunnerConfig {
        discovery: Some(DiscoveryClient::new(discovery, None)),
        runner_id: Some(id.into()),
        ..RunnerConfig::default()
    }
}

async fn listed(client: &DiscoveryClient, id: &str) -> Option<RunnerEntry> {
    client
        .runners()
        .await
        .ok()?
        .into_iter()
        .find(|entry| entry.id == id)
}

async fn discovery() -> Discovery {
    start_discovery(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        quick_discovery(),
    )
    .await
}

#[tokio::test]
async fn a_runner_registers_its_algorithms_and_stays_listed_by_heartbeating() {
    let discovery = discovery().await;
    let algorithms = vec![
        shout_algorithm().with_concurrency(3),
        add_algorithm().with_concurrency(2),
    ];
    let runner = serve(algorithms, config(&discovery.base_url(), "runner-hb")).await;
    let client = discovery.client();
    eventually("the runner is listed", async || {
        listed(&client, "runner-hb").await.is_some()
    })
    .await;

    let entry = listed(&client, "runner-hb").await.unwrap();
    assert_eq!(entry.base_url, runner.base_url);
    assert_eq!(entry.capacity, 5);
    let names: Vec<&str> = entry
        .algorithms
        .iter()
        .map(|algorithm| algorithm.name.as_str())
        .collect();
    assert_eq!(names, ["shout", "sum"]);
    assert_eq!(
        entry.algorithms[0].schema["required"],
        serde_json::json!(["text"])
    );

    // Three ttls without a registration: only heartbeats keep it listed.
    let until = Instant::now() + quick_discovery().ttl * 3;
    while Instant::now() < until {
        let entry = listed(&client, "runner-hb").await.expect("still listed");
        assert!(entry.healthy, "{entry:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runner.stop().await.unwrap();
    discovery.stop().await;
}

#[tokio::test]
async fn shutdown_deregisters_before_the_runner_stops() {
    let discovery = start_discovery(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        // A long ttl: only the deregistration can make the entry go away within the test.
        switchyard_discovery::Config {
            ttl: Duration::from_secs(300),
            ..quick_discovery()
        },
    )
    .await;
    let runner = serve(
        vec![shout_algorithm()],
        config(&discovery.base_url(), "runner-bye"),
    )
    .await;
    let client = discovery.client();
    eventually("the runner is listed", async || {
        listed(&client, "runner-bye").await.is_some()
    })
    .await;
    runner.stop().await.unwrap();
    assert_eq!(listed(&client, "runner-bye").await, None);
    discovery.stop().await;
}

#[tokio::test]
async fn a_runner_registers_again_after_discovery_restarts() {
    let first = discovery().await;
    let addr = first.addr;
    let runner = serve(
        vec![shout_algorithm()],
        config(&first.base_url(), "runner-again"),
    )
    .await;
    let client = first.client();
    eventually("the runner is listed", async || {
        listed(&client, "runner-again").await.is_some()
    })
    .await;

    first.stop().await;
    let second = start_discovery(TcpListener::bind(addr).await.unwrap(), quick_discovery()).await;
    let client = second.client();
    eventually("the runner is listed by the new discovery", async || {
        listed(&client, "runner-again").await.is_some()
    })
    .await;
    runner.stop().await.unwrap();
    assert_eq!(listed(&client, "runner-again").await, None);
    second.stop().await;
}

#[tokio::test]
async fn a_runner_serves_while_discovery_is_down_and_registers_once_it_is_up() {
    let reserved = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let runner = serve(
        vec![shout_algorithm()],
        config(&format!("http://{addr}"), "runner-late"),
    )
    .await;
    runner.wait_ready().await;
    let call = reqwest::Client::new()
        .post(runner.url("/run/shout"))
        .json(&serde_json::json!({"text": "alone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        call.status(),
        200,
        "discovery being down does not stop the runner"
    );

    let discovery =
        start_discovery(TcpListener::bind(addr).await.unwrap(), quick_discovery()).await;
    let client = discovery.client();
    eventually("the runner is listed", async || {
        listed(&client, "runner-late").await.is_some()
    })
    .await;
    runner.stop().await.unwrap();
    discovery.stop().await;
}

#[tokio::test]
async fn a_runner_stops_promptly_even_if_discovery_never_answers() {
    let reserved = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let runner = serve(
        vec![shout_algorithm()],
        config(&format!("http://{addr}"), "runner-alone"),
    )
    .await;
    runner.wait_ready().await;
    let stopping = Instant::now();
    runner.stop().await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "took {:?}",
        stopping.elapsed()
    );
}
