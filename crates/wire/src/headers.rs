//! Names of the HTTP and message headers Switchyard components exchange.

/// The task id, sent by the controller with each call to a runner so both log lines carry it.
pub const TASK_ID: &str = "x-switchyard-task-id";
/// W3C trace context, sent with each call to a runner.
pub const TRACEPARENT: &str = "traceparent";
/// Message header: how many runner attempts a task has already had.
pub const ATTEMPTS: &str = "x-switchyard-attempts";
/// Message header: when the task was first consumed (ms since the Unix epoch), so a retried task
/// reports its whole duration and the no-runner deadline counts from the first try.
pub const FIRST_SEEN_MS: &str = "x-switchyard-first-seen-ms";
/// Message header: when the task's answer stops being useful (ms since the Unix epoch). Past it
/// the task is never run and its result says `expired`. `POST /v1/tasks`' `deadline`/`ttl` and
/// `switchyard submit --deadline/--ttl` set it; producers that publish directly may too.
pub const DEADLINE_MS: &str = "x-switchyard-deadline-ms";
/// Message header: the task's failed attempts so far, a JSON array of
/// [`FailedAttempt`](crate::FailedAttempt), carried by retries into the final result's `history`.
pub const HISTORY: &str = "x-switchyard-history";
/// Dead-letter headers: why the task was dead-lettered, and the last error seen.
pub const DEAD_REASON: &str = "x-switchyard-dead-reason";
/// See [`DEAD_REASON`]: the last error, for a human reading the dead letter.
pub const DEAD_ERROR: &str = "x-switchyard-last-error";
/// Environment variable holding the shared token that discovery and runners require.
pub const TOKEN_ENV: &str = "SWITCHYARD_TOKEN";

/// A `traceparent` value for a task: the trace id is derived from the task id, so one id finds the
/// task's whole story even in tools that only index trace ids.
pub fn traceparent_for(task_id: &str, attempt: u32) -> String {
    let trace_id = hex_digest(task_id.as_bytes(), 0x9e37_79b9_7f4a_7c15);
    let trace_id2 = hex_digest(task_id.as_bytes(), 0xc2b2_ae3d_27d4_eb4f);
    let span_id = hex_digest(&attempt.to_le_bytes(), 0x1656_67b1_9e37_79f9 ^ fnv(task_id));
    format!("00-{trace_id}{trace_id2}-{span_id}-01")
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn hex_digest(bytes: &[u8], seed: u64) -> String {
    let hash = bytes.iter().fold(seed, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:016x}", hash | 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_well_formed_and_stable_per_task() {
        let a = traceparent_for("task-1", 1);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(
            (parts[0], parts[1].len(), parts[2].len(), parts[3]),
            ("00", 32, 16, "01")
        );
        assert_eq!(
            a.split('-').nth(1),
            traceparent_for("task-1", 2).split('-').nth(1)
        );
        assert_ne!(a, traceparent_for("task-2", 1));
    }
}
