//! Switchyard's built-in algorithms. Each is an ordinary runner-library algorithm: this crate
//! knows nothing of queues, controllers or discovery.

mod echo;
#[cfg(feature = "language-detection")]
pub mod language_detection;

pub use echo::echo_algorithm;

use switchyard_runner::Algorithm;

/// Settings of the built-in algorithms, filled from the command line or `switchyard.toml`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// ISO 639-1 codes `language_detection` is limited to; empty: every language of this build.
    pub detection_languages: Vec<String>,
}

/// Every built-in algorithm this build can host, by name.
pub fn available() -> Vec<&'static str> {
    let mut names = vec!["echo"];
    #[cfg(feature = "language-detection")]
    names.push("language_detection");
    names
}

/// A name no built-in algorithm answers to.
#[derive(Debug, thiserror::Error)]
#[error("unknown algorithm '{name}'; this build hosts: {}", available().join(", "))]
pub struct UnknownAlgorithm {
    pub name: String,
}

/// Builds the named algorithms. Loading heavy state (models) happens later, when the runner
/// starts them, so this is cheap.
pub fn build(names: &[String], options: &Options) -> Result<Vec<Algorithm>, UnknownAlgorithm> {
    let _ = options;
    names
        .iter()
        .map(|name| match name.as_str() {
            "echo" => Ok(echo_algorithm()),
            #[cfg(feature = "language-detection")]
            "language_detection" => Ok(language_detection::language_detection_algorithm(
                &options.detection_languages,
            )),
            _ => Err(UnknownAlgorithm { name: name.clone() }),
        })
        .collect()
}
