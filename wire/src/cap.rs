//! The frequency cap (docs/local-time.md, "Frequency cap"): at most so many capped campaigns
//! reach a user in a window of time, however many are sent.

use serde::{Deserialize, Serialize};

/// The largest cap: beyond it a cap is not one.
const MOST: u32 = 20;
/// The longest window, in seconds: what capped campaigns sent is kept a day longer.
const LONGEST: u32 = 30 * 24 * 3600;

/// A campaign's frequency cap as given: `2/24h` (at most two capped campaigns per user in
/// any 24 hours, this one included), or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FrequencyCap {
    /// Not capped: it neither looks at nor counts toward anyone's cap.
    Off,
    /// A user who received `count` capped campaigns in the last `window_secs` is left out
    /// (counted `capped`); one who is reached counts toward the caps of those that follow.
    At { count: u32, window_secs: u32 },
}

impl FrequencyCap {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Ok(Self::Off);
        }
        let wrong = || {
            format!(
                "{s:?} is not a cap like 2/24h (a number of campaigns, then a window in \
                 minutes m, hours h or days d), or none"
            )
        };
        let (count, window) = s.split_once('/').ok_or_else(wrong)?;
        let count: u32 = count.trim().parse().map_err(|_| wrong())?;
        let window = window.trim();
        let unit = match window.chars().last() {
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 24 * 3600,
            _ => return Err(wrong()),
        };
        let n: u32 = window[..window.len() - 1].parse().map_err(|_| wrong())?;
        if !(1..=MOST).contains(&count) {
            return Err(format!(
                "{s:?}: a cap allows 1 to {MOST} campaigns per window"
            ));
        }
        let window_secs = n
            .checked_mul(unit)
            .filter(|w| (60..=LONGEST).contains(w))
            .ok_or_else(|| format!("{s:?}: the window must be from 1 minute to 30 days"))?;
        Ok(Self::At { count, window_secs })
    }

    /// The cap's count and window, unless it is off.
    pub fn limit(self) -> Option<(u32, u32)> {
        match self {
            Self::Off => None,
            Self::At { count, window_secs } => Some((count, window_secs)),
        }
    }
}

impl std::fmt::Display for FrequencyCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::Off => f.write_str("none"),
            Self::At { count, window_secs } => {
                let (n, unit) = if window_secs % (24 * 3600) == 0 && window_secs > 48 * 3600 {
                    (window_secs / (24 * 3600), 'd')
                } else if window_secs % 3600 == 0 {
                    (window_secs / 3600, 'h')
                } else {
                    (window_secs / 60, 'm')
                };
                write!(f, "{count}/{n}{unit}")
            }
        }
    }
}

impl TryFrom<String> for FrequencyCap {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<FrequencyCap> for String {
    fn from(c: FrequencyCap) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_reads_as_campaigns_per_window_and_prints_as_given() {
        for (given, count, window_secs) in [
            ("2/24h", 2, 86_400),
            ("1/30m", 1, 1_800),
            ("5/7d", 5, 604_800),
            (" 20 / 1m ", 20, 60),
            ("3/30d", 3, 2_592_000),
        ] {
            let cap = FrequencyCap::parse(given).unwrap();
            assert_eq!(cap, FrequencyCap::At { count, window_secs }, "{given}");
            assert_eq!(FrequencyCap::parse(&cap.to_string()).unwrap(), cap);
        }
        assert_eq!(FrequencyCap::parse("2/24h").unwrap().to_string(), "2/24h");
        assert_eq!(FrequencyCap::parse("2/48h").unwrap().to_string(), "2/48h");
        assert_eq!(FrequencyCap::parse("None").unwrap(), FrequencyCap::Off);
    }

    #[test]
    fn a_cap_out_of_bounds_is_refused() {
        for wrong in [
            "",
            "2",
            "2/",
            "/24h",
            "0/24h",
            "21/24h",
            "2/24",
            "2/0h",
            "2/30s",
            "2/31d",
            "2/-1h",
            "x/1h",
            "2/1w",
            "99999999999/1h",
            "2/99999999999d",
        ] {
            assert!(FrequencyCap::parse(wrong).is_err(), "{wrong:?} was taken");
        }
    }
}
