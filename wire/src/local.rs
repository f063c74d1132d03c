//! Delivery at the recipient's own local time: a campaign sent "at 09:00" opens, in each time
//! zone of its audience, when it is 09:00 there. Zones whose 09:00 is the same instant (the
//! same UTC offset that day) open together, as one *wave*.
//!
//! The plan is made once, when the campaign is registered, from how many of its users are in
//! each zone; it is kept with the campaign, and the workflow opens each wave on a durable
//! timer. Everything here is pure: the time zone database is built into the binary
//! (`jiff`'s bundled tzdb), so every host computes the same openings.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, NaiveTime, Utc};
use jiff::{
    ToSpan,
    civil::DateTime as Civil,
    tz::{AmbiguousOffset, TimeZone},
};
use serde::{Deserialize, Serialize};

use crate::{FieldError, InvalidInput};

/// What happens to zones whose local time has already passed when the campaign starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PastZones {
    /// They open at once, together.
    SendNow,
    /// Their users are left out (counted as skipped).
    Skip,
    /// They open at that local time the next day.
    #[default]
    NextDay,
}

impl PastZones {
    pub const NAMES: &'static str = "send-now, skip or next-day";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "send-now" => Some(Self::SendNow),
            "skip" => Some(Self::Skip),
            "next-day" => Some(Self::NextDay),
            _ => None,
        }
    }
}

/// A daily window of the recipient's local time in which nothing is delivered to them:
/// `21:00-08:00` (across midnight) or `12:00-14:00`. A recipient reached inside it is held
/// until it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    pub fn parse(s: &str) -> Result<Self, String> {
        let wrong = || format!("{s:?} is not a window like 21:00-08:00 (HH:MM-HH:MM, local time)");
        let (a, b) = s.trim().split_once('-').ok_or_else(wrong)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| wrong());
        let (start, end) = (time(a)?, time(b)?);
        if start == end {
            return Err(format!("{s:?} is empty: its start and end are the same"));
        }
        Ok(Self { start, end })
    }

    /// The windows that end after `from` and begin within `days` days of it, in `tz`, as
    /// Unix milliseconds `[start, end)`, each in that day's own offset.
    pub fn windows(
        &self,
        tz: &TimeZone,
        from: DateTime<Utc>,
        days: i64,
    ) -> Result<Vec<[i64; 2]>, String> {
        let first = from.naive_utc().date() - chrono::Duration::days(2);
        let mut out = Vec::new();
        for d in 0..=days + 3 {
            let day = first + chrono::Duration::days(d);
            let end_day = if self.start < self.end {
                day
            } else {
                day + chrono::Duration::days(1)
            };
            let (s, _) = instant_of(tz, day.and_time(self.start))?;
            let (e, _) = instant_of(tz, end_day.and_time(self.end))?;
            let (s, e) = (s.timestamp_millis(), e.timestamp_millis());
            let horizon = (from + chrono::Duration::days(days)).timestamp_millis();
            if e > from.timestamp_millis() && s < horizon && s < e {
                out.push([s, e]);
            }
        }
        Ok(out)
    }
}

impl std::fmt::Display for QuietHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

