//! The reporting time zone (`REPORT_TIME_ZONE`, an IANA name, default `UTC`): the day a lead,
//! a touchpoint, a sales event or a spend entry counts on is its local date there, so a team in
//! California sees the evening's leads on today, not tomorrow.
//!
//! [`ReportZone::day`] is the one place a timestamp becomes a reporting day. The store files
//! every lead and touchpoint under that day (`store::keys`: gsi1 `LEADS#<day>`, gsi2
//! `LEADS#<day>#<shard>`, the `TOUCHES#` partitions, hence the rollups `ROLLUPM#<yyyy-mm>`);
//! the rollup, `/metrics`, the dashboard and the call list count "today" with it. The zone is
//! configuration: parsed once at cold start (`from_lookup`, an unknown name refuses to start)
//! and held by the [`crate::store::Store`], never read per call.
//!
//! The IANA database is compiled in (jiff's `tzdb-bundle-always`) and the system's
//! `/usr/share/zoneinfo` is never read: Lambda's `provided.al2023` does not promise one, and
//! every function, the CLI and the tests must agree on a day. A deployment picks up a newer
//! database with a rebuild.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use jiff::tz::TimeZone;

/// The variable every function that computes or reads reporting days reads at start-up.
pub const VARIABLE: &str = "REPORT_TIME_ZONE";

/// A time zone of the IANA database, by name.
#[derive(Debug, Clone)]
pub struct ReportZone {
    tz: TimeZone,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name:?} is not a time zone of the IANA database (names look like \
     America/Los_Angeles, Europe/Berlin, Asia/Kolkata or UTC)"
)]
pub struct UnknownZone {
    pub name: String,
}

impl Default for ReportZone {
    fn default() -> ReportZone {
        ReportZone::utc()
    }
}

impl PartialEq for ReportZone {
    fn eq(&self, other: &ReportZone) -> bool {
        self.name == other.name
    }
}

impl Eq for ReportZone {}

impl std::fmt::Display for ReportZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl ReportZone {
    pub fn utc() -> ReportZone {
        ReportZone {
            tz: TimeZone::UTC,
            name: "UTC".to_string(),
        }
    }

    /// The zone of an IANA name (matched without regard to case, kept as the database spells
    /// it). Offsets, abbreviations (`PST`) and POSIX rules are refused: a name follows its
    /// zone's rule changes, a fixed offset would silently go wrong at the next DST change.
    pub fn parse(name: &str) -> Result<ReportZone, UnknownZone> {
        let unknown = || UnknownZone {
            name: name.chars().take(64).collect(),
        };
        let trimmed = name.trim();
        if trimmed.is_empty() || trimmed.len() > 64 {
            return Err(unknown());
        }
        let tz = TimeZone::get(trimmed).map_err(|_| unknown())?;
        // jiff answers `Etc/Unknown` with its "unknown" zone (UTC under another name).
        if tz.is_unknown() {
            return Err(unknown());
        }
        let name = tz.iana_name().unwrap_or(trimmed).to_string();
        Ok(ReportZone { tz, name })
    }

    /// `REPORT_TIME_ZONE` from `get` (unset or blank: UTC); an unknown name is an error that
    /// names the variable, so the function refuses to start rather than count days wrong.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ReportZone, String> {
        match get(VARIABLE).filter(|v| !v.trim().is_empty()) {
            None => Ok(ReportZone::utc()),
            Some(v) => ReportZone::parse(&v).map_err(|e| format!("{VARIABLE}: {e}")),
        }
    }

    /// The IANA name (`America/Los_Angeles`, `UTC`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's offset from UTC at `t`, in seconds (negative west of Greenwich).
    pub fn offset_seconds(&self, t: DateTime<Utc>) -> i32 {
        self.tz.to_offset(timestamp(t)).seconds()
    }

    /// The wall-clock time at `t` in the zone.
    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        let utc = t.naive_utc();
        utc.checked_add_signed(Duration::seconds(i64::from(self.offset_seconds(t))))
            .unwrap_or(utc)
    }

    /// The reporting day of `t`: its local date in the zone.
    pub fn day(&self, t: DateTime<Utc>) -> NaiveDate {
        self.local(t).date()
    }

    /// The first instant of the reporting day `d` (its local midnight; where a DST change skips
    /// midnight, the first time the clock shows that day): a range of days `from..=to` is the
    /// instants `day_start(from)..day_start(to + 1)`.
    pub fn day_start(&self, d: NaiveDate) -> DateTime<Utc> {
        self.instant(d.and_time(NaiveTime::MIN))
    }

    /// The instant the zone's clock shows `local` (a time written without an offset, read as
    /// the team's own). In a DST gap, the time as many minutes after it; a time the clock
    /// shows twice, its first.
    pub fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let d = local.date();
        let civil = i16::try_from(d.year()).ok().and_then(|year| {
            let date = jiff::civil::Date::new(year, d.month() as i8, d.day() as i8).ok()?;
            let time = jiff::civil::Time::new(
                local.hour() as i8,
                local.minute() as i8,
                local.second().min(59) as i8,
                0,
            )
            .ok()?;
            Some(date.to_datetime(time))
        });
        civil
            .and_then(|c| self.tz.to_timestamp(c).ok())
            .and_then(|t| DateTime::from_timestamp(t.as_second(), 0))
            .unwrap_or_else(|| local.and_utc())
    }

    /// `t` as the zone's clock shows it, to the minute, with the zone's abbreviation:
    /// `2026-11-29 23:30 PST` (`+0530`-style where the zone has no letters).
    pub fn minute(&self, t: DateTime<Utc>) -> String {
        let info = self.tz.to_offset_info(timestamp(t));
        format!(
            "{} {}",
            self.local(t).format("%Y-%m-%d %H:%M"),
            info.abbreviation()
        )
    }
}

