//! Validation: raw file -> [`Config`]. Defaults are applied, ranges and
//! cross-field rules checked, and relative paths resolved against the
//! config file's folder. The small tables are checked here; `probe`,
//! `target` and `alert` have their own files, single values are in `value`.

mod alert;
mod dependency;
mod probe;
mod rdns;
mod target;
mod value;

use super::position::Source;
use super::raw::{RawConfig, RawGeoIp, RawMetrics, RawPolicy, RawStore, RawVantage};
use super::{
    Config, ConfigError, GeoIpConfig, MetricsConfig, PolicyConfig, StoreConfig, VantageConfig,
    DEFAULT_METRICS_LISTEN, DEFAULT_STORE_MAX_AGE, DEFAULT_STORE_MAX_SIZE, DEFAULT_STORE_PATH,
    MIN_STORE_MAX_SIZE,
};
use crate::model::{Confidence, InvalidConfidence};
use crate::units::parse_size;
use alert::validate_alert;
use dependency::validate_dependency;
use probe::validate_probe;
use rdns::validate_rdns;
use std::path::{Path, PathBuf};
use std::time::Duration;
use target::validate_targets;
use toml::Spanned;
use value::{validate_country, validate_duration, validate_label, validate_path};

/// The whole file, table by table.
pub(in crate::config) fn validate_config(
    raw: RawConfig,
    src: &Source<'_>,
) -> Result<Config, ConfigError> {
    let base = src.path.parent().unwrap_or_else(|| Path::new(""));
    let vantage = validate_vantage(raw.vantage, src)?;
    let policy = validate_policy(raw.policy.unwrap_or_default(), &vantage, src)?;
    let geoip = validate_geoip(raw.geoip.unwrap_or_default(), base, src)?;
    let probe = validate_probe(&raw.probe.unwrap_or_default(), src)?;
    let metrics = validate_metrics(raw.metrics.unwrap_or_default(), base, src)?;
    let store = validate_store(raw.store.unwrap_or_default(), base, src)?;
    let dependency = validate_dependency(raw.dependency.unwrap_or_default(), base, src)?;
    let targets = validate_targets(
        &raw.target.unwrap_or_default(),
        &probe,
        &policy,
        &dependency.table,
        metrics.per_hop,
        src,
    )?;
    let alert = validate_alert(raw.alert.unwrap_or_default(), base, src)?;
    let rdns = validate_rdns(&raw.rdns.unwrap_or_default(), src)?;
    Ok(Config {
        path: src.path.to_path_buf(),
        vantage,
        policy,
        geoip,
        probe,
        metrics,
        store,
        targets,
        alert,
        rdns,
        dependency,
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(src.text.as_bytes())),
        text: std::sync::Arc::from(src.text),
    })
}

fn validate_vantage(
    raw: Option<RawVantage>,
    src: &Source<'_>,
) -> Result<VantageConfig, ConfigError> {
    let raw = raw.ok_or_else(|| {
        src.invalid(
            None,
            "vantage",
            "the `[vantage]` table is required (with `name` and `country`)",
        )
    })?;
    let name = raw.name.ok_or_else(|| src.missing("vantage", "name"))?;
    let name = validate_label(&name, "vantage.name", src)?;
    let country = raw
        .country
        .ok_or_else(|| src.missing("vantage", "country"))?;
    let country = validate_country(&country, "vantage.country", src)?;
    let latitude = validate_coordinate(raw.latitude.as_ref(), "vantage.latitude", 90.0, src)?;
    let longitude = validate_coordinate(raw.longitude.as_ref(), "vantage.longitude", 180.0, src)?;
    match (&raw.latitude, &raw.longitude) {
        (Some(lat), None) => {
            return Err(src.invalid(
                Some(lat.span()),
                "vantage.longitude",
                "`latitude` is set but `longitude` is not; set both or neither",
            ))
        }
        (None, Some(lon)) => {
            return Err(src.invalid(
                Some(lon.span()),
                "vantage.latitude",
                "`longitude` is set but `latitude` is not; set both or neither",
            ))
        }
        _ => {}
    }
    Ok(VantageConfig {
        name,
        country,
        latitude,
        longitude,
    })
}

fn validate_coordinate(
    value: Option<&Spanned<f64>>,
    field: &str,
    limit: f64,
    src: &Source<'_>,
) -> Result<Option<f64>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let degrees = *value.get_ref();
    if (-limit..=limit).contains(&degrees) {
        Ok(Some(degrees))
    } else {
        Err(src.invalid(
            Some(value.span()),
            field,
            format!("{degrees} is out of range, expected -{limit}..={limit} degrees"),
        ))
    }
}

