//! When to call the provider: Go duration parsing, ESO's refresh decision, per-object jitter and
//! the error backoff. Plain functions of their inputs so they can be tested exhaustively.

use std::time::Duration;

use crds::external_secrets::RefreshPolicy;
use sha2::{Digest, Sha256};

pub use crate::duration::{DurationError, parse_go_duration};

/// The refresh interval of an ExternalSecret; missing means ESO's default of one hour.
pub fn refresh_interval(spec_value: Option<&str>) -> Result<Duration, DurationError> {
    match spec_value {
        None => Ok(Duration::from_secs(3600)),
        Some(v) => parse_go_duration(v),
    }
}

/// Everything the refresh decision looks at.
#[derive(Debug, Clone)]
pub struct RefreshInput<'a> {
    pub policy: RefreshPolicy,
    pub interval: Duration,
    /// `status.syncedResourceVersion` (None: never synced).
    pub synced_resource_version: Option<&'a str>,
    /// The object's current `<generation>-<labels/annotations hash>`.
    pub current_resource_version: &'a str,
    /// Seconds since the last successful sync (`status.refreshTime`); None if never.
    pub since_last_sync: Option<Duration>,
    /// Whether the target Secret exists and still carries our data hash.
    pub target_valid: bool,
    /// Deterministic per-object delay added to each periodic refresh.
    pub jitter: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Fetch now.
    Now,
    /// Nothing to do until this much time has passed.
    After(Duration),
    /// Never again unless the object changes.
    Never,
}

/// ESO's `shouldRefresh` with two additions: a per-object jitter on periodic refreshes and an
/// immediate refresh when the target Secret was removed or tampered with.
pub fn decide_refresh(input: &RefreshInput<'_>) -> RefreshDecision {
    let changed = input.synced_resource_version != Some(input.current_resource_version);
    let never_synced = input.synced_resource_version.is_none() || input.since_last_sync.is_none();
    match input.policy {
        RefreshPolicy::CreatedOnce => {
            if never_synced || !input.target_valid {
                RefreshDecision::Now
            } else {
                RefreshDecision::Never
            }
        }
        RefreshPolicy::OnChange => {
            if changed || never_synced || !input.target_valid {
                RefreshDecision::Now
            } else {
                RefreshDecision::Never
            }
        }
        RefreshPolicy::Periodic => {
            if changed || never_synced || !input.target_valid {
                return RefreshDecision::Now;
            }
            if input.interval.is_zero() {
                return RefreshDecision::Never;
            }
            let due = input.interval + input.jitter;
            match input.since_last_sync {
                Some(elapsed) if elapsed < due => RefreshDecision::After(due - elapsed),
                _ => RefreshDecision::Now,
            }
        }
    }
}

