//! A client of discovery, used by runners (register, heartbeat, deregister) and by the
//! controller and CLI (list runners).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use switchyard_wire::discovery::{RegistrationAck, RunnerEntry, RunnerRegistration};

/// Talks to one discovery service. Cheap to clone: the HTTP connection pool is shared.
#[derive(Clone)]
pub struct DiscoveryClient {
    http: reqwest::Client,
    /// Discovery's base URL, without a trailing slash.
    base_url: String,
    /// Sent as `Authorization: Bearer` when discovery requires `SWITCHYARD_TOKEN`.
    token: Option<String>,
}

/// Shows where the client points, not the token it sends.
impl std::fmt::Debug for DiscoveryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoveryClient")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A failed call to discovery.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Discovery could not be reached or did not answer in time: try again later.
    #[error("discovery at {url} is unreachable: {source}")]
    Unreachable {
        /// The URL that was called.
        url: String,
        /// What the HTTP client said.
        source: reqwest::Error,
    },
    /// Discovery does not know this runner (it restarted, or the entry expired): register again.
    #[error("discovery does not know runner '{0}'")]
    UnknownRunner(String),
    /// Discovery refused the token.
    #[error("discovery refused the token (401): set the same SWITCHYARD_TOKEN on every component")]
    Unauthorized,
    /// Any other answer.
    #[error("discovery answered {status}: {body}")]
    Unexpected {
        /// The status discovery answered.
        status: u16,
        /// Its body, for the message.
        body: String,
    },
}

impl DiscoveryClient {
    /// A client of the discovery at `base_url`, sending `token` when discovery requires one.
    pub fn new(base_url: impl Into<String>, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a plain HTTP client always builds");
        DiscoveryClient {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            token,
        }
    }

    /// Discovery's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Announces a runner, or updates its entry; the answer says how often to heartbeat.
    pub async fn register(
        &self,
        registration: &RunnerRegistration,
    ) -> Result<RegistrationAck, ClientError> {
        let response = self
            .send(self.http.post(self.url("/runners")).json(registration))
            .await?;
        let response = check(response, &registration.id).await?;
        response
            .json()
            .await
            .map_err(|source| self.unreachable(source))
    }

    /// Renews a registration; [`ClientError::UnknownRunner`] means register again.
    pub async fn heartbeat(&self, runner_id: &str) -> Result<(), ClientError> {
        let url = self.url(&format!("/runners/{runner_id}/heartbeat"));
        let response = self.send(self.http.put(url)).await?;
        check(response, runner_id).await.map(drop)
    }

    /// Removes a runner on shutdown, so no task is routed to it meanwhile; a runner discovery
    /// has already forgotten counts as removed.
    pub async fn deregister(&self, runner_id: &str) -> Result<(), ClientError> {
        let response = self
            .send(self.http.delete(self.url(&format!("/runners/{runner_id}"))))
            .await?;
        match check(response, runner_id).await {
            Ok(_) | Err(ClientError::UnknownRunner(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Every live replica of every algorithm (the detailed listing).
    pub async fn runners(&self) -> Result<Vec<RunnerEntry>, ClientError> {
        let response = self.send(self.http.get(self.url("/runners"))).await?;
        let response = check(response, "").await?;
        response
            .json()
            .await
            .map_err(|source| self.unreachable(source))
    }

    /// Every algorithm's payload schema, as each listed runner serves it at `GET /schemas`
    /// (Switchyard and legacy runners alike). A runner that does not answer is reported in
    /// [`Schemas::unreachable`]; only discovery itself failing is an error.
    pub async fn schemas(&self) -> Result<Schemas, ClientError> {
        let base_urls: BTreeSet<String> = self
            .runners()
            .await?
            .into_iter()
            .map(|runner| runner.base_url)
            .collect();
        let mut fetches = tokio::task::JoinSet::new();
        for base_url in base_urls {
            // The token stays with discovery: anyone could have registered this URL.
            let http = self.http.clone();
            fetches.spawn(async move {
                let fetched = fetch_schemas(&http, &base_url).await;
                (base_url, fetched)
            });
        }
        let mut schemas = Schemas::default();
        while let Some(joined) = fetches.join_next().await {
            let (base_url, fetched) =
                joined.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
            match fetched {
                Ok(by_algorithm) => {
                    for (algorithm, schema) in by_algorithm {
                        schemas
                            .by_algorithm
                            .entry(algorithm)
                            .or_default()
                            .insert(base_url.clone(), schema);
                    }
                }
                Err(reason) => schemas
                    .unreachable
                    .push(RunnerUnreachable { base_url, reason }),
            }
        }
        schemas
            .unreachable
            .sort_by(|a, b| a.base_url.cmp(&b.base_url));
        Ok(schemas)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request
            .send()
            .await
            .map_err(|source| self.unreachable(source))
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base_url.clone(),
            source,
        }
    }
}

async fn check(
    response: reqwest::Response,
    runner_id: &str,
) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    match status.as_u16() {
        401 => Err(ClientError::Unauthorized),
        404 if !runner_id.is_empty() => Err(ClientError::UnknownRunner(runner_id.to_string())),
        code => Err(ClientError::Unexpected {
            status: code,
            body: response.text().await.unwrap_or_default(),
        }),
    }
}

/// Every algorithm's schema from every runner that answered.
#[derive(Debug, Default)]
pub struct Schemas {
    /// Algorithm name -> runner base URL -> that runner's schema for it. Replicas of one
    /// algorithm normally agree; listing each shows when a rolling upgrade left them apart.
    pub by_algorithm: BTreeMap<String, BTreeMap<String, Value>>,
    /// Runners whose schemas could not be fetched, by base URL.
    pub unreachable: Vec<RunnerUnreachable>,
}

/// A listed runner that did not serve its schemas.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("runner at {base_url} did not serve its schemas: {reason}")]
pub struct RunnerUnreachable {
    /// The runner that did not answer.
    pub base_url: String,
    /// Why its schemas could not be read.
    pub reason: String,
}

/// A runner's `GET /schemas`: one schema per algorithm it hosts, keyed by name.
async fn fetch_schemas(
    http: &reqwest::Client,
    base_url: &str,
) -> Result<BTreeMap<String, Value>, String> {
    let url = format!("{}/schemas", base_url.trim_end_matches('/'));
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|error| describe(&error))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url} answered {status}"));
    }
    response.json().await.map_err(|error| {
        format!(
            "GET {url} did not answer an object of schemas: {}",
            describe(&error)
        )
    })
}

/// The error with its causes: reqwest's own message leaves out why a connection failed.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
