//! Prunes finished tasks from the store after their retention, in the background, a batch at a
//! time, so the store does not grow without bound and submissions never wait on a long write.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{TaskStore, now_ms};

/// How long finished tasks are kept; `None` keeps them forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// After this long a finished task is forgotten (its lookup answers 410 Gone).
    pub tasks: Option<Duration>,
    /// After this long a finished task's payload is dropped and its result kept; large inputs
    /// (images) can go long before the answers about them.
    pub payloads: Option<Duration>,
}

impl Retention {
    /// A week, as Celery's result backends default to a day and users ask for longer.
    pub const DEFAULT: Retention = Retention {
        tasks: Some(Duration::from_secs(7 * 24 * 3600)),
        payloads: None,
    };

    /// How often to look: often enough that nothing outlives its retention by more than a tenth
    /// of it, never more than once a second or less than once a minute.
    fn interval(&self) -> Option<Duration> {
        [self.tasks, self.payloads]
            .into_iter()
            .flatten()
            .min()
            .map(|shortest| (shortest / 10).clamp(Duration::from_secs(1), Duration::from_secs(60)))
    }
}

/// Rows changed per write: small enough that a submit waits at most a few milliseconds.
const BATCH: usize = 500;

/// Prunes until `shutdown`; returns at once when nothing is ever pruned.
pub async fn prune(store: TaskStore, retention: Retention, shutdown: CancellationToken) {
    let Some(interval) = retention.interval() else {
        return;
    };
    loop {
        match prune_once(&store, retention, now_ms()).await {
            Ok((0, 0)) => {}
            Ok((tasks, payloads)) => {
                tracing::info!(
                    tasks,
                    payloads,
                    "pruned finished tasks past their retention"
                )
            }
            Err(error) => {
                tracing::warn!("pruning the task store failed, trying again later: {error}")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// One pass at `now_ms`: (tasks forgotten, payloads dropped).
pub async fn prune_once(
    store: &TaskStore,
    retention: Retention,
    now_ms: i64,
) -> Result<(usize, usize), crate::store::StoreError> {
    let before =
        |keep: Duration| now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
    let forgotten = match retention.tasks {
        Some(keep) => {
            let forgotten = in_batches(|| store.prune(before(keep), BATCH)).await?;
            // A pruned id answers 410 Gone for one more retention, then 404: kept forever, the
            // ids would grow the store by a row per task.
            in_batches(|| store.forget_pruned(before(keep.saturating_mul(2)), BATCH)).await?;
            forgotten
        }
        None => 0,
    };
    let dropped = match retention.payloads {
        Some(keep) => in_batches(|| store.drop_payloads(before(keep), BATCH)).await?,
        None => 0,
    };
    Ok((forgotten, dropped))
}

/// Runs `batch` until one changes fewer than [`BATCH`] rows, yielding in between so other
/// writers get the store; the rows changed in all.
async fn in_batches<F, Fut>(mut batch: F) -> Result<usize, crate::store::StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, crate::store::StoreError>>,
{
    let mut total = 0;
    loop {
        let changed = batch().await?;
        total += changed;
        if changed < BATCH {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_wire::{TaskOutcome, TaskResult};

    #[tokio::test]
    async fn a_pruned_id_is_gone_for_one_more_retention_then_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let store = TaskStore::open(&dir.path().join("tasks.db")).unwrap();
        store
            .record_result(TaskResult {
                id: "finished".into(),
                algorithm: "echo".into(),
                outcome: TaskOutcome::Ok {
                    result: serde_json::json!({}),
                },
                attempts: 1,
                runner: None,
                duration_ms: 1,
                history: vec![],
            })
            .await
            .unwrap();
        let keep_a_minute = Retention {
            tasks: Some(Duration::from_secs(60)),
            payloads: None,
        };
        let now = now_ms();
        let pruned = prune_once(&store, keep_a_minute, now + 61_000).await;
        assert_eq!(pruned.unwrap(), (1, 0));
        assert!(store.was_pruned("finished".into()).await.unwrap());
        prune_once(&store, keep_a_minute, now + 119_000)
            .await
            .unwrap();
        assert!(store.was_pruned("finished".into()).await.unwrap());
        prune_once(&store, keep_a_minute, now + 121_000)
            .await
            .unwrap();
        assert!(!store.was_pruned("finished".into()).await.unwrap());
    }
}
