//! Where in the file an error is: [`Source`] turns byte offsets and spans
//! into 1-based lines and columns and builds the positioned
//! [`ConfigError`]s; `KeyIndex` names the dotted field path a parse error
//! points into.

use super::ConfigError;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// The text being validated and the file it came from.
pub(super) struct Source<'a> {
    /// The file's text.
    pub(super) text: &'a str,
    /// The file, as named in errors.
    pub(super) path: &'a Path,
}

impl Source<'_> {
    /// The 1-based line and column (in characters) of byte `offset`.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// A validation error at `span` (or without a position).
    pub(super) fn invalid(
        &self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = match span.map(|span| self.position(span.start)) {
            Some((line, column)) => (Some(line), Some(column)),
            None => (None, None),
        };
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            field: field.into(),
            message: one_line(&message.into()),
        }
    }

    /// A validation error about a missing key of the table `table`, placed at
    /// that table's header or first key.
    pub(super) fn missing(&self, table: &str, key: &str) -> ConfigError {
        let span = KeyIndex::build(self.text).and_then(|index| index.span_of(table));
        self.invalid(
            span,
            format!("{table}.{key}"),
            format!("`{key}` is required in `[{table}]`"),
        )
    }

    /// A parse error, with the field path worked out from its position.
    ///
    /// When the text is not TOML at all (a number out of range, a stray
    /// character) no key index can be built, and the field is read from
    /// the text itself: the key on the error's line under the last table
    /// header before it.
    pub(super) fn syntax(&self, error: &toml::de::Error) -> ConfigError {
        let span = error.span();
        let field = span
            .clone()
            .and_then(|span| match KeyIndex::build(self.text) {
                Some(index) => index.field_at(self.text, span.start),
                None => field_from_text(self.text, span.start),
            });
        let (line, column) = match span.clone().map(|span| self.position(span.start)) {
            Some((line, column)) => (Some(line), Some(column)),
            None => (None, None),
        };
        let mut message = one_line(error.message());
        if message.is_empty() {
            message = unexpected_at(self.text, span.map_or(self.text.len(), |s| s.start));
        }
        ConfigError::Syntax {
            path: self.path.to_path_buf(),
            line,
            column,
            field,
            message,
        }
    }
}

/// What stands at byte `offset` of `text`, for a parse error the parser
/// gave no words for (it has none for a control character in a comment).
fn unexpected_at(text: &str, offset: usize) -> String {
    let Some(c) = text.get(offset..).and_then(|rest| rest.chars().next()) else {
        return "unexpected end of the file".to_string();
    };
    if c.is_control() {
        format!(
            "the control character U+{:04X} is not allowed here (TOML allows none but tab, \
             not even in comments; write it as an escape in a string)",
            u32::from(c)
        )
    } else {
        format!("unexpected `{c}`")
    }
}

/// The dotted path of the field whose line holds byte `offset`, read from
/// the text without parsing it: `TABLE.KEY`, with `[[array]]` headers
/// counted into 0-based indices (`target[2].port`). `None` when the line
/// is not `key = ...`.
fn field_from_text(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let line = &line[..line.find('\n').unwrap_or(line.len())];
    let (key, _) = line.split_once('=')?;
    let key = key
        .split('.')
        .map(|part| part.trim().trim_matches(['"', '\'']))
        .collect::<Vec<_>>()
        .join(".");
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if key.is_empty() || !key.chars().all(valid) {
        return None;
    }
    // The last header before the line, with array headers counted.
    let mut header = String::new();
    let mut arrays: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for raw in text[..line_start].lines() {
        let raw = raw.trim();
        if let Some(name) = raw.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let count = arrays.entry(name.clone()).or_insert(0);
            header = format!("{name}[{}]", *count);
            *count += 1;
        } else if let Some(name) = raw.strip_prefix('[').and_then(|r| r.split(']').next()) {
            header = name.trim().to_string();
        }
    }
    Some(if header.is_empty() {
        key
    } else {
        format!("{header}.{key}")
    })
}

/// Join the lines of a multi-line message with `; `.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every key of a TOML document with its dotted path and the span of the key
/// text. Used to name the field a parse error points into; keys are kept in
/// document order.
struct KeyIndex {
    keys: Vec<(String, Range<usize>)>,
}

impl KeyIndex {
    /// Index `text`, or `None` when it is not valid TOML.
    fn build(text: &str) -> Option<Self> {
        let root: KeyNode = toml::from_str(text).ok()?;
        let mut keys = Vec::new();
        root.collect("", &mut keys);
        keys.sort_by_key(|(_, span)| span.start);
        Some(Self { keys })
    }

