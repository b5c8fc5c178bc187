//! Algorithms written for the tests, each showing one behaviour of the runner.

use std::sync::Arc;
use std::sync::mpsc;

use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_runner::{Algorithm, AlgorithmError, algorithm};
use tokio::sync::Semaphore;

/// Upper-cases a text: a synchronous algorithm, declared with the macro.
#[algorithm]
pub(crate) fn shout(text: String) -> Result<String, AlgorithmError> {
    Ok(text.to_uppercase())
}

/// Adds two numbers: an async algorithm, declared with the macro under another name.
#[algorithm(name = "sum")]
pub(crate) async fn add(a: i64, b: i64) -> Result<i64, AlgorithmError> {
    a.checked_add(b)
        .ok_or_else(|| AlgorithmError::bad_input("the sum overflows"))
}

/// Panics on the blocking pool.
#[algorithm]
pub(crate) fn explode(text: String) -> Result<String, AlgorithmError> {
    panic!("exploded on {text}")
}

/// Panics on the reactor, inside the runner's own task.
#[algorithm]
pub(crate) async fn explode_async(text: String) -> Result<String, AlgorithmError> {
    panic!("async exploded on {text}")
}

/// A payload type whose author forgot `deny_unknown_fields`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct Lenient {
    pub text: String,
}

pub(crate) fn lenient() -> Algorithm {
    Algorithm::blocking("lenient", |input: Lenient| Ok(input.text.len()))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Failure {
    /// 500 fails as an internal error; anything else as a client error with that status.
    pub status: u16,
    pub message: String,
}

/// Fails the way the payload says.
pub(crate) fn fail() -> Algorithm {
    Algorithm::blocking("fail", |failure: Failure| -> Result<(), AlgorithmError> {
        Err(match failure.status {
            500 => AlgorithmError::internal(failure.message),
            status => AlgorithmError::client(status, failure.message),
        })
    })
}

/// Holds calls of a [`gated`] algorithm until opened.
#[derive(Clone)]
pub(crate) struct Gate(Arc<Semaphore>);

impl Gate {
    pub(crate) fn closed() -> Gate {
        Gate(Arc::new(Semaphore::new(0)))
    }

    /// Lets every waiting and later call through.
    pub(crate) fn open(&self) {
        self.0.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

/// Echoes the text once `gate` is open.
pub(crate) fn gated(name: &str, gate: &Gate, concurrency: usize, queue: usize) -> Algorithm {
    let gate = gate.0.clone();
    Algorithm::from_async(name, move |input: ShoutPayload| {
        let gate = gate.clone();
        async move {
            let _permit = gate.acquire().await.expect("the gate is never closed");
            Ok(input.text)
        }
    })
    .with_concurrency(concurrency)
    .with_queue(queue)
}

/// An algorithm whose loading finishes when the returned sender sends (or is dropped, which
/// fails the load).
pub(crate) fn slow_loading(name: &str) -> (Algorithm, mpsc::Sender<()>) {
    let (release, released) = mpsc::channel::<()>();
    let algorithm = Algorithm::with_state(
        name,
        move || {
            released
                .recv()
                .map_err(|_| AlgorithmError::internal("the test dropped the release"))
        },
        |_: Arc<()>, input: ShoutPayload| async move { Ok(input.text) },
    );
    (algorithm, release)
}

/// An algorithm whose model cannot be loaded.
pub(crate) fn broken(name: &str) -> Algorithm {
    Algorithm::with_state(
        name,
        || -> Result<(), AlgorithmError> { Err(AlgorithmError::internal("model file missing")) },
        |_: Arc<()>, input: ShoutPayload| async move { Ok(input.text) },
    )
}

/// An algorithm whose loader panics.
pub(crate) fn panicking_loader(name: &str) -> Algorithm {
    Algorithm::with_state(
        name,
        || -> Result<(), AlgorithmError> { panic!("loader blew up") },
        |_: Arc<()>, input: ShoutPayload| async move { Ok(input.text) },
    )
}
