//! Times in filters: RFC 3339, or relative to the launch, and the canonical text form time
//! attributes are stored and compared in.

use chrono::{DateTime, SecondsFormat, Utc};

/// A time in a filter: absolute, or relative to when the launch resolves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeRef {
    At(DateTime<Utc>),
    /// Seconds from now (negative: ago).
    FromNow(i64),
}

impl TimeRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a time: use RFC 3339 (2026-11-01T00:00:00Z) or a time relative \
                 to the launch (-30d, -12h, +1w, now; units s, m, h, d, w)"
            )
        };
        if s == "now" {
            return Ok(Self::FromNow(0));
        }
        if let Some(rest) = s.strip_prefix(['-', '+']) {
            let sign = if s.starts_with('-') { -1 } else { 1 };
            let unit = rest.chars().last().ok_or_else(bad)?;
            let secs = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(bad()),
            };
            let digits = &rest[..rest.len() - unit.len_utf8()];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            // At most about a century either way.
            let n: i64 = digits.parse().map_err(|_| bad())?;
            if n > 36_500 * 86_400 / secs {
                return Err(bad());
            }
            return Ok(Self::FromNow(sign * n * secs));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| Self::At(t.with_timezone(&Utc)))
            .map_err(|_| bad())
    }

    pub fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::At(t) => t,
            Self::FromNow(secs) => now + chrono::Duration::seconds(secs),
        }
    }

    /// How times are written where they are compared as text (in filters once resolved, and
    /// in time attributes): RFC 3339 in UTC to the microsecond, so that the text order is
    /// the time order.
    pub fn canonical(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}
