//! Host names to addresses.
//!
//! A literal address is used as it is; a name is resolved through the
//! system resolver (A and AAAA, `/etc/hosts` included) under a deadline, so
//! a dead DNS server costs one bounded wait and one clear error.

use crate::model::Family;
use std::net::IpAddr;
use std::time::Duration;

/// How long one name may take to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a host gave no address to trace.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    /// The resolver found nothing or failed.
    #[error("cannot resolve host `{host}`: {reason}")]
    NotFound {
        /// The name asked for.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The name resolved, but not in the wanted family.
    #[error("host `{host}` has no {family} address")]
    NoAddressInFamily {
        /// The name asked for.
        host: String,
        /// The wanted family.
        family: &'static str,
    },
    /// The resolver did not answer in time.
    #[error("resolving host `{host}` took longer than {0:?}", RESOLVE_TIMEOUT)]
    Timeout {
        /// The name asked for.
        host: String,
    },
}

/// The addresses of `host` admitted by `family`, resolver order, no
/// duplicates. With [`Family::Auto`] only the first address is returned.
///
/// # Errors
/// See [`ResolveError`].
pub async fn resolve(host: &str, family: Family) -> Result<Vec<IpAddr>, ResolveError> {
    let all = if let Ok(addr) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        vec![addr]
    } else {
        let lookup = tokio::net::lookup_host((host, 0));
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
            .await
            .map_err(|_| ResolveError::Timeout {
                host: host.to_string(),
            })?
            .map_err(|e| ResolveError::NotFound {
                host: host.to_string(),
                reason: e.to_string(),
            })?;
        let mut addrs: Vec<IpAddr> = Vec::new();
        for sa in found {
            if !addrs.contains(&sa.ip()) {
                addrs.push(sa.ip());
            }
        }
        addrs
    };
    let mut picked: Vec<IpAddr> = all.into_iter().filter(|a| family.admits(a)).collect();
    if picked.is_empty() {
        return Err(ResolveError::NoAddressInFamily {
            host: host.to_string(),
            family: match family {
                Family::Ipv6 => "IPv6",
                _ => "IPv4",
            },
        });
    }
    if family == Family::Auto {
        picked.truncate(1);
    }
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_need_no_resolver_and_respect_the_family() {
        let v4 = resolve("198.51.100.10", Family::Auto).await.unwrap();
        assert_eq!(v4, vec!["198.51.100.10".parse::<IpAddr>().unwrap()]);
        let v6 = resolve("[2001:db8::1]", Family::Ipv6).await.unwrap();
        assert_eq!(v6.len(), 1);
        let err = resolve("198.51.100.10", Family::Ipv6).await.unwrap_err();
        assert!(matches!(err, ResolveError::NoAddressInFamily { .. }));
    }
}
