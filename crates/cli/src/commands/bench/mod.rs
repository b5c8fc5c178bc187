//! `switchyard bench`: what the worker adds to the work, measured in one run.
//!
//! Every worker figure sits next to a ceiling measured in the same run on the same machine:
//! - queues: the broker round trip with no worker in it (publish a task, consume it, publish its
//!   result, consume the result) against the same trip through the controller and a runner;
//! - classification: the model alone against images through the whole worker.
//!
//! The controller, the runner and discovery run as child processes of this binary, as they are
//! deployed, so their peak memory is their own; producing and measuring stay in this process.
//! The embedded queue runs its controller in this process, as `switchyard up` does.

mod ceiling;
mod children;
mod classify;
mod cpu;
mod peer;
mod report;
mod roundtrip;
mod rss;
mod turns;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use switchyard_broker::amqp::{AmqpBroker, AmqpConfig};
use switchyard_broker::embedded::{EmbeddedBroker, EmbeddedConfig};
use switchyard_broker::{Broker, Message, QueueNames};
use switchyard_controller::{Controller, ControllerConfig};
use switchyard_discovery::DiscoveryClient;
use switchyard_wire::{Task, new_task_id};
use tokio_util::sync::CancellationToken;

use children::Children;
use classify::ClassifyFigures;
use peer::DirectFigures;
use report::{Figures, LatencyFigures, QueueFigures};
use roundtrip::{Percentiles, Producer};
use turns::{in_turns, overall_rate};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// RabbitMQ to measure on; every run uses queues of its own (`bench-<uuid>...`) and deletes
    /// them at the end.
    #[arg(
        long,
        env = "SWITCHYARD_AMQP",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    amqp: String,
    /// A small run (300 echo tasks, 8 images) that finishes in under a minute, even unoptimised.
    #[arg(long)]
    quick: bool,
    /// Print the figures as one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Echo tasks per throughput measurement, shared out over its rounds
    /// [default: 20000 in 4 rounds, --quick 300 in 2].
    #[arg(long)]
    tasks: Option<usize>,
    /// Images classified per measurement, shared out over its rounds; a quarter as many (at
    /// least one per core) for the 12 MP photo and the screenshot
    /// [default: 400 in 4 rounds, --quick 8 in 2].
    #[arg(long)]
    images: Option<usize>,
    /// The controller's concurrency, which is also its prefetch and the ceiling's.
    #[arg(long, default_value_t = ControllerConfig::default().concurrency)]
    concurrency: usize,
    /// The classifier users would deploy instead (FastAPI + onnxruntime + Pillow), measured
    /// against Switchyard's runner: this repository's `bench/peers`, once its `setup.sh` has
    /// made its environment.
    #[arg(long, default_value = "bench/peers")]
    peer: PathBuf,
    /// Leave the peer out.
    #[arg(long)]
    no_peer: bool,
}

/// How much each measurement does.
struct Sizes {
    tasks: usize,
    images: usize,
    /// Latency runs send about this long's worth of tasks at the offered load...
    latency_seconds: f64,
    /// ...but at least and at most this many.
    latency_tasks: (usize, usize),
    /// Tasks sent first and not measured: connections, caches and the runner's pool warm up.
    warm_up: usize,
    /// Each queue measurement is split into this many rounds, ceiling and worker taking turns.
    rounds: usize,
}

impl Args {
    fn sizes(&self) -> Sizes {
        let (tasks, images, latency_seconds, latency_tasks, warm_up, rounds) = if self.quick {
            (300, 8, 1.0, (100, 300), 20, 2)
        } else {
            (20_000, 400, 10.0, (1_000, 20_000), 200, 4)
        };
        Sizes {
            tasks: self.tasks.unwrap_or(tasks).max(1),
            images: self.images.unwrap_or(images).max(1),
            latency_seconds,
            latency_tasks,
            warm_up,
            rounds,
        }
    }
}

impl Sizes {
    fn latency_tasks(&self, rate: f64) -> usize {
        let (least, most) = self.latency_tasks;
        ((rate * self.latency_seconds) as usize).clamp(least, most)
    }

