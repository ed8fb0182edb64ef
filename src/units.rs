//! Units and time: durations and sizes as people write them in the
//! configuration file and on the command line (`5m`, `1GiB`), and
//! [`Timestamp`], the one representation of a moment in the program (whole
//! seconds, UTC, written as RFC 3339).
//!
//! A leaf: it depends on the standard library, `serde`, `thiserror` and
//! `time` only, so every layer (model, config, store, the HTTP API, the
//! command line) parses and prints these the same way.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Text that is not a duration; the message says why and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidDuration(String);

/// Text that is not a size; the message says why and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSize(String);

/// Text that is not an RFC 3339 time, or a time outside the representable
/// range; the message names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTimestamp(String);

/// Parse a duration such as `300ms`, `30s`, `5m`, `1h`, `90d` or `1m30s`.
///
/// Each part is a whole number followed by a unit (`ms`, `s`, `m`, `h`, `d`);
/// parts go from the largest unit to the smallest, each unit at most once.
///
/// # Errors
/// A one-line description when the text is empty, negative, has no or an
/// unknown unit, a fraction, units out of order, or overflows.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidDuration> {
    let fail = |why: &str| {
        Err(InvalidDuration(format!(
            "`{s}` is not a duration: {why} (expected a whole number and a unit ms, s, m, h or d, e.g. \"30s\", \"5m\" or \"1m30s\")"
        )))
    };
    let text = s.trim();
    if text.is_empty() {
        return fail("it is empty");
    }
    if text.starts_with('-') {
        return fail("it is negative");
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    // Rank of the previous unit; each part must use a strictly smaller unit.
    let mut previous_rank = usize::MAX;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return fail("a number must come before each unit");
        }
        let Ok(number) = rest[..digits_end].parse::<u64>() else {
            return fail("the number is too large");
        };
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let (rank, part) = match unit {
            "d" => (4, number.checked_mul(86_400).map(Duration::from_secs)),
            "h" => (3, number.checked_mul(3600).map(Duration::from_secs)),
            "m" => (2, number.checked_mul(60).map(Duration::from_secs)),
            "s" => (1, Some(Duration::from_secs(number))),
            "ms" => (0, Some(Duration::from_millis(number))),
            "" => return fail("the unit is missing"),
            _ if unit.starts_with('.') || unit.starts_with(',') => {
                return fail("fractions are not supported, use a smaller unit")
            }
            _ if unit.chars().any(char::is_whitespace) => {
                return match unit.trim() {
                    "d" | "h" | "m" | "s" | "ms" => fail("it contains spaces"),
                    other => fail(&format!("unknown unit `{other}`")),
                };
            }
            other => return fail(&format!("unknown unit `{other}`")),
        };
        if rank >= previous_rank {
            return fail("units must go from largest to smallest, each at most once");
        }
        previous_rank = rank;
        let Some(sum) = part.and_then(|part| total.checked_add(part)) else {
            return fail("it is too large");
        };
        total = sum;
    }
    Ok(total)
}

/// Parse a size in bytes such as `1GiB`, `500MB`, `64KiB` or `1048576`.
///
/// A whole number, optionally followed by a unit: `B`, decimal `KB`, `MB`,
/// `GB`, `TB` (powers of 1000) or binary `KiB`, `MiB`, `GiB`, `TiB` (powers
/// of 1024); units are case-insensitive.
///
/// # Errors
/// A one-line description when the text is empty, has a fraction or an
/// unknown unit, or overflows.
pub fn parse_size(s: &str) -> Result<u64, InvalidSize> {
    let fail = |why: &str| {
        Err(InvalidSize(format!(
            "`{s}` is not a size: {why} (expected a whole number of bytes with an optional unit B, KB, MB, GB, TB, KiB, MiB, GiB or TiB, e.g. \"1GiB\")"
        )))
    };
    let text = s.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_end == 0 {
        return fail("it must start with a number");
    }
    let Ok(number) = text[..digits_end].parse::<u64>() else {
        return fail("the number is too large");
    };
    let multiplier: u64 = match text[digits_end..]
        .trim_start()
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        unit if unit.starts_with('.') || unit.starts_with(',') => {
            return fail("fractions are not supported, use a smaller unit")
        }
        _ => return fail(&format!("unknown unit `{}`", text[digits_end..].trim())),
    };
    number
        .checked_mul(multiplier)
        .map_or_else(|| fail("it is too large"), Ok)
}

/// A duration in the file's own notation (`1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms == 0 {
        return "0s".to_string();
    }
    let (h, rest) = (total_ms / 3_600_000, total_ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect()
}

