//! The embedded SQLite backend under the contract: a queue file in a temporary directory of its
//! own. A process that dies holding a delivery is a thread whose runtime stops: its lease is no
//! longer renewed and runs out.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tempfile::TempDir;

use super::{Harness, Orphan, REQUEUE_WITHIN, next};
use crate::embedded::{EmbeddedBroker, EmbeddedConfig};
use crate::{Broker, Deliveries, QueueNames};

/// Longer than [`REQUEUE_WITHIN`], so a requeue and a lease running out are told apart, and short
/// enough that the cases waiting one out stay quick.
pub const LEASE: Duration = Duration::from_secs(3);
const _: () = assert!(LEASE.as_millis() > REQUEUE_WITHIN.as_millis());

/// The SQLite backend on a queue file in a temporary directory of the case's own.
#[derive(Debug)]
pub struct EmbeddedHarness {
    broker: Arc<EmbeddedBroker>,
    path: PathBuf,
    /// Deleted with the harness.
    _dir: TempDir,
}

/// Quick polls (another "process" publishing is found within 20 ms) and a patient write lock.
pub fn config(lease: Duration) -> EmbeddedConfig {
    EmbeddedConfig {
        lease,
        poll_interval: Duration::from_millis(20),
        busy_timeout: Duration::from_secs(10),
    }
}

/// The broker of another process on the queue file at `path`.
pub async fn open(path: &Path, lease: Duration) -> EmbeddedBroker {
    EmbeddedBroker::open(path, QueueNames::default(), config(lease))
        .await
        .expect("open the queue file")
}

impl EmbeddedHarness {
    /// The queue file every broker of this harness opens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Harness for EmbeddedHarness {
    type Broker = EmbeddedBroker;

    async fn open() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("queue.sqlite");
        EmbeddedHarness {
            broker: Arc::new(open(&path, LEASE).await),
            path,
            _dir: dir,
        }
    }

    fn broker(&self) -> &Arc<EmbeddedBroker> {
        &self.broker
    }

    async fn another_handle(&self) -> Arc<EmbeddedBroker> {
        Arc::new(open(&self.path, LEASE).await)
    }

    fn redelivery(&self) -> Duration {
        LEASE
    }

    async fn reply_queue(&self) -> (String, Deliveries) {
        let name = format!("rpc.{}", uuid::Uuid::new_v4().simple());
        let replies = self.broker.consume_queue(&name, 8).await.expect("consume");
        (name, replies)
    }

    /// The holder is a broker of its own on a single-threaded runtime of its own, which it then
    /// blocks: like a process frozen or killed, it renews nothing. Unblocked, it acks.
    async fn orphan_next_task(&self) -> Orphan {
        let (taken_tx, taken_rx) = std::sync::mpsc::channel();
        let (resume_tx, resume_rx) = std::sync::mpsc::channel::<()>();
        let path = self.path.clone();
        let holder = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("holder runtime");
            runtime.block_on(async move {
                let broker = open(&path, LEASE).await;
                let mut tasks = broker.consume_tasks(1).await.expect("consume");
                let delivery = next(&mut tasks).await;
                taken_tx
                    .send(delivery.message.clone())
                    .expect("the harness waits");
                // Err when the case gave up: ack anyway, so the thread ends.
                let _ = resume_rx.recv();
                delivery.ack().await
            })
        });
        let message = tokio::task::spawn_blocking(move || taken_rx.recv())
            .await
            .expect("join")
            .expect("the holder takes the task");
        Orphan::new(message, async move {
            resume_tx.send(()).expect("the holder waits");
            tokio::task::spawn_blocking(move || holder.join().expect("the holder does not panic"))
                .await
                .expect("join")
        })
    }
}
