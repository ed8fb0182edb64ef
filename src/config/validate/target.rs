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
use std::collections::HashSet;
use std::net::IpAddr;
use toml::Spanned;

/// The `[[target]]` tables, in file order; names must be unique.
pub(super) fn validate_targets(
    raw: &[Spanned<RawTarget>],
    probe: &ProbeConfig,
    policy: &PolicyConfig,
    src: &Source<'_>,
) -> Result<Vec<TargetConfig>, ConfigError> {
    let mut seen = HashSet::new();
    let mut targets = Vec::with_capacity(raw.len());
    for (i, target) in raw.iter().enumerate() {
        let prefix = format!("target[{i}]");
        let validated = validate_target(target, &prefix, probe, policy, src)?;
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

/// One `[[target]]`, with the `[probe]` and `[policy]` defaults applied.
fn validate_target(
    spanned: &Spanned<RawTarget>,
    prefix: &str,
    probe: &ProbeConfig,
    policy: &PolicyConfig,
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
    if host_text.is_empty()
        || host_text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(src.invalid(
            Some(host.span()),
            field("host"),
            format!("`{}` is not a host name or IP address", host.get_ref()),
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
    Ok(TargetConfig {
        name,
        host: host_text.to_string(),
        category,
        protocol,
        port,
        family,
        allowed_countries,
    })
}
