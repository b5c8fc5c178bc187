//! `switchyard up`: the whole worker in one process. Discovery, one runner hosting the built-in
//! algorithms, the controller and the HTTP task API, on the embedded SQLite queue under `--data`
//! or on RabbitMQ with `--amqp`. External runners register with its discovery like anywhere else.

mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;
use switchyard_api::{Catalog, Queues, TaskApi, TaskStore};
use switchyard_broker::amqp::{AmqpBroker, AmqpConfig, TaskQueueProperties};
use switchyard_broker::embedded::{EmbeddedBroker, EmbeddedConfig};
use switchyard_broker::{Broker, QueueNames, ResultSource};
use switchyard_controller::{Controller, ControllerConfig};
use switchyard_discovery::DiscoveryClient;
use switchyard_runner::RunnerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::algorithm_flags::AlgorithmFlags;
use crate::shared_flags::TokenFlags;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the task API listens.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where discovery listens; external runners register here.
    #[arg(
        long,
        env = "SWITCHYARD_DISCOVERY_LISTEN",
        default_value = "127.0.0.1:8500"
    )]
    discovery_listen: SocketAddr,
    /// Directory of the embedded queue and the task store.
    #[arg(long, env = "SWITCHYARD_DATA", default_value = "./switchyard-data")]
    data: PathBuf,
    /// Run on RabbitMQ at this URL instead of the embedded queue (`--broker` is the old name).
    #[arg(long, env = "SWITCHYARD_AMQP", visible_alias = "broker")]
    amqp: Option<String>,
    /// With `--amqp`: how the task queue is declared when it does not exist yet
    /// (`switchyard` or `series`; see `switchyard controller --help`).
    #[arg(
        long,
        env = "SWITCHYARD_TASK_QUEUE_PROPERTIES",
        default_value = "switchyard"
    )]
    task_queue_properties: TaskQueueProperties,
    /// Name of the task queue (results and dead letters are named after it).
    #[arg(long, env = "SWITCHYARD_QUEUE", default_value = "tasks")]
    queue: String,
    /// Built-in algorithms to host; default: every one this build has.
    #[arg(long, env = "SWITCHYARD_ALGORITHMS", value_delimiter = ',')]
    algorithms: Vec<String>,
    /// Tasks the controller handles at once.
    #[arg(long, env = "SWITCHYARD_CONCURRENCY", default_value_t = 8)]
    concurrency: usize,
    /// Tries per task before a task that keeps failing is dead-lettered.
    #[arg(long, env = "SWITCHYARD_MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: u32,
    #[command(flatten)]
    token: TokenFlags,
    /// How long finished tasks are kept in the task store, e.g. `7d`, or `forever`; a pruned
    /// task's lookup answers 410 Gone.
    #[arg(long, env = "SWITCHYARD_RETAIN", default_value = "7d")]
    retain: Keep,
    /// How long finished tasks' payloads are kept (their results stay until --retain), or
    /// `forever` [default: forever].
    #[arg(long, env = "SWITCHYARD_RETAIN_PAYLOADS", default_value = "forever")]
    retain_payloads: Keep,
    /// Run the bundled samples through the queue, print the answers, and exit.
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    algorithm_flags: AlgorithmFlags,
}

/// The broker, seen through each trait the components need.
struct Backend {
    broker: Arc<dyn Broker>,
    results: Arc<dyn ResultSource>,
    /// What the task API reads and replays.
    queues: Queues,
    lease_probe: Option<switchyard_api::LeaseProbe>,
    description: String,
}

