//! Single values: country codes, protocols, families, ports, bounded
//! integers and durations, labels, target names and paths, each checked
//! where it stands in the file.

use crate::config::position::Source;
use crate::config::{ConfigError, Family};
use crate::model::{CountryCode, InvalidFamily, Protocol};
use crate::units::{format_duration, parse_duration};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// A list of DNS servers (`ADDR` or `ADDR:PORT`, port 53 by default),
/// each error naming its place (`FIELD[i]`).
pub(super) fn validate_dns_servers(
    list: Option<&[Spanned<String>]>,
    field: &str,
    src: &Source<'_>,
) -> Result<Vec<std::net::SocketAddr>, ConfigError> {
    list.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, server)| {
            crate::config::parse_dns_server(server.get_ref()).map_err(|e| {
                src.invalid(Some(server.span()), format!("{field}[{i}]"), e.to_string())
            })
        })
        .collect()
}

/// An assigned ISO 3166-1 alpha-2 country code (or XK).
pub(super) fn validate_country(
    code: &Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<CountryCode, ConfigError> {
    let parsed: CountryCode =
        code.get_ref()
            .parse()
            .map_err(|e: crate::model::InvalidCountryCode| {
                src.invalid(Some(code.span()), field, e.to_string())
            })?;
    // Two letters are not enough: `XX` or `UK` would silently never match
    // a database answer. XK (Kosovo) is user-assigned but used by every
    // geolocation database.
    if parsed.as_str() != "XK" && rust_iso3166::from_alpha2(parsed.as_str()).is_none() {
        return Err(src.invalid(
            Some(code.span()),
            field,
            format!(
                "`{}` is not an assigned ISO 3166-1 alpha-2 country code",
                code.get_ref()
            ),
        ));
    }
    Ok(parsed)
}

/// A probe protocol name.
pub(super) fn validate_protocol(
    protocol: &Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<Protocol, ConfigError> {
    protocol
        .get_ref()
        .parse()
        .map_err(|e: crate::model::InvalidProtocol| {
            src.invalid(Some(protocol.span()), field, e.to_string())
        })
}

/// An address family name.
pub(super) fn validate_family(
    family: &Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<Family, ConfigError> {
    family
        .get_ref()
        .parse()
        .map_err(|e: InvalidFamily| src.invalid(Some(family.span()), field, e.to_string()))
}

/// A port in 1..=65535.
pub(super) fn validate_port(
    port: &Spanned<i64>,
    field: &str,
    src: &Source<'_>,
) -> Result<u16, ConfigError> {
    match u16::try_from(*port.get_ref()) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(src.invalid(
            Some(port.span()),
            field,
            format!(
                "port {} is out of range, expected 1..=65535",
                port.get_ref()
            ),
        )),
    }
}

/// An integer setting: `default` when absent, else within `min..=max`.
pub(super) fn validate_int<T>(
    value: Option<&Spanned<i64>>,
    field: &str,
    default: T,
    (min, max): (i64, i64),
    src: &Source<'_>,
) -> Result<T, ConfigError>
where
    T: TryFrom<i64>,
{
    let Some(value) = value else {
        return Ok(default);
    };
    let n = *value.get_ref();
    let out_of_range = || {
        src.invalid(
            Some(value.span()),
            field,
            format!("{n} is out of range, expected {min}..={max}"),
        )
    };
    if !(min..=max).contains(&n) {
        return Err(out_of_range());
    }
    T::try_from(n).map_err(|_| out_of_range())
}

/// A duration setting: `default` when absent, else parsed and within `range`.
pub(super) fn validate_duration(
    value: Option<&Spanned<String>>,
    field: &str,
    default: Duration,
    (min, max): (Duration, Duration),
    src: &Source<'_>,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let duration = parse_duration(value.get_ref())
        .map_err(|e| src.invalid(Some(value.span()), field, e.to_string()))?;
    if duration < min || duration > max {
        let expected = if max == Duration::MAX {
            format!("at least {}", format_duration(min))
        } else {
            format!("{}..={}", format_duration(min), format_duration(max))
        };
        return Err(src.invalid(
            Some(value.span()),
            field,
            format!("{} is out of range, expected {expected}", value.get_ref()),
        ));
    }
    Ok(duration)
}

/// A free-form name: not empty, no control characters.
pub(super) fn validate_label(
    value: &Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<String, ConfigError> {
    let text = value.get_ref().trim();
    if text.is_empty() {
        return Err(src.invalid(Some(value.span()), field, "must not be empty"));
    }
    if text.chars().any(char::is_control) {
        return Err(src.invalid(
            Some(value.span()),
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_string())
}

/// A target name: `[A-Za-z0-9_.-]+`, usable as a label value and a file name.
pub(super) fn validate_target_name(
    value: &Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<String, ConfigError> {
    let name = value.get_ref();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || !name.chars().all(allowed) || name == "." || name == ".." {
        return Err(src.invalid(
            Some(value.span()),
            field,
            format!(
                "`{name}` is not a valid target name (use letters, digits, `_`, `.` and `-`, e.g. \"gov-portal\")"
            ),
        ));
    }
    Ok(name.clone())
}

/// A file path, resolved against the config file's folder when relative.
pub(super) fn validate_path(
    value: &Spanned<String>,
    field: &str,
    base: &Path,
    src: &Source<'_>,
) -> Result<PathBuf, ConfigError> {
    let text = value.get_ref();
    if text.trim().is_empty() {
        return Err(src.invalid(Some(value.span()), field, "the path must not be empty"));
    }
    let path = Path::new(text);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    })
}
