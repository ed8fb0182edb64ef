//! Which stored traces to read: a time window, a target, a limit; and the
//! notation for times that the CLI and the HTTP API share.

use rusqlite::types::Value;

/// A selection of stored traces. The default selects every trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Only traces that started at or after this Unix second.
    pub since: Option<i64>,
    /// Only traces that started before this Unix second.
    pub until: Option<i64>,
    /// Only traces of this target name (every path of it: `name`,
    /// `name/ipv4`, `name/ipv6`) or of this path key.
    pub target: Option<String>,
    /// At most this many traces.
    pub limit: Option<u64>,
}

impl Query {
    /// The SQL condition and its positional values (`?1`, `?2`, ...),
    /// continuing after `cursor` (start time and id of the last row seen)
    /// when given.
    pub(super) fn filter(&self, cursor: Option<(i64, i64)>) -> (String, Vec<Value>) {
        let mut terms = vec!["1".to_string()];
        let mut values = Vec::new();
        let next = |value: Value, values: &mut Vec<Value>| {
            values.push(value);
            values.len()
        };
        if let Some(since) = self.since {
            let n = next(Value::Integer(since), &mut values);
            terms.push(format!("started_at >= ?{n}"));
        }
        if let Some(until) = self.until {
            let n = next(Value::Integer(until), &mut values);
            terms.push(format!("started_at < ?{n}"));
        }
        if let Some(target) = &self.target {
            let n = next(Value::Text(target.clone()), &mut values);
            terms.push(format!("(target = ?{n} OR path_key = ?{n})"));
        }
        if let Some((at, id)) = cursor {
            let a = next(Value::Integer(at), &mut values);
            let i = next(Value::Integer(id), &mut values);
            terms.push(format!("(started_at, id) > (?{a}, ?{i})"));
        }
        (terms.join(" AND "), values)
    }
}

/// Parse a point in time as Unix seconds: an RFC 3339 time
/// (`2026-11-26T12:00:00Z`, any offset), a date (`2026-11-26`, midnight
/// UTC), or a duration before `now_unix` (`24h`, `7d`, `90m`; the notation
/// of the configuration file).
///
/// # Errors
/// [`InvalidTime`], whose message says what is accepted.
pub fn parse_time(text: &str, now_unix: i64) -> Result<i64, InvalidTime> {
    let text = text.trim();
    if let Ok(t) = crate::units::Timestamp::parse_rfc3339(text) {
        return Ok(t.unix());
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(text, &date_format) {
        return Ok(date.midnight().assume_utc().unix_timestamp());
    }
    if text.starts_with(|c: char| c.is_ascii_digit()) && !text.contains(['-', ':']) {
        if let Ok(ago) = crate::units::parse_duration(text) {
            let ago = i64::try_from(ago.as_secs()).unwrap_or(i64::MAX);
            return Ok(now_unix.saturating_sub(ago));
        }
    }
    Err(InvalidTime(text.to_string()))
}

/// Why a text is not a point in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a time (expected RFC 3339 such as 2026-11-26T12:00:00Z, a date such as 2026-11-26, or a duration before now such as 24h or 7d)")]
pub struct InvalidTime(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_notation() {
        let now = 1_800_000_000;
        assert_eq!(parse_time("2026-11-26T12:00:00Z", now), Ok(1_795_694_400));
        assert_eq!(
            parse_time("2026-11-26T14:00:00+02:00", now),
            Ok(1_795_694_400)
        );
        assert_eq!(parse_time("2026-11-26", now), Ok(1_795_651_200));
        assert_eq!(parse_time("24h", now), Ok(now - 86_400));
        assert_eq!(parse_time("7d", now), Ok(now - 7 * 86_400));
        for bad in ["yesterday", "", "2026-13-01", "-5m", "5", "12:00"] {
            let err = parse_time(bad, now).unwrap_err().to_string();
            assert!(err.contains("is not a time"), "{bad}: {err}");
        }
    }

    #[test]
    fn filters_number_their_values_in_order() {
        let q = Query {
            since: Some(10),
            until: None,
            target: Some("gov".into()),
            limit: Some(5),
        };
        let (sql, values) = q.filter(Some((20, 7)));
        assert_eq!(
            sql,
            "1 AND started_at >= ?1 AND (target = ?2 OR path_key = ?2) AND (started_at, id) > (?3, ?4)"
        );
        assert_eq!(values.len(), 4);
    }
}