impl TryFrom<String> for QuietHours {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<QuietHours> for String {
    fn from(q: QuietHours) -> Self {
        q.to_string()
    }
}

/// How far ahead a wave's quiet hours are worked out: a wave still sending after this long
/// is no longer held by them.
pub const QUIET_DAYS: i64 = 31;

/// The window of `windows` that holds `at_ms`, if one does.
pub fn quiet_at(windows: &[[i64; 2]], at_ms: i64) -> Option<[i64; 2]> {
    windows
        .iter()
        .copied()
        .find(|[s, e]| *s <= at_ms && at_ms < *e)
}

/// Read a local wall time: `2027-03-01T09:00`, seconds optional, no zone or offset, and
/// (as a send time) not more than a year after `now`.
pub fn parse_local_time(s: &str, now: DateTime<Utc>) -> Result<NaiveDateTime, InvalidInput> {
    let text = s.trim();
    let at = [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .ok_or_else(|| {
        InvalidInput(format!(
            "{text:?} is not a local time like 2027-03-01T09:00 (no zone or offset: it is \
             read in each recipient's own zone)"
        ))
    })?;
    crate::types::within_a_year(s, at.and_utc(), now)?;
    Ok(at)
}

/// An IANA zone name that Herald's tz database knows.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| format!("{name:?} is not an IANA time zone"))
}

/// One wave: the zones that open at the same instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    pub opens_at: DateTime<Utc>,
    /// The UTC offsets, in minutes, of its zones at their opening (one, unless zones whose
    /// local time had passed were sent at once together).
    pub offsets: Vec<i32>,
    /// The zones as users' rows name them, sorted. The fallback zone stands for users with
    /// no zone (or one the tz database does not know).
    pub zones: Vec<String>,
    /// Its users when the plan was made.
    pub size: i64,
    /// Its zones' quiet hours, `[start, end)` in Unix milliseconds, for [`QUIET_DAYS`] from
    /// its opening: while one lasts, the wave is held.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quiet: Vec<[i64; 2]>,
    /// When it would have opened had quiet hours not held it until `opens_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_from: Option<DateTime<Utc>>,
}

/// A campaign's waves, by opening time, and what was left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WavePlan {
    pub waves: Vec<Wave>,
    /// The zone of users who have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Zones left out by `past_zones: skip`, and their users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_zones: Vec<String>,
    #[serde(default)]
    pub skipped: i64,
}

impl WavePlan {
    /// Whether pages must look at users' zones: more than one wave, or zones left out.
    pub fn filters(&self) -> bool {
        self.waves.len() > 1 || !self.skipped_zones.is_empty()
    }

    /// The users the waves hold (the audience less the skipped).
    pub fn size(&self) -> i64 {
        self.waves.iter().map(|w| w.size).sum()
    }

    /// The waves as the campaign's workflow needs them.
    pub fn openings(&self) -> Vec<crate::WaveOpening> {
        self.waves
            .iter()
            .map(|w| crate::WaveOpening {
                opens_at_ms: w.opens_at.timestamp_millis(),
                size: w.size,
                quiet: w.quiet.clone(),
            })
            .collect()
    }

