//! An algorithm as the runner sees it: a name, the JSON schema of its payload, and a type-erased
//! handler from a JSON payload to a JSON result.
//!
//! Authors never see the erasure: they hand [`Algorithm::blocking`], [`Algorithm::from_async`] or
//! [`Algorithm::with_state`] a typed function, or put `#[algorithm]` on it.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Type-erased: payload in, result out.
pub(crate) type Handler =
    Arc<dyn Fn(Value) -> BoxFuture<'static, Result<Value, AlgorithmError>> + Send + Sync>;

/// Builds the handler once, at runner start (loading a model, say); the runner is not ready
/// until every loader has finished.
pub(crate) type Loader = BoxFuture<'static, Result<Handler, AlgorithmError>>;

/// A failure of an algorithm, typed so the caller knows whose fault it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlgorithmError {
    /// The request cannot succeed as sent (bad input, an image that cannot be fetched...).
    /// `status` is the HTTP status answered: 4xx, or the status a fetch received, as the seed does.
    #[error("{message}")]
    Client {
        /// The HTTP status answered.
        status: u16,
        /// What was wrong, for the caller.
        message: String,
    },
    /// The algorithm failed on a valid request: a 500, worth retrying elsewhere.
    #[error("{message}")]
    Internal {
        /// What failed, for the caller and the logs.
        message: String,
    },
    /// Returned by a loader: what the algorithm needs is not on this machine (an engine, a
    /// model). The runner serves its other algorithms and reports this one unavailable, with
    /// `message`, which says how to install what is missing.
    #[error("{message}")]
    Unavailable {
        /// What is missing and the command that installs it.
        message: String,
    },
}

impl AlgorithmError {
    /// Invalid input: 400.
    pub fn bad_input(message: impl Into<String>) -> Self {
        AlgorithmError::client(400, message)
    }

    /// A client error with an explicit status (422 not an image, 413 too large...).
    pub fn client(status: u16, message: impl Into<String>) -> Self {
        AlgorithmError::Client {
            status,
            message: message.into(),
        }
    }

    /// The algorithm failed on a valid request: answered 500, so the controller retries.
    pub fn internal(message: impl Into<String>) -> Self {
        AlgorithmError::Internal {
            message: message.into(),
        }
    }

    /// From a loader: the machine lacks what the algorithm needs; `message` says how to get it.
    pub fn unavailable(message: impl Into<String>) -> Self {
        AlgorithmError::Unavailable {
            message: message.into(),
        }
    }

    /// The HTTP status the runner answers with this error.
    pub fn status(&self) -> u16 {
        match self {
            AlgorithmError::Client { status, .. } => *status,
            AlgorithmError::Internal { .. } => 500,
            AlgorithmError::Unavailable { .. } => 501,
        }
    }
}

/// Runs CPU-bound work on the blocking pool, so it never stalls the reactor; a panic becomes an
/// internal error for this call only.
pub async fn blocking<T, F>(work: F) -> Result<T, AlgorithmError>
where
    F: FnOnce() -> Result<T, AlgorithmError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(outcome) => outcome,
        Err(join_error) => Err(AlgorithmError::internal(panic_message(join_error))),
    }
}

pub(crate) fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            format!("algorithm panicked: {text}")
        }
        Err(_) => "algorithm task was cancelled".into(),
    }
}

/// Limits that keep one algorithm from taking the whole runner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Calls running at once.
    pub concurrency: usize,
    /// Calls allowed to wait for a slot; beyond it the runner answers 503 with `Retry-After`.
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Limits {
            concurrency: cores,
            queue: cores * 16,
        }
    }
}

/// A named algorithm with its payload schema, ready to be served by a runner.
pub struct Algorithm {
    pub(crate) name: String,
    pub(crate) schema: Value,
    pub(crate) limits: Limits,
    pub(crate) loader: Loader,
}

