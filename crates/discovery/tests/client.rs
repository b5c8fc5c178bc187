//! The service over a real socket, driven by the client runners and the CLI use.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use serde_json::json;
use support::{registration, start};
use switchyard_discovery::{ClientError, Config, DiscoveryClient};
use switchyard_wire::discovery::RegistrationAck;

fn short_lived() -> Config {
    Config {
        ttl: Duration::from_secs(1),
        heartbeat_interval: Duration::from_millis(250),
        token: None,
    }
}

/// Polls `check` every 20 ms until it holds, failing after 5 s.
async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_runner_registers_heartbeats_expires_and_comes_back() {
    let discovery = start(short_lived()).await;
    let client = DiscoveryClient::new(format!("{}/", discovery.base_url), None);
    let ack = client
        .register(&registration("r1", "http://127.0.0.1:9", &["echo"]))
        .await
        .unwrap();
    assert_eq!(
        ack,
        RegistrationAck {
            ttl_ms: 1000,
            heartbeat_interval_ms: 250
        }
    );
    let runners = client.runners().await.unwrap();
    assert_eq!(runners.len(), 1);
    assert_eq!(runners[0].id, "r1");
    client.heartbeat("r1").await.unwrap();

    eventually("the silent runner is no longer listed", async || {
        client.runners().await.unwrap().is_empty()
    })
    .await;
    match client.heartbeat("r1").await {
        Err(ClientError::UnknownRunner(id)) => assert_eq!(id, "r1"),
        other => panic!("expected UnknownRunner, got {other:?}"),
    }

    client
        .register(&registration("r1", "http://127.0.0.1:9", &["echo"]))
        .await
        .unwrap();
    client.heartbeat("r1").await.unwrap();
    client.deregister("r1").await.unwrap();
    assert!(client.runners().await.unwrap().is_empty());
    client
        .deregister("r1")
        .await
        .expect("deregistering twice is fine");
    discovery.stop().await;
}

#[tokio::test]
async fn the_token_is_enforced_over_the_wire() {
    let discovery = start(Config {
        token: Some("s3cret".into()),
        ..Config::default()
    })
    .await;
    let intruder = DiscoveryClient::new(&discovery.base_url, Some("guess".into()));
    let anonymous = DiscoveryClient::new(&discovery.base_url, None);
    let member = DiscoveryClient::new(&discovery.base_url, Some("s3cret".into()));
    let r1 = registration("r1", "http://127.0.0.1:9", &["echo"]);
    assert!(matches!(
        intruder.register(&r1).await,
        Err(ClientError::Unauthorized)
    ));
    assert!(matches!(
        anonymous.register(&r1).await,
        Err(ClientError::Unauthorized)
    ));
    member.register(&r1).await.unwrap();
    assert!(matches!(
        intruder.heartbeat("r1").await,
        Err(ClientError::Unauthorized)
    ));
    assert!(matches!(
        intruder.deregister("r1").await,
        Err(ClientError::Unauthorized)
    ));
    assert_eq!(
        anonymous.runners().await.unwrap().len(),
        1,
        "reads are open"
    );
    discovery.stop().await;
}

#[tokio::test]
async fn a_heartbeat_interval_that_does_not_fit_in_the_ttl_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config {
        ttl: Duration::from_secs(5),
        heartbeat_interval: Duration::from_secs(5),
        token: None,
    };
    let error = switchyard_discovery::serve(listener, config, Default::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        error.to_string().contains("shorter than the ttl"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_discovery_is_reported_as_such() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let error = DiscoveryClient::new(&url, None)
        .runners()
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Unreachable { .. }),
        "{error:?}"
    );
}

/// Serves `GET /schemas` like a runner hosting `echo`, on an ephemeral port.
async fn schema_server(description: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/schemas",
        get(move || async move {
            Json(json!({"echo": {"type": "object", "description": description}}))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn schemas_are_gathered_from_every_runner_and_dead_ones_are_reported() {
    let discovery = start(Config::default()).await;
    let client = DiscoveryClient::new(&discovery.base_url, None);
    let first = schema_server("v1").await;
    let second = schema_server("v2").await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    client
        .register(&registration("r1", &first, &["echo"]))
        .await
        .unwrap();
    client
        .register(&registration("r2", &second, &["echo"]))
        .await
        .unwrap();
    client
        .register(&registration("r3", &dead, &["echo"]))
        .await
        .unwrap();

    let schemas = client.schemas().await.unwrap();
    let echo = &schemas.by_algorithm["echo"];
    assert_eq!(echo.len(), 2);
    assert_eq!(echo[&first]["description"], "v1");
    assert_eq!(echo[&second]["description"], "v2");
    assert_eq!(schemas.unreachable.len(), 1);
    assert_eq!(schemas.unreachable[0].base_url, dead);
    assert!(
        schemas.unreachable[0]
            .reason
            .to_lowercase()
            .contains("connect"),
        "{}",
        schemas.unreachable[0].reason
    );
    discovery.stop().await;
}
