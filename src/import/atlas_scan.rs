//! A fast reader of the common shape of a RIPE Atlas traceroute result.
//!
//! serde_json reads a result through generic visitors, decodes every key
//! and validates every skipped string as it goes; on a file of millions of
//! results that is most of `analyze`'s time. This scanner reads exactly the
//! fields [`AtlasResult`] holds, straight from the line, and skips the rest
//! with a strict JSON skipper.
//!
//! It is only a shortcut: whenever the line is anything but plain, valid
//! JSON of the expected types (an escape or a non-ASCII byte in a string, a
//! duplicate field, a missing field, a number it would have to round, a
//! value of another type, nesting deeper than serde_json allows, trailing
//! bytes...) it gives up with `None` and the caller reads the line with
//! serde_json, which then produces the same result or the error message
//! naming the field. When it does succeed, its result is the one serde_json
//! would produce: the same strings, integers and floating-point values
//! (parsed with serde_json's own arithmetic, see [`Scanner::float`]).

use super::atlas::{Assembly, Header, ReplyFields};
use std::borrow::Cow;

/// How deep the skipped values may nest (serde_json stops at 128).
const MAX_DEPTH: usize = 100;

/// Exact powers of ten: a significand below 2^53 divided by one of them is
/// what serde_json computes for a decimal with that many fraction digits.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The bytes that end the plain part of a string: its closing quote, an
/// escape, a control character, a non-ASCII byte.
static STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = i < 0x20 || i >= 0x80 || i == b'"' as usize || i == b'\\' as usize;
        i += 1;
    }
    table
};

/// How many bytes of `b` come before the first [`STRING_STOP`] byte, eight
/// at a time: in each word, a byte equal to `"` or `\\`, below 0x20 or
/// from 0x80 up gets its high bit set (the lowest such flag is exact, so
/// the first stop is found). `None` when there is none.
fn plain_len(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
    let mut at = 0;
    while let Some(chunk) = b.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let stops = (zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w)
            | w)
            & HIGH;
        if stops != 0 {
            return Some(at + (stops.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    b[at..]
        .iter()
        .position(|&c| STRING_STOP[usize::from(c)])
        .map(|n| at + n)
}

/// Read one result line: its header, its hops fed to `assembly`; `None`
/// when serde_json must read it (`assembly` then holds a partial result).
pub(super) fn scan<'a>(bytes: &'a [u8], assembly: &mut Assembly) -> Option<Header<'a>> {
    // Checked once for the whole line, so that strings are plain slices.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut s = Scanner {
        text,
        b: bytes,
        i: 0,
        replies: Vec::new(),
    };
    let header = s.result(assembly)?;
    s.ws();
    (s.i == s.b.len()).then_some(header)
}