    /// The span of the key whose path is `path`.
    fn span_of(&self, path: &str) -> Option<Range<usize>> {
        self.keys
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, span)| span.clone())
    }

    /// The dotted path of the field at byte `offset` of `text`: the key
    /// written there; for a table header, the last key named on it; else the
    /// last key before it (whose value the offset falls in).
    fn field_at(&self, text: &str, offset: usize) -> Option<String> {
        if let Some((path, _)) = self.keys.iter().find(|(_, span)| span.contains(&offset)) {
            return Some(path.clone());
        }
        let rest = text.get(offset..)?;
        if rest.starts_with('[') {
            // Errors about a whole table point at the `[` of its header. A
            // header that repeats an array of tables (`[[target]]`) holds no
            // key of its own here, and no path is better than a wrong one.
            let line_end = offset + rest.find('\n').unwrap_or(rest.len());
            return self
                .keys
                .iter()
                .filter(|(_, span)| span.start > offset && span.start < line_end)
                .max_by_key(|(_, span)| span.start)
                .map(|(path, _)| path.clone());
        }
        self.keys
            .iter()
            .rev()
            .find(|(_, span)| span.start <= offset)
            .map(|(path, _)| path.clone())
    }
}

/// The shape of a TOML document: tables with spanned keys, arrays, leaves.
enum KeyNode {
    Table(Vec<(Spanned<String>, KeyNode)>),
    Array(Vec<KeyNode>),
    Leaf,
}

impl KeyNode {
    fn collect(&self, prefix: &str, out: &mut Vec<(String, Range<usize>)>) {
        match self {
            Self::Table(entries) => {
                for (key, value) in entries {
                    let path = if prefix.is_empty() {
                        key.get_ref().clone()
                    } else {
                        format!("{prefix}.{}", key.get_ref())
                    };
                    out.push((path.clone(), key.span()));
                    value.collect(&path, out);
                }
            }
            Self::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.collect(&format!("{prefix}[{i}]"), out);
                }
            }
            Self::Leaf => {}
        }
    }
}

impl<'de> Deserialize<'de> for KeyNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyNodeVisitor)
    }
}

struct KeyNodeVisitor;

impl<'de> Visitor<'de> for KeyNodeVisitor {
    type Value = KeyNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyNode, E> {
        Ok(KeyNode::Leaf)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyNode, E> {
        Ok(KeyNode::Leaf)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyNode, E> {
        Ok(KeyNode::Leaf)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyNode, E> {
        Ok(KeyNode::Leaf)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<KeyNode, E> {
        Ok(KeyNode::Leaf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(KeyNode::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(KeyNode::Table(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = Source {
            text: "a = 1\nbé = \"x\"\n",
            path: Path::new("t.toml"),
        };
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        // `=` after a two-byte character is the fourth character of line 2.
        assert_eq!(src.position(10), (2, 4));
    }

    #[test]
    fn fields_are_read_from_text_that_does_not_parse() {
        let text = "[probe]\nport = 99999999999999999999\n[[target]]\nname = \"a\"\n[[target]]\nport = 1e999\n";
        let at = |needle: &str| text.find(needle).unwrap();
        assert_eq!(
            field_from_text(text, at("9999")).as_deref(),
            Some("probe.port")
        );
        assert_eq!(
            field_from_text(text, at("1e999")).as_deref(),
            Some("target[1].port")
        );
        // On the key itself (a duplicate key, say) the key is the field;
        // a header is none.
        assert_eq!(
            field_from_text(text, at("port")).as_deref(),
            Some("probe.port")
        );
        assert_eq!(field_from_text(text, at("[[target]]")), None);
    }

    #[test]
    fn key_index_names_array_elements_and_dotted_keys() {
        let text = "probe.port = 5\n[[target]]\nname = \"a\"\n[[target]]\nname = \"b\"\n";
        let index = KeyIndex::build(text).unwrap();
        let offset = text.rfind("\"b\"").unwrap();
        assert_eq!(
            index.field_at(text, offset).as_deref(),
            Some("target[1].name")
        );
        assert_eq!(index.field_at(text, 6).as_deref(), Some("probe.port"));
        // The second `[[target]]` header: no key of its own.
        let header = text.rfind("[[target]]").unwrap();
        assert_eq!(index.field_at(text, header), None);
    }
}
