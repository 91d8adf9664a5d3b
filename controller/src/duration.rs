//! Go-style durations (`87600h`, `1h30m`, `720h0m0s`, `500ms`), as Bitnami's flags and ESO's
//! fields spell them.

use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

/// Parses a Go `time.ParseDuration` string (`1h0m0s`, `1.5h`, `300ms`, `0`). Negative durations
/// are rejected: a refresh interval cannot be negative.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(err("negative durations are not allowed"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_nanos: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit"))?;
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| err("malformed number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err("unknown unit (use ns, us, ms, s, m, h)")),
        };
        total_nanos += number * nanos_per_unit;
    }
    // Go's limit is ~292 years; anything beyond is surely a typo.
    if !total_nanos.is_finite() || total_nanos > 9.2e18 {
        return Err(err("overflows"));
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_go_writes() {
        assert_eq!(
            parse_go_duration("87600h"),
            Ok(Duration::from_secs(87_600 * 3600))
        );
        assert_eq!(
            parse_go_duration("720h0m0s"),
            Ok(Duration::from_secs(720 * 3600))
        );
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "h", "10", "10x", "-1h", "1h-", "abc"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }
}
