//! `ocr` with the real Tesseract on images this file renders with ImageMagick and the DejaVu fonts
//! (scripts/setup-system.sh installs both): the text read must be the text drawn.

// A failed unwrap is the test's failure message.
#![allow(clippy::unwrap_used)]
#![cfg(feature = "ocr")]

use std::process::Command;

use base64::Engine as _;
use serde_json::{Value, json};
use switchyard_algorithms::Options;
use switchyard_algorithms::image_input::ImageInputOptions;
use switchyard_algorithms::ocr::{Ocr, OcrPayload, OcrResult};
use switchyard_runner::{AlgorithmError, parse_payload};

const FONTS: &str = "/usr/share/fonts/truetype/dejavu";

/// A PNG drawn by ImageMagick: `canvas` (size and background arguments), then each line of
/// `lines` at its baseline, in `font` at `points`. `/usr/bin/convert` by its path: another
/// `convert` may come first on PATH.
fn render(canvas: &[&str], font: &str, points: u32, fill: &str, lines: &[&str]) -> Vec<u8> {
    let mut command = Command::new("/usr/bin/convert");
    command.args(canvas);
    command.args([
        "-font",
        &format!("{FONTS}/{font}.ttf"),
        "-pointsize",
        &points.to_string(),
    ]);
    command.args(["-fill", fill]);
    for (index, line) in lines.iter().enumerate() {
        let baseline = 20 + (index as u32 + 1) * points * 3 / 2;
        command.args(["-annotate", &format!("+20+{baseline}"), line]);
    }
    let output = command.arg("png:-").output().expect("ImageMagick runs");
    assert!(
        output.status.success(),
        "convert failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn white(width: u32, height: u32) -> Vec<String> {
    vec![
        "-size".into(),
        format!("{width}x{height}"),
        "xc:white".into(),
    ]
}

fn payload(png: &[u8], extra: Value) -> OcrPayload {
    let mut payload =
        json!({"image_base64": base64::engine::general_purpose::STANDARD.encode(png)});
    payload
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    parse_payload(payload).expect("a valid payload")
}

fn load(options: &Options) -> Ocr {
    Ocr::load(options).expect("Tesseract and its English model are installed")
}

async fn read(png: &[u8]) -> OcrResult {
    load(&Options::default())
        .read(payload(png, json!({})))
        .await
        .unwrap()
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 1 minus the edit distance over the longer length: 1.0 is identical.
fn similarity(read: &str, drawn: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (read.chars().collect(), drawn.chars().collect());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    1.0 - previous[b.len()] as f64 / a.len().max(b.len()).max(1) as f64
}

fn assert_reads(result: &OcrResult, drawn: &[&str]) {
    let (read, drawn) = (normalise(&result.text), drawn.join(" "));
    let score = similarity(&read, &drawn);
    assert!(score >= 0.98, "read {read:?}, drawn {drawn:?} ({score:.3})");
}

#[test]
fn the_similarity_measure_counts_edits() {
    assert_eq!(similarity("abc", "abc"), 1.0);
    assert_eq!(similarity("abd", "abc"), 1.0 - 1.0 / 3.0);
    assert_eq!(similarity("", "abcd"), 0.0);
}

#[tokio::test]
async fn reads_several_fonts_and_sizes() {
    let cases = [
        (
            "DejaVuSans",
            32,
            vec!["The quick brown fox jumps over", "the lazy dog 1234567890"],
        ),
        (
            "DejaVuSerif",
            28,
            vec![
                "Pack my box with five dozen",
                "liquor jugs, said the clerk.",
            ],
        ),
        (
            "DejaVuSansMono",
            22,
            vec!["Monospaced type: 0123 + 4567 = 4690"],
        ),
        ("DejaVuSans-Bold", 44, vec!["BOLD HEADLINE"]),
        (
            "DejaVuSerif-Bold",
            18,
            vec!["Small serif print is still read correctly."],
        ),
    ];
    let ocr = load(&Options::default());
    for (font, points, lines) in cases {
        let canvas = white(1000, 60 + points * 2 * lines.len() as u32);
        let canvas: Vec<&str> = canvas.iter().map(String::as_str).collect();
        let png = render(&canvas, font, points, "black", &lines);
        let result = ocr.read(payload(&png, json!({}))).await.unwrap();
        assert_reads(&result, &lines);
        assert_eq!(
            result.lines.len(),
            lines.len(),
            "{font}: {:?}",
            result.lines
        );
    }
}

#[tokio::test]
async fn reads_text_on_a_noisy_background() {
    let canvas = [
        "-size",
        "900x200",
        "xc:gray75",
        // A fixed seed: fresh noise each run made this test fail one run in a few (Tesseract reads
        // some speckle patterns as a stray "|" or ";", as seeds 2 and 7 show).
        "-seed",
        "1",
        "-attenuate",
        "1.5",
        "+noise",
        "Gaussian",
    ];
    let lines = ["Noise does not stop the reader", "even on a speckled page"];
    let result = read(&render(&canvas, "DejaVuSerif", 36, "black", &lines)).await;
    assert_reads(&result, &lines);
}

#[tokio::test]
async fn reads_white_text_on_a_gradient() {
    let canvas = ["-size", "900x200", "gradient:navy-darkred"];
    let lines = ["White letters on a gradient", "Second line 42"];
    let result = read(&render(&canvas, "DejaVuSans-Bold", 40, "white", &lines)).await;
    assert_reads(&result, &lines);
}

#[tokio::test]
async fn reads_dark_text_on_a_transparent_background() {
    let canvas = ["-size", "800x100", "xc:none"];
    let lines = ["Transparent background, dark text"];
    let result = read(&render(&canvas, "DejaVuSans", 30, "black", &lines)).await;
    assert_reads(&result, &lines);
}

#[tokio::test]
async fn each_line_has_its_box_and_confidence() {
    let lines = ["First line up here", "Second line below it"];
    let result = read(&render(
        &["-size", "700x160", "xc:white"],
        "DejaVuSans",
        32,
        "black",
        &lines,
    ))
    .await;
    assert_eq!(result.language, "eng");
    assert_eq!(result.text, "First line up here\nSecond line below it");
    let [first, second] = &result.lines[..] else {
        panic!("{:?}", result.lines)
    };
    assert_eq!(
        (first.text.as_str(), second.text.as_str()),
        (lines[0], lines[1])
    );
    for line in [first, second] {
        let bounds = line.bounding_box;
        assert!(line.confidence > 0.8 && line.confidence <= 1.0, "{line:?}");
        // Drawn at x = 20 in 32-point type: about 32 pixels tall, inside the canvas.
        assert!((15..=25).contains(&bounds.x), "{line:?}");
        assert!((20..=50).contains(&bounds.height), "{line:?}");
        assert!(
            bounds.x + bounds.width <= 700 && bounds.y + bounds.height <= 160,
            "{line:?}"
        );
    }
    assert!(second.bounding_box.y >= first.bounding_box.y + first.bounding_box.height);
    // Baselines at 68 and 116: each box ends near its baseline.
    assert!(
        (60..=78).contains(&(first.bounding_box.y + first.bounding_box.height)),
        "{first:?}"
    );
    let wire = serde_json::to_value(first).unwrap();
    assert_eq!(wire["box"]["x"], json!(first.bounding_box.x));
}

#[tokio::test]
async fn an_image_without_text_reads_nothing() {
    for canvas in [
        ["-size", "400x300", "xc:white"],
        ["-size", "2x2", "xc:black"],
    ] {
        let result = read(&render(&canvas, "DejaVuSans", 20, "black", &[])).await;
        assert_eq!(result.text, "", "{canvas:?}");
        assert!(result.lines.is_empty(), "{canvas:?}");
    }
}

#[tokio::test]
async fn content_that_is_not_an_image_is_a_422() {
    let ocr = load(&Options::default());
    let error = ocr
        .read(payload(b"just some text, no pixels", json!({})))
        .await
        .unwrap_err();
    assert_eq!(error.status(), 422);
    assert!(error.to_string().contains("not an image"), "{error}");
    let truncated = &render(
        &["-size", "300x100", "xc:white"],
        "DejaVuSans",
        20,
        "black",
        &["cut"],
    )[..80];
    let error = ocr.read(payload(truncated, json!({}))).await.unwrap_err();
    assert_eq!(error.status(), 422, "{error}");
}

#[tokio::test]
async fn an_uninstalled_language_is_a_400_naming_the_installed_ones() {
    let ocr = load(&Options::default());
    let png = render(
        &["-size", "300x80", "xc:white"],
        "DejaVuSans",
        24,
        "black",
        &["Hallo"],
    );
    for language in ["klingon", "eng+xyz", "osd", ""] {
        let error = ocr
            .read(payload(&png, json!({"language": language})))
            .await
            .unwrap_err();
        assert_eq!(error.status(), 400, "{language}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "OCR language '{language}' is not installed; installed: "
            )),
            "{message}"
        );
        assert!(message.contains("eng"), "{message}");
    }
    // Checked before the image is fetched: an unreachable URL does not matter.
    let payload: OcrPayload =
        parse_payload(json!({"image_url": "http://127.0.0.1:1/x.png", "language": "klingon"}))
            .unwrap();
    assert_eq!(ocr.read(payload).await.unwrap_err().status(), 400);
}

