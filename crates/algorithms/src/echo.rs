//! `echo`: a no-op algorithm for tests and benchmarks; it measures the runner, not a model.

use serde::Serialize;
use switchyard_runner::{AlgorithmError, algorithm};

/// What `echo` answers: enough to check a round trip carried the payload intact.
#[derive(Debug, Serialize)]
pub struct Echo {
    /// The text, as received.
    pub text: String,
    /// Its length in bytes.
    pub length: usize,
}

/// Returns the text and its byte length.
#[algorithm]
pub fn echo(text: String) -> Result<Echo, AlgorithmError> {
    Ok(Echo {
        length: text.len(),
        text,
    })
}
