//! The registry's wire contract.
//!
//! Two forms live side by side:
//! - the series' form, kept byte for byte so Python runners plug in unchanged:
//!   `POST /algorithms` `{"algorithm", "host"}`, `GET /algorithms` -> `{"<algorithm>": "<host>"}`;
//! - the richer form Switchyard runners use: `POST /runners` with a [`RunnerRegistration`],
//!   `PUT /runners/{id}/heartbeat`, `DELETE /runners/{id}`, `GET /runners` -> `[`[`RunnerEntry`]`]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The series' registration: one algorithm served at one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyRegistration {
    /// The one algorithm the runner serves at `POST /`.
    pub algorithm: String,
    /// Base URL of the runner, e.g. `http://meme-classifier:5000`.
    pub host: String,
}

/// A runner announcing itself: sent once at start, and again whenever discovery has forgotten it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerRegistration {
    /// Stable for the life of the runner process; heartbeats and deregistration name it.
    pub id: String,
    /// Where the controller reaches the runner, e.g. `http://10.0.0.7:8080`.
    pub base_url: String,
    /// What it hosts, each with its payload schema.
    pub algorithms: Vec<AlgorithmInfo>,
    /// Algorithms the runner was asked to host but cannot run on its machine (an engine not
    /// installed), with why: listed so users see the fix, never routed to. Left out when empty,
    /// so registrations stay what older discoveries accept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<UnavailableAlgorithm>,
    /// How many calls the runner serves at once across its algorithms; the controller uses it
    /// to weigh replicas.
    pub capacity: u32,
}

/// An algorithm a runner cannot run on its machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UnavailableAlgorithm {
    /// The algorithm's name.
    pub name: String,
    /// What is missing and the command that installs it.
    pub reason: String,
}

/// One algorithm a runner hosts, with the JSON schema of its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlgorithmInfo {
    /// The name tasks give in `algorithm`, and the runner serves at `/run/{name}`.
    pub name: String,
    /// The JSON schema a payload must satisfy.
    pub schema: Value,
}

/// Discovery's answer to a registration: how often to heartbeat and when silence means death.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegistrationAck {
    /// A runner silent this long is forgotten.
    pub ttl_ms: u64,
    /// How often the runner should heartbeat.
    pub heartbeat_interval_ms: u64,
}

/// One replica in the detailed listing (`GET /runners`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunnerEntry {
    /// The runner's id; for a legacy registration, `legacy:<host>`.
    pub id: String,
    /// Where the controller calls it.
    pub base_url: String,
    /// What it hosts, each with its payload schema.
    pub algorithms: Vec<AlgorithmInfo>,
    /// Algorithms this runner cannot run, with why; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<UnavailableAlgorithm>,
    /// Calls it serves at once, across its algorithms; the controller weighs load against it.
    pub capacity: u32,
    /// Registered through the series' `POST /algorithms`: it never heartbeats, so it never expires.
    pub legacy: bool,
    /// Heartbeat seen within two heartbeat intervals, so one late beat is not a failure (always
    /// true for legacy entries, which never heartbeat).
    pub healthy: bool,
    /// Milliseconds since the last registration or heartbeat.
    pub last_heartbeat_ms_ago: u64,
}

/// The series' listing: one host per algorithm.
pub type LegacyListing = BTreeMap<String, String>;
