//! `image_classifier` hosted by a real runner, called over HTTP as the controller calls it: not
//! ready until the model has loaded, then the seed's answers and error bodies.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]
#![cfg(feature = "classifier")]

mod support;

use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use support::{image_bytes, local_images, serve};
use switchyard_algorithms::classifier::{ClassifierOptions, EngineChoice};
use switchyard_algorithms::{Options, build};
use switchyard_runner::{Runner, RunnerConfig};

async fn post(client: &reqwest::Client, url: String, payload: Value) -> (u16, Value) {
    let response = client.post(url).json(&payload).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_runner_serves_the_classifier_once_its_model_is_loaded() {
    let coffee = image_bytes("coffee.png");
    let images = serve(
        Router::new()
            .route(
                "/coffee.png",
                get(move || async move {
                    ([(header::CONTENT_TYPE, "image/png")], coffee).into_response()
                }),
            )
            .route("/gone.png", get(|| async { StatusCode::NOT_FOUND })),
    )
    .await;
    let options = Options {
        image_input: local_images(),
        classifier: ClassifierOptions {
            engine: EngineChoice::Tract,
            ..ClassifierOptions::default()
        },
        ..Options::default()
    };
    let algorithms = build(&["image_classifier".to_string()], &options).unwrap();
    let mut runner = Runner::new(algorithms, RunnerConfig::default()).unwrap();
    let address = serve(runner.router()).await;
    let client = reqwest::Client::new();
    let ready = || client.get(format!("http://{address}/ready")).send();

    assert_ne!(
        ready().await.unwrap().status(),
        200,
        "ready before the model loads"
    );
    runner.load().await.unwrap();
    assert_eq!(ready().await.unwrap().status(), 200);

    let run = format!("http://{address}/run/image_classifier");
    let (status, body) = post(
        &client,
        run.clone(),
        json!({"image_url": format!("http://{images}/coffee.png")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["label"], "espresso");

    let (status, body) = post(
        &client,
        run.clone(),
        json!({"image_url": format!("http://{images}/gone.png")}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["message"],
        "Error fetching request image, received 404"
    );

    let (status, body) = post(
        &client,
        run.clone(),
        json!({"image_url": "x", "colour": "red"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{body}"
    );

    let schemas: Value = client
        .get(format!("http://{address}/schemas"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schema = schemas.to_string();
    assert!(
        schema.contains("image_url") && schema.contains("top_k"),
        "{schema}"
    );
}
