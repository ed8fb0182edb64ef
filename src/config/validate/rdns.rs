//! The `[rdns]` table: whether hop addresses get their reverse DNS names,
//! which servers are asked, and how long a query and a trace may wait.

use super::value::{validate_dns_servers, validate_duration, validate_int};
use crate::config::position::Source;
use crate::config::raw::RawRdns;
use crate::config::{ConfigError, RdnsConfig};
use std::time::Duration;

/// The `[rdns]` table; every key has a default.
pub(super) fn validate_rdns(raw: &RawRdns, src: &Source<'_>) -> Result<RdnsConfig, ConfigError> {
    let defaults = RdnsConfig::default();
    let enabled = raw
        .enabled
        .as_ref()
        .map_or(defaults.enabled, |e| *e.get_ref());
    let servers = validate_dns_servers(raw.servers.as_deref(), "rdns.servers", src)?;
    let timeout = validate_duration(
        raw.timeout.as_ref(),
        "rdns.timeout",
        defaults.timeout,
        (Duration::from_millis(10), Duration::from_secs(30)),
        src,
    )?;
    let max_wait = validate_duration(
        raw.max_wait.as_ref(),
        "rdns.max_wait",
        defaults.max_wait,
        (Duration::ZERO, Duration::from_secs(60)),
        src,
    )?;
    let cache_size = validate_int(
        raw.cache_size.as_ref(),
        "rdns.cache_size",
        defaults.cache_size,
        (0, 1_000_000),
        src,
    )?;
    Ok(RdnsConfig {
        enabled,
        servers,
        timeout,
        max_wait,
        cache_size,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, RdnsConfig};
    use std::net::SocketAddr;
    use std::path::Path;
    use std::time::Duration;

    const BASE: &str = "[vantage]\nname = \"v\"\ncountry = \"LS\"\n";

    fn load(rdns: &str) -> Result<Config, ConfigError> {
        Config::from_str(&format!("{BASE}{rdns}"), Path::new("/etc/tw.toml"))
    }

    #[test]
    fn defaults_apply_without_the_table() {
        assert_eq!(load("").unwrap().rdns, RdnsConfig::default());
        let d = RdnsConfig::default();
        assert!(d.enabled && d.servers.is_empty());
        assert_eq!(
            (d.timeout, d.max_wait, d.cache_size),
            (Duration::from_secs(1), Duration::from_secs(2), 4096)
        );
    }

    #[test]
    fn every_key_is_read_and_servers_default_to_port_53() {
        let c = load(
            "[rdns]\nenabled = false\nservers = [\"127.0.0.1\", \"127.0.0.1:5353\", \"[::1]:54\", \"::1\"]\n\
             timeout = \"250ms\"\nmax_wait = \"0s\"\ncache_size = 10\n",
        )
        .unwrap()
        .rdns;
        let addrs: Vec<SocketAddr> = ["127.0.0.1:53", "127.0.0.1:5353", "[::1]:54", "[::1]:53"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(
            c,
            RdnsConfig {
                enabled: false,
                servers: addrs,
                timeout: Duration::from_millis(250),
                max_wait: Duration::ZERO,
                cache_size: 10,
            }
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let cases = [
            (
                "[rdns]\nservers = [\"127.0.0.1:53\",\n  \"dns.example\"]\n",
                "/etc/tw.toml:6:3: field `rdns.servers[1]`: `dns.example` is not a DNS server address",
            ),
            (
                "[rdns]\nservers = [\"127.0.0.1:0\"]\n",
                "/etc/tw.toml:5:12: field `rdns.servers[0]`",
            ),
            (
                "[rdns]\ntimeout = \"5ms\"\n",
                "/etc/tw.toml:5:11: field `rdns.timeout`: 5ms is out of range",
            ),
            (
                "[rdns]\nmax_wait = \"2m\"\n",
                "/etc/tw.toml:5:12: field `rdns.max_wait`: 2m is out of range",
            ),
            (
                "[rdns]\ncache_size = -1\n",
                "/etc/tw.toml:5:14: field `rdns.cache_size`: -1 is out of range, expected 0..=1000000",
            ),
            ("[rdns]\nenabled = \"yes\"\n", "/etc/tw.toml:5:"),
            ("[rdns]\nserver = []\n", "/etc/tw.toml:5:"),
        ];
        for (text, want) in cases {
            let err = load(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
