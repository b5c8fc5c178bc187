//! A runner of your own, hosting two algorithms: `word_count`, a plain function, and `keywords`,
//! which loads its state once at start. docs/writing-an-algorithm.md walks through this file.
//!
//! ```sh
//! SWITCHYARD_DISCOVERY=http://127.0.0.1:8500 \
//!   cargo run -p switchyard-algorithms --example word_count_runner
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use switchyard_discovery::DiscoveryClient;
use switchyard_runner::{Algorithm, AlgorithmError, RunnerConfig, algorithm, blocking, serve};
use tokio_util::sync::CancellationToken;

/// The answer of `word_count`.
#[derive(Debug, PartialEq, Serialize)]
pub struct WordCount {
    /// Words, separated by white space.
    pub words: usize,
    /// Words that differ, ignoring case.
    pub distinct: usize,
}

/// Counts the words of a text, and how many differ (ignoring case).
#[algorithm]
pub fn word_count(
    /// The text to count.
    text: String,
) -> Result<WordCount, AlgorithmError> {
    let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    let distinct = words.iter().collect::<HashSet<_>>().len();
    Ok(WordCount {
        words: words.len(),
        distinct,
    })
}

/// The payload of `keywords`, written by hand: a default and a bound the macro cannot express.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeywordsPayload {
    /// The text to find keywords in.
    pub text: String,
    /// How many keywords to return (1 to 50, default 5).
    #[serde(default = "default_top")]
    pub top: usize,
}

fn default_top() -> usize {
    5
}

/// Words too common to be keywords; loaded once, shared by every call.
#[derive(Debug)]
pub struct StopWords(HashSet<String>);

impl StopWords {
    /// One word a line from the file `SWITCHYARD_STOPWORDS` names, else a short English list.
    pub fn load() -> Result<Self, AlgorithmError> {
        let text = match std::env::var("SWITCHYARD_STOPWORDS") {
            Ok(path) => std::fs::read_to_string(&path)
                .map_err(|e| AlgorithmError::internal(format!("cannot read {path}: {e}")))?,
            Err(_) => {
                "a an and are as at be by for in is it of on or the to was with".replace(' ', "\n")
            }
        };
        Ok(StopWords(
            text.lines()
                .map(|word| word.trim().to_lowercase())
                .collect(),
        ))
    }

    /// The `top` most frequent words that are not stop words, most frequent first.
    pub fn keywords(&self, text: &str, top: usize) -> Vec<String> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            let word = word.to_lowercase();
            if !self.0.contains(&word) {
                *counts.entry(word).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
        // Stable: equally frequent words stay in alphabetical order.
        ranked.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        ranked.into_iter().take(top).map(|(word, _)| word).collect()
    }
}

/// Registers `keywords`: the stop words load when the runner starts, before it says it is ready.
pub fn keywords_algorithm() -> Algorithm {
    Algorithm::with_state(
        "keywords",
        StopWords::load,
        |stop_words: Arc<StopWords>, payload: KeywordsPayload| {
            // CPU work goes to the blocking pool; the reactor keeps serving other calls.
            blocking(move || {
                if !(1..=50).contains(&payload.top) {
                    return Err(AlgorithmError::bad_input(format!(
                        "top must be between 1 and 50, got {}",
                        payload.top
                    )));
                }
                Ok(stop_words.keywords(&payload.text, payload.top))
            })
        },
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let listen = std::env::var("SWITCHYARD_LISTEN").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let discovery = std::env::var("SWITCHYARD_DISCOVERY")
        .ok()
        .map(|url| DiscoveryClient::new(url, std::env::var("SWITCHYARD_TOKEN").ok()));
    let config = RunnerConfig {
        discovery,
        ..RunnerConfig::default()
    };

    let shutdown = CancellationToken::new();
    let on_ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_ctrl_c.cancel();
    });

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let algorithms = vec![word_count_algorithm(), keywords_algorithm()];
    serve(listener, algorithms, config, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use switchyard_runner::Runner;

    /// Calls `algorithm` through a real runner, as the controller would.
    async fn call(algorithm: &str, payload: Value) -> (u16, Value) {
        let algorithms = vec![word_count_algorithm(), keywords_algorithm()];
        let mut runner = Runner::new(algorithms, RunnerConfig::default()).unwrap();
        runner.load().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = runner.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let response = reqwest::Client::new()
            .post(format!("http://{address}/run/{algorithm}"))
            .json(&payload)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    #[tokio::test]
    async fn counts_words() {
        let (status, body) = call("word_count", json!({"text": "the cat saw The dog"})).await;
        assert_eq!(
            (status, body),
            (200, json!({"result": {"words": 5, "distinct": 4}}))
        );
        let (status, body) = call("word_count", json!({"txt": "typo"})).await;
        assert_eq!(status, 400, "{body}");
    }

    #[tokio::test]
    async fn finds_keywords_without_stop_words() {
        let text = "The rust compiler checks the borrow; the borrow checker is the rust compiler.";
        let (status, body) = call("keywords", json!({"text": text, "top": 2})).await;
        assert_eq!(
            (status, body),
            (200, json!({"result": ["borrow", "compiler"]}))
        );
        let (status, body) = call("keywords", json!({"text": text, "top": 0})).await;
        assert_eq!(status, 400);
        assert_eq!(body["message"], "top must be between 1 and 50, got 0");
    }

    #[test]
    fn the_guide_shows_this_very_file() {
        let guide = include_str!("../../../docs/writing-an-algorithm.md");
        assert!(
            guide.contains(include_str!("word_count_runner.rs")),
            "docs/writing-an-algorithm.md must quote examples/word_count_runner.rs whole"
        );
    }
}
