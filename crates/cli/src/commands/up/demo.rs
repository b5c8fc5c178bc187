//! `up --demo`: runs the samples that ship in the binary through the task API and the queue, and
//! prints what each algorithm answered.

use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use serde_json::{Value, json};

/// One demo task: an algorithm, a human name for its input, and the payload.
struct Sample {
    algorithm: &'static str,
    input: &'static str,
    payload: Value,
}

/// The meme's caption goes on to `language_detection` once `ocr` has read it, as in the series.
const MEME: &str = "meme.jpg (caption)";
const MEME_TEXT: &str = "text read from meme.jpg";

fn image(name: &'static str, bytes: &[u8]) -> (&'static str, Value) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    (name, json!({ "image_base64": encoded }))
}

/// Every sample, whether or not this build hosts its algorithm.
fn samples() -> Vec<Sample> {
    let mut samples = Vec::new();
    for (input, payload) in
        switchyard_algorithms::samples::SAMPLE_IMAGES.map(|(name, bytes)| image(name, bytes))
    {
        samples.push(Sample {
            algorithm: "image_classifier",
            input,
            payload,
        });
    }
    let (input, payload) = image(MEME, include_bytes!("../../../demo/meme.jpg"));
    samples.push(Sample {
        algorithm: "ocr",
        input,
        payload,
    });
    for text in [
        "Good morning",
        "Der Zug fährt um acht Uhr ab.",
        "Où est la gare, s'il vous plaît ?",
        "¿Dónde está la biblioteca?",
        "Obrigado pela ajuda!",
        "Спасибо за помощь",
        "今日はいい天気ですね",
        "오늘 날씨가 좋네요",
    ] {
        samples.push(Sample {
            algorithm: "language_detection",
            input: text,
            payload: json!({ "text": text }),
        });
    }
    samples.push(Sample {
        algorithm: "echo",
        input: "hello, switchyard",
        payload: json!({ "text": "hello, switchyard" }),
    });
    samples
}

/// One printed row.
struct Row {
    algorithm: &'static str,
    input: &'static str,
    status: String,
    answer: String,
    millis: u128,
}

impl Row {
    fn of(algorithm: &'static str, input: &'static str, record: &Value) -> Row {
        Row {
            algorithm,
            input,
            status: record["status"].as_str().unwrap_or("?").to_string(),
            answer: summarise(record),
            millis: record["duration_ms"].as_u64().map_or(0, u128::from),
        }
    }
}

