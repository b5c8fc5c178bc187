//! The consuming loop: take deliveries while a slot is free, hand each to its own task, resume
//! after a lost connection, and on shutdown drain what is in flight.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use switchyard_broker::Deliveries;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ControllerError;
use crate::handler::Worker;

/// The tasks being handled, bounded by the concurrency slots.
struct InFlight {
    slots: Arc<Semaphore>,
    tasks: JoinSet<()>,
    /// Fired when the grace period is over: unfinished tasks requeue their delivery.
    abort: CancellationToken,
}

/// Why a deliveries stream stopped being read.
enum StreamEnd {
    Shutdown,
    Lost(String),
}

pub(crate) async fn run(
    worker: Arc<Worker>,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    let stop_refreshing = shutdown.child_token();
    let refresher = tokio::spawn(refresh_periodically(
        worker.clone(),
        stop_refreshing.clone(),
    ));
    let mut in_flight = InFlight {
        slots: Arc::new(Semaphore::new(worker.config.concurrency)),
        tasks: JoinSet::new(),
        abort: CancellationToken::new(),
    };
    let consumed = consume(&worker, &mut in_flight, &shutdown).await;
    drain(&mut in_flight, worker.config.grace_period).await;
    // The stream is dropped only now: in-flight tasks may need its channel to settle.
    let outcome = consumed.map(drop);
    stop_refreshing.cancel();
    let _ = refresher.await;
    tracing::info!("controller stopped");
    outcome
}

/// Consumes until shutdown, reconnecting with backoff; returns the live stream (if any) so it
/// outlives the drain.
async fn consume(
    worker: &Arc<Worker>,
    in_flight: &mut InFlight,
    shutdown: &CancellationToken,
) -> Result<Option<Deliveries>, ControllerError> {
    let mut failures = 0u32;
    loop {
        let opened = tokio::select! {
            opened = worker.broker.consume_tasks(worker.config.prefetch()) => opened,
            () = shutdown.cancelled() => return Ok(None),
        };
        match opened {
            Ok(mut deliveries) => {
                tracing::info!(prefetch = worker.config.prefetch(), "consuming tasks");
                match pump(worker, in_flight, &mut deliveries, shutdown, &mut failures).await {
                    StreamEnd::Shutdown => return Ok(Some(deliveries)),
                    StreamEnd::Lost(reason) => {
                        worker.metrics.reconnected();
                        tracing::warn!(%reason, "task stream lost");
                    }
                }
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(error = %format_args!("{error:#}"), "cannot consume tasks");
            }
            Err(error) => return Err(ControllerError::Broker(error)),
        }
        failures = failures.saturating_add(1);
        let delay = worker.config.backoff.ceiling(failures);
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "reconnecting to the broker after a pause"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return Ok(None),
        }
    }
}

/// Reads deliveries while a concurrency slot is free, each handled in its own task so a slow one
/// holds up nothing but its own slot.
async fn pump(
    worker: &Arc<Worker>,
    in_flight: &mut InFlight,
    deliveries: &mut Deliveries,
    shutdown: &CancellationToken,
    failures: &mut u32,
) -> StreamEnd {
    loop {
        let slot = tokio::select! {
            biased;
            () = shutdown.cancelled() => return StreamEnd::Shutdown,
            slot = in_flight.slots.clone().acquire_owned() => slot.expect("the slots semaphore is never closed"),
        };
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => return StreamEnd::Shutdown,
            next = deliveries.next() => next,
        };
        let delivery = match next {
            Some(Ok(delivery)) => delivery,
            Some(Err(error)) => return StreamEnd::Lost(format!("{error:#}")),
            None => return StreamEnd::Lost("the broker ended the stream".into()),
        };
        *failures = 0;
        while let Some(finished) = in_flight.tasks.try_join_next() {
            log_panic(finished);
        }
        let handling = worker.clone().handle(delivery, in_flight.abort.clone());
        in_flight.tasks.spawn(async move {
            handling.await;
            drop(slot);
        });
    }
}

/// Lets in-flight tasks finish within the grace period, then requeues the rest.
async fn drain(in_flight: &mut InFlight, grace: Duration) {
    // Finished tasks are reaped only when the next delivery arrives: reap them now, so the
    // count below is of tasks still running.
    while let Some(finished) = in_flight.tasks.try_join_next() {
        log_panic(finished);
    }
    if in_flight.tasks.is_empty() {
        return;
    }
    tracing::info!(
        in_flight = in_flight.tasks.len(),
        grace_ms = grace.as_millis() as u64,
        "waiting for in-flight tasks"
    );
    let all_finished = tokio::time::timeout(grace, join_all(&mut in_flight.tasks)).await;
    if all_finished.is_err() {
        tracing::warn!(
            unfinished = in_flight.tasks.len(),
            "grace period over: requeueing unfinished tasks"
        );
        in_flight.abort.cancel();
        join_all(&mut in_flight.tasks).await;
    }
}

async fn join_all(tasks: &mut JoinSet<()>) {
    while let Some(finished) = tasks.join_next().await {
        log_panic(finished);
    }
}

/// A panicking handler dropped its delivery unsettled, so the broker hands it out again.
fn log_panic(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished {
        tracing::error!(%error, "a task handler panicked; its delivery goes back to the queue");
    }
}

async fn refresh_periodically(worker: Arc<Worker>, stop: CancellationToken) {
    loop {
        worker.routes.refresh().await;
        tokio::select! {
            () = tokio::time::sleep(worker.config.registry_refresh) => {}
            () = stop.cancelled() => return,
        }
    }
}
