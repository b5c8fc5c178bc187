//! `language_detection` and `ocr` as the controller sees them: hosted by a real runner, called
//! over HTTP, answering the series' `{"result": ...}` or an error status with `{"message"}`.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use switchyard_algorithms::{Options, build};
use switchyard_runner::{Runner, RunnerConfig};

/// A loaded runner hosting the named built-in algorithms on an ephemeral port; its base URL.
async fn start(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let algorithms = build(&names, &Options::default()).expect("built-in algorithms");
    let mut runner = Runner::new(algorithms, RunnerConfig::default()).unwrap();
    runner.load().await.expect("every algorithm loads");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = runner.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

async fn post(base: &str, algorithm: &str, payload: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/run/{algorithm}"))
        .json(&payload)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[cfg(feature = "language-detection")]
#[tokio::test]
async fn language_detection_over_http() {
    let base = start(&["language_detection"]).await;

    let (status, body) = post(&base, "language_detection", json!({"text": "Good morning"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["language"], "en");
    assert!(
        body["result"]["probability"].as_f64().unwrap() > 0.5,
        "{body}"
    );

    let (status, body) = post(&base, "language_detection", json!({"text": "  "})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"result": {"language": null, "probability": null, "reason": "empty"}})
    );

    let (status, body) = post(&base, "language_detection", json!({"text": 42})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("text"), "{body}");

    let (status, body) = post(
        &base,
        "language_detection",
        json!({"text": "Bonjour", "candidates": 99}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "candidates must be at most 10, got 99");
}

#[cfg(feature = "ocr")]
#[tokio::test]
async fn ocr_over_http() {
    use base64::Engine as _;
    let base = start(&["ocr"]).await;
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);

    let output = std::process::Command::new("/usr/bin/convert")
        .args([
            "-size",
            "600x90",
            "xc:white",
            "-fill",
            "black",
            "-pointsize",
            "36",
        ])
        .args(["-font", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"])
        .args(["-annotate", "+20+60", "Read me over HTTP", "png:-"])
        .output()
        .expect("ImageMagick runs");
    assert!(output.status.success());
    let (status, body) = post(
        &base,
        "ocr",
        json!({"image_base64": encode(&output.stdout)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["text"], "Read me over HTTP");
    assert_eq!(body["result"]["lines"][0]["text"], "Read me over HTTP");
    assert!(
        body["result"]["lines"][0]["box"]["width"].as_u64().unwrap() > 200,
        "{body}"
    );

    let (status, body) = post(
        &base,
        "ocr",
        json!({"image_base64": encode(b"%PDF-1.4 not an image")}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("not an image"),
        "{body}"
    );

    let payload = json!({"image_base64": encode(&output.stdout), "language": "tlh"});
    let (status, body) = post(&base, "ocr", payload).await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("OCR language 'tlh' is not installed; installed: "),
        "{message}"
    );
    assert!(message.contains("eng"), "{message}");
}