/// jiff's instant of `t`. Its range (years -9999 to 9999) holds every time the model keeps;
/// anything beyond is clamped (it could only come from a corrupt item).
fn timestamp(t: DateTime<Utc>) -> jiff::Timestamp {
    jiff::Timestamp::new(t.timestamp(), 0).unwrap_or(if t.timestamp() < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn day(zone: &str, t: &str) -> String {
        ReportZone::parse(zone).unwrap().day(at(t)).to_string()
    }

    #[test]
    fn utc_is_the_default_and_the_calendar_date() {
        let none = ReportZone::from_lookup(|_| None).unwrap();
        let blank = ReportZone::from_lookup(|_| Some("  ".into())).unwrap();
        assert_eq!(none, ReportZone::utc());
        assert_eq!(blank.name(), "UTC");
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
        assert_eq!(none.day(t), t.date_naive());
        assert_eq!(none.minute(t), "2026-11-30 23:59 UTC");
    }

    #[test]
    fn west_of_utc_the_evening_is_still_today() {
        // 23:30 PST on 29 November is 07:30 UTC on the 30th.
        assert_eq!(
            day("America/Los_Angeles", "2026-11-30T07:30:00Z"),
            "2026-11-29"
        );
        assert_eq!(
            day("America/Los_Angeles", "2026-11-30T08:00:00Z"),
            "2026-11-30"
        );
        assert_eq!(day("UTC", "2026-11-30T07:30:00Z"), "2026-11-30");
        let la = ReportZone::parse("america/los_angeles").unwrap();
        assert_eq!(la.name(), "America/Los_Angeles", "the database's spelling");
        assert_eq!(
            la.minute(at("2026-11-30T07:30:00Z")),
            "2026-11-29 23:30 PST"
        );
    }

    #[test]
    fn days_follow_daylight_saving_changes() {
        let la = "America/Los_Angeles";
        // 2026-03-08: clocks go from 02:00 PST to 03:00 PDT.
        assert_eq!(day(la, "2026-03-08T07:59:59Z"), "2026-03-07"); // 23:59:59 PST
        assert_eq!(day(la, "2026-03-08T08:00:00Z"), "2026-03-08"); // 00:00 PST
        assert_eq!(day(la, "2026-03-09T06:30:00Z"), "2026-03-08"); // 23:30 PDT
        assert_eq!(day(la, "2026-03-09T07:00:00Z"), "2026-03-09"); // 00:00 PDT
                                                                   // 2026-11-01: clocks go back from 02:00 PDT to 01:00 PST; 01:30 happens twice.
        assert_eq!(day(la, "2026-11-01T06:59:59Z"), "2026-10-31"); // 23:59:59 PDT
        assert_eq!(day(la, "2026-11-01T07:00:00Z"), "2026-11-01"); // 00:00 PDT
        assert_eq!(day(la, "2026-11-01T08:30:00Z"), "2026-11-01"); // 01:30 PDT
        assert_eq!(day(la, "2026-11-01T09:30:00Z"), "2026-11-01"); // 01:30 PST
        assert_eq!(day(la, "2026-11-02T07:30:00Z"), "2026-11-01"); // 23:30 PST
        assert_eq!(day(la, "2026-11-02T08:00:00Z"), "2026-11-02"); // 00:00 PST
        let z = ReportZone::parse(la).unwrap();
        assert_eq!(z.offset_seconds(at("2026-11-01T08:30:00Z")), -7 * 3600);
        assert_eq!(z.offset_seconds(at("2026-11-01T09:30:00Z")), -8 * 3600);
        // The southern hemisphere: Sydney leaves DST on 2026-04-05 (03:00 AEDT -> 02:00 AEST).
        assert_eq!(
            day("Australia/Sydney", "2026-04-04T13:00:00Z"),
            "2026-04-05"
        );
        assert_eq!(
            day("Australia/Sydney", "2026-04-04T12:59:59Z"),
            "2026-04-04"
        );
    }

    #[test]
    fn east_of_utc_the_day_starts_earlier() {
        // Asia/Kolkata is +05:30 all year.
        assert_eq!(day("Asia/Kolkata", "2026-11-30T18:29:59Z"), "2026-11-30");
        assert_eq!(day("Asia/Kolkata", "2026-11-30T18:30:00Z"), "2026-12-01");
        let kolkata = ReportZone::parse("Asia/Kolkata").unwrap();
        assert_eq!(kolkata.offset_seconds(at("2026-06-01T00:00:00Z")), 19_800);
        assert_eq!(
            kolkata.minute(at("2026-11-30T18:30:00Z")),
            "2026-12-01 00:00 IST"
        );
        // Pacific/Kiritimati is +14: its day begins 14 hours before UTC's.
        assert_eq!(
            day("Pacific/Kiritimati", "2026-11-30T09:59:59Z"),
            "2026-11-30"
        );
        assert_eq!(
            day("Pacific/Kiritimati", "2026-11-30T10:00:00Z"),
            "2026-12-01"
        );
        // A new year arrives there first.
        assert_eq!(
            day("Pacific/Kiritimati", "2026-12-31T10:00:00Z"),
            "2027-01-01"
        );
        // Nepal is +05:45.
        assert_eq!(day("Asia/Kathmandu", "2026-11-30T18:15:00Z"), "2026-12-01");
    }

    #[test]
    fn an_unknown_name_is_refused_naming_the_variable() {
        for bad in [
            "Mars/Olympus_Mons",
            "PST",
            "+05:30",
            "EST5EDT,M3.2.0,M11.1.0",
            "Etc/Unknown",
            "America/Los Angeles",
            "../../etc/passwd",
            &"A/".repeat(100),
        ] {
            let err = ReportZone::from_lookup(|_| Some(bad.to_string())).unwrap_err();
            assert!(err.starts_with("REPORT_TIME_ZONE: "), "{err}");
            assert!(err.contains("IANA"), "{err}");
            assert!(err.len() < 300, "bounded: {err}");
        }
        // Legacy names the database keeps as links still resolve.
        assert!(ReportZone::parse("US/Pacific").is_ok());
        assert!(ReportZone::parse("Etc/GMT-14").is_ok());
    }

    #[test]
    fn a_day_starts_at_its_first_local_instant() {
        let start = |zone: &str, d: &str| {
            let z = ReportZone::parse(zone).unwrap();
            let d = NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
            let t = z.day_start(d);
            // The day's first second is on it, the second before on the day before.
            assert_eq!(z.day(t), d, "{zone} {d}");
            assert_eq!(
                z.day(t - Duration::seconds(1)),
                d.pred_opt().unwrap(),
                "{zone} {d}"
            );
            ts(t)
        };
        assert_eq!(start("UTC", "2026-11-30"), "2026-11-30T00:00:00.000Z");
        assert_eq!(
            start("America/Los_Angeles", "2026-03-08"),
            "2026-03-08T08:00:00.000Z"
        );
        assert_eq!(
            start("America/Los_Angeles", "2026-03-09"),
            "2026-03-09T07:00:00.000Z"
        );
        assert_eq!(
            start("America/Los_Angeles", "2026-11-01"),
            "2026-11-01T07:00:00.000Z"
        );
        assert_eq!(
            start("America/Los_Angeles", "2026-11-02"),
            "2026-11-02T08:00:00.000Z"
        );
        assert_eq!(
            start("Asia/Kolkata", "2026-12-01"),
            "2026-11-30T18:30:00.000Z"
        );
        assert_eq!(
            start("Pacific/Kiritimati", "2026-12-01"),
            "2026-11-30T10:00:00.000Z"
        );
        // Cuba moves its clocks at midnight: 8 March 2026 begins at 01:00 CDT.
        assert_eq!(
            start("America/Havana", "2026-03-08"),
            "2026-03-08T05:00:00.000Z"
        );
    }

    #[test]
    fn a_local_time_is_the_instant_the_zone_shows_it() {
        let la = ReportZone::parse("America/Los_Angeles").unwrap();
        let local =
            |v: &str| ts(la.instant(NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M").unwrap()));
        assert_eq!(local("2026-11-29 23:30"), "2026-11-30T07:30:00.000Z");
        assert_eq!(local("2026-07-01 12:00"), "2026-07-01T19:00:00.000Z");
        // 02:30 on 8 March does not exist (the clock jumps to 03:00): 03:30 PDT.
        assert_eq!(local("2026-03-08 02:30"), "2026-03-08T10:30:00.000Z");
        // 01:30 on 1 November happens twice: the first, PDT.
        assert_eq!(local("2026-11-01 01:30"), "2026-11-01T08:30:00.000Z");
        let utc = ReportZone::utc();
        let t = NaiveDateTime::parse_from_str("2026-11-29 23:30", "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(utc.instant(t), t.and_utc());
    }

    fn ts(t: DateTime<Utc>) -> String {
        crate::store::ts(t)
    }

    #[test]
    fn every_timestamp_has_a_day() {
        let z = ReportZone::parse("Pacific/Kiritimati").unwrap();
        for t in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::UNIX_EPOCH,
        ] {
            let _ = z.day(t);
            let _ = z.minute(t);
        }
    }
}
