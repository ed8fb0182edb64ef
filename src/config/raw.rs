//! The raw file: a serde mirror of the TOML text in which every field is
//! optional and every table rejects unknown keys. Values that are checked
//! after parsing keep their span so errors can point at them.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) vantage: Option<RawVantage>,
    pub(super) policy: Option<RawPolicy>,
    pub(super) geoip: Option<RawGeoIp>,
    pub(super) probe: Option<RawProbe>,
    pub(super) metrics: Option<RawMetrics>,
    pub(super) store: Option<RawStore>,
    pub(super) target: Option<Vec<Spanned<RawTarget>>>,
    pub(super) alert: Option<RawAlert>,
    pub(super) rdns: Option<RawRdns>,
    pub(super) dependency: Option<RawDependency>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVantage {
    pub(super) name: Option<Spanned<String>>,
    pub(super) country: Option<Spanned<String>>,
    pub(super) latitude: Option<Spanned<f64>>,
    pub(super) longitude: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) home: Option<Spanned<String>>,
    pub(super) min_confidence: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGeoIp {
    pub(super) files: Option<Vec<Spanned<String>>>,
    pub(super) overrides: Option<Spanned<String>>,
    // Location sources beyond the databases (geofeeds, exchange LANs,
    // registration countries).
    pub(super) geofeeds: Option<Vec<Spanned<String>>>,
    pub(super) peeringdb: Option<Spanned<String>>,
    pub(super) registration: Option<Vec<Spanned<String>>>,
    pub(super) hostname_rules: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProbe {
    pub(super) protocol: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) family: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) jitter: Option<Spanned<String>>,
    pub(super) concurrency: Option<Spanned<i64>>,
    pub(super) probes_per_hop: Option<Spanned<i64>>,
    pub(super) first_ttl: Option<Spanned<i64>>,
    pub(super) max_ttl: Option<Spanned<i64>>,
    pub(super) packet_size: Option<Spanned<i64>>,
    pub(super) grace: Option<Spanned<String>>,
    pub(super) deadline: Option<Spanned<String>>,
    pub(super) multipath_interval: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) web_config_file: Option<Spanned<String>>,
    pub(super) per_hop: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub(super) path: Option<Spanned<String>>,
    pub(super) max_age: Option<Spanned<String>>,
    pub(super) max_size: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) name: Option<Spanned<String>>,
    pub(super) host: Option<Spanned<String>>,
    pub(super) category: Option<Spanned<String>>,
    pub(super) protocol: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) family: Option<Spanned<String>>,
    pub(super) allowed_countries: Option<Vec<Spanned<String>>>,
    pub(super) accepted_operators: Option<Vec<Spanned<String>>>,
    pub(super) accepted_countries: Option<Vec<Spanned<String>>>,
    pub(super) multipath_interval: Option<Spanned<String>>,
    pub(super) per_hop: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlert {
    pub(super) webhook: Option<Vec<Spanned<RawWebhook>>>,
    pub(super) queue_capacity: Option<Spanned<i64>>,
    pub(super) retry_initial: Option<Spanned<String>>,
    pub(super) retry_max: Option<Spanned<String>>,
    pub(super) max_age: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) external_url: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) url: Option<Spanned<String>>,
    pub(super) format: Option<Spanned<String>>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) secret: Option<Spanned<String>>,
    pub(super) secret_file: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
}

/// `[rdns]`: reverse DNS names of hop addresses.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRdns {
    pub(super) enabled: Option<Spanned<bool>>,
    pub(super) servers: Option<Vec<Spanned<String>>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) max_wait: Option<Spanned<String>>,
    pub(super) cache_size: Option<Spanned<i64>>,
}

/// `[dependency]`: who operates the networks services depend on.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDependency {
    pub(super) operators: Option<Spanned<String>>,
    pub(super) dns: Option<Spanned<bool>>,
    pub(super) dns_servers: Option<Vec<Spanned<String>>>,
    pub(super) dns_timeout: Option<Spanned<String>>,
    pub(super) dns_deadline: Option<Spanned<String>>,
    pub(super) trace_nameservers: Option<Spanned<bool>>,
}
