//! The operator table: which organisation holds an AS number, the country
//! its parent company is based in (the jurisdiction it answers to), and
//! what it offers (cloud, CDN, hosting, DNS, transit). A leaf beside
//! [`crate::model`]: the configuration checks an operator's file with it,
//! `dependency` and the report read it.
//!
//! The shipped table (`data/operators/operators.toml`, hand-written from
//! public facts; see the README there) is embedded in the binary and
//! parsed once ([`OperatorTable::shipped`]). A deployment extends or
//! overrides it by AS number with a file of the same format
//! (`[dependency] operators`), read and checked when the configuration
//! loads ([`OperatorTable::parse`], then [`OperatorTable::overlaid`]):
//!
//! ```toml
//! [[operator]]
//! name = "Amazon"      # the organisation, as reports write it
//! country = "US"       # where its parent company is based (ISO 3166-1 alpha-2)
//! kind = "cloud"       # cloud, cdn, hosting, dns or transit
//! asns = [16509, 14618]
//! ```
//!
//! Every key is required and no other is allowed; an AS number appears in
//! one entry only. Names are matched case-insensitively: exactly by
//! `accepted_operators` ([`Operator::is_named`]), as a part by
//! `whatif --org` ([`Operator::name_contains`]). An AS the table does not
//! list has no known operator: nothing is guessed from its AS name.

use crate::model::CountryCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use toml::Spanned;

/// The shipped table's text.
const SHIPPED: &str = include_str!("../data/operators/operators.toml");

/// Longest operator name accepted (characters).
const MAX_NAME: usize = 100;

/// What an operator offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorKind {
    /// A cloud platform (compute, storage).
    Cloud,
    /// A content delivery network.
    Cdn,
    /// Hosting (dedicated and virtual servers).
    Hosting,
    /// DNS (authoritative or resolver) service.
    Dns,
    /// A transit network or carrier.
    Transit,
}

crate::text_enum::text_enum! {
    /// The lower-case name used in the table.
    OperatorKind {
        Cloud => "cloud",
        Cdn => "cdn",
        Hosting => "hosting",
        Dns => "dns",
        Transit => "transit",
    }
    parse_error: InvalidOperatorKind
}

/// Why a text is not an operator kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an operator kind (expected cloud, cdn, hosting, dns or transit)")]
pub struct InvalidOperatorKind(pub String);

/// The organisation behind an AS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operator {
    /// Its name (`Amazon`).
    pub name: String,
    /// The country its parent company is based in.
    pub country: CountryCode,
    /// What it offers.
    pub kind: OperatorKind,
}

impl Operator {
    /// Whether `text` names it: equal to its name, case-insensitively
    /// (Unicode lower case), `text` trimmed.
    #[must_use]
    pub fn is_named(&self, text: &str) -> bool {
        self.name.to_lowercase() == text.trim().to_lowercase()
    }

    /// Whether its name contains `text`, case-insensitively (as `whatif
    /// --org` matches AS organisations).
    #[must_use]
    pub fn name_contains(&self, text: &str) -> bool {
        self.name
            .to_lowercase()
            .contains(&text.trim().to_lowercase())
    }
}

/// AS number → operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTable {
    by_asn: Arc<BTreeMap<u32, Operator>>,
}

/// Why an operator table's text cannot be used. Spans are byte ranges of
/// the text, field paths are dotted with 0-based indices
/// (`operator[3].asns[1]`); the configuration turns them into its
/// `FILE:LINE:COLUMN: field ...` errors.
#[derive(Debug, thiserror::Error)]
pub enum OperatorsError {
    /// Not TOML, or not the table's structure (an unknown key, a wrong type).
    #[error("{}", .0.message().trim())]
    Syntax(toml::de::Error),
    /// A value is well-formed but not acceptable.
    #[error("field `{field}`: {message}")]
    Invalid {
        /// Where in the text.
        span: Range<usize>,
        /// The field's dotted path.
        field: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    operator: Vec<Spanned<RawOperator>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    name: Option<Spanned<String>>,
    country: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    asns: Option<Spanned<Vec<Spanned<i64>>>>,
}

impl OperatorTable {
    /// The table shipped in the binary, parsed once.
    #[must_use]
    pub fn shipped() -> &'static Self {
        static SHIPPED_TABLE: OnceLock<OperatorTable> = OnceLock::new();
        // The shipped text is checked by the unit tests; were it ever
        // unusable, no AS would have a known operator (said so, not guessed).
        SHIPPED_TABLE.get_or_init(|| Self::parse(SHIPPED).unwrap_or_else(|_| Self::empty()))
    }

