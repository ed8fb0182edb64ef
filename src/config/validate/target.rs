//! The `[[target]]` tables: each service to trace, with the `[probe]`
//! defaults and the home country applied where the file leaves them out.

use super::value::{
    validate_country, validate_family, validate_label, validate_port, validate_protocol,
    validate_target_name,
};
use crate::config::position::Source;
use crate::config::raw::RawTarget;
use crate::config::{
    ConfigError, Family, PolicyConfig, ProbeConfig, TargetConfig, DEFAULT_CATEGORY,
};
use crate::model::{CountryCode, Protocol};
use crate::operators::OperatorTable;
use std::collections::HashSet;
use std::net::IpAddr;
use toml::Spanned;

/// The `[[target]]` tables, in file order; names must be unique.
pub(super) fn validate_targets(
    raw: &[Spanned<RawTarget>],
    probe: &ProbeConfig,
    policy: &PolicyConfig,
    operators: &OperatorTable,
    per_hop: bool,
    src: &Source<'_>,
) -> Result<Vec<TargetConfig>, ConfigError> {
    let mut seen = HashSet::new();
    let mut targets = Vec::with_capacity(raw.len());
    for (i, target) in raw.iter().enumerate() {
        let prefix = format!("target[{i}]");
        let validated = validate_target(target, &prefix, probe, policy, operators, per_hop, src)?;
        if !seen.insert(validated.name.clone()) {
            let span = target.get_ref().name.as_ref().map(Spanned::span);
            return Err(src.invalid(
                span,
                format!("{prefix}.name"),
                format!("target name `{}` is used more than once", validated.name),
            ));
        }
        targets.push(validated);
    }
    Ok(targets)
}

/// One `[[target]]`, with the `[probe]`, `[policy]` and `[metrics] per_hop`
/// defaults applied.
fn validate_target(
    spanned: &Spanned<RawTarget>,
    prefix: &str,
    probe: &ProbeConfig,
    policy: &PolicyConfig,
    operators: &OperatorTable,
    per_hop_default: bool,
    src: &Source<'_>,
) -> Result<TargetConfig, ConfigError> {
    let raw = spanned.get_ref();
    let header = Some(spanned.span());
    let field = |key: &str| format!("{prefix}.{key}");

    let name = raw.name.as_ref().ok_or_else(|| {
        src.invalid(
            header.clone(),
            field("name"),
            "`name` is required in every `[[target]]`",
        )
    })?;
    let name = validate_target_name(name, &field("name"), src)?;

    let host = raw.host.as_ref().ok_or_else(|| {
        src.invalid(
            header.clone(),
            field("host"),
            "`host` is required in every `[[target]]`",
        )
    })?;
    let host_text = host.get_ref().trim();
    if let Some(why) = not_a_host(host_text) {
        return Err(src.invalid(
            Some(host.span()),
            field("host"),
            format!(
                "`{}` is not a host name or IP address{why}",
                host.get_ref().escape_debug()
            ),
        ));
    }

    let category = match &raw.category {
        Some(category) => validate_label(category, &field("category"), src)?,
        None => DEFAULT_CATEGORY.to_string(),
    };
    let protocol = match &raw.protocol {
        Some(p) => validate_protocol(p, &field("protocol"), src)?,
        None => probe.settings.protocol,
    };
    let port = match &raw.port {
        Some(p) if protocol == Protocol::Icmp => {
            return Err(src.invalid(
                Some(p.span()),
                field("port"),
                "a port has no meaning for icmp; set `protocol` to \"udp\" or \"tcp\", or remove `port`",
            ))
        }
        Some(p) => Some(validate_port(p, &field("port"), src)?),
        None if protocol == Protocol::Icmp => None,
        None => probe.settings.port,
    };
    let family = match &raw.family {
        Some(f) => validate_family(f, &field("family"), src)?,
        None => probe.family,
    };
    if let Ok(addr) = host_text.parse::<IpAddr>() {
        let mismatch = matches!(
            (family, addr),
            (Family::Ipv4, IpAddr::V6(_)) | (Family::Ipv6, IpAddr::V4(_))
        );
        if mismatch {
            let span = raw.family.as_ref().unwrap_or(host).span();
            return Err(src.invalid(
                Some(span),
                field("family"),
                format!("host `{host_text}` is not an {} address", family.as_str()),
            ));
        }
    }
    let allowed_countries = match &raw.allowed_countries {
        Some(list) => {
            let mut countries: Vec<CountryCode> = Vec::with_capacity(list.len());
            for code in list {
                let code = validate_country(code, &field("allowed_countries"), src)?;
                if !countries.contains(&code) {
                    countries.push(code);
                }
            }
            countries
        }
        None => vec![policy.home],
    };
    let accepted_operators = match &raw.accepted_operators {
        Some(list) => validate_accepted(list, &field("accepted_operators"), operators, src)?,
        None => Vec::new(),
    };
    let mut accepted_countries: Vec<CountryCode> = Vec::new();
    for code in raw.accepted_countries.as_deref().unwrap_or_default() {
        let code = validate_country(code, &field("accepted_countries"), src)?;
        if !accepted_countries.contains(&code) {
            accepted_countries.push(code);
        }
    }
    let multipath = super::probe::validate_multipath_interval(
        raw.multipath_interval.as_ref(),
        &field("multipath_interval"),
        probe.multipath,
        src,
    )?;
    Ok(TargetConfig {
        name,
        host: host_text.to_string(),
        category,
        protocol,
        port,
        family,
        allowed_countries,
        accepted_operators,
        accepted_countries,
        multipath,
        per_hop: raw
            .per_hop
            .as_ref()
            .map_or(per_hop_default, |b| *b.get_ref()),
    })
}

