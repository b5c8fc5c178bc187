//! A task's deadline as a producer gives it: an RFC 3339 instant (`2026-12-03T12:00:00Z`), or a
//! ttl from now (`30s`); on the wire, Unix milliseconds in [`crate::headers::DEADLINE_MS`].

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::duration::parse_duration;

/// Unix ms of an RFC 3339 instant that is still ahead of `now_ms`.
pub fn parse_deadline(text: &str, now_ms: u64) -> Result<u64, String> {
    let instant = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|error| {
        format!("'{text}' is not an RFC 3339 instant such as 2026-12-03T12:00:00Z ({error})")
    })?;
    let ms = instant.unix_timestamp_nanos() / 1_000_000;
    let ms = u64::try_from(ms).map_err(|_| format!("'{text}' is before 1970"))?;
    if ms <= now_ms {
        return Err(format!("'{text}' has already passed"));
    }
    Ok(ms)
}

/// Unix ms `ttl` after `now_ms`; a ttl must be longer than zero.
pub fn deadline_after(ttl: &str, now_ms: u64) -> Result<u64, String> {
    let ttl = parse_duration(ttl)?;
    if ttl.is_zero() {
        return Err("a ttl must be longer than 0".to_owned());
    }
    Ok(now_ms.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)))
}

/// Why a producer's `deadline`/`ttl` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineRefused {
    /// Both were given: which one should win is not the API's guess to make.
    #[error("give 'deadline' or 'ttl', not both")]
    Both,
    /// `field` is `deadline` or `ttl`; `reason` says what is wrong with its value.
    #[error("{field}: {reason}")]
    Invalid {
        /// `deadline` or `ttl`.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

/// The deadline in Unix ms that a producer's `deadline` (RFC 3339) or `ttl` (from `now_ms`)
/// gives, if either; both at once is refused.
pub fn from_deadline_or_ttl(
    deadline: Option<&str>,
    ttl: Option<&str>,
    now_ms: u64,
) -> Result<Option<u64>, DeadlineRefused> {
    let invalid = |field| move |reason| DeadlineRefused::Invalid { field, reason };
    match (deadline, ttl) {
        (Some(_), Some(_)) => Err(DeadlineRefused::Both),
        (Some(deadline), None) => parse_deadline(deadline, now_ms)
            .map(Some)
            .map_err(invalid("deadline")),
        (None, Some(ttl)) => deadline_after(ttl, now_ms)
            .map(Some)
            .map_err(invalid("ttl")),
        (None, None) => Ok(None),
    }
}

/// Now, in Unix ms: the clock deadlines are measured against.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Time left before `deadline_ms` at `now_ms`; zero once it passed.
pub fn time_left(deadline_ms: u64, now_ms: u64) -> Duration {
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_000_000_000; // 2026-11-30

    #[test]
    fn instants_with_any_offset_and_ttls_become_unix_ms() {
        assert_eq!(
            parse_deadline("2026-12-03T12:00:00Z", NOW),
            Ok(1_796_299_200_000)
        );
        assert_eq!(
            parse_deadline("2026-12-03T13:00:00+01:00", NOW),
            Ok(1_796_299_200_000)
        );
        assert_eq!(
            parse_deadline("2026-12-03T12:00:00.250Z", NOW),
            Ok(1_796_299_200_250)
        );
        assert_eq!(deadline_after("30s", NOW), Ok(NOW + 30_000));
        assert_eq!(time_left(NOW + 1_500, NOW), Duration::from_millis(1_500));
        assert_eq!(time_left(NOW, NOW + 1), Duration::ZERO);
    }

    #[test]
    fn the_past_zero_and_nonsense_are_refused_saying_why() {
        assert_eq!(
            parse_deadline("2020-01-01T00:00:00Z", NOW),
            Err("'2020-01-01T00:00:00Z' has already passed".to_owned())
        );
        assert!(
            parse_deadline("tomorrow", NOW)
                .unwrap_err()
                .contains("not an RFC 3339 instant")
        );
        assert_eq!(
            deadline_after("0s", NOW),
            Err("a ttl must be longer than 0".to_owned())
        );
        assert!(deadline_after("soon", NOW).is_err());
        assert_eq!(
            from_deadline_or_ttl(Some("2026-12-03T12:00:00Z"), Some("1s"), NOW),
            Err(DeadlineRefused::Both)
        );
        assert_eq!(
            from_deadline_or_ttl(None, Some("0s"), NOW),
            Err(DeadlineRefused::Invalid {
                field: "ttl",
                reason: "a ttl must be longer than 0".to_owned()
            })
        );
        assert_eq!(
            from_deadline_or_ttl(None, Some("1s"), NOW),
            Ok(Some(NOW + 1_000))
        );
        assert_eq!(from_deadline_or_ttl(None, None, NOW), Ok(None));
    }
}
