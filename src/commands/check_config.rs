//! `transitwatch check-config`: load and validate a configuration file and
//! say what it holds.

use super::CliError;
use crate::config::Config;

/// `transitwatch check-config`: load and validate a file; say what it holds.
///
/// # Errors
/// The configuration error, if any.
pub fn run(path: &std::path::Path) -> Result<String, CliError> {
    let cfg = Config::load(path)?;
    Ok(format!(
        "{}: ok (vantage {} in {}, home {}, {} targets)",
        path.display(),
        cfg.vantage.name,
        cfg.vantage.country,
        cfg.policy.home,
        cfg.targets.len()
    ))
}
