//! `transitwatch check-config`: load and validate a configuration file, open
//! every file the daemon would open with it, and say what it holds.
//!
//! The daemon reads the webhook secret and CA files and the operator
//! table (`[dependency] operators`) while loading the configuration, then opens the `[geoip]` files (each MMDB read and its
//! schema recognised, the overrides CSV and geofeeds parsed, the PeeringDB
//! dump read and its references checked). `check-config` does the
//! same, so a configuration it calls ok starts; unlike the daemon it looks
//! at every GeoIP file and names each one that cannot be used. The web
//! configuration file (`[metrics] web_config_file`) is read as the daemon
//! reads it, with the certificate and key files it names.

use super::CliError;
use crate::config::Config;
use crate::geo::{self, GeoDb, GeoError, GeoSources};
use std::fmt;
use std::path::{Path, PathBuf};

/// Files a valid configuration names that the daemon could not use.
#[derive(Debug, thiserror::Error)]
pub struct UnusableFiles {
    /// The configuration file.
    pub config: PathBuf,
    /// Each unusable file: the field naming it and why.
    pub problems: Vec<(String, GeoError)>,
}

impl fmt::Display for UnusableFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "{}: {count} file{} named here cannot be used: ",
            self.config.display(),
            if count == 1 { "" } else { "s" }
        )?;
        for (i, (field, error)) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "field `{field}`: {error}")?;
        }
        Ok(())
    }
}

/// Open every GeoIP file of `config` as the daemon would, each on its own.
fn check_geoip(config: &Config) -> Vec<(String, GeoError)> {
    let mut problems = Vec::new();
    if let Some(overrides) = &config.geoip.overrides {
        if let Err(e) = geo::load_overrides(overrides) {
            problems.push(("geoip.overrides".to_string(), e));
        }
    }
    if let Some(rules) = &config.geoip.hostname_rules {
        if let Err(e) = geo::HintTable::with_rules(rules) {
            problems.push(("geoip.hostname_rules".to_string(), e));
        }
    }
    for (i, file) in config.geoip.files.iter().enumerate() {
        if let Err(e) = GeoDb::open(std::slice::from_ref(file), None) {
            problems.push((format!("geoip.files[{i}]"), e));
        }
    }
    for (i, file) in config.geoip.geofeeds.iter().enumerate() {
        if let Err(e) = geo::load_geofeed(file) {
            problems.push((format!("geoip.geofeeds[{i}]"), e));
        }
    }
    if let Some(file) = &config.geoip.peeringdb {
        let only = GeoSources {
            peeringdb: Some(file.clone()),
            ..GeoSources::default()
        };
        if let Err(e) = GeoDb::open_with(&only) {
            problems.push(("geoip.peeringdb".to_string(), e));
        }
    }
    for (i, file) in config.geoip.registration.iter().enumerate() {
        let only = GeoSources {
            registration: vec![file.clone()],
            ..GeoSources::default()
        };
        if let Err(e) = GeoDb::open_with(&only) {
            problems.push((format!("geoip.registration[{i}]"), e));
        }
    }
    problems
}

/// `transitwatch check-config`: load and validate a file, open the files it
/// names; say what it holds.
///
/// # Errors
/// The configuration error, if any, else [`UnusableFiles`] naming every
/// GeoIP file that cannot be used (both exit 2).
pub fn run(path: &Path) -> Result<String, CliError> {
    let cfg = Config::load(path)?;
    let problems = check_geoip(&cfg);
    if !problems.is_empty() {
        return Err(UnusableFiles {
            config: path.to_path_buf(),
            problems,
        }
        .into());
    }
    let databases = cfg.geoip.files.len();
    let count = |n: usize, what: &str| match n {
        0 => String::new(),
        1 => format!(", 1 {what}"),
        n => format!(", {n} {what}s"),
    };
    let more = format!(
        "{}{}{}",
        count(cfg.geoip.geofeeds.len(), "geofeed"),
        if cfg.geoip.peeringdb.is_some() {
            ", PeeringDB"
        } else {
            ""
        },
        count(cfg.geoip.registration.len(), "registration database")
    );
    let more = match &cfg.dependency.operators {
        Some(file) => format!(
            "{more}, operator table {} ({} networks known)",
            file.display(),
            cfg.dependency.table.len()
        ),
        None => more,
    };
    let more = match &cfg.metrics.web_config_file {
        Some(file) => {
            let web = crate::http::WebConfig::load(file)?;
            format!(
                "{more}, web configuration {} ({}, {})",
                file.display(),
                if web.tls() { "TLS" } else { "no TLS" },
                if web.authenticates() {
                    "basic authentication"
                } else {
                    "no authentication"
                }
            )
        }
        None => more,
    };
    Ok(format!(
        "{}: ok (vantage {} in {}, home {}, {} targets, {databases} GeoIP database{}{}{more})",
        path.display(),
        cfg.vantage.name,
        cfg.vantage.country,
        cfg.policy.home,
        cfg.targets.len(),
        if databases == 1 { "" } else { "s" },
        if cfg.geoip.overrides.is_some() {
            ", overrides"
        } else {
            ""
        }
    ))
}
