//! One HTTP call to a runner: `POST {base_url}/run/{algorithm}` with the payload.

use std::time::Duration;

use bytes::Bytes;
use switchyard_wire::headers;

use crate::classify::{CallOutcome, classify_response, unreachable};
use crate::routing::Replica;

/// Longest wait for a TCP connection: a runner that is down refuses at once, one that is gone
/// (host unreachable) should not eat the whole call timeout before the next replica is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Calls runners over a pool of kept-alive connections.
pub(crate) struct RunnerClient {
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer` when runners require the shared token.
    token: Option<String>,
}

/// What identifies a call in the runner's logs and traces.
pub(crate) struct CallContext<'a> {
    pub task_id: &'a str,
    pub algorithm: &'a str,
    pub attempt: u32,
    pub timeout: Duration,
}

impl RunnerClient {
    pub(crate) fn new(concurrency: usize, token: Option<String>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(concurrency)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // A redirected POST would lose its body; a runner never redirects, so it is an error.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(RunnerClient { http, token })
    }

    pub(crate) async fn call(
        &self,
        replica: &Replica,
        call: &CallContext<'_>,
        payload: Bytes,
    ) -> CallOutcome {
        let url = match run_url(&replica.base_url, call.algorithm) {
            Ok(url) => url,
            Err(message) => return unreachable(message),
        };
        let mut request = self
            .http
            .post(url)
            .timeout(call.timeout)
            .header(headers::TASK_ID, call.task_id)
            .header(
                headers::TRACEPARENT,
                headers::traceparent_for(call.task_id, call.attempt),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return unreachable(describe(&error, call.timeout)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        match response.bytes().await {
            Ok(body) => classify_response(status, retry_after.as_deref(), &body),
            Err(error) => unreachable(describe(&error, call.timeout)),
        }
    }
}

/// `{base_url}/run/{algorithm}`, the algorithm escaped as one path segment.
fn run_url(base_url: &str, algorithm: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(base_url)
        .map_err(|error| format!("runner base url '{base_url}' is invalid: {error}"))?;
    url.path_segments_mut()
        .map_err(|()| format!("runner base url '{base_url}' cannot have a path"))?
        .pop_if_empty()
        .extend(["run", algorithm]);
    Ok(url)
}

fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        format!("runner did not answer within {timeout:?}")
    } else if error.is_connect() {
        format!("cannot connect to runner: {}", root_cause(error))
    } else {
        format!("runner call failed: {}", root_cause(error))
    }
}

/// The innermost error, which names what actually happened ("Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_url_appends_to_the_base_path() {
        assert_eq!(
            run_url("http://r:8080", "echo").unwrap().as_str(),
            "http://r:8080/run/echo"
        );
        assert_eq!(
            run_url("http://r:8080/", "echo").unwrap().as_str(),
            "http://r:8080/run/echo"
        );
        assert_eq!(
            run_url("http://r/prefix/", "ocr").unwrap().as_str(),
            "http://r/prefix/run/ocr"
        );
        assert_eq!(
            run_url("http://r", "a/b c").unwrap().as_str(),
            "http://r/run/a%2Fb%20c"
        );
        assert!(
            run_url("not a url", "echo")
                .unwrap_err()
                .contains("invalid")
        );
    }
}