/// Submits every sample whose algorithm is hosted and can run here, waits for all of them, sends
/// the meme's text to `language_detection`, prints the table. Algorithms that cannot run on
/// this machine get a row saying so, and what to install below the table. Returns whether every
/// task that ran finished `done`.
pub(super) async fn run(api_base: &str, hosted: &[String]) -> anyhow::Result<bool> {
    let http = reqwest::Client::new();
    let unavailable = unavailable_algorithms(&http, api_base).await?;
    let (samples, skipped): (Vec<Sample>, Vec<Sample>) = samples()
        .into_iter()
        .filter(|sample| hosted.iter().any(|name| name == sample.algorithm))
        .partition(|sample| !unavailable.contains_key(sample.algorithm));
    anyhow::ensure!(
        !samples.is_empty(),
        "no demo sample for the hosted algorithms {hosted:?}"
    );
    eprintln!("demo: submitting {} tasks through the queue", samples.len());
    let started = Instant::now();
    let mut submitted = Vec::new();
    for sample in &samples {
        let id = submit(&http, api_base, sample.algorithm, &sample.payload).await?;
        submitted.push((sample.algorithm, sample.input, id));
    }
    let mut rows = Vec::new();
    let mut caption = None;
    for (algorithm, input, id) in submitted {
        let record = wait_for(&http, api_base, &id, Duration::from_secs(300)).await?;
        if input == MEME {
            caption = record["result"]["text"].as_str().map(str::to_owned);
        }
        rows.push(Row::of(algorithm, input, &record));
    }
    let detects = hosted.iter().any(|name| name == "language_detection")
        && !unavailable.contains_key("language_detection");
    if let Some(caption) = caption.filter(|_| detects) {
        let payload = json!({ "text": caption });
        let id = submit(&http, api_base, "language_detection", &payload).await?;
        let record = wait_for(&http, api_base, &id, Duration::from_secs(300)).await?;
        rows.push(Row::of("language_detection", MEME_TEXT, &record));
    }
    let ran = rows.len();
    let done = rows.iter().filter(|row| row.status == "done").count();
    let mut missing: Vec<&'static str> = skipped.iter().map(|sample| sample.algorithm).collect();
    missing.dedup();
    for &algorithm in &missing {
        rows.push(Row {
            algorithm,
            input: "(not run)",
            status: "unavail".to_owned(),
            answer: "cannot run on this machine: see below".to_owned(),
            millis: 0,
        });
    }
    print_table(&rows);
    for algorithm in &missing {
        println!("\n{algorithm} is unavailable: {}", unavailable[*algorithm]);
    }
    println!(
        "\n{ran} tasks, {done} done, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(done == ran)
}

/// The algorithms `up` hosts that cannot run here, with why (`GET /ready`).
async fn unavailable_algorithms(
    http: &reqwest::Client,
    api_base: &str,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let ready: Value = http
        .get(format!("{api_base}/ready"))
        .send()
        .await
        .context("asking whether up is ready")?
        .json()
        .await
        .context("reading /ready")?;
    Ok(serde_json::from_value(ready["unavailable"].clone()).unwrap_or_default())
}

async fn submit(
    http: &reqwest::Client,
    api_base: &str,
    algorithm: &str,
    payload: &Value,
) -> anyhow::Result<String> {
    let response = http
        .post(format!("{api_base}/v1/tasks"))
        .json(&json!({ "algorithm": algorithm, "payload": payload }))
        .send()
        .await
        .context("submitting a demo task")?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the submit answer")?;
    anyhow::ensure!(
        status.is_success(),
        "submit of a {algorithm} task refused ({status}): {body}"
    );
    Ok(body["id"]
        .as_str()
        .context("submit answer without id")?
        .to_string())
}

async fn wait_for(
    http: &reqwest::Client,
    api_base: &str,
    id: &str,
    limit: Duration,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let record: Value = http
            .get(format!("{api_base}/v1/tasks/{id}?wait=30s"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let status = record["status"].as_str().unwrap_or_default();
        if matches!(status, "done" | "failed" | "dead" | "expired" | "cancelled") {
            return Ok(record);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "task {id} still {status} after {limit:?}"
        );
    }
}

/// A short human answer: the label, language or text when the result has one.
fn summarise(record: &Value) -> String {
    if let Some(error) = record.get("error") {
        return format!("error: {}", error["message"].as_str().unwrap_or_default());
    }
    let result = &record["result"];
    let answer = if let Some(label) = result.get("label") {
        format!(
            "{} ({:.3})",
            label.as_str().unwrap_or_default(),
            result["score"].as_f64().unwrap_or_default()
        )
    } else if let Some(text) = result.get("text").and_then(Value::as_str) {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    } else if let Some(language) = result.get("language") {
        format!(
            "{} ({:.2})",
            language.as_str().unwrap_or("none"),
            result["probability"].as_f64().unwrap_or_default()
        )
    } else {
        result.to_string()
    };
    truncate(&answer, 48)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<20} {:<34} {:<7} {:<48} {:>7}",
        "ALGORITHM", "INPUT", "STATUS", "ANSWER", "MS"
    );
    for row in rows {
        println!(
            "{:<20} {:<34} {:<7} {:<48} {:>7}",
            row.algorithm,
            truncate(row.input, 34),
            row.status,
            row.answer,
            row.millis
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_pick_the_meaningful_field() {
        let classified =
            json!({"status": "done", "result": {"label": "espresso", "score": 0.9571}});
        assert_eq!(summarise(&classified), "espresso (0.957)");
        let language =
            json!({"status": "done", "result": {"language": "en", "probability": 0.991}});
        assert_eq!(summarise(&language), "en (0.99)");
        let ocr = json!({"status": "done", "result": {"text": "Plug and\nplay", "language": "eng", "lines": []}});
        assert_eq!(summarise(&ocr), "Plug and play");
        let failed = json!({"status": "failed", "error": {"kind": "rejected", "message": "bad"}});
        assert_eq!(summarise(&failed), "error: bad");
    }

    #[test]
    fn every_built_in_algorithm_has_a_sample() {
        let samples = samples();
        for algorithm in ["image_classifier", "ocr", "language_detection", "echo"] {
            assert!(
                samples.iter().any(|sample| sample.algorithm == algorithm),
                "{algorithm}"
            );
        }
    }
}
