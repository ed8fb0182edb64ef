//! `[dependency]`: the deployment's operator table, read and checked while
//! the configuration loads, its errors naming that file, the line and the
//! field (`operator[2].country`); and whether (and from which servers, how
//! quickly) each target's DNS dependencies are resolved every cycle.

use super::value::{validate_dns_servers, validate_duration, validate_path};
use crate::config::position::Source;
use crate::config::raw::RawDependency;
use crate::config::{ConfigError, DependencyConfig};
use crate::input_file::{self, FileKind};
use crate::operators::{OperatorTable, OperatorsError};
use std::path::Path;
use std::time::Duration;

/// The operator table: the shipped one, with the named file's entries over
/// it.
pub(super) fn validate_dependency(
    raw: RawDependency,
    base: &Path,
    src: &Source<'_>,
) -> Result<DependencyConfig, ConfigError> {
    let defaults = DependencyConfig::default();
    let dns = raw.dns.as_ref().map_or(defaults.dns, |d| *d.get_ref());
    let trace_nameservers = raw
        .trace_nameservers
        .as_ref()
        .map_or(defaults.trace_nameservers, |d| *d.get_ref());
    let dns_servers =
        validate_dns_servers(raw.dns_servers.as_deref(), "dependency.dns_servers", src)?;
    let dns_timeout = validate_duration(
        raw.dns_timeout.as_ref(),
        "dependency.dns_timeout",
        defaults.dns_timeout,
        (Duration::from_millis(10), Duration::from_secs(30)),
        src,
    )?;
    let dns_deadline = validate_duration(
        raw.dns_deadline.as_ref(),
        "dependency.dns_deadline",
        defaults.dns_deadline,
        (dns_timeout, Duration::from_secs(300)),
        src,
    )?;
    let resolution = DependencyConfig {
        dns,
        dns_servers,
        dns_timeout,
        dns_deadline,
        trace_nameservers,
        ..defaults
    };
    let Some(file) = raw.operators else {
        return Ok(resolution);
    };
    let field = "dependency.operators";
    let path = validate_path(&file, field, base, src)?;
    let text = input_file::read_to_string(&path, FileKind::Operators)
        .map_err(|e| src.invalid(Some(file.span()), field, e.to_string()))?;
    let own = Source {
        text: &text,
        path: &path,
    };
    let table = OperatorTable::parse(&text).map_err(|e| match e {
        OperatorsError::Syntax(e) => own.syntax(&e),
        OperatorsError::Invalid {
            span,
            field,
            message,
        } => own.invalid(Some(span), field, message),
    })?;
    let sha256 = {
        use sha2::{Digest, Sha256};
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    Ok(DependencyConfig {
        operators: Some(path),
        operators_sha256: Some(sha256),
        table: OperatorTable::shipped().overlaid(&table),
        ..resolution
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    const BASE: &str = "[vantage]\nname = \"maseru\"\ncountry = \"LS\"\n";

    fn load(dir: &std::path::Path, text: &str) -> Result<Config, ConfigError> {
        let path = dir.join("transitwatch.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    #[test]
    fn the_operator_table_is_read_at_load_and_its_errors_name_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let ops = dir.path().join("operators.toml");
        let with_file = format!("{BASE}[dependency]\noperators = \"operators.toml\"\n");
        // Absent: the shipped table.
        let cfg = load(dir.path(), BASE).unwrap();
        assert_eq!(cfg.dependency.operators, None);
        assert_eq!(cfg.dependency.table.get(16509).unwrap().name, "Amazon");
        // A file: over the shipped table, by AS number.
        std::fs::write(
            &ops,
            "[[operator]]\nname = \"Lesotho Cloud\"\ncountry = \"LS\"\nkind = \"hosting\"\nasns = [64501, 16509]\n",
        )
        .unwrap();
        let cfg = load(dir.path(), &with_file).unwrap();
        assert_eq!(cfg.dependency.operators.as_deref(), Some(ops.as_path()));
        assert_eq!(
            cfg.dependency.table.get(16509).unwrap().name,
            "Lesotho Cloud"
        );
        assert_eq!(cfg.dependency.table.get(14618).unwrap().name, "Amazon");
        // A bad country: the operator file, its line and field.
        std::fs::write(
            &ops,
            "# mine\n[[operator]]\nname = \"X\"\ncountry = \"EU\"\nkind = \"cloud\"\nasns = [64501]\n",
        )
        .unwrap();
        let e = load(dir.path(), &with_file).unwrap_err();
        assert_eq!(e.path(), ops.as_path());
        assert_eq!(e.position(), Some((4, 11)));
        assert_eq!(e.field(), Some("operator[0].country"));
        // An unknown key: a syntax error at it, its field named.
        std::fs::write(
            &ops,
            "[[operator]]\nname = \"X\"\ncountry = \"DE\"\nkind = \"cloud\"\nasns = [64501]\nnote = \"\"\n",
        )
        .unwrap();
        let e = load(dir.path(), &with_file).unwrap_err();
        assert_eq!(e.path(), ops.as_path());
        assert_eq!(e.position().map(|p| p.0), Some(6));
        assert_eq!(e.field(), Some("operator[0].note"), "{e}");
        // A missing file: the configuration's line naming it.
        std::fs::remove_file(&ops).unwrap();
        let e = load(dir.path(), &with_file).unwrap_err();
        assert_eq!(e.field(), Some("dependency.operators"));
        assert_eq!(e.position().map(|p| p.0), Some(5));
        assert!(e.to_string().contains("operator table"), "{e}");
        // An unknown key of `[dependency]`.
        let e = load(
            dir.path(),
            &format!("{BASE}[dependency]\noperator = \"x\"\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `operator`"), "{e}");
    }

    #[test]
    fn accepted_operators_are_names_of_the_table_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let target = |list: &str| {
            format!("{BASE}[[target]]\nname = \"gov\"\nhost = \"gov.ls\"\naccepted_operators = {list}\n")
        };
        let cfg = load(
            dir.path(),
            &target("[\"amazon\", \" Cloudflare\", \"AMAZON\"]"),
        )
        .unwrap();
        assert_eq!(cfg.targets[0].accepted_operators, ["amazon", "Cloudflare"]);
        let cfg = load(
            dir.path(),
            &format!("{BASE}[[target]]\nname = \"gov\"\nhost = \"gov.ls\"\n"),
        )
        .unwrap();
        assert!(cfg.targets[0].accepted_operators.is_empty());
        let e = load(dir.path(), &target("[\"Amazon\", \"Amazn\"]")).unwrap_err();
        assert_eq!(e.field(), Some("target[0].accepted_operators[1]"));
        assert_eq!(e.position().map(|p| p.0), Some(7));
        assert!(e.to_string().contains("`Amazn` names no operator"), "{e}");
    }

    #[test]
    fn dns_resolution_keys_have_defaults_and_bad_values_name_their_field() {
        let dir = tempfile::tempdir().unwrap();
        let d = load(dir.path(), BASE).unwrap().dependency;
        assert!(!d.dns && d.trace_nameservers && d.dns_servers.is_empty());
        let cfg = load(
            dir.path(),
            &format!(
                "{BASE}[dependency]\ndns = true\ndns_servers = [\"192.0.2.53\", \"[2001:db8::53]:5353\"]\ndns_timeout = \"500ms\"\ndns_deadline = \"3s\"\ntrace_nameservers = false\n"
            ),
        )
        .unwrap();
        let d = cfg.dependency;
        assert!(d.dns && !d.trace_nameservers);
        assert_eq!(
            d.dns_servers,
            [
                "192.0.2.53:53".parse().unwrap(),
                "[2001:db8::53]:5353".parse().unwrap()
            ]
        );
        assert_eq!(d.dns_timeout, std::time::Duration::from_millis(500));
        assert_eq!(d.dns_deadline, std::time::Duration::from_secs(3));
        for (text, field, line) in [
            (
                "dns_servers = [\"ns.example\"]",
                "dependency.dns_servers[0]",
                5,
            ),
            ("dns_timeout = \"1h\"", "dependency.dns_timeout", 5),
            (
                "dns_timeout = \"2s\"\ndns_deadline = \"1s\"",
                "dependency.dns_deadline",
                6,
            ),
        ] {
            let e = load(dir.path(), &format!("{BASE}[dependency]\n{text}\n")).unwrap_err();
            assert_eq!(e.field(), Some(field), "{e}");
            assert_eq!(e.position().map(|p| p.0), Some(line), "{e}");
        }
        // A target's accepted countries: codes, checked.
        let target = "[[target]]\nname = \"id\"\nhost = \"id.gov.ls\"\n";
        let cfg = load(
            dir.path(),
            &format!("{BASE}{target}accepted_countries = [\"ie\", \"IE\", \"ZA\"]\n"),
        )
        .unwrap();
        let codes: Vec<&str> = cfg.targets[0]
            .accepted_countries
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(codes, ["IE", "ZA"]);
        let e = load(
            dir.path(),
            &format!("{BASE}{target}accepted_countries = [\"Ireland\"]\n"),
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("target[0].accepted_countries"), "{e}");
    }
}