/// A position in the line.
struct Scanner<'a> {
    /// The line, valid UTF-8.
    text: &'a str,
    /// The same, as bytes.
    b: &'a [u8],
    i: usize,
    /// The replies of the entry being read (one buffer for the line).
    replies: Vec<ReplyFields<'a>>,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Skip whitespace and consume `byte`.
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.peek()? == byte).then(|| self.i += 1)
    }

    /// Skip whitespace; true (and consumed) when the next byte is `byte`.
    fn eat(&mut self, byte: u8) -> bool {
        self.ws();
        if self.peek() == Some(byte) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A string without escapes, control characters or non-ASCII bytes,
    /// borrowed from the line.
    fn str(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.i;
        let len = plain_len(&self.b[start..])?;
        self.i = start + len;
        if self.b[self.i] != b'"' {
            return None;
        }
        self.i += 1;
        // Between two ASCII quotes of valid UTF-8: a char boundary each.
        self.text.get(start..start + len)
    }

    /// `null` (true) or something else (false, nothing consumed).
    fn null(&mut self) -> bool {
        self.ws();
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(self.str()?))
    }

    /// The digits of a non-negative integer without sign, fraction or
    /// exponent, at most 18 of them (no overflow), no leading zero.
    fn digits(&mut self) -> Option<u64> {
        self.ws();
        self.digits_here()
    }

    /// [`Self::digits`] right at the current byte, no whitespace first.
    fn digits_here(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n = 0u64;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            // Wrapping: more than 18 digits are refused below, whatever
            // they added up to.
            n = n.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            self.i += 1;
        }
        let len = self.i - start;
        if len == 0 || len > 18 || (len > 1 && self.b[start] == b'0') {
            return None;
        }
        // A fraction or exponent makes it a float: serde_json's error.
        match self.peek() {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(n),
        }
    }

    fn u64(&mut self) -> Option<u64> {
        self.digits()
    }

    fn i64(&mut self) -> Option<i64> {
        // No space between the sign and the digits (JSON has none).
        let negative = self.eat(b'-');
        let n = i64::try_from(self.digits_here()?).ok()?;
        // serde_json reads `-0` as the float -0.0: its error, not 0.
        if negative && n == 0 {
            return None;
        }
        Some(if negative { -n } else { n })
    }

    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(self.u64()?))
    }

    /// A non-negative number as serde_json reads it into an `f64`: an
    /// integer converted, or a decimal `significand / 10^fraction_digits`
    /// when the significand stays below 2^53 and has at most 22 fraction
    /// digits (both exact, so one correctly rounded division, which is
    /// serde_json's computation too). Anything else (a sign, an exponent,
    /// more digits) is left to serde_json.
    fn float(&mut self) -> Option<f64> {
        self.ws();
        let start = self.i;
        let mut significand = 0u64;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            // Wrapping: too many digits are refused below.
            significand = significand
                .wrapping_mul(10)
                .wrapping_add(u64::from(c - b'0'));
            self.i += 1;
        }
        let int_len = self.i - start;
        if int_len == 0 || int_len > 15 || (int_len > 1 && self.b[start] == b'0') {
            return None;
        }
        let mut fraction = 0usize;
        if self.peek() == Some(b'.') {
            self.i += 1;
            let frac_start = self.i;
            while let Some(c @ b'0'..=b'9') = self.peek() {
                significand = significand
                    .wrapping_mul(10)
                    .wrapping_add(u64::from(c - b'0'));
                self.i += 1;
            }
            fraction = self.i - frac_start;
            if fraction == 0 || int_len + fraction > 15 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // below 2^53: exact
        let value = significand as f64;
        Some(if fraction == 0 {
            value
        } else {
            value / POW10[fraction]
        })
    }

    fn opt_float(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(self.float()?))
    }

    /// Whether a field is there: `null` is absence, any other valid value
    /// (skipped) presence.
    fn presence(&mut self) -> Option<bool> {
        if self.null() {
            return Some(false);
        }
        self.skip(0)?;
        Some(true)
    }

    /// Any value but `null`, as its JSON text (what serde_json's
    /// `RawValue` holds); `None` inside for `null`.
    fn opt_raw(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.ws();
        let start = self.i;
        self.skip(1)?;
        Some(self.text.get(start..self.i))
    }

    /// Skip one JSON value, validating it as strictly as serde_json does.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.str().map(drop),
            b'{' => {
                self.i += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.str()?;
                    self.expect(b':')?;
                    self.skip(depth + 1)?;
                    if self.eat(b'}') {
                        return Some(());
                    }
                    self.expect(b',')?;
                }
            }
            b'[' => {
                self.i += 1;
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    if self.eat(b']') {
                        return Some(());
                    }
                    self.expect(b',')?;
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return None;
                }
            }
            b'1'..=b'9' => self.skip_digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.skip_digits();
        (self.i > start).then_some(())
    }

    /// The members of an object: `field` is called with each key, positioned
    /// at its value, and returns false for keys it does not read (skipped).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<bool>) -> Option<()> {
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.str()?;
            self.expect(b':')?;
            if !field(self, key)? {
                self.skip(1)?;
            }
            if self.eat(b'}') {
                return Some(());
            }
            self.expect(b',')?;
        }
    }

    fn result(&mut self, assembly: &mut Assembly) -> Option<Header<'a>> {
        // Each field once: a repeated one is serde_json's "duplicate field".
        let mut kind = None;
        let mut prb_id = None;
        let mut msm_id = None;
        let mut timestamp = None;
        let mut proto = None;
        let mut dst_addr = None;
        let mut dst_name = None;
        let mut result = None;
        self.object(|s, key| {
            match key {
                "type" => once(&mut kind, s.opt_str()?)?,
                "prb_id" => once(&mut prb_id, s.u64()?)?,
                "msm_id" => once(&mut msm_id, s.opt_u64()?)?,
                "timestamp" => once(&mut timestamp, s.i64()?)?,
                "proto" => once(&mut proto, s.str()?)?,
                "dst_addr" => once(&mut dst_addr, s.opt_str()?)?,
                "dst_name" => once(&mut dst_name, s.opt_str()?)?,
                "result" => {
                    once(&mut result, ())?;
                    s.entries(assembly)?;
                }
                _ => return Some(false),
            }
            Some(true)
        })?;
        result?;
        Some(Header {
            kind: kind.flatten().map(Cow::Borrowed),
            prb_id: prb_id?,
            msm_id: msm_id.flatten(),
            timestamp: timestamp?,
            proto: Cow::Borrowed(proto?),
            dst_addr: dst_addr.flatten().map(Cow::Borrowed),
            dst_name: dst_name.flatten().map(Cow::Borrowed),
        })
    }

    /// The `result` array: each entry's replies go to `assembly` under the
    /// entry's hop number (known only at the end of the entry's object).
    fn entries(&mut self, assembly: &mut Assembly) -> Option<()> {
        self.expect(b'[')?;
        if self.eat(b']') {
            return Some(());
        }
        let mut position = 0u32;
        loop {
            position += 1;
            let number = self.entry()?.unwrap_or(position);
            let slot = assembly.entry(number).ok()?;
            for reply in &self.replies {
                assembly.reply(slot, number, reply).ok()?;
            }
            if self.eat(b']') {
                return Some(());
            }
            self.expect(b',')?;
        }
    }

    /// One entry of `result`: its `hop`, its replies into `self.replies`.
    fn entry(&mut self) -> Option<Option<u32>> {
        self.replies.clear();
        let mut hop = None;
        let mut result = None;
        self.object(|s, key| {
            match key {
                "hop" => {
                    let n = match s.opt_u64()? {
                        Some(n) => Some(u32::try_from(n).ok()?),
                        None => None,
                    };
                    once(&mut hop, n)?;
                }
                "result" => {
                    once(&mut result, ())?;
                    s.expect(b'[')?;
                    if !s.eat(b']') {
                        loop {
                            let reply = s.reply()?;
                            s.replies.push(reply);
                            if s.eat(b']') {
                                break;
                            }
                            s.expect(b',')?;
                        }
                    }
                }
                _ => return Some(false),
            }
            Some(true)
        })?;
        Some(hop.flatten())
    }

    fn reply(&mut self) -> Option<ReplyFields<'a>> {
        let (mut x, mut from, mut rtt, mut late, mut dup, mut edst, mut icmpext) =
            (None, None, None, None, None, None, None);
        self.object(|s, key| {
            match key {
                "x" => once(&mut x, s.presence()?)?,
                "from" => once(&mut from, s.opt_str()?)?,
                "rtt" => once(&mut rtt, s.opt_float()?)?,
                "late" => once(&mut late, s.presence()?)?,
                "dup" => once(&mut dup, s.presence()?)?,
                "edst" => once(&mut edst, s.opt_str()?)?,
                "icmpext" => once(&mut icmpext, s.opt_raw()?)?,
                _ => return Some(false),
            }
            Some(true)
        })?;
        Some(ReplyFields {
            x: x.unwrap_or(false),
            from: from.flatten(),
            rtt: rtt.flatten(),
            late: late.unwrap_or(false),
            dup: dup.unwrap_or(false),
            edst: edst.flatten(),
            icmpext: icmpext.flatten(),
        })
    }
}