#[tokio::test]
async fn an_explicit_installed_language_is_used() {
    let ocr = load(&Options::default());
    let png = render(
        &["-size", "500x80", "xc:white"],
        "DejaVuSans",
        28,
        "black",
        &["Explicit language"],
    );
    let result = ocr
        .read(payload(&png, json!({"language": "eng"})))
        .await
        .unwrap();
    assert_eq!(
        (result.text.as_str(), result.language.as_str()),
        ("Explicit language", "eng")
    );
}

#[tokio::test]
async fn fetches_the_image_from_a_url() {
    let png = render(
        &["-size", "500x80", "xc:white"],
        "DejaVuSans",
        28,
        "black",
        &["Fetched over HTTP"],
    );
    let app =
        axum::Router::new().route("/sign.png", axum::routing::get(move || async move { png }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let options = Options {
        image_input: ImageInputOptions {
            allow_private_urls: true,
            ..ImageInputOptions::default()
        },
        ..Options::default()
    };
    let ocr = load(&options);
    let payload: OcrPayload =
        parse_payload(json!({"image_url": format!("http://{address}/sign.png")})).unwrap();
    assert_eq!(ocr.read(payload).await.unwrap().text, "Fetched over HTTP");
    let missing: OcrPayload =
        parse_payload(json!({"image_url": format!("http://{address}/none.png")})).unwrap();
    let error = ocr.read(missing).await.unwrap_err();
    assert_eq!(
        error,
        AlgorithmError::client(404, "Error fetching request image, received 404")
    );
}

#[tokio::test]
async fn engines_are_reused_across_calls() {
    let ocr = load(&Options::default());
    assert_eq!(ocr.pool().idle_count(), 1, "one engine is warmed at start");
    let png = render(
        &["-size", "300x80", "xc:white"],
        "DejaVuSans",
        24,
        "black",
        &["Again"],
    );
    for _ in 0..3 {
        assert_eq!(
            ocr.read(payload(&png, json!({}))).await.unwrap().text,
            "Again"
        );
        assert_eq!(ocr.pool().idle_count(), 1, "the same engine went back");
    }
}

#[test]
fn a_default_language_that_is_not_installed_stops_the_start() {
    let options = Options {
        ocr_language: Some("deu".into()),
        ..Options::default()
    };
    let error = Ocr::load(&options).expect_err("refused");
    assert!(
        error
            .to_string()
            .starts_with("the default OCR language: OCR language 'deu' is not installed"),
        "{error}"
    );
    let options = Options {
        tessdata_dir: Some("/nonexistent/tessdata".into()),
        ..Options::default()
    };
    let error = Ocr::load(&options).expect_err("refused");
    assert!(
        error.to_string().contains("/nonexistent/tessdata"),
        "{error}"
    );
}

#[test]
fn the_payload_needs_an_image_and_no_unknown_field() {
    let error =
        parse_payload::<OcrPayload>(json!({"image_base64": "AAAA", "lang": "eng"})).unwrap_err();
    assert!(error.contains("unknown field `lang`"), "{error}");
    let algorithms = switchyard_algorithms::build(&["ocr".into()], &Options::default()).unwrap();
    assert_eq!(algorithms[0].name(), "ocr");
    let properties = &algorithms[0].schema()["properties"];
    for field in ["image_url", "image_base64", "language"] {
        assert!(properties.get(field).is_some(), "{field} in {properties}");
    }
    assert!(switchyard_algorithms::available().contains(&"ocr"));
}

#[tokio::test]
async fn without_tesseract_ocr_is_unavailable_with_the_install_command_and_the_runner_serves_on() {
    let options = Options {
        tesseract_library: Some("/nonexistent/libtesseract.so.5".into()),
        ..Options::default()
    };
    let error = Ocr::load(&options).expect_err("no library, no ocr");
    let message = error.to_string();
    for needed in [
        "Tesseract is not available (/nonexistent/libtesseract.so.5: ",
        "sudo apt-get install tesseract-ocr tesseract-ocr-eng",
    ] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from: {message}"
        );
    }

    let algorithms = vec![
        switchyard_algorithms::echo_algorithm(),
        switchyard_algorithms::ocr::ocr_algorithm(&options),
    ];
    let mut runner =
        switchyard_runner::Runner::new(algorithms, switchyard_runner::RunnerConfig::default())
            .unwrap();
    runner
        .load()
        .await
        .expect("an unavailable algorithm does not stop the runner");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, runner.router()).into_future());
    let http = reqwest::Client::new();
    let ocr = http
        .post(format!("{url}/run/ocr"))
        .json(&json!({"image_base64": "AAAA"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ocr.status().as_u16(), 501);
    let body: Value = ocr.json().await.unwrap();
    assert_eq!(
        body["message"],
        format!("algorithm 'ocr' is unavailable on this runner: {message}")
    );
    let echo = http
        .post(format!("{url}/run/echo"))
        .json(&json!({"text": "still here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(echo.status().as_u16(), 200);
}
