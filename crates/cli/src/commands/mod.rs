//! One module per subcommand: its flags (`Args`) and its `run`.

pub mod bench;
pub mod cancel;
pub mod controller;
pub mod dashboard;
pub mod dead_letters;
pub mod discovery;
pub mod runner;
pub mod schemas;
pub mod submit;
pub mod up;

/// One subcommand's flags parsed on their own, for the tests of its module.
#[cfg(test)]
#[derive(clap::Parser)]
pub struct FlagsOnly<A: clap::Args> {
    #[command(flatten)]
    pub args: A,
}
