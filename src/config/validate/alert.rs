//! The `[alert]` table: delivery settings and the webhooks, with the
//! secret and CA files they name read here.

use super::value::{validate_duration, validate_int, validate_label, validate_path};
use crate::config::position::Source;
use crate::config::raw::{RawAlert, RawWebhook};
use crate::config::{
    AlertConfig, CaFile, ConfigError, InvalidWebhookFormat, Secret, WebhookConfig, WebhookFormat,
};
use crate::input_file::{self, FileKind};
use crate::units::format_duration;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// The `[alert]` table and its `[[alert.webhook]]`s; reads secret and CA files.
pub(super) fn validate_alert(
    raw: RawAlert,
    base: &Path,
    src: &Source<'_>,
) -> Result<AlertConfig, ConfigError> {
    let defaults = AlertConfig::default();
    let queue_capacity = validate_int(
        raw.queue_capacity.as_ref(),
        "alert.queue_capacity",
        defaults.queue_capacity,
        (1, 100_000),
        src,
    )?;
    let retry_initial = validate_duration(
        raw.retry_initial.as_ref(),
        "alert.retry_initial",
        defaults.retry_initial,
        (Duration::from_millis(10), Duration::from_secs(3600)),
        src,
    )?;
    let retry_max = validate_duration(
        raw.retry_max.as_ref(),
        "alert.retry_max",
        defaults.retry_max.max(retry_initial),
        (Duration::from_millis(10), Duration::from_secs(24 * 3600)),
        src,
    )?;
    if retry_max < retry_initial {
        let span = raw
            .retry_max
            .as_ref()
            .or(raw.retry_initial.as_ref())
            .map(Spanned::span);
        return Err(src.invalid(
            span,
            "alert.retry_max",
            format!(
                "retry_max ({}) must not be shorter than retry_initial ({})",
                format_duration(retry_max),
                format_duration(retry_initial)
            ),
        ));
    }
    let max_age = raw
        .max_age
        .as_ref()
        .map(|age| {
            validate_duration(
                Some(age),
                "alert.max_age",
                Duration::ZERO,
                (Duration::from_secs(1), Duration::from_secs(365 * 24 * 3600)),
                src,
            )
        })
        .transpose()?;
    let timeout = validate_duration(
        raw.timeout.as_ref(),
        "alert.timeout",
        defaults.timeout,
        (Duration::from_millis(100), Duration::from_secs(300)),
        src,
    )?;
    let external_url = raw
        .external_url
        .as_ref()
        .map(|url| validate_http_url(url, "alert.external_url", src).map(|u| u.to_string()))
        .transpose()?;
    let mut webhooks: Vec<WebhookConfig> = Vec::new();
    for (i, hook) in raw.webhook.unwrap_or_default().iter().enumerate() {
        let prefix = format!("alert.webhook[{i}]");
        let validated = validate_webhook(hook, &prefix, base, src)?;
        let raw_hook = hook.get_ref();
        if webhooks.iter().any(|w| w.url == validated.url) {
            return Err(src.invalid(
                raw_hook.url.as_ref().map(Spanned::span),
                format!("{prefix}.url"),
                format!("webhook `{}` is listed more than once", validated.url),
            ));
        }
        if webhooks.iter().any(|w| w.name == validated.name) {
            return Err(src.invalid(
                raw_hook
                    .name
                    .as_ref()
                    .or(raw_hook.url.as_ref())
                    .map(Spanned::span),
                format!("{prefix}.name"),
                format!(
                    "webhook name `{}` is used more than once; give each webhook its own `name`",
                    validated.name
                ),
            ));
        }
        webhooks.push(validated);
    }
    Ok(AlertConfig {
        webhooks,
        queue_capacity,
        retry_initial,
        retry_max,
        max_age,
        timeout,
        external_url,
    })
}

/// An `http://` or `https://` URL without credentials; returns it trimmed.
fn validate_http_url<'a>(
    url: &'a Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<&'a str, ConfigError> {
    let text = url.get_ref().trim();
    // Messages show the URL with any credentials replaced: they end up in
    // logs and terminals.
    let shown = redact_userinfo(url.get_ref());
    let invalid = |why: &str| {
        src.invalid(
            Some(url.span()),
            field,
            format!("`{shown}` is not an http:// or https:// URL{why}"),
        )
    };
    let has_scheme = ["http://", "https://"].iter().any(|scheme| {
        text.len() > scheme.len()
            && text
                .get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    });
    if !has_scheme || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(""));
    }
    let uri: hyper::Uri = text.parse().map_err(|e| invalid(&format!(": {e}")))?;
    match uri.authority() {
        Some(a) if a.as_str().contains('@') => Err(src.invalid(
            Some(url.span()),
            field,
            format!(
                "`{shown}` carries credentials, which transitwatch does not send; \
                 sign the posts with `secret` instead"
            ),
        )),
        Some(a) if !a.host().is_empty() => Ok(text),
        _ => Err(invalid(": it has no host")),
    }
}