    /// `total` tasks shared out over the rounds.
    fn per_round(&self, total: usize) -> usize {
        total.div_ceil(self.rounds).max(1)
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=usize::from(u16::MAX)).contains(&args.concurrency),
        "--concurrency must be between 1 and 65535"
    );
    if !args.no_peer {
        peer::python(&args.peer)?;
    }
    let sizes = args.sizes();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let prefix = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let scratch = tempfile::Builder::new()
        .prefix("switchyard-bench-")
        .tempdir()
        .context("creating a scratch directory")?;
    eprintln!(
        "switchyard bench{}: {} echo tasks, {} images, concurrency {}, {cores} cores; queues {prefix}.*",
        if args.quick { " --quick" } else { "" },
        sizes.tasks,
        sizes.images,
        args.concurrency
    );

    let model = classify::load_model(cores).await?;
    eprintln!("model loaded: {}", model.engine_name());
    let mut children = Children::start(
        scratch.path(),
        model.engine_name(),
        &args.amqp,
        &format!("{prefix}.worker"),
        args.concurrency,
    )
    .await?;

    let measured = measure(
        &args,
        &sizes,
        cores,
        &prefix,
        scratch.path(),
        &model,
        &mut children,
    )
    .await;
    // Read before the children stop: an exited process has no memory figures.
    let rss = children.peak_rss_mb();
    children.stop().await;
    let cleanup = delete_queues(&args.amqp, &prefix).await;
    let ((rabbitmq, embedded, classify, direct), (controller_rss_mb, runner_rss_mb)) =
        match measured.and_then(|measured| Ok((measured, rss?))) {
            Ok(figures) => figures,
            Err(error) => {
                // The children's logs usually say why.
                let logs = scratch.keep();
                return Err(error.context(format!(
                    "logs of the child processes kept in {}",
                    logs.display()
                )));
            }
        };
    cleanup?;
    let figures = Figures {
        rabbitmq,
        embedded,
        classify,
        direct,
        controller_rss_mb,
        runner_rss_mb,
        engine: model.engine_name(),
        cores,
        concurrency: args.concurrency,
        quick: args.quick,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures.to_json())?);
    } else {
        println!("{}", figures.table());
    }
    Ok(())
}

async fn measure(
    args: &Args,
    sizes: &Sizes,
    cores: usize,
    prefix: &str,
    scratch: &Path,
    model: &Arc<switchyard_algorithms::classifier::Model>,
    children: &mut Children,
) -> anyhow::Result<(
    QueueFigures,
    QueueFigures,
    ClassifyFigures,
    Option<DirectFigures>,
)> {
    let prefetch = u16::try_from(args.concurrency).expect("checked in run");

    // RabbitMQ: the ceiling's null worker and the controller child on queues of their own.
    let ceiling_names = QueueNames::new(format!("{prefix}.ceiling"));
    let ceiling_producer =
        Producer::start(Arc::new(amqp(&args.amqp, &ceiling_names).await?)).await?;
    let null_worker = Arc::new(amqp(&args.amqp, &ceiling_names).await?);
    let worker_producer = Producer::start(Arc::new(
        amqp(&args.amqp, &QueueNames::new(children.queue())).await?,
    ))
    .await?;
    children.wait_until_hosted().await?;
    let amqp_figures = compare(
        "RabbitMQ",
        sizes,
        (&ceiling_producer, null_worker, prefetch),
        &worker_producer,
    )
    .await?;

    // The embedded queue: a SQLite file each, the controller in this process as in `up`.
    let embedded_ceiling = embedded(&scratch.join("ceiling.db"), "ceiling").await?;
    let embedded_worker = embedded(&scratch.join("worker.db"), "worker").await?;
    let (embedded_ceiling_producer, embedded_worker_producer) = (
        Producer::start(embedded_ceiling.clone()).await?,
        Producer::start(embedded_worker.clone()).await?,
    );
    let controller = Controller::new(
        embedded_worker,
        ControllerConfig {
            concurrency: args.concurrency,
            ..ControllerConfig::default()
        },
        DiscoveryClient::new(children.discovery_url(), None),
    )?;
    let stop = CancellationToken::new();
    let in_process = tokio::spawn({
        let stop = stop.clone();
        async move { controller.run(stop).await }
    });
    // The embedded controller keeps running: the classifier is measured through it too.
    let measured = async {
        let embedded_figures = compare(
            "embedded queue",
            sizes,
            (&embedded_ceiling_producer, embedded_ceiling, prefetch),
            &embedded_worker_producer,
        )
        .await?;
        let classification = classify_and_compare(
            args,
            sizes,
            (cores, scratch, model),
            children,
            [&worker_producer, &embedded_worker_producer],
        )
        .await?;
        anyhow::Ok((embedded_figures, classification))
    }
    .await;
    stop.cancel();
    in_process
        .await
        .context("the embedded controller crashed")?
        .context("the embedded controller failed")?;
    let (embedded_figures, (classification, direct)) = measured?;
    Ok((amqp_figures, embedded_figures, classification, direct))
}

/// The classifier's figures, through the worker on RabbitMQ and on the embedded queue (whose
/// controller runs in this process), and the peer's beside them unless it is left out.
async fn classify_and_compare(
    args: &Args,
    sizes: &Sizes,
    (cores, scratch, model): (usize, &Path, &Arc<switchyard_algorithms::classifier::Model>),
    children: &Children,
    [rabbitmq, embedded]: [&Producer; 2],
) -> anyhow::Result<(ClassifyFigures, Option<DirectFigures>)> {
    let (runner_pid, controller_pid) = children.pids()?;
    let alone = |name, pid| cpu::Process {
        name,
        pid,
        with_descendants: false,
    };
    let runner = alone("runner", runner_pid);
    let mut processes = vec![runner, alone("controller", controller_pid)];
    processes.extend(cpu::local_rabbitmq().map(|pid| alone("rabbitmq", pid)));
    let this_process = std::process::id();
    processes.push(alone("producer", this_process));
    let routes = [
        classify::Route {
            producer: rabbitmq,
            watched: cpu::Watched::new(processes),
        },
        classify::Route {
            producer: embedded,
            watched: cpu::Watched::new(vec![
                runner,
                alone("producer, embedded queue and controller", this_process),
            ]),
        },
    ];
    let direct = match args.no_peer {
        true => None,
        false => {
            let runner_url = format!("{}/run/image_classifier", children.runner_url().await?);
            Some(peer::Direct::start(&args.peer, scratch, cores, (runner_url, runner_pid)).await?)
        }
    };
    classify::measure(
        model,
        cores,
        (sizes.rounds, sizes.per_round(sizes.images)),
        [&routes[0], &routes[1]],
        direct.as_ref(),
    )
    .await
}

