//! Time as vouchd keeps it: unix seconds inside, RFC 3339 at the edge, days at the shop's offset.
//!
//! The shop's `--utc-offset` decides where a day ends, so a date-only `valid_until` means
//! "through the end of that day" where the tills are, and timestamps are rendered at it.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Parses `+HH:MM` / `-HH:MM` (or `Z`), within ±23:59.
pub fn parse_offset(text: &str) -> Option<UtcOffset> {
    if text == "Z" {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1i8, &text[1..]),
        b'-' => (-1i8, &text[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i8 = h.parse().ok().filter(|h| (0..=23).contains(h))?;
    let m: i8 = m.parse().ok().filter(|m| (0..=59).contains(m))?;
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// Renders seconds as RFC 3339 at `offset`, seconds precision: `2017-07-21T17:32:28+00:00`.
pub fn format_rfc3339(secs: i64, offset: UtcOffset) -> String {
    let format = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
    );
    OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.to_offset(offset))
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// Renders seconds as `YYYY-MM-DD HH:MM:SS` at `offset` (the loyalty platform's shape).
pub fn format_plain(secs: i64, offset: UtcOffset) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.to_offset(offset))
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// Renders the local date of `secs` at `offset`: `2019-08-24`.
pub fn format_date(secs: i64, offset: UtcOffset) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.to_offset(offset).date().to_string())
        .unwrap_or_default()
}

/// Seconds in a day; the shop's offset is fixed (no daylight saving), so every local day has
/// exactly this many.
pub const DAY: i64 = 86_400;

/// The shop's day that `secs` falls on, as days since 1970-01-01 at `offset`.
pub fn local_day(secs: i64, offset: UtcOffset) -> i64 {
    (secs + i64::from(offset.whole_seconds())).div_euclid(DAY)
}

/// The first second of the shop's day `day` (as [`local_day`] counts) at `offset`.
pub fn day_start(day: i64, offset: UtcOffset) -> i64 {
    day * DAY - i64::from(offset.whole_seconds())
}

/// `YYYY-MM-DD` of the shop's day `day` (as [`local_day`] counts).
pub fn format_day(day: i64) -> String {
    format_date(day * DAY, UtcOffset::UTC)
}

/// Which end of a date-only value is meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayEnd {
    Start,
    End,
}

/// Parses an RFC 3339 timestamp, or a date `YYYY-MM-DD` taken as the start or the end of that
/// day at `offset`. Years outside 1970–9999 are refused.
pub fn parse_instant(text: &str, offset: UtcOffset, date_means: DayEnd) -> Option<i64> {
    let secs = if text.len() == 10 {
        let date = Date::parse(text, format_description!("[year]-[month]-[day]")).ok()?;
        let time = match date_means {
            DayEnd::Start => Time::MIDNIGHT,
            DayEnd::End => Time::from_hms(23, 59, 59).ok()?,
        };
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .unix_timestamp()
    } else {
        OffsetDateTime::parse(text, &Rfc3339).ok()?.unix_timestamp()
    };
    (0..=253_402_300_799).contains(&secs).then_some(secs)
}

/// Units of the validity pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    Days,
    Weeks,
    Months,
    Years,
}

impl Interval {
    pub fn parse(text: &str) -> Option<Interval> {
        match text {
            "days" => Some(Interval::Days),
            "weeks" => Some(Interval::Weeks),
            "months" => Some(Interval::Months),
            "years" => Some(Interval::Years),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Days => "days",
            Interval::Weeks => "weeks",
            Interval::Months => "months",
            Interval::Years => "years",
        }
    }
}

