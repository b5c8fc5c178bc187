//! Discovery: the registry runners announce themselves to, and the client that talks to it.

pub mod client;

pub use client::{ClientError, DiscoveryClient};