async fn open_backend(args: &Args) -> anyhow::Result<Backend> {
    let queues = QueueNames::new(args.queue.clone());
    if let Some(url) = &args.amqp {
        let broker = Arc::new(
            AmqpBroker::connect(AmqpConfig {
                task_queue: args.task_queue_properties,
                ..AmqpConfig::new(url.clone(), queues)
            })
            .await
            .context("connecting to the AMQP broker")?,
        );
        return Ok(Backend {
            broker: broker.clone(),
            results: broker.clone(),
            queues: Queues::of(broker),
            lease_probe: None,
            description: "RabbitMQ".into(),
        });
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating the data directory {}", args.data.display()))?;
    let path = args.data.join("queue.db");
    let broker = Arc::new(
        EmbeddedBroker::open(&path, queues, EmbeddedConfig::default())
            .await
            .with_context(|| format!("opening the embedded queue {}", path.display()))?,
    );
    let probe_broker = broker.clone();
    let lease_probe: switchyard_api::LeaseProbe = Arc::new(move |id: String| {
        let broker = probe_broker.clone();
        async move { broker.is_leased(&id).await.unwrap_or(false) }.boxed()
    });
    Ok(Backend {
        broker: broker.clone(),
        results: broker.clone(),
        queues: Queues::of(broker),
        lease_probe: Some(lease_probe),
        description: format!("embedded queue at {}", path.display()),
    })
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let token = args.token.token()?;
    let names = if args.algorithms.is_empty() {
        switchyard_algorithms::available()
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        args.algorithms.clone()
    };
    let algorithms = switchyard_algorithms::build(&names, &args.algorithm_flags.to_options())?;
    let shutdown = crate::shutdown::on_signal();
    let backend = open_backend(&args).await?;
    let store = TaskStore::open(&args.data_path("tasks.db")?).context("opening the task store")?;

    let discovery_listener = TcpListener::bind(args.discovery_listen)
        .await
        .with_context(|| format!("binding discovery to {}", args.discovery_listen))?;
    let discovery_url = format!("http://{}", discovery_listener.local_addr()?);
    let discovery_client = DiscoveryClient::new(discovery_url.clone(), token.clone());
    let api_listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the task API to {}", args.listen))?;
    let api_url = format!("http://{}", api_listener.local_addr()?);
    let runner_listener = TcpListener::bind("127.0.0.1:0").await?;

    // Discovery stops last: the runner deregisters from it on the way out.
    let discovery_stop = CancellationToken::new();
    let mut discovery = tokio::task::JoinSet::new();
    let discovery_config = switchyard_discovery::Config {
        token: token.clone(),
        ..Default::default()
    };
    discovery.spawn(named(
        "discovery",
        switchyard_discovery::serve(discovery_listener, discovery_config, discovery_stop.clone())
            .map(|served| served.map_err(anyhow::Error::from)),
    ));
    let mut components = tokio::task::JoinSet::new();
    let runner_config = RunnerConfig {
        discovery: Some(discovery_client.clone()),
        token: token.clone(),
        ..Default::default()
    };
    components.spawn(named(
        "runner",
        switchyard_runner::serve(runner_listener, algorithms, runner_config, shutdown.clone())
            .map(|served| served.map_err(anyhow::Error::from)),
    ));
    let controller = Controller::new(
        backend.broker.clone(),
        ControllerConfig {
            concurrency: args.concurrency,
            max_attempts: args.max_attempts,
            token: token.clone(),
            ..Default::default()
        },
        discovery_client.clone(),
    )?
    .with_tombstones(Arc::new(StoreTombstones(store.clone())));
    let controller_shutdown = shutdown.clone();
    components.spawn(named("controller", async move {
        controller
            .run(controller_shutdown)
            .await
            .map_err(anyhow::Error::from)
    }));

    let mut api = TaskApi::new(
        backend.queues.clone(),
        store.clone(),
        Catalog::new(discovery_client).expecting(names.iter().cloned()),
    )
    .with_token(token.clone());
    if let Some(probe) = backend.lease_probe.clone() {
        api = api.with_lease_probe(probe);
    }
    serve_task_api(
        api,
        TaskApiParts {
            store,
            results: backend.results.clone(),
            listener: api_listener,
            retention: switchyard_api::retention::Retention {
                tasks: args.retain.0,
                payloads: args.retain_payloads.0,
            },
        },
        &mut components,
        &shutdown,
    )
    .await?;
    tracing::info!(
        api = %api_url, discovery = %discovery_url, broker = %backend.description,
        algorithms = %names.join(","),
        "switchyard up: dashboard at {api_url}/, task API docs at {api_url}/docs"
    );

    let outcome = if args.demo {
        let demo = async {
            wait_until_ready(&api_url, &names, Duration::from_secs(600)).await?;
            demo::run(&api_url, &names).await
        };
        // Biased: once shutdown is requested, components ending is expected, not a failure.
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => None,
            outcome = demo => Some(outcome),
            failed = components.join_next() => Some(Err(component_failure(failed))),
            failed = discovery.join_next() => Some(Err(component_failure(failed))),
        }
    } else {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => None,
            failed = components.join_next() => Some(Err(component_failure(failed))),
            failed = discovery.join_next() => Some(Err(component_failure(failed))),
        }
    };
    shutdown.cancel();
    wait_for_every(&mut components).await;
    discovery_stop.cancel();
    wait_for_every(&mut discovery).await;
    match outcome {
        Some(Ok(true)) | None => Ok(()),
        Some(Ok(false)) => anyhow::bail!("demo: not every task finished ok (see the table above)"),
        Some(Err(error)) => Err(error),
    }
}

