//! `#[algorithm]` end to end: functions declared with the macro, sync and async, served over
//! a socket and called as a controller would.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{Value, json};
use support::algorithms::{add_algorithm, shout_algorithm};
use support::serve;
use switchyard_runner::{AlgorithmError, RunnerConfig, algorithm};

/// Greets someone; `excited` may be left out.
#[algorithm]
async fn greet(name: String, #[serde(default)] excited: bool) -> Result<String, AlgorithmError> {
    Ok(format!("Hello, {name}{}", if excited { "!" } else { "." }))
}

async fn call(http: &reqwest::Client, url: String, payload: Value) -> (u16, Value) {
    let response = http.post(url).json(&payload).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn functions_declared_with_the_macro_are_served_and_called() {
    let runner = serve(
        vec![shout_algorithm(), add_algorithm(), greet_algorithm()],
        RunnerConfig::default(),
    )
    .await;
    runner.wait_ready().await;
    let http = reqwest::Client::new();

    assert_eq!(
        call(&http, runner.url("/run/shout"), json!({"text": "sync"})).await,
        (200, json!({"result": "SYNC"}))
    );
    assert_eq!(
        call(&http, runner.url("/run/sum"), json!({"a": 40, "b": 2})).await,
        (200, json!({"result": 42}))
    );
    let overflow = call(
        &http,
        runner.url("/run/sum"),
        json!({"a": i64::MAX, "b": 1}),
    )
    .await;
    assert_eq!(overflow, (400, json!({"message": "the sum overflows"})));
    assert_eq!(
        call(&http, runner.url("/run/greet"), json!({"name": "Ada"})).await,
        (200, json!({"result": "Hello, Ada."}))
    );
    assert_eq!(
        call(
            &http,
            runner.url("/run/greet"),
            json!({"name": "Ada", "excited": true})
        )
        .await,
        (200, json!({"result": "Hello, Ada!"}))
    );
    let (status, body) = call(
        &http,
        runner.url("/run/greet"),
        json!({"name": "Ada", "loud": true}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `loud`"),
        "{body}"
    );

    // Registered under the function's name, or the one given; parameter attributes reach the schema.
    let schemas: Value = http
        .get(runner.url("/schemas"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(schemas["greet"]["required"], json!(["name"]));
    assert_eq!(
        schemas["greet"]["properties"]["excited"]["default"],
        json!(false)
    );
    assert_eq!(schemas["sum"]["title"], "AddPayload");
    runner.stop().await.unwrap();
}

#[test]
fn the_generated_payload_type_is_usable_by_hand() {
    let payload = GreetPayload {
        name: "Grace".into(),
        excited: true,
    };
    assert_eq!(
        futures::executor::block_on(greet(payload.name, payload.excited)),
        Ok("Hello, Grace!".into())
    );
}
