//! `image_classifier` end to end on images served over HTTP by a local server: every way an
//! image can fail to arrive or decode, with its status and message.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]
#![cfg(feature = "classifier")]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use support::{classifier, image_bytes, local_images, png_claiming, serve};
use switchyard_algorithms::classifier::{Classification, ImageClassifierPayload};
use switchyard_algorithms::image_input::{ImageInput, ImageInputOptions};
use switchyard_runner::AlgorithmError;

fn png(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/png")], bytes).into_response()
}

/// A server with one route per case.
async fn image_server() -> SocketAddr {
    let coffee = image_bytes("coffee.png");
    let truncated = coffee[..coffee.len() / 2].to_vec();
    let streamed = coffee.clone();
    let router = Router::new()
        .route("/coffee.png", get(move || async move { png(coffee) }))
        // Chunked, no Content-Length: the limit must hold while reading.
        .route(
            "/coffee-streamed.png",
            get(move || async move {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> = streamed
                    .chunks(16 * 1024)
                    .map(|chunk| Ok(chunk.to_vec()))
                    .collect();
                Body::from_stream(futures::stream::iter(chunks))
            }),
        )
        .route("/truncated.png", get(move || async move { png(truncated) }))
        .route(
            "/bomb.png",
            get(|| async { png(png_claiming(60_000, 60_000)) }),
        )
        .route(
            "/page.html",
            get(|| async {
                let html = "<!doctype html><html><body>not an image</body></html>";
                ([(header::CONTENT_TYPE, "text/html")], html).into_response()
            }),
        )
        .route("/gone.png", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/broken.png",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route(
            "/loop.png",
            get(|| async { Redirect::temporary("/loop.png") }),
        )
        .route(
            "/moved.png",
            get(|| async { Redirect::permanent("/coffee.png") }),
        )
        .route(
            "/hop/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    Redirect::temporary(&format!("/hop/{}", n + 1))
                },
            ),
        )
        .route(
            "/slow.png",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                StatusCode::OK
            }),
        );
    serve(router).await
}

async fn classify(
    images: ImageInputOptions,
    image: ImageInput,
) -> Result<Classification, AlgorithmError> {
    let payload = ImageClassifierPayload { image, top_k: None };
    classifier(images).classify(payload).await
}

async fn classify_url(url: String) -> Result<Classification, AlgorithmError> {
    classify(local_images(), ImageInput::url(url)).await
}

fn assert_error(result: Result<Classification, AlgorithmError>, status: u16, message: &str) {
    let error = result.expect_err("an error");
    assert_eq!(error.status(), status, "{error}");
    assert!(
        error.to_string().contains(message),
        "expected '{message}' in '{error}'"
    );
}

#[tokio::test]
async fn classifies_a_fetched_image_and_follows_redirects() {
    let server = image_server().await;
    for path in ["coffee.png", "coffee-streamed.png", "moved.png"] {
        let answer = classify_url(format!("http://{server}/{path}"))
            .await
            .unwrap();
        assert_eq!(answer.label, "espresso", "{path}");
    }
}

#[tokio::test]
async fn an_error_status_is_answered_with_the_seed_message() {
    let server = image_server().await;
    let result = classify_url(format!("http://{server}/gone.png")).await;
    assert_eq!(
        result.unwrap_err(),
        AlgorithmError::client(404, "Error fetching request image, received 404")
    );
    let result = classify_url(format!("http://{server}/broken.png")).await;
    assert_error(result, 503, "Error fetching request image, received 503");
}

#[tokio::test]
async fn content_that_is_not_a_whole_image_is_unprocessable() {
    let server = image_server().await;
    let html = classify_url(format!("http://{server}/page.html")).await;
    assert_error(html, 422, "the content is not an image");
    let truncated = classify_url(format!("http://{server}/truncated.png")).await;
    assert_error(truncated, 422, "the image cannot be decoded");
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_from_its_header() {
    let server = image_server().await;
    let started = Instant::now();
    let bomb = classify_url(format!("http://{server}/bomb.png")).await;
    assert_error(
        bomb,
        413,
        "the image is 60000x60000 pixels; at most 64000000 pixels are accepted",
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_refused() {
    let server = image_server().await;
    let small = ImageInputOptions {
        max_bytes: 100_000,
        ..local_images()
    };
    for path in ["coffee.png", "coffee-streamed.png"] {
        let url = ImageInput::url(format!("http://{server}/{path}"));
        let result = classify(small.clone(), url).await;
        assert_error(result, 413, "larger than the limit of 100000 bytes");
    }
    let inline = ImageInput::base64(base64_of("coffee.png"));
    assert_error(classify(small, inline).await, 413, "larger than the limit");
}

fn base64_of(image: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(image_bytes(image))
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let server = image_server().await;
    let public_only = ImageInputOptions {
        allow_private_urls: false,
        ..local_images()
    };
    let cases = [
        (
            format!("http://{server}/coffee.png"),
            "127.0.0.1 is a loopback address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            "169.254.169.254 is a link-local address",
        ),
        (
            format!("http://localhost:{}/coffee.png", server.port()),
            "is a loopback address",
        ),
    ];
    for (url, reason) in cases {
        let result = classify(public_only.clone(), ImageInput::url(&url)).await;
        assert_error(result, 400, reason);
    }
}

#[tokio::test]
async fn redirect_loops_and_chains_are_cut_short() {
    let server = image_server().await;
    let looped = classify_url(format!("http://{server}/loop.png")).await;
    assert_error(looped, 400, "redirect loop");
    let chain = classify_url(format!("http://{server}/hop/0")).await;
    assert_error(chain, 400, "more than 5 redirects");
}

#[tokio::test]
async fn a_slow_or_absent_host_is_a_gateway_error() {
    let server = image_server().await;
    let impatient = ImageInputOptions {
        fetch_timeout: Duration::from_millis(300),
        ..local_images()
    };
    let started = Instant::now();
    let slow = classify(
        impatient,
        ImageInput::url(format!("http://{server}/slow.png")),
    )
    .await;
    assert_error(slow, 504, "no complete answer within 0.3 s");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A port nobody listens on: bound, then released.
    let vacant = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let absent = classify_url(format!("http://{vacant}/coffee.png")).await;
    assert_error(absent, 502, "cannot connect to 127.0.0.1");
}

#[tokio::test]
async fn the_payload_must_name_exactly_one_image() {
    let neither = classify(local_images(), ImageInput::default()).await;
    assert_error(
        neither,
        400,
        "exactly one of 'image_url' and 'image_base64'; it gives neither",
    );
    let both = ImageInput {
        image_url: Some("http://example.com/a.png".into()),
        image_base64: Some(base64_of("coffee.png")),
    };
    assert_error(classify(local_images(), both).await, 400, "it gives both");
    let garbage = ImageInput::base64("%%% not base64 %%%");
    assert_error(
        classify(local_images(), garbage).await,
        400,
        "image_base64 is not valid base64",
    );
}
