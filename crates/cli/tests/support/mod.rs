//! What the `switchyard` binary's test files share, by kit: `e2e` (a RabbitMQ vhost, discovery
//! and a runner in process, the binary as controller and producer), `faults` (services that can
//! be killed and restarted, misbehaving runners, hostile images) and `up` (`switchyard up` as a
//! child process).

#![allow(dead_code)] // each test binary uses its own kit, or part of one

pub(crate) mod e2e;
pub(crate) mod faults;
pub(crate) mod up;
