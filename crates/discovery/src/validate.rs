//! What discovery accepts as a registration. The controller sends task payloads to the URLs
//! registered here and puts algorithm names in paths, so both are checked before they are stored.

use std::collections::BTreeSet;

use switchyard_wire::discovery::{LegacyRegistration, RunnerRegistration};

use crate::registry::LEGACY_ID_PREFIX;

/// Longest runner id or algorithm name accepted: both end up in URLs and log lines.
const MAX_NAME_LEN: usize = 128;

/// A registration discovery refuses; the message names the field and the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct InvalidRegistration(String);

pub(crate) fn runner_registration(
    registration: &RunnerRegistration,
) -> Result<(), InvalidRegistration> {
    runner_id(&registration.id)?;
    base_url("base_url", &registration.base_url)?;
    if registration.algorithms.is_empty() {
        return Err(invalid(
            "'algorithms' is empty: a runner must host at least one algorithm",
        ));
    }
    let mut seen = BTreeSet::new();
    for algorithm in &registration.algorithms {
        algorithm_name(&algorithm.name)?;
        if !seen.insert(&algorithm.name) {
            return Err(invalid(format!(
                "algorithm '{}' is listed twice",
                algorithm.name
            )));
        }
    }
    if registration.capacity == 0 {
        return Err(invalid("'capacity' must be at least 1"));
    }
    Ok(())
}

pub(crate) fn legacy_registration(
    registration: &LegacyRegistration,
) -> Result<(), InvalidRegistration> {
    algorithm_name(&registration.algorithm)?;
    base_url("host", &registration.host)
}

/// Ids appear unescaped in heartbeat URLs, and `legacy:` ids belong to the series' registrations.
fn runner_id(id: &str) -> Result<(), InvalidRegistration> {
    if !is_name(id, |c| matches!(c, '_' | '.' | '-' | ':')) {
        return Err(invalid(format!(
            "'id' must be 1 to {MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '_', '.', '-', ':'"
        )));
    }
    if id.starts_with(LEGACY_ID_PREFIX) {
        return Err(invalid(format!(
            "'id' must not start with '{LEGACY_ID_PREFIX}': it names legacy registrations"
        )));
    }
    Ok(())
}

fn algorithm_name(name: &str) -> Result<(), InvalidRegistration> {
    if is_name(name, |c| matches!(c, '_' | '.' | '-')) {
        Ok(())
    } else {
        Err(invalid(format!(
            "algorithm name must be 1 to {MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '_', '.', '-'"
        )))
    }
}

fn is_name(text: &str, also_allowed: impl Fn(char) -> bool) -> bool {
    !text.is_empty()
        && text.len() <= MAX_NAME_LEN
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || also_allowed(c))
}

/// The controller appends `/run/{algorithm}` to this URL, so it must be a plain absolute
/// http(s) base: no query or fragment, and no credentials, which the listing would reveal.
fn base_url(field: &str, value: &str) -> Result<(), InvalidRegistration> {
    let url = url::Url::parse(value)
        .map_err(|error| invalid(format!("'{field}' is not an absolute URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "'{field}' must be an http or https URL, not '{}'",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("'{field}' has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "'{field}' must not have a query or fragment"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(format!("'{field}' must not carry credentials")));
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> InvalidRegistration {
    InvalidRegistration(message.into())
}
