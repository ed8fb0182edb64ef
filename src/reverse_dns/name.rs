//! What a PTR answer may name: a host name of letters, digits, `-` and
//! `_`, labels of 1 to 63 characters, at most 253 in all. Anything else
//! (spaces, control or non-ASCII bytes, empty labels, oversized names) is
//! garbage and is dropped; a valid name is returned lower-case, without
//! the trailing dot.

/// The longest host name kept (characters, without the trailing dot).
pub(super) const MAX_NAME: usize = 253;

/// The longest label.
const MAX_LABEL: usize = 63;

/// `labels` (as the wire carries them) as one lower-case host name, or
/// `None` when they do not make a host name.
pub(crate) fn host_name<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    let mut name = String::new();
    for label in labels {
        if label.is_empty() || label.len() > MAX_LABEL {
            return None;
        }
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
        if name.len() > MAX_NAME {
            return None;
        }
    }
    (!name.is_empty()).then_some(name)
}

/// [`host_name`] of a name written as text (`core1.Example.net.`).
#[cfg(test)]
pub(super) fn host_name_of_text(text: &str) -> Option<String> {
    let text = text.strip_suffix('.').unwrap_or(text);
    host_name(text.split('.').map(str::as_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_cased_without_the_trailing_dot() {
        assert_eq!(
            host_name_of_text("Core1.JNB.Example.NET.").as_deref(),
            Some("core1.jnb.example.net")
        );
        assert_eq!(
            host_name_of_text("ae-1_2.r01.example.net").as_deref(),
            Some("ae-1_2.r01.example.net")
        );
    }

    #[test]
    fn garbage_is_dropped() {
        let long_label = "a".repeat(64);
        let long_name = vec!["abcdefghi"; 26].join(".");
        assert_eq!(long_name.len(), 259);
        for bad in [
            "",
            ".",
            "a..b",
            "bad name.example",
            "nul\0.example",
            "caf\u{e9}.example",
            "semi;colon.example",
            "slash/.example",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert_eq!(host_name_of_text(bad), None, "{bad:?}");
        }
        assert_eq!(host_name([&[0xff_u8, b'a'][..]]), None);
        let just_fits = vec!["a".repeat(63); 4].join(".")[..MAX_NAME].to_string();
        assert_eq!(just_fits.len(), 253);
        assert!(host_name_of_text(&just_fits).is_some());
    }
}
