//! One module per subcommand: its flags (`Args`) and its `run`.

pub(crate) mod bench;
pub(crate) mod cancel;
pub(crate) mod controller;
pub(crate) mod dashboard;
pub(crate) mod dead_letters;
pub(crate) mod discovery;
pub(crate) mod runner;
pub(crate) mod schemas;
pub(crate) mod submit;
pub(crate) mod up;

/// One subcommand's flags parsed on their own, for the tests of its module.
#[cfg(test)]
#[derive(clap::Parser)]
pub(crate) struct FlagsOnly<A: clap::Args> {
    #[command(flatten)]
    pub args: A,
}
