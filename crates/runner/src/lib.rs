//! The runner library: an algorithm author writes a typed function, registers it, and gets an
//! HTTP server that validates payloads against the derived schema, limits concurrency, reports
//! metrics and announces itself to discovery.
//!
//! ```no_run
//! use switchyard_runner::{AlgorithmError, RunnerConfig, algorithm, serve};
//! use tokio_util::sync::CancellationToken;
//!
//! /// Counts the words of a text.
//! #[algorithm]
//! fn word_count(text: String) -> Result<usize, AlgorithmError> {
//!     Ok(text.split_whitespace().count())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, vec![word_count_algorithm()], RunnerConfig::default(), CancellationToken::new()).await?;
//! # Ok(()) }
//! ```

mod algorithm;
mod announce;
mod call;
mod config;
mod error;
mod hosted;
mod metrics;
mod openapi;
mod routes;
mod server;
mod state;

pub use algorithm::{Algorithm, AlgorithmError, Limits, blocking, parse_payload, schema_of};
pub use config::{DEFAULT_MAX_BODY_BYTES, RunnerConfig};
pub use error::RunnerError;
pub use server::{Runner, serve};
pub use switchyard_runner_macros::algorithm;

/// Re-exports the `#[algorithm]` expansion refers to, so authors need no serde or schemars
/// dependency of their own. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use schemars;
    pub use serde;
}