    /// The SHA-256 (hex) of the shipped table's text, as reports state it.
    #[must_use]
    pub fn shipped_sha256() -> String {
        use sha2::{Digest, Sha256};
        hex_of(&Sha256::digest(SHIPPED.as_bytes()))
    }

    /// A table without operators.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            by_asn: Arc::new(BTreeMap::new()),
        }
    }

    /// The operators of a table's text (the shipped table's format).
    ///
    /// # Errors
    /// [`OperatorsError::Syntax`] for text that is not TOML or has an
    /// unknown key; [`OperatorsError::Invalid`] for a missing key, an empty
    /// name, a country that is not an assigned ISO 3166-1 alpha-2 code, an
    /// unknown kind, no AS numbers, an AS number out of range or listed
    /// twice.
    pub fn parse(text: &str) -> Result<Self, OperatorsError> {
        let raw: RawFile = toml::from_str(text).map_err(OperatorsError::Syntax)?;
        let mut by_asn: BTreeMap<u32, Operator> = BTreeMap::new();
        let mut first_entry: BTreeMap<u32, usize> = BTreeMap::new();
        for (i, spanned) in raw.operator.iter().enumerate() {
            let entry = spanned.get_ref();
            let header = spanned.span();
            let field = |key: &str| format!("operator[{i}].{key}");
            let invalid =
                |span: Range<usize>, key: &str, message: String| OperatorsError::Invalid {
                    span,
                    field: field(key),
                    message,
                };
            let missing = |key: &str| {
                invalid(
                    header.clone(),
                    key,
                    format!("`{key}` is required in every `[[operator]]`"),
                )
            };
            let name = entry.name.as_ref().ok_or_else(|| missing("name"))?;
            let name_text = name.get_ref().trim();
            if name_text.is_empty()
                || name_text.chars().count() > MAX_NAME
                || name_text.chars().any(char::is_control)
            {
                return Err(invalid(
                    name.span(),
                    "name",
                    format!(
                        "`{}` is not an operator name (1 to {MAX_NAME} characters, no control characters)",
                        name.get_ref().escape_debug()
                    ),
                ));
            }
            let country = entry.country.as_ref().ok_or_else(|| missing("country"))?;
            let code = parse_country(country.get_ref()).ok_or_else(|| {
                invalid(
                    country.span(),
                    "country",
                    format!(
                        "`{}` is not an assigned ISO 3166-1 alpha-2 country code (two letters, e.g. US)",
                        country.get_ref()
                    ),
                )
            })?;
            let kind = entry.kind.as_ref().ok_or_else(|| missing("kind"))?;
            let kind_value: OperatorKind = kind
                .get_ref()
                .trim()
                .parse()
                .map_err(|e: InvalidOperatorKind| invalid(kind.span(), "kind", e.to_string()))?;
            let asns = entry.asns.as_ref().ok_or_else(|| missing("asns"))?;
            if asns.get_ref().is_empty() {
                return Err(invalid(
                    asns.span(),
                    "asns",
                    "list at least one AS number".to_string(),
                ));
            }
            let operator = Operator {
                name: name_text.to_string(),
                country: code,
                kind: kind_value,
            };
            for (j, asn) in asns.get_ref().iter().enumerate() {
                let key = format!("asns[{j}]");
                let number = u32::try_from(*asn.get_ref())
                    .ok()
                    .filter(|n| *n != 0)
                    .ok_or_else(|| {
                        invalid(
                            asn.span(),
                            &key,
                            format!("{} is not an AS number (1..=4294967295)", asn.get_ref()),
                        )
                    })?;
                if let Some(&before) = first_entry.get(&number) {
                    return Err(invalid(
                        asn.span(),
                        &key,
                        format!(
                            "AS{number} is already listed for `{}` (operator[{before}]); an AS number belongs to one operator",
                            by_asn.get(&number).map_or("", |o| o.name.as_str())
                        ),
                    ));
                }
                first_entry.insert(number, i);
                by_asn.insert(number, operator.clone());
            }
        }
        Ok(Self {
            by_asn: Arc::new(by_asn),
        })
    }

    /// This table with `file`'s entries added, an AS that both list taking
    /// `file`'s operator.
    #[must_use]
    pub fn overlaid(&self, file: &Self) -> Self {
        let mut by_asn = (*self.by_asn).clone();
        for (asn, operator) in file.by_asn.iter() {
            by_asn.insert(*asn, operator.clone());
        }
        Self {
            by_asn: Arc::new(by_asn),
        }
    }

    /// The operator of `asn`, when the table lists it.
    #[must_use]
    pub fn get(&self, asn: u32) -> Option<&Operator> {
        self.by_asn.get(&asn)
    }

    /// The AS numbers listed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_asn.len()
    }

    /// Whether no AS is listed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_asn.is_empty()
    }

    /// Every AS and its operator, by AS number.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Operator)> {
        self.by_asn.iter().map(|(asn, op)| (*asn, op))
    }
}

