//! Switchyard's built-in algorithms. Each is an ordinary runner-library algorithm: this crate
//! knows nothing of queues, controllers or discovery.

#[cfg(feature = "classifier")]
pub mod classifier;
pub mod echo;
pub mod image_input;
#[cfg(feature = "language-detection")]
pub mod language_detection;
#[cfg(feature = "ocr")]
pub mod ocr;
pub mod samples;

pub use echo::echo_algorithm;

use switchyard_runner::Algorithm;

/// Settings of the built-in algorithms, filled from the command line or `switchyard.toml`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// How image algorithms fetch and decode their input.
    pub image_input: image_input::ImageInputOptions,
    /// Which model `image_classifier` loads, and on which engine.
    #[cfg(feature = "classifier")]
    pub classifier: classifier::ClassifierOptions,
    /// ISO 639-1 codes `language_detection` is limited to; empty: every language of this build.
    pub detection_languages: Vec<String>,
    /// Tesseract language(s) `ocr` reads when a payload names none; default `eng`.
    pub ocr_language: Option<String>,
    /// Directory of Tesseract's `*.traineddata`; default: `TESSDATA_PREFIX`, then the usual places.
    pub tessdata_dir: Option<std::path::PathBuf>,
    /// Tesseract's shared library; default: `libtesseract.so.5` and its kin, wherever the
    /// dynamic loader finds them.
    pub tesseract_library: Option<std::path::PathBuf>,
}

/// Every built-in algorithm this build can host, by name.
pub fn available() -> Vec<&'static str> {
    [
        Some("echo"),
        cfg!(feature = "classifier").then_some("image_classifier"),
        cfg!(feature = "language-detection").then_some("language_detection"),
        cfg!(feature = "ocr").then_some("ocr"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A name no built-in algorithm answers to.
#[derive(Debug, thiserror::Error)]
#[error("unknown algorithm '{name}'; this build hosts: {}", available().join(", "))]
pub struct UnknownAlgorithm {
    /// The name that was asked for.
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
            #[cfg(feature = "classifier")]
            "image_classifier" => Ok(classifier::image_classifier_algorithm(
                &options.classifier,
                &options.image_input,
            )),
            #[cfg(feature = "language-detection")]
            "language_detection" => Ok(language_detection::language_detection_algorithm(
                &options.detection_languages,
            )),
            #[cfg(feature = "ocr")]
            "ocr" => Ok(ocr::ocr_algorithm(options)),
            _ => Err(UnknownAlgorithm { name: name.clone() }),
        })
        .collect()
}