impl Args {
    fn data_path(&self, file: &str) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.data)
            .with_context(|| format!("creating the data directory {}", self.data.display()))?;
        Ok(self.data.join(file))
    }
}

/// What [`serve_task_api`] needs besides the API itself.
pub(crate) struct TaskApiParts {
    pub store: TaskStore,
    /// Where the controllers publish results of tasks without `reply_to`.
    pub results: Arc<dyn ResultSource>,
    pub listener: TcpListener,
    pub retention: switchyard_api::retention::Retention,
}

/// Starts the task API and what keeps its store true, as components of `components`: tasks
/// accepted before the last stop are republished, results are collected from the results
/// queue, finished tasks are pruned, and the dashboard's figures are sampled.
pub(crate) async fn serve_task_api(
    api: TaskApi,
    parts: TaskApiParts,
    components: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let republished = api.republish_unconfirmed().await?;
    if republished > 0 {
        tracing::info!(
            republished,
            "republished tasks accepted before the last stop"
        );
    }
    components.spawn(named(
        "pruner",
        switchyard_api::retention::prune(parts.store.clone(), parts.retention, shutdown.clone())
            .map(Ok),
    ));
    components.spawn(named(
        "dashboard sampler",
        switchyard_api::overview::sample(
            api.clone(),
            switchyard_api::overview::SAMPLE_INTERVAL,
            shutdown.clone(),
        )
        .map(Ok),
    ));
    components.spawn(named(
        "result collector",
        switchyard_api::collector::collect_results(
            parts.results,
            parts.store,
            api.finished_sender(),
            shutdown.clone(),
        )
        .map(Ok),
    ));
    let router = switchyard_api::router(api, switchyard_runner::DEFAULT_MAX_BODY_BYTES);
    let api_shutdown = shutdown.clone();
    let listener = parts.listener;
    components.spawn(named("task API", async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(api_shutdown.cancelled_owned())
            .await
            .map_err(anyhow::Error::from)
    }));
    Ok(())
}

/// Waits for every component of `set` to stop; a failure on the way out is logged, not fatal.
pub(crate) async fn wait_for_every(set: &mut tokio::task::JoinSet<anyhow::Result<()>>) {
    while let Some(finished) = set.join_next().await {
        if let Ok(Err(error)) = finished {
            tracing::warn!("during shutdown: {error:#}");
        }
    }
}

/// Labels a component's failure with its name.
async fn named(
    name: &'static str,
    component: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    component.await.with_context(|| format!("{name} failed"))
}

pub(crate) fn component_failure(
    finished: Option<Result<anyhow::Result<()>, tokio::task::JoinError>>,
) -> anyhow::Error {
    match finished {
        Some(Ok(Err(error))) => error,
        Some(Ok(Ok(()))) => anyhow::anyhow!("a component stopped unexpectedly"),
        Some(Err(join_error)) => anyhow::anyhow!("a component crashed: {join_error}"),
        None => anyhow::anyhow!("no component is running"),
    }
}

/// Waits until `up` is ready (`GET /ready`): every algorithm loaded, or found unable to run
/// here. The classifier's model takes seconds.
async fn wait_until_ready(api_url: &str, names: &[String], limit: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + limit;
    eprintln!("demo: waiting for {} to load", names.join(", "));
    loop {
        if let Ok(response) = http.get(format!("{api_url}/ready")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "algorithms not ready after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long something is kept: a duration (`7d`, `12h`), or `forever` (`None`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keep(pub Option<Duration>);

impl std::str::FromStr for Keep {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "forever" => Ok(Keep(None)),
            other => switchyard_wire::duration::parse_duration(other).map(|keep| Keep(Some(keep))),
        }
    }
}

/// Cancellations are recorded in the task store (`DELETE /v1/tasks/{id}`); the controller asks
/// it before every call to a runner.
struct StoreTombstones(TaskStore);

impl switchyard_controller::Tombstones for StoreTombstones {
    fn is_cancelled<'a>(&'a self, task_id: &'a str) -> futures::future::BoxFuture<'a, bool> {
        Box::pin(async move {
            self.0
                .is_cancelled(task_id.to_owned())
                .await
                .unwrap_or_else(|error| {
                    tracing::warn!(
                        task_id,
                        "cannot read cancellations, running the task: {error}"
                    );
                    false
                })
        })
    }
}