/// A stable delay in `[0, min(interval/10, 5 min))` derived from the object's identity, so that
/// thousands of ExternalSecrets created together with the same interval do not refresh in the
/// same second (external-secrets#4231). Added, never subtracted: an object is never refreshed
/// more often than its interval says.
pub fn jitter_for(identity: &str, interval: Duration) -> Duration {
    let spread = (interval / 10).min(Duration::from_secs(300));
    if spread.is_zero() {
        return Duration::ZERO;
    }
    let digest = Sha256::digest(identity.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let fraction = u64::from_be_bytes(first) as f64 / (u64::MAX as f64 + 1.0);
    Duration::from_secs_f64(spread.as_secs_f64() * fraction)
}

/// Delay before retry number `failures` (1 = first failure). Doubles from a base of
/// `interval/64` (at least 5 s) and is capped at the interval itself, so a failing
/// ExternalSecret settles at the normal refresh rate after at most 7 quicker retries instead
/// of retrying every few minutes for ever (external-secrets#6728). With a `0` interval (fetch
/// once) the cap is one hour.
pub fn error_backoff(failures: u32, interval: Duration) -> Duration {
    let cap = if interval.is_zero() {
        Duration::from_secs(3600)
    } else {
        interval
    };
    let base = (cap / 64).max(Duration::from_secs(5)).min(cap);
    let exp = failures.saturating_sub(1).min(20);
    base.saturating_mul(1u32 << exp).min(cap)
}

/// Upper bound of provider calls that `error_backoff` makes during `horizon` for one failing
/// object: used by tests and the docs to state the guarantee.
pub fn calls_during_failure(interval: Duration, horizon: Duration) -> u32 {
    let mut t = Duration::ZERO;
    let mut calls = 1; // the failing call itself
    let mut failures = 1;
    loop {
        t += error_backoff(failures, interval);
        if t > horizon {
            return calls;
        }
        calls += 1;
        failures += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases = [
            ("0", 0.0),
            ("0s", 0.0),
            ("1h0m0s", 3600.0),
            ("1h", 3600.0),
            ("15s", 15.0),
            ("1.5h", 5400.0),
            ("2h45m", 9900.0),
            ("300ms", 0.3),
            ("1m30s", 90.0),
            ("10us", 0.00001),
            ("10µs", 0.00001),
            ("+5s", 5.0),
        ];
        for (text, secs) in cases {
            let d = parse_go_duration(text).unwrap();
            assert!((d.as_secs_f64() - secs).abs() < 1e-9, "{text}: {d:?}");
        }
        for bad in ["", "1", "h", "1x", "-1s", "1..2s", "abc", "1h-1m"] {
            assert!(parse_go_duration(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(refresh_interval(None).unwrap(), Duration::from_secs(3600));
    }

    fn input(policy: RefreshPolicy) -> RefreshInput<'static> {
        RefreshInput {
            policy,
            interval: Duration::from_secs(3600),
            synced_resource_version: Some("1-abc"),
            current_resource_version: "1-abc",
            since_last_sync: Some(Duration::from_secs(10)),
            target_valid: true,
            jitter: Duration::from_secs(5),
        }
    }

    #[test]
    fn periodic_waits_for_interval_plus_jitter() {
        let i = input(RefreshPolicy::Periodic);
        assert_eq!(
            decide_refresh(&i),
            RefreshDecision::After(Duration::from_secs(3595))
        );
        let i = RefreshInput {
            since_last_sync: Some(Duration::from_secs(3605)),
            ..input(RefreshPolicy::Periodic)
        };
        assert_eq!(decide_refresh(&i), RefreshDecision::Now);
    }

    #[test]
    fn changes_never_synced_and_missing_target_refresh_now() {
        for policy in [
            RefreshPolicy::Periodic,
            RefreshPolicy::OnChange,
            RefreshPolicy::CreatedOnce,
        ] {
            let i = RefreshInput {
                synced_resource_version: None,
                since_last_sync: None,
                ..input(policy)
            };
            assert_eq!(decide_refresh(&i), RefreshDecision::Now, "{policy:?}");
            let i = RefreshInput {
                target_valid: false,
                ..input(policy)
            };
            assert_eq!(decide_refresh(&i), RefreshDecision::Now, "{policy:?}");
        }
        // A label/annotation change (force-sync) refreshes Periodic and OnChange ...
        for policy in [RefreshPolicy::Periodic, RefreshPolicy::OnChange] {
            let i = RefreshInput {
                current_resource_version: "1-def",
                ..input(policy)
            };
            assert_eq!(decide_refresh(&i), RefreshDecision::Now);
        }
        // ... but CreatedOnce fetches exactly once.
        let i = RefreshInput {
            current_resource_version: "2-def",
            ..input(RefreshPolicy::CreatedOnce)
        };
        assert_eq!(decide_refresh(&i), RefreshDecision::Never);
        assert_eq!(
            decide_refresh(&input(RefreshPolicy::OnChange)),
            RefreshDecision::Never
        );
    }

    #[test]
    fn zero_interval_fetches_once() {
        let i = RefreshInput {
            interval: Duration::ZERO,
            since_last_sync: Some(Duration::from_secs(999_999)),
            ..input(RefreshPolicy::Periodic)
        };
        assert_eq!(decide_refresh(&i), RefreshDecision::Never);
        let i = RefreshInput {
            interval: Duration::ZERO,
            synced_resource_version: None,
            since_last_sync: None,
            ..input(RefreshPolicy::Periodic)
        };
        assert_eq!(decide_refresh(&i), RefreshDecision::Now);
    }

    #[test]
    fn jitter_is_deterministic_bounded_and_spread() {
        let hour = Duration::from_secs(3600);
        assert_eq!(jitter_for("ns/a", hour), jitter_for("ns/a", hour));
        let mut buckets = [0u32; 10];
        for i in 0..1000 {
            let j = jitter_for(&format!("ns/es-{i}"), hour);
            assert!(j < Duration::from_secs(300));
            buckets[(j.as_secs_f64() / 30.0) as usize] += 1;
        }
        // 1000 objects over 10 buckets of 30 s: none empty, none holding a third.
        assert!(buckets.iter().all(|&b| b > 50 && b < 333), "{buckets:?}");
        assert_eq!(jitter_for("x", Duration::ZERO), Duration::ZERO);
        assert!(jitter_for("x", Duration::from_secs(10)) < Duration::from_secs(1));
    }

    #[test]
    fn backoff_is_capped_by_the_interval() {
        let day = Duration::from_secs(86_400);
        let mut prev = Duration::ZERO;
        for n in 1..40 {
            let d = error_backoff(n, day);
            assert!(d >= prev && d <= day);
            prev = d;
        }
        assert_eq!(error_backoff(1, day), Duration::from_secs(1350));
        assert_eq!(error_backoff(100, day), day);
        // A failing ES with a 24 h interval: ESO's controller-runtime backoff (capped at ~16 min)
        // makes ~90 calls a day; ours at most 7 in the first day, then one per day.
        assert!(calls_during_failure(day, day) <= 7);
        assert!(calls_during_failure(day, day * 10) <= 7 + 9);
        // Short intervals keep a 5 s floor but never exceed the interval.
        assert_eq!(
            error_backoff(1, Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        assert_eq!(
            error_backoff(1, Duration::from_secs(60)),
            Duration::from_secs(5)
        );
        assert_eq!(error_backoff(50, Duration::ZERO), Duration::from_secs(3600));
    }
}