fn validate_policy(
    raw: RawPolicy,
    vantage: &VantageConfig,
    src: &Source<'_>,
) -> Result<PolicyConfig, ConfigError> {
    let home = match raw.home {
        Some(home) => validate_country(&home, "policy.home", src)?,
        None => vantage.country,
    };
    let min_confidence = match raw.min_confidence {
        Some(level) => level.get_ref().parse().map_err(|e: InvalidConfidence| {
            src.invalid(Some(level.span()), "policy.min_confidence", e.to_string())
        })?,
        None => Confidence::Low,
    };
    Ok(PolicyConfig {
        home,
        min_confidence,
    })
}

fn validate_geoip(
    raw: RawGeoIp,
    base: &Path,
    src: &Source<'_>,
) -> Result<GeoIpConfig, ConfigError> {
    let files = raw
        .files
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, file)| validate_path(file, &format!("geoip.files[{i}]"), base, src))
        .collect::<Result<Vec<_>, _>>()?;
    let overrides = raw
        .overrides
        .map(|file| validate_path(&file, "geoip.overrides", base, src))
        .transpose()?;
    let list = |files: Option<Vec<Spanned<String>>>, field: &str| {
        files
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, file)| validate_path(file, &format!("{field}[{i}]"), base, src))
            .collect::<Result<Vec<_>, _>>()
    };
    let geofeeds = list(raw.geofeeds, "geoip.geofeeds")?;
    let peeringdb = raw
        .peeringdb
        .map(|file| validate_path(&file, "geoip.peeringdb", base, src))
        .transpose()?;
    let registration = list(raw.registration, "geoip.registration")?;
    let hostname_rules = raw
        .hostname_rules
        .map(|file| validate_path(&file, "geoip.hostname_rules", base, src))
        .transpose()?;
    Ok(GeoIpConfig {
        files,
        overrides,
        geofeeds,
        peeringdb,
        registration,
        hostname_rules,
    })
}

fn validate_metrics(
    raw: RawMetrics,
    base: &Path,
    src: &Source<'_>,
) -> Result<MetricsConfig, ConfigError> {
    let listen = match raw.listen {
        Some(listen) => listen.get_ref().trim().parse().map_err(|_| {
            src.invalid(
                Some(listen.span()),
                "metrics.listen",
                format!(
                    "`{}` is not a socket address (expected IP:PORT, e.g. \"{DEFAULT_METRICS_LISTEN}\" or \"[::1]:19968\")",
                    listen.get_ref()
                ),
            )
        })?,
        None => DEFAULT_METRICS_LISTEN.parse().map_err(|_| {
            src.invalid(None, "metrics.listen", "the built-in default address is invalid")
        })?,
    };
    let web_config_file = raw
        .web_config_file
        .map(|file| validate_path(&file, "metrics.web_config_file", base, src))
        .transpose()?;
    let per_hop = raw.per_hop.is_some_and(|b| *b.get_ref());
    Ok(MetricsConfig {
        listen,
        web_config_file,
        per_hop,
    })
}

fn validate_store(
    raw: RawStore,
    base: &Path,
    src: &Source<'_>,
) -> Result<StoreConfig, ConfigError> {
    let path = match &raw.path {
        Some(path) => validate_path(path, "store.path", base, src)?,
        None => PathBuf::from(DEFAULT_STORE_PATH),
    };
    // "none" switches a limit off.
    let unlimited = |v: &Spanned<String>| v.get_ref().trim().eq_ignore_ascii_case("none");
    let max_age = match &raw.max_age {
        Some(v) if unlimited(v) => None,
        v => Some(validate_duration(
            v.as_ref(),
            "store.max_age",
            DEFAULT_STORE_MAX_AGE,
            (Duration::from_secs(3600), Duration::MAX),
            src,
        )?),
    };
    let max_size = match &raw.max_size {
        Some(v) if unlimited(v) => None,
        Some(v) => {
            let size = parse_size(v.get_ref())
                .map_err(|e| src.invalid(Some(v.span()), "store.max_size", e.to_string()))?;
            if size < MIN_STORE_MAX_SIZE {
                return Err(src.invalid(
                    Some(v.span()),
                    "store.max_size",
                    format!("{} is out of range, expected at least 1MiB", v.get_ref()),
                ));
            }
            Some(size)
        }
        None => Some(DEFAULT_STORE_MAX_SIZE),
    };
    Ok(StoreConfig {
        path,
        path_configured: raw.path.is_some(),
        max_age,
        max_size,
    })
}