/// The loader is a closure; the name and limits identify the algorithm.
impl std::fmt::Debug for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Algorithm")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Algorithm {
    /// A synchronous function; each call runs on the blocking pool.
    pub fn blocking<I, O, F>(name: impl Into<String>, run: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(I) -> Result<O, AlgorithmError> + Send + Sync + 'static,
    {
        let run = Arc::new(run);
        Self::from_async(name, move |input: I| {
            let run = run.clone();
            blocking(move || run(input))
        })
    }

    /// An async function, run on the reactor: it must offload CPU-heavy parts with [`blocking`].
    pub fn from_async<I, O, F, Fut>(name: impl Into<String>, run: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, AlgorithmError>> + Send + 'static,
    {
        let handler = typed_handler(run);
        Algorithm {
            name: name.into(),
            schema: schema_of::<I>(),
            limits: Limits::default(),
            loader: async move { Ok(handler) }.boxed(),
        }
    }

    /// An algorithm with state loaded once at start, on the blocking pool (a model, a
    /// dictionary). Until `load` returns the runner is not ready; if it fails, the runner stops,
    /// unless it failed with [`AlgorithmError::unavailable`]: then the runner serves the others.
    pub fn with_state<S, I, O, L, F, Fut>(name: impl Into<String>, load: L, run: F) -> Self
    where
        S: Send + Sync + 'static,
        I: DeserializeOwned + JsonSchema + Send + 'static,
        O: Serialize + Send + 'static,
        L: FnOnce() -> Result<S, AlgorithmError> + Send + 'static,
        F: Fn(Arc<S>, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, AlgorithmError>> + Send + 'static,
    {
        let loader = async move {
            let state = Arc::new(blocking(load).await?);
            Ok(typed_handler(move |input: I| run(state.clone(), input)))
        };
        Algorithm {
            name: name.into(),
            schema: schema_of::<I>(),
            limits: Limits::default(),
            loader: loader.boxed(),
        }
    }

    /// Calls running at once (default: the number of cores).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.limits.concurrency = concurrency.max(1);
        self
    }

    /// Calls allowed to wait for a slot before the runner answers 503.
    pub fn with_queue(mut self, queue: usize) -> Self {
        self.limits.queue = queue;
        self
    }

    /// The name it is served under: `POST /run/{name}`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The JSON schema payloads are validated against.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// How many calls run at once and how many may wait.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

/// The JSON schema of a payload type, as the series' `GET /schemas` shows it.
pub fn schema_of<I: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(I)).expect("a JSON schema always serialises")
}

fn typed_handler<I, O, F, Fut>(run: F) -> Handler
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, AlgorithmError>> + Send + 'static,
{
    Arc::new(move |payload: Value| {
        let input = match parse_payload::<I>(payload) {
            Ok(input) => input,
            Err(message) => {
                return futures::future::ready(Err(AlgorithmError::bad_input(message))).boxed();
            }
        };
        let output = run(input);
        async move {
            let output = output.await?;
            serde_json::to_value(output)
                .map_err(|e| AlgorithmError::internal(format!("result does not serialise: {e}")))
        }
        .boxed()
    })
}

/// Deserialises a payload, naming the offending field: `text: invalid type: integer `1`, expected a string`.
pub fn parse_payload<I: DeserializeOwned>(payload: Value) -> Result<I, String> {
    serde_path_to_error::deserialize(payload).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            format!("invalid payload: {inner}")
        } else {
            format!("invalid payload at '{path}': {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Input {
        text: String,
    }

    async fn call(algorithm: Algorithm, payload: Value) -> Result<Value, AlgorithmError> {
        let handler = algorithm.loader.await.unwrap();
        handler(payload).await
    }

    fn length() -> Algorithm {
        Algorithm::blocking("length", |input: Input| Ok(input.text.len()))
    }

    #[tokio::test]
    async fn runs_a_typed_function() {
        assert_eq!(call(length(), json!({"text": "abc"})).await, Ok(json!(3)));
    }

    #[tokio::test]
    async fn names_the_offending_field() {
        let err = call(length(), json!({"text": 1})).await.unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("'text'"), "{err}");
        let err = call(length(), json!({})).await.unwrap_err();
        assert!(err.to_string().contains("missing field `text`"), "{err}");
        let err = call(length(), json!({"text": "a", "colour": 1}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    }

    #[tokio::test]
    async fn a_panic_is_an_internal_error() {
        let algorithm = Algorithm::blocking("boom", |_: Input| -> Result<(), AlgorithmError> {
            panic!("kaboom")
        });
        let err = call(algorithm, json!({"text": "a"})).await.unwrap_err();
        assert_eq!(err, AlgorithmError::internal("algorithm panicked: kaboom"));
    }

    #[tokio::test]
    async fn state_is_loaded_once_before_serving() {
        let algorithm = Algorithm::with_state(
            "prefix",
            || Ok(String::from(">")),
            |prefix: Arc<String>, input: Input| async move { Ok(format!("{prefix}{}", input.text)) },
        );
        assert_eq!(algorithm.schema()["required"], json!(["text"]));
        assert_eq!(call(algorithm, json!({"text": "a"})).await, Ok(json!(">a")));
    }
}
