//! `switchyard dashboard`: `up`'s dashboard and task API for a deployment whose components run
//! apart on RabbitMQ. It reads discovery and the queues, submits through the task queue, and
//! records in a task store of its own the results the controllers publish to the results queue
//! (tasks sent with `reply_to` go to their producer instead, and are not seen here).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use switchyard_api::{Catalog, Queues, TaskApi, TaskStore};
use tokio::net::TcpListener;

use super::up::{Keep, TaskApiParts, component_failure, serve_task_api, wait_for_every};
use crate::amqp_flags::AmqpFlags;
use crate::shared_flags::DiscoveryFlags;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the dashboard and its task API listen.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    #[command(flatten)]
    discovery: DiscoveryFlags,
    #[command(flatten)]
    amqp: AmqpFlags,
    /// Directory of the dashboard's task store.
    #[arg(
        long,
        env = "SWITCHYARD_DATA",
        default_value = "./switchyard-dashboard"
    )]
    data: PathBuf,
    /// How long finished tasks are kept in the store, e.g. `7d`, or `forever`.
    #[arg(long, env = "SWITCHYARD_RETAIN", default_value = "7d")]
    retain: Keep,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let token = args.discovery.token.token()?;
    let discovery = args.discovery.client()?;
    let broker = Arc::new(args.amqp.connect().await?);
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating the data directory {}", args.data.display()))?;
    let store = TaskStore::open(&args.data.join("tasks.db")).context("opening the task store")?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the dashboard to {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let api = TaskApi::new(
        Queues::of(broker.clone()),
        store.clone(),
        Catalog::new(discovery),
    )
    .with_token(token);
    let shutdown = crate::shutdown::on_signal();
    let mut components = tokio::task::JoinSet::new();
    serve_task_api(
        api,
        TaskApiParts {
            store,
            results: broker,
            listener,
            retention: switchyard_api::retention::Retention {
                tasks: args.retain.0,
                payloads: None,
            },
        },
        &mut components,
        &shutdown,
    )
    .await?;
    tracing::info!(
        discovery = %args.discovery.url, queue = %args.amqp.queue,
        "switchyard dashboard at {url}/, task API docs at {url}/docs"
    );
    let failed = tokio::select! {
        biased;
        () = shutdown.cancelled() => None,
        failed = components.join_next() => Some(component_failure(failed)),
    };
    shutdown.cancel();
    wait_for_every(&mut components).await;
    failed.map_or(Ok(()), Err)
}
