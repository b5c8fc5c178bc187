//! A client of discovery, used by runners (register, heartbeat, deregister) and by the
//! controller and CLI (list runners).

use std::time::Duration;

use switchyard_wire::discovery::{RegistrationAck, RunnerEntry, RunnerRegistration};

/// Talks to one discovery service. Cheap to clone: the HTTP connection pool is shared.
#[derive(Debug, Clone)]
pub struct DiscoveryClient {
    http: reqwest::Client,
    /// Discovery's base URL, without a trailing slash.
    base_url: String,
    /// Sent as `Authorization: Bearer` when discovery requires `SWITCHYARD_TOKEN`.
    token: Option<String>,
}

/// A failed call to discovery.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Discovery could not be reached or did not answer in time: try again later.
    #[error("discovery at {url} is unreachable: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    /// Discovery does not know this runner (it restarted, or the entry expired): register again.
    #[error("discovery does not know runner '{0}'")]
    UnknownRunner(String),
    /// Discovery refused the token.
    #[error("discovery refused the token (401): set the same SWITCHYARD_TOKEN on every component")]
    Unauthorized,
    /// Any other answer.
    #[error("discovery answered {status}: {body}")]
    Unexpected { status: u16, body: String },
}

impl DiscoveryClient {
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

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub async fn register(
        &self,
        registration: &RunnerRegistration,
    ) -> Result<RegistrationAck, ClientError> {
        let response = self.send(self.http.post(self.url("/runners")).json(registration)).await?;
        let response = check(response, &registration.id).await?;
        response.json().await.map_err(|source| self.unreachable(source))
    }

    /// Renews a registration; [`ClientError::UnknownRunner`] means register again.
    pub async fn heartbeat(&self, runner_id: &str) -> Result<(), ClientError> {
        let url = self.url(&format!("/runners/{runner_id}/heartbeat"));
        let response = self.send(self.http.put(url)).await?;
        check(response, runner_id).await.map(drop)
    }

    pub async fn deregister(&self, runner_id: &str) -> Result<(), ClientError> {
        let response = self.send(self.http.delete(self.url(&format!("/runners/{runner_id}")))).await?;
        match check(response, runner_id).await {
            Ok(_) | Err(ClientError::UnknownRunner(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Every live replica of every algorithm (the detailed listing).
    pub async fn runners(&self) -> Result<Vec<RunnerEntry>, ClientError> {
        let response = self.send(self.http.get(self.url("/runners"))).await?;
        let response = check(response, "").await?;
        response.json().await.map_err(|source| self.unreachable(source))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().await.map_err(|source| self.unreachable(source))
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base_url.clone(),
            source,
        }
    }
}

async fn check(response: reqwest::Response, runner_id: &str) -> Result<reqwest::Response, ClientError> {
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