/// A moment, in whole seconds since the Unix epoch, UTC.
///
/// Written (in records, JSON, CSV) as RFC 3339 with a `Z` offset, e.g.
/// `2026-11-26T12:00:00Z`; read from any RFC 3339 text (other offsets are
/// converted, fractions of a second dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Now, to the second (the epoch if the clock is before it).
    #[must_use]
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// A system time, to the second (the epoch if it is before it).
    #[must_use]
    pub fn from_system_time(t: SystemTime) -> Self {
        let secs = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// Unix seconds, checked to be a time RFC 3339 can write (years 0 to 9999).
    ///
    /// # Errors
    /// When the time is out of that range.
    pub fn from_unix(seconds: i64) -> Result<Self, InvalidTimestamp> {
        match OffsetDateTime::from_unix_timestamp(seconds) {
            Ok(t) if (0..=9999).contains(&t.year()) => Ok(Timestamp(seconds)),
            _ => Err(InvalidTimestamp(format!(
                "timestamp {seconds} is out of range (years 0 to 9999)"
            ))),
        }
    }

    /// Seconds since the Unix epoch.
    #[must_use]
    pub fn unix(self) -> i64 {
        self.0
    }

    /// Seconds since the Unix epoch as a float (Prometheus' time unit).
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // exact below 2^53 s
    pub fn unix_f64(self) -> f64 {
        self.0 as f64
    }

    /// Parse RFC 3339 (`2026-11-26T12:00:00Z`, `2026-11-26T14:00:00+02:00`).
    ///
    /// # Errors
    /// When the text is not RFC 3339 or lies outside years 0 to 9999.
    pub fn parse_rfc3339(text: &str) -> Result<Self, InvalidTimestamp> {
        let t = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| InvalidTimestamp(format!("`{text}` is not an RFC 3339 time: {e}")))?;
        Self::from_unix(t.unix_timestamp())
    }
}

impl Timestamp {
    /// Append the RFC 3339 text (`2026-11-26T12:00:00Z`) to `out`, without
    /// allocating: this runs once per record in `analyze --json`.
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        match self.rfc3339_bytes() {
            Some(text) => out.extend_from_slice(&text),
            None => out.extend_from_slice(self.to_string().as_bytes()),
        }
    }

    /// The RFC 3339 text in a fixed buffer, for years 0 to 9999 (all but a
    /// system time past year 9999).
    fn rfc3339_bytes(self) -> Option<[u8; 20]> {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let year = u32::try_from(year).ok().filter(|y| *y <= 9999)?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (h, m, s) = (
            (secs / 3600) as u32,
            (secs / 60 % 60) as u32,
            (secs % 60) as u32,
        );
        let mut text = *b"0000-00-00T00:00:00Z";
        let digits = |text: &mut [u8; 20], at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                text[i] = b"0123456789"[(n % 10) as usize];
                n /= 10;
            }
        };
        digits(&mut text, 0, 4, year);
        digits(&mut text, 5, 2, month);
        digits(&mut text, 8, 2, day);
        digits(&mut text, 11, 2, h);
        digits(&mut text, 14, 2, m);
        digits(&mut text, 17, 2, s);
        Some(text)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written by hand: this runs once per record in `analyze`, where the
        // general formatter's cost shows.
        if let Some(text) = self.rfc3339_bytes() {
            // ASCII digits and separators only.
            return f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?);
        }
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day)
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (y, m as u32, d as u32)
}

impl FromStr for Timestamp {
    type Err = InvalidTimestamp;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_rfc3339(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_in_file_notation() {
        assert_eq!(format_duration(Duration::from_millis(90_250)), "1m30s250ms");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn timestamps_write_as_the_time_crate_does() {
        // Every day boundary over four centuries and a spread of odd moments.
        let mut t = -62_167_219_200_i64; // 0000-01-01T00:00:00Z
        while t <= 253_402_300_799 {
            let ours = Timestamp::from_unix(t).unwrap().to_string();
            let mut bytes = b"x".to_vec();
            Timestamp::from_unix(t).unwrap().write_rfc3339(&mut bytes);
            assert_eq!(&bytes[1..], ours.as_bytes());
            let theirs = OffsetDateTime::from_unix_timestamp(t)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(ours, theirs, "at {t}");
            t += 86_400 * 37 + 3_601;
        }
        for t in [-62_167_219_200, -1, 0, 253_402_300_799] {
            let theirs = OffsetDateTime::from_unix_timestamp(t)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            assert_eq!(Timestamp::from_unix(t).unwrap().to_string(), theirs);
        }
        assert!(Timestamp::from_unix(-62_167_219_201).is_err());
        assert!(Timestamp::from_unix(253_402_300_800).is_err());
        // Past year 9999 (only from a system time) the text grows a digit.
        let far = Timestamp::from_system_time(
            SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800),
        );
        assert_eq!(far.to_string(), "10000-01-01T00:00:00Z");
    }

    #[test]
    fn timestamps_read_back_what_they_write_and_convert_offsets() {
        let t = Timestamp::parse_rfc3339("2026-11-26T12:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-26T12:00:00Z");
        assert_eq!(t.unix(), 1_795_694_400);
        let shifted = Timestamp::parse_rfc3339("2026-11-26T14:00:00.75+02:00").unwrap();
        assert_eq!(shifted, t);
        assert!(Timestamp::parse_rfc3339("2026-11-26").is_err());
        assert!(Timestamp::from_unix(i64::MAX).is_err());
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-11-26T12:00:00Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }
}