/// Store the first value of a field; `None` (give up) on a second.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::atlas::{convert_parsed, convert_scanned, Assembly};

    /// Whether the scanner reads `line`; when it does, its trace (or error)
    /// is the one serde_json's reading gives.
    fn same_as_serde(line: &str) -> bool {
        let mut assembly = Assembly::default();
        let Some(fast) = convert_scanned(line.as_bytes(), &mut assembly) else {
            return false;
        };
        let slow = convert_parsed(line.as_bytes(), &mut Assembly::default());
        let view = |c: Result<super::super::Converted, String>| {
            c.map(|c| (c.trace, c.prb_id, c.late_replies))
        };
        assert_eq!(view(fast), view(slow), "{line}");
        true
    }

    #[test]
    fn the_plain_part_of_a_string_ends_at_the_first_stop_byte() {
        let mut text: Vec<u8> = (0x20..0x7f).filter(|&c| c != b'"' && c != b'\\').collect();
        text.extend_from_slice(&text.clone());
        for stop in [b'"', b'\\', 0, 0x1f, 0x80, 0xc3, 0xff] {
            for at in 0..text.len() {
                let mut b = text.clone();
                b[at] = stop;
                if at + 1 < b.len() {
                    b[at + 1] = b'"';
                }
                assert_eq!(super::plain_len(&b), Some(at), "{stop:#x} at {at}");
                assert_eq!(super::plain_len(&b[..at]), None);
            }
        }
    }

    /// Plain results the scanner reads itself.
    pub(in crate::import) const PLAIN: &[&str] = &[
        r#"{"fw":4900,"type":"traceroute","prb_id":7,"msm_id":9,"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","result":[{"hop":1,"result":[{"x":"*"},{"from":"10.0.0.1","rtt":2.0,"ttl":254,"icmpext":{"version":2,"obj":[{"mpls":[{"label":5,"s":1}]}]}},{"x":"*"}]},{"hop":2,"result":[{"from":"10.0.0.2","rtt":0.1,"late":1},{"from":"10.0.0.2","rtt":0.0000001,"dup":true}]}]}"#,
        r#" { "prb_id" : 1 , "timestamp" : -5 , "proto" : "UDP" , "dst_addr" : null , "msm_id" : null , "result" : [ { "result" : [ { "rtt" : 12.345678901234 , "x" : null , "late" : null } ] } , { "error" : "bind failed" } ] } "#,
        r#"{"prb_id":1,"timestamp":0,"proto":"TCP","dst_name":"x.example","result":[{"hop":null,"result":[]},{"hop":3,"result":[{"from":"2001:db8::1","rtt":3,"edst":"2001:db8::9","err":"H","a":[true,false,null,-0.5e+3,{}]}]}]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"TCP","result":[{"result":[{"rtt":0}, {"rtt":123456789012345}, {"rtt":0.00000000000001}]}]}"#,
        r#"{"result":[{"result":[{"from":"10.0.0.1","rtt":1.0,"late":1,"edst":"bad"},{"from":"10.0.0.2","edst":"192.0.2.7"},{"from":"10.0.0.3","rtt":9.5}],"hop":2},{"hop":2,"result":[{"from":"10.0.0.3","rtt":2.5,"dup":1},{"x":"*"},{"from":"10.0.0.3","rtt":3.5}]},{"hop":1,"result":[]}],"prb_id":3,"timestamp":1,"proto":"icmp","dst_name":"x.example","msm_id":5}"#,
        r#"{"type":"ping","prb_id":1,"timestamp":0,"proto":"ICMP","result":[]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"SCTP","result":[]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","dst_addr":"no","result":[]}"#,
    ];

    /// Lines the scanner leaves to serde_json.
    pub(in crate::import) const UNUSUAL: &[&str] = &[
        // Escapes and non-ASCII text.
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","dst_name":"a\"b","result":[]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","dst_name":"zürich","result":[]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","note":"\u00fc","result":[]}"#,
        // Duplicate fields, missing fields, wrong types.
        r#"{"prb_id":1,"prb_id":2,"timestamp":0,"proto":"ICMP","result":[]}"#,
        r#"{"timestamp":0,"proto":"ICMP","result":[]}"#,
        r#"{"prb_id":"1","timestamp":0,"proto":"ICMP","result":[]}"#,
        r#"{"prb_id":1.0,"timestamp":0,"proto":"ICMP","result":[]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":null,"result":[]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[{"hop":4294967296}]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[{"result":null}]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[[1,[]]]}"#,
        // Numbers it would have to round, or that are not JSON.
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[{"result":[{"rtt":1.5e3}]}]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[{"result":[{"rtt":-1.5}]}]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[{"result":[{"rtt":1.12345678901234567}]}]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[{"result":[{"rtt":01.5}]}]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","size":01,"result":[]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","size":1.,"result":[]}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","size":.5,"result":[]}"#,
        // Broken structure, trailing bytes, not an object.
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[],}"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[]} x"#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","result":[] "#,
        r#"{"prb_id":1,"timestamp":0,"proto":"ICMP","a":nul,"result":[]}"#,
        "[1,2]",
        "",
    ];

    #[test]
    fn plain_results_read_like_serde_json() {
        for line in PLAIN {
            assert!(same_as_serde(line), "scanner gave up on {line}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_serde_json() {
        for line in UNUSUAL {
            assert!(!same_as_serde(line), "scanner read {line}");
        }
    }
}