/// `accepted_operators`: names of the operator table (case-insensitive),
/// each once.
fn validate_accepted(
    list: &[Spanned<String>],
    field: &str,
    operators: &OperatorTable,
    src: &Source<'_>,
) -> Result<Vec<String>, ConfigError> {
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for (i, name) in list.iter().enumerate() {
        let text = name.get_ref().trim();
        if !operators.iter().any(|(_, op)| op.is_named(text)) {
            let mut known: Vec<&str> = operators.iter().map(|(_, op)| op.name.as_str()).collect();
            known.sort_unstable();
            known.dedup();
            return Err(src.invalid(
                Some(name.span()),
                format!("{field}[{i}]"),
                format!(
                    "`{}` names no operator of the operator table (add it with `[dependency] operators`); its operators are {}",
                    name.get_ref().escape_debug(),
                    known.join(", ")
                ),
            ));
        }
        if !names
            .iter()
            .any(|n| n.to_lowercase() == text.to_lowercase())
        {
            names.push(text.to_string());
        }
    }
    Ok(names)
}

/// Why `host` is not a host name or an IP address (with a hint for the
/// usual mistakes: a URL, a port, brackets); `None` when it is one.
fn not_a_host(host: &str) -> Option<String> {
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    if host.is_empty() {
        return Some(String::new());
    }
    if host.contains("://") || host.contains('/') || host.contains('@') {
        let name = host
            .parse::<hyper::Uri>()
            .ok()
            .and_then(|uri| uri.host().map(str::to_string))
            .filter(|name| !name.is_empty() && !name.contains('@'));
        return Some(match name {
            Some(name) => format!(
                ": give the host name alone, without scheme, path or credentials (e.g. \"{}\")",
                name.trim_start_matches('[').trim_end_matches(']')
            ),
            None => ": give the host name alone, without scheme, path or credentials".to_string(),
        });
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if inner.parse::<IpAddr>().is_ok() {
            return Some(format!(
                ": write the address without brackets (\"{inner}\")"
            ));
        }
    }
    if let Some((name, port)) = host.rsplit_once(':') {
        if !name.contains(':') && port.parse::<u16>().is_ok() {
            return Some(format!(
                ": give the host name alone (\"{name}\") and the port as `port = {port}`"
            ));
        }
    }
    let label_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if host.len() > 253 || !host.chars().all(label_char) || host.starts_with('.') {
        return Some(": use letters, digits, `-`, `_` and `.` (e.g. \"www.gov.ls\")".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::not_a_host;

    #[test]
    fn hosts_are_names_or_addresses_and_urls_get_a_hint() {
        for good in [
            "www.gov.ls",
            "127.0.0.1",
            "::1",
            "2001:db8::1",
            "a-b_c.test.",
            "localhost",
        ] {
            assert_eq!(not_a_host(good), None, "{good}");
        }
        let hint = |host: &str| not_a_host(host).unwrap_or_else(|| panic!("{host} accepted"));
        assert!(hint("http://x.ls/").contains("(e.g. \"x.ls\")"));
        assert!(hint("https://user:pw@x.ls:8443/a").contains("(e.g. \"x.ls\")"));
        assert!(hint("x.ls/path").contains("host name alone"));
        assert!(hint("x.ls:443").contains("`port = 443`"));
        assert!(hint("[::1]").contains("without brackets"));
        assert!(hint("www gov").contains("letters, digits"));
        assert!(hint("a\u{7}b").contains("letters, digits"));
        assert!(hint("").is_empty());
    }
}
