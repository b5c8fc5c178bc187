//! Flags of the built-in algorithms, shared by `runner` and `up`.

/// Settings of the built-in algorithms.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AlgorithmFlags {}

impl AlgorithmFlags {
    pub fn to_options(&self) -> switchyard_algorithms::Options {
        switchyard_algorithms::Options::default()
    }
}