/// `start` plus `value` intervals, in calendar terms at `offset`: months and years keep the day
/// of the month, clamped to the last day of a shorter month (31 Jan + 1 month = 28/29 Feb).
pub fn add_interval(start: i64, value: i64, unit: Interval, offset: UtcOffset) -> Option<i64> {
    let at = OffsetDateTime::from_unix_timestamp(start)
        .ok()?
        .to_offset(offset);
    let shifted = match unit {
        Interval::Days => at.checked_add(Duration::days(value))?,
        Interval::Weeks => at.checked_add(Duration::weeks(value))?,
        Interval::Months | Interval::Years => {
            let months = if unit == Interval::Years {
                value.checked_mul(12)?
            } else {
                value
            };
            let index = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 + months;
            let year = i32::try_from(index.div_euclid(12)).ok()?;
            let month = time::Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
            let day = at.day().min(month.length(year));
            let date = Date::from_calendar_date(year, month, day).ok()?;
            at.replace_date(date)
        }
    };
    let secs = shifted.unix_timestamp();
    (0..=253_402_300_799).contains(&secs).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_instant(text, UtcOffset::UTC, DayEnd::Start).expect("valid timestamp")
    }

    #[test]
    fn offsets_parse_within_a_day() {
        assert_eq!(parse_offset("+02:00"), UtcOffset::from_hms(2, 0, 0).ok());
        assert_eq!(parse_offset("-05:30"), UtcOffset::from_hms(-5, -30, 0).ok());
        assert_eq!(parse_offset("Z"), Some(UtcOffset::UTC));
        for bad in ["02:00", "+2:00", "+24:00", "+01:60", "", "+0100"] {
            assert_eq!(parse_offset(bad), None, "{bad}");
        }
    }

    #[test]
    fn date_only_means_the_whole_local_day() {
        let plus2 = parse_offset("+02:00").expect("offset");
        let end = parse_instant("2025-07-21", plus2, DayEnd::End).expect("date");
        assert_eq!(format_rfc3339(end, plus2), "2025-07-21T23:59:59+02:00");
        assert_eq!(
            format_rfc3339(end, UtcOffset::UTC),
            "2025-07-21T21:59:59+00:00"
        );
        let start = parse_instant("2025-07-21", plus2, DayEnd::Start).expect("date");
        assert_eq!(end - start, 86_399);
    }

    #[test]
    fn rfc3339_round_trips_and_rejects_garbage() {
        assert_eq!(
            format_rfc3339(at("2017-07-21T17:32:28+00:00"), UtcOffset::UTC),
            "2017-07-21T17:32:28+00:00"
        );
        assert_eq!(at("2017-07-21T19:32:28+02:00"), at("2017-07-21T17:32:28Z"));
        for bad in [
            "2017-07-21T17:32",
            "yesterday",
            "2017-13-01",
            "2017-02-30",
            "",
            "1969-12-31",
        ] {
            assert_eq!(
                parse_instant(bad, UtcOffset::UTC, DayEnd::Start),
                None,
                "{bad}"
            );
        }
        assert_eq!(
            format_plain(at("2017-07-21T17:32:28Z"), UtcOffset::UTC),
            "2017-07-21 17:32:28"
        );
        assert_eq!(
            format_date(
                at("2017-07-21T23:32:28Z"),
                parse_offset("+02:00").expect("o")
            ),
            "2017-07-22"
        );
    }

    #[test]
    fn local_days_follow_the_shops_offset() {
        let plus2 = parse_offset("+02:00").expect("offset");
        let minus5 = parse_offset("-05:30").expect("offset");
        // 2025-07-21 23:30 UTC is already the 22nd at +02:00, still the 21st at -05:30.
        let t = at("2025-07-21T23:30:00Z");
        assert_eq!(format_day(local_day(t, UtcOffset::UTC)), "2025-07-21");
        assert_eq!(format_day(local_day(t, plus2)), "2025-07-22");
        assert_eq!(format_day(local_day(t, minus5)), "2025-07-21");
        for offset in [UtcOffset::UTC, plus2, minus5] {
            for secs in [0, 1, 86_399, 86_400, t, t + 12_345, 4_102_444_800] {
                let day = local_day(secs, offset);
                let start = day_start(day, offset);
                assert!(start <= secs && secs < start + DAY, "{secs} at {offset}");
                assert_eq!(local_day(start, offset), day);
                assert_eq!(local_day(start - 1, offset), day - 1);
                assert_eq!(format_day(day), format_date(secs, offset));
            }
        }
    }

    #[test]
    fn months_are_calendar_months_clamped_to_the_end() {
        let utc = UtcOffset::UTC;
        let jan31 = at("2024-01-31T10:00:00Z");
        let feb = add_interval(jan31, 1, Interval::Months, utc).expect("in range");
        assert_eq!(format_rfc3339(feb, utc), "2024-02-29T10:00:00+00:00");
        let feb23 =
            add_interval(at("2023-01-31T10:00:00Z"), 1, Interval::Months, utc).expect("in range");
        assert_eq!(format_rfc3339(feb23, utc), "2023-02-28T10:00:00+00:00");
        let two_years =
            add_interval(at("2024-02-29T00:00:00Z"), 2, Interval::Years, utc).expect("in range");
        assert_eq!(format_rfc3339(two_years, utc), "2026-02-28T00:00:00+00:00");
        let months24 =
            add_interval(at("2023-07-21T17:32:28Z"), 24, Interval::Months, utc).expect("in range");
        assert_eq!(format_rfc3339(months24, utc), "2025-07-21T17:32:28+00:00");
        assert_eq!(
            add_interval(jan31, 2, Interval::Weeks, utc),
            Some(jan31 + 14 * 86_400)
        );
        assert_eq!(
            add_interval(jan31, 3, Interval::Days, utc),
            Some(jan31 + 3 * 86_400)
        );
        assert_eq!(add_interval(jan31, 100_000, Interval::Years, utc), None);
    }
}
