//! The runner library: an algorithm author writes a typed function, registers it, and gets an
//! HTTP server that validates payloads against the derived schema, limits concurrency, reports
//! metrics and announces itself to discovery.

mod algorithm;

pub use algorithm::{AlgorithmError, Algorithm, Limits, blocking, parse_payload, schema_of};
pub use switchyard_runner_macros::algorithm;

/// Re-exports the `#[algorithm]` expansion refers to, so authors need no serde or schemars
/// dependency of their own. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use schemars;
    pub use serde;
}
