//! The one-shot commands (`trace`, `geo`, `check-config`, `analyze`,
//! `export`, `history`, `report`, `whatif`, `dns`), one module per job, and [`CliError`], whose kind decides the
//! exit code.
//!
//! This is the top layer beside [`crate::daemon`]: each command turns its
//! options into a flow through [`crate::pipeline`] and the modules below it
//! (config → resolve → probe → geo → analysis → render), and reports
//! failures as a [`CliError`]. Nothing below this layer imports it.

pub mod analyze;
pub mod check_config;
pub mod dns;
pub mod export;
pub mod geo;
pub mod history;
pub mod report;
pub mod trace;
pub mod whatif;

use crate::config::{Config, ConfigError};
use crate::pipeline::PipelineError;
use std::path::PathBuf;

/// A failure of a command, by exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A configuration file that cannot be used (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A geolocation database or overrides file that cannot be used (exit 2).
    #[error(transparent)]
    Geo(#[from] crate::geo::GeoError),
    /// Files a valid configuration names that cannot be used (exit 2).
    #[error(transparent)]
    Files(#[from] check_config::UnusableFiles),
    /// The web configuration file cannot be used (exit 2).
    #[error(transparent)]
    WebConfig(#[from] crate::http::WebConfigError),
    /// Something failed while running (exit 1).
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    /// The process exit code for this failure.
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_)
            | Self::Config(_)
            | Self::Geo(_)
            | Self::Files(_)
            | Self::WebConfig(_) => 2,
            Self::Runtime(_) => 1,
        }
    }
}

impl From<PipelineError> for CliError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Geo(g) => Self::Geo(g),
            PipelineError::Probe(p) => Self::Runtime(p.to_string()),
        }
    }
}

/// The configuration file named on the command line, loaded, if any.
fn load_config(path: Option<&PathBuf>) -> Result<Option<Config>, CliError> {
    Ok(match path {
        Some(path) => Some(Config::load(path)?),
        None => None,
    })
}

/// A result that could not be written out.
fn write_err(e: std::io::Error) -> CliError {
    CliError::Runtime(format!("cannot write the result: {e}"))
}

#[cfg(test)]
mod tests {
    use super::CliError;
    use crate::pipeline::{Pipeline, PipelineError};
    use crate::probe::ProbeError;
    use std::path::Path;

    #[test]
    fn pipeline_failures_keep_their_text_and_exit_codes() {
        let geo =
            Pipeline::open(None, &[], Some(Path::new("/nonexistent/overrides.csv"))).unwrap_err();
        let text = geo.to_string();
        let cli = CliError::from(geo);
        assert!(matches!(cli, CliError::Geo(_)));
        assert_eq!((cli.exit_code(), cli.to_string()), (2, text));
        let probe = PipelineError::Probe(ProbeError::Settings("refused".into()));
        let cli = CliError::from(probe);
        assert_eq!(
            (cli.exit_code(), cli.to_string()),
            (1, "invalid probe settings: refused".to_string())
        );
    }
}