/// Throughput of the ceiling and of the worker, then the latency of both at half the worker's
/// throughput: the same offered load, so the difference is what the worker adds.
async fn compare(
    queue: &str,
    sizes: &Sizes,
    (ceiling, null_worker, prefetch): (&Producer, Arc<dyn Broker>, u16),
    worker: &Producer,
) -> anyhow::Result<QueueFigures> {
    let stop = CancellationToken::new();
    let null_worker = ceiling::spawn(null_worker, prefetch, stop.clone());
    // In this order in what `in_turns` gives back: the ceiling, then the worker.
    let sides = [("ceiling", ceiling), ("through the worker", worker)];
    let measured = async {
        ceiling.burst(echo_tasks(sizes.warm_up), "warm-up").await?;
        worker.burst(echo_tasks(sizes.warm_up), "warm-up").await?;
        let tasks = sizes.per_round(sizes.tasks);
        let tps = in_turns(sizes.rounds, sides, |(side, producer), round| {
            let label = format!("{queue} {side}, round {round}");
            async move { producer.throughput(echo_tasks(tasks), &label).await }
        })
        .await?
        .map(|rates| overall_rate(&rates));
        let rate = tps[1] / 2.0;
        let count = sizes.per_round(sizes.latency_tasks(rate));
        let latencies = in_turns(sizes.rounds, sides, |(side, producer), round| {
            let label = format!("{queue} {side} latency, round {round}");
            async move { producer.latency(echo_tasks(count), rate, &label).await }
        })
        .await?
        .map(|rounds| Percentiles::of(rounds.concat()));
        for (((side, _), tps), latencies) in sides.iter().zip(tps).zip(latencies) {
            eprintln!("  {queue} {side}: {tps:.0} tasks/s; at {rate:.0}/s, {latencies}");
        }
        let ([ceiling_tps, worker_tps], [ceiling_latency, worker_latency]) = (tps, latencies);
        anyhow::Ok(QueueFigures {
            ceiling_tps,
            worker_tps,
            latency: LatencyFigures {
                offered_tps: rate,
                ceiling: ceiling_latency,
                worker: worker_latency,
            },
        })
    }
    .await;
    stop.cancel();
    null_worker.await.context("the null worker crashed")?;
    measured
}

/// `count` echo tasks, each with an id of its own.
fn echo_tasks(count: usize) -> Vec<Message> {
    let body = Task::new("echo", json!({ "text": "hello, switchyard" })).to_json_bytes();
    (0..count)
        .map(|_| Message::new(body.clone()).with_id(new_task_id()))
        .collect()
}

async fn amqp(url: &str, names: &QueueNames) -> anyhow::Result<AmqpBroker> {
    AmqpBroker::connect(AmqpConfig::new(url, names.clone()))
        .await
        .with_context(|| format!("connecting to RabbitMQ at {url}"))
}

async fn embedded(path: &Path, queue: &str) -> anyhow::Result<Arc<EmbeddedBroker>> {
    let broker = EmbeddedBroker::open(path, QueueNames::new(queue), EmbeddedConfig::default())
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(Arc::new(broker))
}

/// Deletes the run's RabbitMQ queues, so repeated runs leave nothing behind.
async fn delete_queues(url: &str, prefix: &str) -> anyhow::Result<()> {
    for queue in ["ceiling", "worker"] {
        let names = QueueNames::new(format!("{prefix}.{queue}"));
        amqp(url, &names)
            .await?
            .delete_topology()
            .await
            .with_context(|| format!("deleting the queues {}.*", names.tasks))?;
    }
    Ok(())
}

/// How long a measurement of `count` tasks may take before it is declared stuck.
fn deadline_for(count: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(20) * count as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_share_out_every_task() {
        let args = Args {
            amqp: String::new(),
            quick: false,
            json: false,
            tasks: None,
            images: None,
            concurrency: 16,
            peer: PathBuf::new(),
            no_peer: true,
        };
        let sizes = args.sizes();
        assert_eq!(sizes.rounds, 4);
        assert_eq!(sizes.per_round(20_000), 5_000);
        assert_eq!(
            sizes.per_round(10),
            3,
            "rounding up: never fewer tasks than asked"
        );
        assert_eq!(sizes.per_round(0), 1);
    }
}
