//! Unix milliseconds as dates and back (UTC, proleptic Gregorian; the
//! algorithms of Howard Hinnant's `chrono`-compatible date library), and
//! durations as a user writes them (`30s`, `24h`, `7d`).

use crate::TrailError;
use crate::rows::DAY_MS;

/// The (year, month, day) of Unix day number `days`.
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The Unix day number of a date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let (month, day) = (i64::from(month), i64::from(day));
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYYMMDD` of the day that holds `ms`.
pub fn compact_date(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(DAY_MS));
    format!("{y:04}{m:02}{d:02}")
}

/// The day (Unix milliseconds at its start) of a `YYYYMMDD` string.
pub fn parse_compact_date(text: &str) -> Option<i64> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year = text[..4].parse().ok()?;
    let month = text[4..6].parse().ok()?;
    let day = text[6..].parse().ok()?;
    Some(days_from_civil(year, month, day) * DAY_MS)
}

/// RFC 3339 in UTC with seconds, such as `2026-11-30T17:02:03Z`.
pub fn rfc3339(ms: i64) -> String {
    let (y, m, d) = civil(ms.div_euclid(DAY_MS));
    let seconds = ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Unix milliseconds of an RFC 3339 time (`2026-11-30T17:02:03Z`, with
/// fractions of a second and a `+HH:MM` / `-HH:MM` offset allowed).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..end.min(3)]);
        millis = padded.parse().ok()?;
        rest = &fraction[end..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours: i64 = rest[1..3].parse().ok()?;
            let minutes: i64 = rest[4..6].parse().ok()?;
            sign * (hours * 60 + minutes)
        }
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let month = u32::try_from(month).ok()?;
    let day = u32::try_from(day).ok()?;
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// A duration written as a number and a unit (`s`, `m`, `h`, `d`, `w`),
/// in milliseconds.
///
/// # Errors
/// [`TrailError::Duration`] for anything else.
pub fn parse_duration(text: &str) -> Result<i64, TrailError> {
    let bad = || TrailError::Duration(text.to_owned());
    let unit = text.chars().last().ok_or_else(bad)?;
    let scale = match unit {
        's' => 1000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => DAY_MS,
        'w' => 7 * DAY_MS,
        _ => return Err(bad()),
    };
    let number: i64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    if number < 0 {
        return Err(bad());
    }
    number.checked_mul(scale).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for days in [-800_000, -1, 0, 1, 20_422, 2_932_896] {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(rfc3339(1_764_522_123_000), "2025-11-30T17:02:03Z");
        assert_eq!(compact_date(0), "19700101");
        assert_eq!(parse_compact_date("20251130"), Some(20_422 * DAY_MS));
        assert_eq!(parse_compact_date("2026113x"), None);
        assert_eq!(
            parse_rfc3339("2025-11-30T17:02:03Z"),
            Some(1_764_522_123_000)
        );
        assert_eq!(
            parse_rfc3339("2025-11-30T17:02:03.25Z"),
            Some(1_764_522_123_250)
        );
        assert_eq!(
            parse_rfc3339("2025-11-30T18:02:03+01:00"),
            Some(1_764_522_123_000)
        );
        for bad in [
            "",
            "2025-11-30",
            "2025-11-30T17:02:03",
            "2025-13-30T17:02:03Z",
            "2025-11-30T17:02:03.Z",
            "2025-11-30T17:02:03+0100",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration("24h").unwrap(), DAY_MS);
        assert_eq!(parse_duration("7d").unwrap(), 7 * DAY_MS);
        for bad in ["", "7", "d", "-1d", "7y", "99999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