    /// Every zone the plan names: a user in none of them (a zone set after the plan was
    /// made) goes with the last wave, so that nobody is left out.
    pub fn planned_zones(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .waves
            .iter()
            .flat_map(|w| w.zones.iter().cloned())
            .chain(self.skipped_zones.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The instant a local wall time falls on in `tz`: a time that does not exist that day (a
/// clock moved forward) moves to the next minute that does; one that occurs twice (a clock
/// moved back) takes the first.
pub fn instant_of(tz: &TimeZone, at: NaiveDateTime) -> Result<(DateTime<Utc>, i32), String> {
    let civil = |t: NaiveDateTime| {
        use chrono::{Datelike, Timelike};
        Civil::new(
            t.year() as i16,
            t.month() as i8,
            t.day() as i8,
            t.hour() as i8,
            t.minute() as i8,
            t.second() as i8,
            0,
        )
        .map_err(|e| format!("{t}: {e}"))
    };
    let mut dt = civil(at)?;
    // A gap is at most a day long (Samoa, 2011); stepping by the minute finds its end.
    for _ in 0..=24 * 60 {
        let offset = match tz.to_ambiguous_zoned(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            AmbiguousOffset::Fold { before, .. } => before,
            AmbiguousOffset::Gap { .. } => {
                // The next whole minute: 02:30:30 in a gap that ends at 03:00 is 03:00.
                dt = dt
                    .with()
                    .second(0)
                    .build()
                    .and_then(|d| d.checked_add(1.minute()))
                    .map_err(|e| format!("{at}: {e}"))?;
                continue;
            }
        };
        let ts = offset.to_timestamp(dt).map_err(|e| format!("{at}: {e}"))?;
        let utc = DateTime::from_timestamp_millis(ts.as_millisecond())
            .ok_or_else(|| format!("{at} is out of range"))?;
        return Ok((utc, offset.seconds() / 60));
    }
    Err(format!("{at} never exists in this zone"))
}

/// What a campaign asks of its recipients' time zones.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    /// A wall time read in each zone (`--send-at-local`), or `None`: every zone starts at
    /// `start`.
    pub at: Option<NaiveDateTime>,
    /// When a campaign without a local time starts (its send time, or now).
    pub start: DateTime<Utc>,
    pub fallback: Option<&'a str>,
    pub past: PastZones,
    pub quiet: Option<QuietHours>,
}

/// Plan the waves of a campaign for an audience with `zones` users in each zone (`None`: no
/// zone), as it stands at `now`. Zones open together when they open at the same instant and,
/// with quiet hours, keep the same quiet hours.
pub fn plan(
    ask: &Ask<'_>,
    zones: &[(Option<String>, i64)],
    now: DateTime<Utc>,
) -> Result<WavePlan, FieldError> {
    let fallback = ask.fallback;
    let fallback_tz = fallback
        .map(|name| zone(name).map_err(|m| FieldError::new("fallback_timezone", m)))
        .transpose()?;
    // Each zone as the tz database reads it; users whose zone is missing or unknown go with
    // the fallback.
    let mut by_zone: BTreeMap<String, (TimeZone, Vec<String>, i64)> = BTreeMap::new();
    for (name, count) in zones {
        let known = name.as_deref().and_then(|n| zone(n).ok().map(|tz| (n, tz)));
        let (zone_name, tz) = match (known, &fallback_tz, fallback) {
            (Some((n, tz)), _, _) => (n.to_owned(), tz),
            (None, Some(tz), Some(f)) => (f.to_owned(), tz.clone()),
            (None, _, _) => {
                let whose = match name {
                    Some(n) => format!(
                        "{count} users have the time zone {n:?}, which Herald's tz database does not know"
                    ),
                    None => format!("{count} users have no time zone"),
                };
                return Err(FieldError::new(
                    "fallback_timezone",
                    format!("{whose}: give a fallback time zone for them"),
                ));
            }
        };
        let entry = by_zone
            .entry(zone_name.clone())
            .or_insert_with(|| (tz, Vec::new(), 0));
        entry.1.push(name.clone().unwrap_or(zone_name));
        entry.2 += count;
    }
    let mut waves: BTreeMap<(DateTime<Utc>, Vec<[i64; 2]>), Wave> = BTreeMap::new();
    let mut plan = WavePlan {
        fallback: fallback.map(str::to_owned),
        ..WavePlan::default()
    };
    let mut passed_everywhere = ask.at.is_some() && !by_zone.is_empty();
    for (name, (tz, stored_names, count)) in by_zone {
        let field = |m: String| FieldError::new("send_at_local", format!("in {name}: {m}"));
        let (mut opens, mut offset) = match ask.at {
            Some(at) => instant_of(&tz, at).map_err(field)?,
            None => (ask.start, offset_at(&tz, ask.start)),
        };
        if opens >= now {
            passed_everywhere = false;
        } else if let Some(at) = ask.at {
            match ask.past {
                PastZones::SendNow => opens = now,
                PastZones::Skip => {
                    plan.skipped_zones.extend(stored_names);
                    plan.skipped += count;
                    continue;
                }
                PastZones::NextDay => {
                    // Offsets span 26 hours: the next day can have passed too.
                    let mut day = at;
                    while opens < now {
                        day += chrono::Duration::days(1);
                        (opens, offset) = instant_of(&tz, day).map_err(field)?;
                    }
                }
            }
        } else {
            opens = now;
        }
        let (mut quiet, mut held_from) = (Vec::new(), None);
        if let Some(q) = ask.quiet {
            let field = |m: String| FieldError::new("quiet_hours", format!("in {name}: {m}"));
            quiet = q.windows(&tz, opens, QUIET_DAYS).map_err(field)?;
            if let Some([_, end]) = quiet_at(&quiet, opens.timestamp_millis()) {
                held_from = Some(opens);
                opens = DateTime::from_timestamp_millis(end).expect("a window's end is a time");
                offset = offset_at(&tz, opens);
                quiet = q.windows(&tz, opens, QUIET_DAYS).map_err(field)?;
            }
        }
        let wave = waves.entry((opens, quiet.clone())).or_insert_with(|| Wave {
            opens_at: opens,
            offsets: Vec::new(),
            zones: Vec::new(),
            size: 0,
            quiet,
            held_from,
        });
        wave.offsets.push(offset);
        wave.zones.extend(stored_names);
        wave.size += count;
    }
    if passed_everywhere && ask.past != PastZones::SendNow {
        return Err(FieldError::new(
            "send_at_local",
            format!(
                "{} has passed in every recipient's time zone; send_at_local must be \
                 ahead, or past_zones send-now to send at once",
                ask.at.expect("only a local time passes")
            ),
        ));
    }
    plan.waves = waves
        .into_values()
        .map(|mut w| {
            w.offsets.sort_unstable();
            w.offsets.dedup();
            w.offsets.reverse();
            w.zones.sort();
            w
        })
        .collect();
    plan.skipped_zones.sort();
    Ok(plan)
}

/// `tz`'s UTC offset at `at`, in minutes.
fn offset_at(tz: &TimeZone, at: DateTime<Utc>) -> i32 {
    let ts = jiff::Timestamp::from_millisecond(at.timestamp_millis()).unwrap_or_default();
    tz.to_offset(ts).seconds() / 60
}

/// Offsets in minutes as `+05:30`, in order.
pub fn offset_names(minutes: &[i32]) -> Vec<String> {
    minutes.iter().map(|m| offset_name(*m)).collect()
}

/// An offset in minutes as `+05:30`.
pub fn offset_name(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        parse_local_time(s, utc("2027-01-01T00:00:00Z")).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn ask(at: NaiveDateTime, fallback: Option<&str>, past: PastZones) -> Ask<'_> {
        Ask {
            at: Some(at),
            start: utc("2020-01-01T00:00:00Z"),
            fallback,
            past,
            quiet: None,
        }
    }

    fn zones(list: &[(&str, i64)]) -> Vec<(Option<String>, i64)> {
        list.iter()
            .map(|(z, n)| ((!z.is_empty()).then(|| z.to_string()), *n))
            .collect()
    }

    #[test]
    fn local_times_are_read_without_a_zone() {
        assert_eq!(t("2027-03-01T09:00").to_string(), "2027-03-01 09:00:00");
        assert_eq!(t("2027-03-01 09:00:30").to_string(), "2027-03-01 09:00:30");
        let now = utc("2027-01-01T00:00:00Z");
        assert!(parse_local_time("2027-03-01T09:00Z", now).is_err());
        assert!(parse_local_time("09:00", now).is_err());
        let far = parse_local_time("2028-06-01T09:00", now).unwrap_err();
        assert!(far.0.contains("more than a year away"), "{far}");
    }

    #[test]
    fn each_offset_opens_at_its_own_nine_oclock() {
        let plan = plan(
            &ask(t("2027-03-01T09:00"), None, PastZones::NextDay),
            &zones(&[
                ("Europe/Berlin", 3),
                ("Europe/Paris", 2),
                ("Asia/Kolkata", 4),
                ("America/New_York", 5),
            ]),
            utc("2027-02-01T00:00:00Z"),
        )
        .unwrap();
        let got: Vec<_> = plan
            .waves
            .iter()
            .map(|w| (w.opens_at.to_rfc3339(), w.offsets.clone(), w.size))
            .collect();
        assert_eq!(
            got,
            [
                ("2027-03-01T03:30:00+00:00".to_string(), vec![330], 4),
                ("2027-03-01T08:00:00+00:00".to_string(), vec![60], 5),
                ("2027-03-01T14:00:00+00:00".to_string(), vec![-300], 5),
            ]
        );
        assert_eq!(plan.waves[1].zones, ["Europe/Berlin", "Europe/Paris"]);
        assert!(plan.filters());
        assert_eq!(plan.size(), 14);
    }

    #[test]
    fn a_time_the_clock_skips_moves_to_the_next_minute_and_a_repeated_one_takes_the_first() {
        let berlin = zone("Europe/Berlin").unwrap();
        // 2027-03-28 02:30 does not exist in Berlin: clocks go from 02:00 to 03:00 (+02:00).
        let (at, offset) = instant_of(&berlin, t("2027-03-28T02:30")).unwrap();
        assert_eq!((at, offset), (utc("2027-03-28T01:00:00Z"), 120));
        let (at, _) = instant_of(&berlin, t("2027-03-28T02:30:30")).unwrap();
        assert_eq!(at, utc("2027-03-28T01:00:00Z"), "the next whole minute");
        // 2027-10-31 02:30 happens twice: first at +02:00.
        let (at, offset) = instant_of(&berlin, t("2027-10-31T02:30")).unwrap();
        assert_eq!((at, offset), (utc("2027-10-31T00:30:00Z"), 120));
    }

    #[test]
    fn users_without_a_zone_need_a_fallback() {
        let given = zones(&[("", 2), ("Asia/Kolkata", 1), ("Mars/Olympus", 1)]);
        let err = plan(
            &ask(t("2027-03-01T09:00"), None, PastZones::NextDay),
            &given,
            utc("2027-01-01T00:00:00Z"),
        );
        assert_eq!(err.unwrap_err().field, "fallback_timezone");
        let plan = plan(
            &ask(
                t("2027-03-01T09:00"),
                Some("Europe/Berlin"),
                PastZones::NextDay,
            ),
            &given,
            utc("2027-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(plan.waves.len(), 2);
        assert_eq!(plan.waves[1].zones, ["Europe/Berlin", "Mars/Olympus"]);
        assert_eq!(plan.waves[1].size, 3);
        assert!(zone("Mars/Olympus").is_err());
    }

    #[test]
    fn past_zones_open_now_next_day_or_not_at_all() {
        let given = zones(&[
            ("Asia/Tokyo", 1),
            ("Europe/London", 2),
            ("America/Los_Angeles", 3),
        ]);
        // 09:00 on 2027-03-01 has passed in Tokyo (00:00Z) and London (09:00Z), not in LA.
        let now = utc("2027-03-01T10:00:00Z");
        let at = t("2027-03-01T09:00");
        let next = plan(&ask(at, None, PastZones::NextDay), &given, now).unwrap();
        let openings: Vec<_> = next.waves.iter().map(|w| w.opens_at.to_rfc3339()).collect();
        assert_eq!(
            openings,
            [
                "2027-03-01T17:00:00+00:00",
                "2027-03-02T00:00:00+00:00",
                "2027-03-02T09:00:00+00:00"
            ]
        );
        let now_plan = plan(&ask(at, None, PastZones::SendNow), &given, now).unwrap();
        assert_eq!(now_plan.waves[0].opens_at, now);
        assert_eq!(now_plan.waves[0].size, 3);
        assert_eq!(now_plan.waves[0].offsets, [540, 0]);
        let skip = plan(&ask(at, None, PastZones::Skip), &given, now).unwrap();
        assert_eq!((skip.waves.len(), skip.skipped), (1, 3));
        assert_eq!(skip.skipped_zones, ["Asia/Tokyo", "Europe/London"]);
        assert!(skip.filters());
        // Passed everywhere: refused unless sent now.
        let late = utc("2027-03-02T00:00:00Z");
        for past in [PastZones::NextDay, PastZones::Skip] {
            assert_eq!(
                plan(&ask(at, None, past), &given, late).unwrap_err().field,
                "send_at_local"
            );
        }
        let all_now = plan(&ask(at, None, PastZones::SendNow), &given, late).unwrap();
        // Kiritimati (+14:00) is 25 hours ahead of Pago Pago (-11:00): while 09:00 is still
        // ahead in Pago Pago, Kiritimati's next day has passed too, and it opens the day after.
        let now = utc("2027-03-01T19:30:00Z");
        let far = zones(&[("Pacific/Kiritimati", 1), ("Pacific/Pago_Pago", 1)]);
        let p = plan(&ask(at, None, PastZones::NextDay), &far, now).unwrap();
        assert_eq!(p.waves[0].opens_at, utc("2027-03-01T20:00:00Z"));
        assert_eq!(p.waves[1].opens_at, utc("2027-03-02T19:00:00Z"));
        assert_eq!(all_now.waves.len(), 1);
        assert!(!all_now.filters());
    }

    #[test]
    fn offsets_read_as_clock_differences() {
        assert_eq!(offset_name(330), "+05:30");
        assert_eq!(offset_name(-570), "-09:30");
        assert_eq!(offset_name(0), "+00:00");
    }

    #[test]
    fn quiet_hours_read_as_a_daily_window() {
        let q = QuietHours::parse("21:00-08:00").unwrap();
        assert_eq!(q.to_string(), "21:00-08:00");
        assert!(QuietHours::parse("21:00-21:00").is_err());
        assert!(QuietHours::parse("9pm-8am").is_err());
        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(json, "\"21:00-08:00\"");
        assert_eq!(serde_json::from_str::<QuietHours>(&json).unwrap(), q);
    }

    #[test]
    fn quiet_hours_hold_a_zone_until_its_window_ends_each_day_in_its_own_offset() {
        let q = QuietHours::parse("21:00-08:00").unwrap();
        let berlin = zone("Europe/Berlin").unwrap();
        // Berlin moves to +02:00 on 2027-03-28: the windows follow.
        let w = q.windows(&berlin, utc("2027-03-26T12:00:00Z"), 3).unwrap();
        assert_eq!(
            w[..3],
            [
                [
                    utc("2027-03-26T20:00:00Z").timestamp_millis(),
                    utc("2027-03-27T07:00:00Z").timestamp_millis()
                ],
                [
                    utc("2027-03-27T20:00:00Z").timestamp_millis(),
                    utc("2027-03-28T06:00:00Z").timestamp_millis()
                ],
                [
                    utc("2027-03-28T19:00:00Z").timestamp_millis(),
                    utc("2027-03-29T06:00:00Z").timestamp_millis()
                ],
            ]
        );
        assert!(quiet_at(&w, utc("2027-03-27T06:59:00Z").timestamp_millis()).is_some());
        assert!(quiet_at(&w, utc("2027-03-27T07:00:00Z").timestamp_millis()).is_none());

        // Sent now (22:00 in Berlin, 02:30 in Kolkata, 16:00 in New York): Berlin and
        // Kolkata are held until their 08:00, New York goes at once.
        let now = utc("2027-01-10T21:00:00Z");
        let given = zones(&[
            ("Europe/Berlin", 2),
            ("Asia/Kolkata", 3),
            ("America/New_York", 4),
        ]);
        let ask = Ask {
            at: None,
            start: now,
            fallback: None,
            past: PastZones::NextDay,
            quiet: Some(q),
        };
        let p = plan(&ask, &given, now).unwrap();
        let got: Vec<_> = p
            .waves
            .iter()
            .map(|w| (w.opens_at.to_rfc3339(), w.size, w.held_from.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                ("2027-01-10T21:00:00+00:00".to_string(), 4, false),
                ("2027-01-11T02:30:00+00:00".to_string(), 3, true),
                ("2027-01-11T07:00:00+00:00".to_string(), 2, true),
            ]
        );
        assert!(p.filters());
        // New York's own window begins at 21:00 there, 02:00Z.
        assert_eq!(
            p.waves[0].quiet[0][0],
            utc("2027-01-11T02:00:00Z").timestamp_millis()
        );
    }
}
