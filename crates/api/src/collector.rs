//! Moves results from the results queue into the task store, then acknowledges them.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use switchyard_broker::ResultSource;
use switchyard_wire::TaskResult;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::store::TaskStore;

/// Runs until `shutdown`: consumes results, records each, tells long-polling clients, acks.
/// A lost broker connection is retried with backoff; a result is acked only once recorded.
pub async fn collect_results(
    source: Arc<dyn ResultSource>,
    store: TaskStore,
    finished: broadcast::Sender<String>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let mut deliveries = match source.consume_results(64).await {
            Ok(deliveries) => {
                backoff = Duration::from_millis(200);
                deliveries
            }
            Err(error) => {
                tracing::warn!("cannot consume results, retrying in {backoff:?}: {error}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        loop {
            let delivery = tokio::select! {
                delivery = deliveries.next() => delivery,
                _ = shutdown.cancelled() => return,
            };
            let delivery = match delivery {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => {
                    tracing::warn!("results stream failed: {error}");
                    break;
                }
                None => break,
            };
            let result: TaskResult = match serde_json::from_slice(&delivery.message.body) {
                Ok(result) => result,
                Err(error) => {
                    // Not ours to fix and nothing to wait for: keep the queue moving.
                    tracing::error!(
                        "dropping a message on the results queue that is not a result: {error}"
                    );
                    let _ = delivery.ack().await;
                    continue;
                }
            };
            let id = result.id.clone();
            match store.record_result(result).await {
                Ok(status) => {
                    tracing::info!(task = %id, ?status, "result recorded");
                    let _ = finished.send(id.clone());
                    if let Err(error) = delivery.ack().await {
                        tracing::warn!(task = %id, "result recorded but its ack failed (it will be recorded again): {error}");
                    }
                }
                Err(error) => {
                    tracing::error!(task = %id, "cannot record result, leaving it on the queue: {error}");
                    let _ = delivery.requeue().await;
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }
}
