//! The `switchyard` command: every component of the worker, and `up` to run them all in one
//! process. This file only parses the command line; each subcommand lives in `commands/`.

mod algorithm_flags;
mod allocator;
mod amqp_flags;
mod commands;
mod config;
mod duration;
mod shared_flags;
mod shutdown;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Plug & play analysis worker: queue in, algorithms, results out"
)]
struct Cli {
    /// Configuration file; its keys are the flags' long names (also `SWITCHYARD_*` variables).
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_CONFIG",
        default_value = "switchyard.toml"
    )]
    config: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole worker in one process: discovery, built-in runners, controller and task API.
    Up(commands::up::Args),
    /// Run the registry that runners announce themselves to.
    Discovery(commands::discovery::Args),
    /// Run a runner hosting built-in algorithms.
    Runner(commands::runner::Args),
    /// Run the controller: consume tasks, route them to runners, publish results.
    Controller(commands::controller::Args),
    /// Publish tasks (and wait for their results).
    Submit(commands::submit::Args),
    /// Serve the dashboard and task API for components running apart on RabbitMQ.
    Dashboard(commands::dashboard::Args),
    /// Cancel tasks through `up`'s task API, or on RabbitMQ with `--amqp`: a task not yet
    /// running is never run.
    Cancel(commands::cancel::Args),
    /// Print every algorithm's payload schema, from every registered runner.
    Schemas(commands::schemas::Args),
    /// List or replay dead-lettered tasks.
    DeadLetters(commands::dead_letters::Args),
    /// Measure what the worker adds: throughput and latency against the bare broker, images/s
    /// against the model alone, peak memory.
    Bench(commands::bench::Args),
}

/// Runs the command; an error that stops it is one line on stderr, its causes joined with ": "
/// (which queue, which property, what to do), and exit status 1.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchyard: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    allocator::return_large_buffers_to_the_kernel();
    let config_path = config::path_from_args(std::env::args_os());
    let subcommand = config::subcommand_from_args(std::env::args_os());
    let flags = config::Flags::of(&<Cli as clap::CommandFactory>::command());
    config::load_into_env(&config_path, subcommand.as_deref(), &flags)?;
    let variables = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
    flags.check_environment(subcommand.as_deref(), variables)?;
    let cli = Cli::parse();
    // The bench's progress lines are its output; the brokers' info lines would bury them.
    let _log_writer = init_tracing(match cli.command {
        Command::Bench(_) => "warn",
        // lapin logs every channel the broker closes and every failed connection attempt as an
        // error, including the refusal that tells Switchyard a queue exists with other
        // properties (then adopted); each reaches Switchyard's code as an error, which says it
        // once, with its context and what to do.
        _ => "info,lapin=off,tract=warn,ort=warn",
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => commands::up::run(args).await,
            Command::Discovery(args) => commands::discovery::run(args).await,
            Command::Runner(args) => commands::runner::run(args).await,
            Command::Controller(args) => commands::controller::run(args).await,
            Command::Submit(args) => commands::submit::run(args).await,
            Command::Cancel(args) => commands::cancel::run(args).await,
            Command::Dashboard(args) => commands::dashboard::run(args).await,
            Command::Schemas(args) => commands::schemas::run(args).await,
            Command::DeadLetters(args) => commands::dead_letters::run(args).await,
            Command::Bench(args) => commands::bench::run(args).await,
        }
    });
    // Blocking tasks (inference, fetches) must not keep a finished command alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    // `_log_writer` drops after this line, flushing the last log lines.
    outcome
}

/// Logs go through a writer thread: a task's one info line must never stall a
/// tokio worker on a slow disk or a full pipe (a container's stderr). Nothing is
/// dropped (`lossy(false)`): a full buffer makes the logger wait, not lie.
/// The returned guard flushes the buffer when `main` ends. An event after that (a
/// library's background thread noticing a connection closed at exit) has nowhere to go:
/// it is dropped quietly instead of printing the writer's complaint among a failed
/// command's one error line.
fn init_tracing(default_filter: &str) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("switchyard-log")
        .finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .log_internal_errors(false)
        .compact()
        .init();
    guard
}
