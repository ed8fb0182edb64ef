//! Address ranges that have no place on the map: private, shared, loopback,
//! link-local, multicast, unspecified, documentation and benchmarking space.
//!
//! A hop answering from one of these is a router inside some operator's
//! network (or a lab), and whatever a geolocation database claims for it is
//! noise. [`GeoDb`](super::GeoDb) therefore reports such addresses as not
//! located unless an operator override covers them.

use super::prefix::{mask_v4, mask_v6, IpPrefix};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 ranges: network, length, what the range is for.
const V4: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "\"this network\" (RFC 791)"),
    (0x0A00_0000, 8, "private use (RFC 1918)"),
    (0x6440_0000, 10, "shared address space (RFC 6598)"),
    (0x7F00_0000, 8, "loopback (RFC 1122)"),
    (0xA9FE_0000, 16, "link-local (RFC 3927)"),
    (0xAC10_0000, 12, "private use (RFC 1918)"),
    (0xC000_0000, 24, "IETF protocol assignments (RFC 6890)"),
    (0xC000_0200, 24, "documentation, TEST-NET-1 (RFC 5737)"),
    (0xC0A8_0000, 16, "private use (RFC 1918)"),
    (0xC612_0000, 15, "benchmarking (RFC 2544)"),
    (0xC633_6400, 24, "documentation, TEST-NET-2 (RFC 5737)"),
    (0xCB00_7100, 24, "documentation, TEST-NET-3 (RFC 5737)"),
    (0xE000_0000, 4, "multicast (RFC 5771)"),
    (0xF000_0000, 4, "reserved and broadcast (RFC 1112, RFC 919)"),
];

/// IPv6 ranges: network, length, what the range is for.
const V6: &[(u128, u8, &str)] = &[
    (0, 128, "unspecified (RFC 4291)"),
    (1, 128, "loopback (RFC 4291)"),
    (
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        "local-use IPv4/IPv6 translation (RFC 8215)",
    ),
    (
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        "discard-only (RFC 6666)",
    ),
    (
        0x2001_0002_0000_0000_0000_0000_0000_0000,
        48,
        "benchmarking (RFC 5180)",
    ),
    (
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        "documentation (RFC 3849)",
    ),
    (
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        "documentation (RFC 9637)",
    ),
    (
        0x5f00_0000_0000_0000_0000_0000_0000_0000,
        16,
        "segment routing SIDs (RFC 9602)",
    ),
    (
        0xfc00_0000_0000_0000_0000_0000_0000_0000,
        7,
        "unique local (RFC 4193)",
    ),
    (
        0xfe80_0000_0000_0000_0000_0000_0000_0000,
        10,
        "link-local (RFC 4291)",
    ),
    (
        0xfec0_0000_0000_0000_0000_0000_0000_0000,
        10,
        "site-local, deprecated (RFC 3879)",
    ),
    (
        0xff00_0000_0000_0000_0000_0000_0000_0000,
        8,
        "multicast (RFC 4291)",
    ),
];

/// A reserved range an address fell in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedRange {
    /// The range.
    pub prefix: IpPrefix,
    /// What it is for, with its RFC.
    pub purpose: &'static str,
}

/// The reserved range `addr` is in, if any. IPv4-mapped IPv6 addresses are
/// judged by the IPv4 address they carry.
#[must_use]
pub fn reserved_range(addr: IpAddr) -> Option<ReservedRange> {
    match addr.to_canonical() {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            V4.iter()
                .find(|&&(net, len, _)| bits & mask_v4(len) == net)
                .map(|&(net, len, purpose)| ReservedRange {
                    prefix: IpPrefix::truncating(IpAddr::V4(Ipv4Addr::from(net)), len),
                    purpose,
                })
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            V6.iter()
                .find(|&&(net, len, _)| bits & mask_v6(len) == net)
                .map(|&(net, len, purpose)| ReservedRange {
                    prefix: IpPrefix::truncating(IpAddr::V6(Ipv6Addr::from(net)), len),
                    purpose,
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purpose(a: &str) -> Option<&'static str> {
        reserved_range(a.parse().unwrap()).map(|r| r.purpose)
    }

    #[test]
    fn every_table_entry_is_a_clean_prefix() {
        for &(net, len, _) in V4 {
            assert!(IpPrefix::new(IpAddr::V4(Ipv4Addr::from(net)), len).is_some());
        }
        for &(net, len, _) in V6 {
            assert!(IpPrefix::new(IpAddr::V6(Ipv6Addr::from(net)), len).is_some());
        }
    }

    #[test]
    fn private_documentation_and_special_ranges_are_reserved() {
        for a in [
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.10",
            "203.0.113.5",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "2001:db8::1",
            "2001:2::1",
            "ff02::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(purpose(a).is_some(), "{a} should be reserved");
        }
        assert_eq!(
            purpose("198.51.100.1"),
            Some("documentation, TEST-NET-2 (RFC 5737)")
        );
        let r = reserved_range("172.20.1.1".parse().unwrap()).unwrap();
        assert_eq!(r.prefix.to_string(), "172.16.0.0/12");
    }

    #[test]
    fn public_addresses_are_not_reserved() {
        for a in [
            "8.8.8.8",
            "41.203.160.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2001:4860:4860::8888",
            "2c0f:f8f0::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(purpose(a), None, "{a} should be public");
        }
    }
}
