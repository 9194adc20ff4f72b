//! Times that Lambda and API Gateway hand a function, made safe against local emulators.
//!
//! API Gateway's `requestContext.timeEpoch` and the Runtime API's deadline
//! (`Lambda-Runtime-Deadline-Ms`) are epoch milliseconds on AWS. Emulators differ:
//! `cargo lambda watch` 1.9.2 puts `timeEpoch` in seconds, and sends the constant `600000` as
//! the deadline of every invocation (a duration, not a time: as epoch milliseconds it lies in
//! January 1970). Two rules cover them without ever second-guessing AWS:
//!
//! - a value below 10^12 can only be seconds (as milliseconds it would be before September 2001,
//!   long before any request this code will see): it is multiplied by 1,000; anything else is
//!   trusted as epoch milliseconds;
//! - a deadline already past when the invocation starts cannot be Lambda's (Lambda starts an
//!   invocation before its deadline): the function's configured timeout is used instead, when
//!   the function knows it. Without one, a past deadline leaves no time (the conservative
//!   reading: do nothing that could be cut off).

use std::time::Duration;

/// Below this, an epoch value is seconds (10^12 ms is 2001-09-09).
pub const SECONDS_BELOW: i64 = 1_000_000_000_000;

/// An epoch time as milliseconds, whether it was given in milliseconds (AWS) or seconds
/// (`cargo lambda watch`'s `timeEpoch`). Zero and negative values are returned unchanged (the
/// caller decides what "no time" means).
pub fn epoch_millis(value: i64) -> i64 {
    if value > 0 && value < SECONDS_BELOW {
        value.saturating_mul(1000)
    } else {
        value
    }
}

/// The time an invocation has left, from the Runtime API's deadline (`deadline_ms`, 0 = none:
/// a test context) at `now_ms` (epoch milliseconds). `None` means no deadline at all. A deadline
/// in seconds is scaled; one already past is replaced by `configured_timeout` when given (see
/// the module doc), else leaves no time.
pub fn remaining(
    deadline_ms: u64,
    now_ms: u64,
    configured_timeout: Option<Duration>,
) -> Option<Duration> {
    if deadline_ms == 0 {
        return None;
    }
    let deadline = epoch_millis(i64::try_from(deadline_ms).unwrap_or(i64::MAX)) as u64;
    if deadline > now_ms {
        return Some(Duration::from_millis(deadline - now_ms));
    }
    Some(configured_timeout.unwrap_or(Duration::ZERO))
}

/// The time a piece of work may take: what the invocation has left (`deadline_ms`, epoch ms,
/// 0 = none) less `reserve` (to store, answer, log), or `default` when there is no usable
/// deadline (tests, local runs, an emulator's deadline already past at the start).
pub fn budget(deadline_ms: u64, now_ms: u64, reserve: Duration, default: Duration) -> Duration {
    match remaining(deadline_ms, now_ms, None) {
        Some(left) if !left.is_zero() => left.saturating_sub(reserve),
        _ => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_796_035_643_068; // 2026-11-30, as measured under cargo lambda watch

    #[test]
    fn milliseconds_are_trusted_and_seconds_are_scaled() {
        assert_eq!(epoch_millis(NOW_MS as i64), NOW_MS as i64);
        assert_eq!(epoch_millis(1_796_035_643), 1_796_035_643_000);
        // The boundary: 10^12 ms is trusted, one below is seconds.
        assert_eq!(epoch_millis(SECONDS_BELOW), SECONDS_BELOW);
        assert_eq!(epoch_millis(SECONDS_BELOW - 1), (SECONDS_BELOW - 1) * 1000);
        assert_eq!(epoch_millis(0), 0);
        assert_eq!(epoch_millis(-5), -5);
    }

    #[test]
    fn a_lambda_deadline_gives_the_time_to_it() {
        let d = remaining(NOW_MS + 900_000, NOW_MS, Some(Duration::from_secs(60)));
        assert_eq!(d, Some(Duration::from_secs(900)));
    }

    #[test]
    fn a_deadline_in_seconds_is_scaled() {
        let d = remaining(NOW_MS / 1000 + 900, NOW_MS / 1000 * 1000, None);
        assert_eq!(d, Some(Duration::from_secs(900)));
    }

    #[test]
    fn cargo_lambda_watchs_constant_deadline_means_the_configured_timeout() {
        // cargo lambda watch 1.9.2 sends `lambda-runtime-deadline-ms: 600000` on every invocation.
        let t = Duration::from_secs(900);
        assert_eq!(remaining(600_000, NOW_MS, Some(t)), Some(t));
        assert_eq!(remaining(600_000, NOW_MS, None), Some(Duration::ZERO));
    }

    #[test]
    fn a_past_deadline_without_a_configured_timeout_leaves_no_time() {
        assert_eq!(remaining(1, NOW_MS, None), Some(Duration::ZERO));
        assert_eq!(remaining(NOW_MS - 1, NOW_MS, None), Some(Duration::ZERO));
        assert_eq!(remaining(NOW_MS, NOW_MS, None), Some(Duration::ZERO));
    }

    #[test]
    fn no_deadline_is_no_limit() {
        assert_eq!(remaining(0, NOW_MS, Some(Duration::from_secs(1))), None);
    }
}
