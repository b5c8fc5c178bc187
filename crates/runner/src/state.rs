//! What every request handler of one runner shares.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, header};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::hosted::Hosted;
use crate::metrics::{Metrics, UNKNOWN_ALGORITHM};

pub(crate) struct Shared {
    pub(crate) runner_id: String,
    /// By name; sorted, so listings in messages and `/schemas` are stable.
    pub(crate) algorithms: BTreeMap<String, Hosted>,
    pub(crate) default_algorithm: Option<String>,
    token: Option<String>,
    /// Reported in the 413 message, so the caller knows what fits.
    pub(crate) max_body_bytes: usize,
    pub(crate) metrics: Metrics,
    /// Set when shutdown starts, so `/ready` turns 503 and load balancers stop sending work.
    draining: AtomicBool,
    /// Cancelled when the grace period is over: calls still running are answered 503 at once,
    /// so their connections close and the runner can stop.
    pub(crate) abandon: CancellationToken,
}

impl Shared {
    pub(crate) fn new(
        runner_id: String,
        algorithms: BTreeMap<String, Hosted>,
        default_algorithm: Option<String>,
        token: Option<String>,
        max_body_bytes: usize,
        metrics: Metrics,
    ) -> Shared {
        Shared {
            runner_id,
            algorithms,
            default_algorithm,
            token,
            max_body_bytes,
            metrics,
            draining: AtomicBool::new(false),
            abandon: CancellationToken::new(),
        }
    }

    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.token else {
            return Ok(());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if switchyard_wire::auth::bearer_matches(presented, expected) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        }
    }

    /// The algorithm named, or the default one for `None`.
    pub(crate) fn lookup(&self, name: Option<&str>) -> Result<&Hosted, ApiError> {
        match name {
            Some(name) => self
                .algorithms
                .get(name)
                .ok_or_else(|| ApiError::UnknownAlgorithm {
                    name: name.to_string(),
                    hosted: self.hosted_names(),
                }),
            None => self
                .default_algorithm
                .as_ref()
                .and_then(|name| self.algorithms.get(name))
                .ok_or_else(|| ApiError::NoDefault {
                    hosted: self.hosted_names(),
                }),
        }
    }

    /// The metrics label of a call: the hosted algorithm's name, or one fixed value for
    /// names that are not hosted.
    pub(crate) fn label(&self, name: Option<&str>) -> &str {
        self.lookup(name)
            .map_or(UNKNOWN_ALGORITHM, |hosted| hosted.name.as_str())
    }

    pub(crate) fn hosted_names(&self) -> Vec<String> {
        self.algorithms.keys().cloned().collect()
    }

    pub(crate) fn still_loading(&self) -> Vec<&str> {
        self.algorithms
            .values()
            .filter(|hosted| !hosted.is_settled())
            .map(|hosted| hosted.name.as_str())
            .collect()
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(token: Option<&str>) -> Shared {
        Shared::new(
            "r".into(),
            BTreeMap::new(),
            None,
            token.map(String::from),
            1,
            Metrics::new(),
        )
    }

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_token_must_match_exactly() {
        let shared = shared(Some("s3cret"));
        assert!(
            shared
                .authorize(&with_authorization("Bearer s3cret"))
                .is_ok()
        );
        for wrong in ["Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret"] {
            assert!(
                matches!(
                    shared.authorize(&with_authorization(wrong)),
                    Err(ApiError::Unauthorized)
                ),
                "{wrong}"
            );
        }
        assert!(matches!(
            shared.authorize(&HeaderMap::new()),
            Err(ApiError::Unauthorized)
        ));
    }

    #[test]
    fn without_a_token_anyone_may_call() {
        assert!(shared(None).authorize(&HeaderMap::new()).is_ok());
    }
}