impl fmt::Display for OperatorTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} networks", self.by_asn.len())
    }
}

/// An assigned ISO 3166-1 alpha-2 code (or XK, which every geolocation
/// database uses for Kosovo).
fn parse_country(text: &str) -> Option<CountryCode> {
    let code: CountryCode = text.trim().parse().ok()?;
    (code.as_str() == "XK" || code.name().is_some()).then_some(code)
}

/// Lower-case hex.
fn hex_of(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_shipped_table_parses_with_unique_ases_and_assigned_countries() {
        let table = OperatorTable::parse(SHIPPED).unwrap();
        assert_eq!(OperatorTable::shipped(), &table);
        assert!(table.len() >= 45, "{} networks", table.len());
        // Unique AS numbers are enforced by parse; count the listed ones
        // to be sure none was silently merged.
        let raw: RawFile = toml::from_str(SHIPPED).unwrap();
        let listed: usize = raw
            .operator
            .iter()
            .map(|o| o.get_ref().asns.as_ref().unwrap().get_ref().len())
            .sum();
        assert_eq!(listed, table.len());
        for (_, op) in table.iter() {
            assert!(op.country.name().is_some(), "{op:?}");
        }
        // The operators the issue names, with their AS numbers.
        let expect = [
            ("Amazon", "US", &[16509u32, 14618][..]),
            ("Microsoft", "US", &[8075, 8068, 8069]),
            ("Google", "US", &[15169, 396_982, 19527]),
            ("Cloudflare", "US", &[13335, 209_242]),
            ("Akamai", "US", &[20940, 16625, 21342, 32787, 63949]),
            ("Fastly", "US", &[54113]),
            ("Oracle", "US", &[31898]),
            ("IBM", "US", &[36351]),
            ("DigitalOcean", "US", &[14061]),
            ("OVHcloud", "FR", &[16276]),
            ("Hetzner", "DE", &[24940]),
            ("Alibaba", "CN", &[45102, 37963]),
            ("Tencent", "CN", &[132_203, 45090]),
            ("Huawei", "CN", &[136_907]),
            ("Vultr", "US", &[20473]),
            ("Leaseweb", "NL", &[60781, 16265]),
            ("Contabo", "DE", &[51167]),
            ("Workonline Communications", "ZA", &[37271]),
        ];
        for (name, country, asns) in expect {
            for asn in asns {
                let op = table.get(*asn).unwrap_or_else(|| panic!("AS{asn}"));
                assert_eq!((op.name.as_str(), op.country.as_str()), (name, country));
            }
        }
        assert_eq!(table.get(16509).unwrap().kind, OperatorKind::Cloud);
        assert_eq!(table.get(13335).unwrap().kind, OperatorKind::Cdn);
        assert_eq!(table.get(64500), None);
        let kinds: BTreeSet<OperatorKind> = table.iter().map(|(_, o)| o.kind).collect();
        assert_eq!(kinds.len(), OperatorKind::ALL.len());
    }

    #[test]
    fn names_match_case_insensitively() {
        let amazon = OperatorTable::shipped().get(16509).unwrap();
        assert!(amazon.is_named("amazon"));
        assert!(amazon.is_named(" AMAZON "));
        assert!(!amazon.is_named("amaz"));
        assert!(amazon.name_contains("amaz"));
        assert!(!amazon.name_contains("google"));
    }

    #[test]
    fn a_file_overrides_and_extends_by_as_number() {
        let file = OperatorTable::parse(
            "[[operator]]\nname = \"Lesotho Cloud\"\ncountry = \"ls\"\nkind = \"hosting\"\nasns = [64500, 16509]\n",
        )
        .unwrap();
        let table = OperatorTable::shipped().overlaid(&file);
        assert_eq!(table.get(16509).unwrap().name, "Lesotho Cloud");
        assert_eq!(table.get(16509).unwrap().country.as_str(), "LS");
        assert_eq!(table.get(14618).unwrap().name, "Amazon");
        assert_eq!(table.get(64500).unwrap().kind, OperatorKind::Hosting);
        assert_eq!(table.len(), OperatorTable::shipped().len() + 1);
        assert!(OperatorTable::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_entries_name_the_field_and_the_place() {
        let entry = |body: &str| format!("[[operator]]\nname = \"A\"\n{body}");
        let invalid = |text: &str| match OperatorTable::parse(text) {
            Err(OperatorsError::Invalid {
                span,
                field,
                message,
            }) => (text[span].to_string(), field, message),
            other => panic!("{text}: {other:?}"),
        };
        let (at, field, message) =
            invalid(&entry("country = \"UK\"\nkind = \"cloud\"\nasns = [1]\n"));
        assert_eq!(
            (at.as_str(), field.as_str()),
            ("\"UK\"", "operator[0].country")
        );
        assert!(message.contains("`UK` is not an assigned"), "{message}");
        let (_, field, message) = invalid(&entry("country = \"US\"\nkind = \"isp\"\nasns = [1]\n"));
        assert_eq!(field, "operator[0].kind");
        assert!(message.contains("`isp` is not an operator kind"));
        let (at, field, _) = invalid(&entry("country = \"US\"\nkind = \"cdn\"\nasns = [1, 0]\n"));
        assert_eq!((at.as_str(), field.as_str()), ("0", "operator[0].asns[1]"));
        let (_, field, _) = invalid(&entry("country = \"US\"\nkind = \"cdn\"\nasns = []\n"));
        assert_eq!(field, "operator[0].asns");
        let (_, field, _) = invalid(&entry("country = \"US\"\nkind = \"cdn\"\n"));
        assert_eq!(field, "operator[0].asns");
        let twice = format!(
            "{}{}",
            entry("country = \"US\"\nkind = \"cdn\"\nasns = [7, 8]\n"),
            "[[operator]]\nname = \"B\"\ncountry = \"DE\"\nkind = \"cdn\"\nasns = [9, 8]\n"
        );
        let (at, field, message) = invalid(&twice);
        assert_eq!((at.as_str(), field.as_str()), ("8", "operator[1].asns[1]"));
        assert!(
            message.contains("AS8 is already listed for `A` (operator[0])"),
            "{message}"
        );
        let (_, field, _) =
            invalid("[[operator]]\nname = \" \"\ncountry = \"US\"\nkind = \"cdn\"\nasns = [1]\n");
        assert_eq!(field, "operator[0].name");
        // An unknown key is a syntax error at that key.
        match OperatorTable::parse(&entry(
            "country = \"US\"\nkind = \"cdn\"\nasns = [1]\nurl = \"x\"\n",
        )) {
            Err(e @ OperatorsError::Syntax(_)) => {
                assert!(e.to_string().contains("unknown field `url`"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
}
