//! Flags of the built-in algorithms, shared by `runner` and `up`.

/// Settings of the built-in algorithms.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AlgorithmFlags {
    /// ISO 639-1 codes `language_detection` chooses among (e.g. `en,de,fr`); default: every
    /// language the build detects. Fewer languages load faster and confuse less.
    #[arg(long, env = "SWITCHYARD_DETECTION_LANGUAGES", value_delimiter = ',')]
    pub detection_languages: Vec<String>,
}

impl AlgorithmFlags {
    pub fn to_options(&self) -> switchyard_algorithms::Options {
        switchyard_algorithms::Options {
            detection_languages: self.detection_languages.clone(),
            ..switchyard_algorithms::Options::default()
        }
    }
}