/// `url` with the user information of its authority (`user:password@`)
/// replaced by `***@`; unchanged when it has none. Anything that may be a
/// URL is cut the same way: what comes before the last `@` of the part
/// after `scheme://` (or of the whole text) up to the first `/`, `?` or `#`.
fn redact_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]).into(),
        None => url.into(),
    }
}

/// One `[[alert.webhook]]`.
fn validate_webhook(
    spanned: &Spanned<RawWebhook>,
    prefix: &str,
    base: &Path,
    src: &Source<'_>,
) -> Result<WebhookConfig, ConfigError> {
    let raw = spanned.get_ref();
    let field = |key: &str| format!("{prefix}.{key}");
    let url = raw.url.as_ref().ok_or_else(|| {
        src.invalid(
            Some(spanned.span()),
            field("url"),
            "`url` is required in every `[[alert.webhook]]`",
        )
    })?;
    let url_text = validate_http_url(url, &field("url"), src)?;
    let https = url_text
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let format = match &raw.format {
        Some(format) => format
            .get_ref()
            .parse()
            .map_err(|e: InvalidWebhookFormat| {
                src.invalid(Some(format.span()), field("format"), e.to_string())
            })?,
        None => WebhookFormat::default(),
    };
    let name = match &raw.name {
        Some(name) => validate_label(name, &field("name"), src)?,
        None => url_text
            .parse::<hyper::Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| a.as_str().to_string()))
            .unwrap_or_else(|| url_text.to_string()),
    };
    let secret = match (&raw.secret, &raw.secret_file) {
        (Some(_), Some(file)) => {
            return Err(src.invalid(
                Some(file.span()),
                field("secret_file"),
                "set either `secret` or `secret_file`, not both",
            ))
        }
        (Some(secret), None) => {
            if secret.get_ref().is_empty() {
                return Err(src.invalid(
                    Some(secret.span()),
                    field("secret"),
                    "the secret must not be empty",
                ));
            }
            Some(Secret(secret.get_ref().clone()))
        }
        (None, Some(file)) => Some(read_secret_file(file, &field("secret_file"), base, src)?),
        (None, None) => None,
    };
    let ca = match &raw.ca_file {
        Some(file) if !https => {
            return Err(src.invalid(
                Some(file.span()),
                field("ca_file"),
                "`ca_file` applies to https:// webhooks only",
            ))
        }
        Some(file) => Some(read_ca_file(file, &field("ca_file"), base, src)?),
        None => None,
    };
    Ok(WebhookConfig {
        url: url_text.to_string(),
        format,
        name,
        secret,
        ca,
    })
}

/// The secret in a file: its text without the final line break.
fn read_secret_file(
    file: &Spanned<String>,
    field: &str,
    base: &Path,
    src: &Source<'_>,
) -> Result<Secret, ConfigError> {
    let path = validate_path(file, field, base, src)?;
    let text = input_file::read_to_string(&path, FileKind::WebhookSecret)
        .map_err(|e| src.invalid(Some(file.span()), field, e.to_string()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(src.invalid(
            Some(file.span()),
            field,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(Secret(secret.to_string()))
}

/// The certificates of a PEM file.
fn read_ca_file(
    file: &Spanned<String>,
    field: &str,
    base: &Path,
    src: &Source<'_>,
) -> Result<CaFile, ConfigError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::CertificateDer;
    let path = validate_path(file, field, base, src)?;
    let bytes = input_file::read(&path, FileKind::CaCertificates)
        .map_err(|e| src.invalid(Some(file.span()), field, e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            src.invalid(
                Some(file.span()),
                field,
                format!("{} is not a PEM certificate file: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(src.invalid(
            Some(file.span()),
            field,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(CaFile { path, certs })
}

#[cfg(test)]
mod tests {
    use super::redact_userinfo;

    #[test]
    fn credentials_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact_userinfo("https://user:pa55@x.ls:8443/hook?a=b@c"),
            "https://***@x.ls:8443/hook?a=b@c"
        );
        assert_eq!(redact_userinfo("ftp://a@b@x.ls/"), "ftp://***@x.ls/");
        assert_eq!(redact_userinfo("user:pw@x.ls"), "***@x.ls");
        assert_eq!(redact_userinfo("http://x.ls/p@q"), "http://x.ls/p@q");
        assert_eq!(redact_userinfo("not a url"), "not a url");
    }
}
