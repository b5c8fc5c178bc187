//! The null worker: the broker's half of the controller's job and nothing else. It consumes
//! tasks with the controller's prefetch and manual acks, answers each with a result whose
//! `result` is the payload, published and confirmed like the controller's, and only then acks.
//! The round trip through it is the ceiling a worker on that broker cannot beat.

use std::sync::Arc;

use futures::StreamExt;
use switchyard_broker::{Broker, Delivery, Message};
use switchyard_wire::{Task, TaskError, TaskOutcome, TaskResult};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Answers tasks until `stop`; each delivery is answered in a task of its own, as the
/// controller does, so the prefetch is what bounds the work in flight.
pub(super) fn spawn(
    broker: Arc<dyn Broker>,
    prefetch: u16,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut deliveries = match broker.consume_tasks(prefetch).await {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::error!(%error, "the null worker cannot consume");
                return;
            }
        };
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = deliveries.next() => next,
            };
            match next {
                Some(Ok(delivery)) => {
                    tokio::spawn(answer(broker.clone(), delivery));
                }
                Some(Err(error)) => {
                    tracing::error!(%error, "the null worker stopped consuming");
                    return;
                }
                None => return,
            }
        }
    })
}

async fn answer(broker: Arc<dyn Broker>, delivery: Delivery) {
    let task = &delivery.message;
    let id = task.id.clone().unwrap_or_default();
    let (algorithm, outcome) = match Task::parse(&task.body, None) {
        Ok(parsed) => (
            parsed.algorithm,
            TaskOutcome::Ok {
                result: parsed.payload,
            },
        ),
        Err(error) => (
            String::new(),
            TaskOutcome::Error {
                error: TaskError {
                    kind: switchyard_wire::ErrorKind::InvalidTask,
                    message: error.to_string(),
                    status: None,
                },
            },
        ),
    };
    let result = TaskResult {
        id: id.clone(),
        algorithm,
        outcome,
        attempts: 1,
        runner: None,
        duration_ms: 0,
        history: Vec::new(),
    };
    let reply = Message {
        reply_to: task.reply_to.clone(),
        correlation_id: Some(id.clone()),
        ..Message::new(result.to_json_bytes()).with_id(id)
    };
    // Unacknowledged on failure: the broker hands the task out again, as with the controller.
    if let Err(error) = broker.publish_result(reply).await {
        tracing::warn!(%error, "the null worker could not publish a result");
        return;
    }
    if let Err(error) = delivery.ack().await {
        tracing::warn!(%error, "the null worker could not acknowledge a task");
    }
}
