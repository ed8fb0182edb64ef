//! IP addresses to and from text, without the general `fmt` and parser
//! machinery.
//!
//! `analyze` reads and writes every hop's address of files with millions
//! of traces; the standard library's `FromStr` and `Display` go through
//! generic, atomic-rollback parsing and `fmt::Formatter` per group. These
//! functions give exactly the standard library's results (the tests compare
//! them over many addresses): [`parse`] reads the plain forms directly and
//! leaves anything else (embedded IPv4 in IPv6, invalid text) to
//! `str::parse`; [`write`] writes what `Display` writes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address in text, as `str::parse::<IpAddr>` reads it.
#[must_use]
pub fn parse(text: &str) -> Option<IpAddr> {
    let b = text.as_bytes();
    if let Some(octets) = quad(b) {
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if let Some(groups) = groups(b) {
        return Some(IpAddr::V6(Ipv6Addr::from(groups)));
    }
    text.parse().ok()
}

/// Four decimal octets of 1 to 3 digits without leading zeros, each at most
/// 255, separated by dots: IPv4 text as `Ipv4Addr`'s parser accepts it.
/// `None` for anything else.
fn quad(b: &[u8]) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value = 0u32;
        while let Some(&c @ b'0'..=b'9') = b.get(i) {
            value = value * 10 + u32::from(c - b'0');
            i += 1;
            if i - start > 3 {
                return None;
            }
        }
        if i == start || (i - start > 1 && b[start] == b'0') {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == b.len()).then_some(octets)
}

/// IPv6 text of hexadecimal groups (1 to 4 digits, any case) separated by
/// `:`, with at most one `::` standing for one or more zero groups: eight
/// groups without it, at most seven with it. `None` for anything else,
/// embedded IPv4 included.
fn groups(b: &[u8]) -> Option<[u16; 8]> {
    let mut out = [0u16; 8];
    let gap = b.windows(2).position(|w| w == b"::");
    match gap {
        None => {
            if hex_groups(b, &mut out)? != 8 {
                return None;
            }
        }
        Some(at) => {
            let mut tail = [0u16; 8];
            let head = hex_groups(&b[..at], &mut out)?;
            let tail_len = hex_groups(&b[at + 2..], &mut tail)?;
            if head + tail_len > 7 {
                return None;
            }
            out[8 - tail_len..].copy_from_slice(&tail[..tail_len]);
        }
    }
    Some(out)
}

/// Groups separated by single `:` into `out`; how many (0 for no text).
fn hex_groups(b: &[u8], out: &mut [u16; 8]) -> Option<usize> {
    if b.is_empty() {
        return Some(0);
    }
    let mut n = 0;
    for part in b.split(|&c| c == b':') {
        if part.is_empty() || part.len() > 4 || n == 8 {
            return None;
        }
        let mut value = 0u16;
        for &c in part {
            let digit = char::from(c).to_digit(16)?;
            value = (value << 4) | u16::try_from(digit).ok()?;
        }
        out[n] = value;
        n += 1;
    }
    Some(n)
}

/// Append the `Display` form of `addr` to `out`.
pub fn write(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(v4) => write_v4(out, v4),
        IpAddr::V6(v6) => write_v6(out, v6),
    }
}

/// The decimal text of every octet: up to three digits, then the length.
static OCTETS: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut n = 0;
    while n < 256 {
        let (h, t, o) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = if n >= 100 {
            [b'0' + h, b'0' + t, b'0' + o, 3]
        } else if n >= 10 {
            [b'0' + t, b'0' + o, 0, 2]
        } else {
            [b'0' + o, 0, 0, 1]
        };
        n += 1;
    }
    table
};

fn write_v4(out: &mut Vec<u8>, v4: Ipv4Addr) {
    // Assembled with fixed-size copies (no call per octet), then appended
    // whole and cut to length.
    let mut text = [0u8; 20];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let digits = &OCTETS[usize::from(octet)];
        text[len..len + 4].copy_from_slice(digits);
        len += usize::from(digits[3]);
    }
    let start = out.len();
    out.extend_from_slice(&text);
    out.truncate(start + len);
}

/// RFC 5952 as `Display` writes it: IPv4-mapped addresses as
/// `::ffff:a.b.c.d`, else lower-case groups without leading zeros and the
/// first longest run of two or more zero groups as `::`.
fn write_v6(out: &mut Vec<u8>, v6: Ipv6Addr) {
    if let Some(v4) = v6.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        write_v4(out, v4);
        return;
    }
    let segments = v6.segments();
    let (mut best_start, mut best_len, mut start, mut len) = (0, 0, 0, 0);
    for (i, &s) in segments.iter().enumerate() {
        if s == 0 {
            if len == 0 {
                start = i;
            }
            len += 1;
            if len > best_len {
                (best_start, best_len) = (start, len);
            }
        } else {
            len = 0;
        }
    }
    if best_len > 1 {
        hex_list(out, &segments[..best_start]);
        out.extend_from_slice(b"::");
        hex_list(out, &segments[best_start + best_len..]);
    } else {
        hex_list(out, &segments);
    }
}

fn hex_list(out: &mut Vec<u8>, segments: &[u16]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, &s) in segments.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        let mut shift = 12;
        while shift > 0 && (s >> shift) == 0 {
            shift -= 4;
        }
        loop {
            out.push(HEX[usize::from((s >> shift) & 0xf)]);
            if shift == 0 {
                break;
            }
            shift -= 4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, write};
    use std::net::IpAddr;

    /// Addresses with the shapes that matter: zero runs of every length
    /// and place, IPv4-mapped and -compatible, small and large groups.
    fn addresses() -> Vec<IpAddr> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out: Vec<IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "::",
            "::1",
            "1::",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "2001:db8::1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for _ in 0..20_000 {
            let r = next();
            let mut seg = [0u16; 8];
            for (i, s) in seg.iter_mut().enumerate() {
                let pick = (r >> (i * 3)) & 7;
                *s = match pick {
                    0..=2 => 0,
                    3 => (next() & 0xf) as u16,
                    4 => (next() & 0xff) as u16,
                    _ => next() as u16,
                };
            }
            if r >> 60 == 0 {
                seg[..5].fill(0);
                seg[5] = 0xffff;
            }
            out.push(IpAddr::from(seg));
            let v4 = (next() >> 32) as u32;
            let v4 = if r & 1 == 0 { v4 & 0xff00_ff00 } else { v4 };
            out.push(IpAddr::from(v4.to_be_bytes()));
        }
        out
    }

    #[test]
    fn writes_what_display_writes() {
        for a in addresses() {
            let mut mine = Vec::new();
            write(&mut mine, a);
            assert_eq!(String::from_utf8(mine).unwrap(), a.to_string());
        }
    }

    #[test]
    fn reads_what_the_standard_parser_reads() {
        let mut texts: Vec<String> = Vec::new();
        for a in addresses() {
            let t = a.to_string();
            texts.push(t.to_uppercase());
            texts.push(t.replace("::", ":0:"));
            texts.push(t.replace("::", ":"));
            texts.push(t.replace("::", ":::"));
            texts.push(t.replace(':', "::"));
            texts.push(format!("{t}:"));
            texts.push(format!(":{t}"));
            texts.push(format!("0{t}"));
            texts.push(format!("{t}0"));
            texts.push(format!("{t}."));
            texts.push(t);
        }
        for t in [
            "",
            "x",
            "1",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.04",
            ".1.2.3",
            "1..2.3",
            "1.2.3.4 ",
            " 1.2.3.4",
            "+1.2.3.4",
            "1.2.3.-1",
            "0000.1.2.3",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::",
            "::1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "12345::",
            "::00000",
            "0:0:0:0:0:0:0:0",
            "g::",
            "1:2:3:4:5:6:1.2.3.4",
            "::ffff:1.2.3.4",
            "1::2::3",
            ":",
            ":::",
            "[::1]",
        ] {
            texts.push(t.to_string());
        }
        for t in texts {
            assert_eq!(parse(&t), t.parse::<IpAddr>().ok(), "{t:?}");
        }
    }

    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut rng = crate::test_rng::Rng(seed);
        move || rng.next()
    }

    fn below(next: &mut impl FnMut() -> u64, n: usize) -> usize {
        usize::try_from(next() >> 33).unwrap_or(0) % n
    }

    /// Random text and valid addresses changed a little: [`parse`] gives
    /// what `str::parse` gives, and never panics.
    #[test]
    fn random_and_mutated_text_reads_as_the_standard_parser_reads_it() {
        const ALPHABET: &[u8] = b"0123456789abcdefABCDEF.:::..%xg /[]-+";
        const PIECES: &[&str] = &[
            "::",
            ":",
            ".",
            "0",
            "00",
            "000",
            "0000",
            "00000",
            "255",
            "256",
            "1234",
            "ffff",
            "FFFF",
            "fffff",
            "1.2.3.4",
            "::ffff:",
            "%eth0",
            "%1",
            "::1.2.3.4",
            "é",
            "\u{1F600}",
            "\u{0660}",
            "\u{ff11}",
            "1:2:3:4:5:6:7:8",
        ];
        let mut next = rng(0x5eed_0000_1b7e_0001);
        let mut texts: Vec<String> = Vec::new();
        for _ in 0..20_000 {
            let len = below(&mut next, 40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| ALPHABET[below(&mut next, ALPHABET.len())])
                .collect();
            texts.push(String::from_utf8(bytes).unwrap());
        }
        for _ in 0..2_000 {
            let bytes: Vec<u8> = (0..below(&mut next, 20)).map(|_| next() as u8).collect();
            texts.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        let addrs = addresses();
        for _ in 0..60_000 {
            let a = addrs[below(&mut next, addrs.len())];
            let mut t: Vec<char> = a.to_string().chars().collect();
            for _ in 0..=below(&mut next, 2) {
                let at = below(&mut next, t.len() + 1);
                match below(&mut next, 8) {
                    0 if at < t.len() => {
                        t.remove(at);
                    }
                    1 if at < t.len() => {
                        t[at] = char::from(ALPHABET[below(&mut next, ALPHABET.len())]);
                    }
                    2 => t.insert(at, char::from(ALPHABET[below(&mut next, ALPHABET.len())])),
                    3 => {
                        let piece = PIECES[below(&mut next, PIECES.len())];
                        t.splice(at..at, piece.chars());
                    }
                    4 => t = t.iter().map(char::to_ascii_uppercase).collect(),
                    5 if !t.is_empty() => {
                        // A leading zero on a group or an octet.
                        let starts: Vec<usize> = (0..t.len())
                            .filter(|&i| i == 0 || t[i - 1] == ':' || t[i - 1] == '.')
                            .collect();
                        let i = starts[below(&mut next, starts.len())];
                        t.insert(i, '0');
                    }
                    6 => t.truncate(at),
                    _ => t.extend(":0".chars()),
                }
            }
            texts.push(t.into_iter().collect());
        }
        let (mut read, mut total) = (0, 0);
        for t in &texts {
            let std = t.parse::<IpAddr>().ok();
            let mine = std::panic::catch_unwind(|| parse(t))
                .unwrap_or_else(|_| panic!("parse panicked on {t:?}"));
            assert_eq!(mine, std, "{t:?}");
            read += usize::from(std.is_some());
            total += 1;
        }
        // Both outcomes are well represented.
        assert!(
            read > total / 10 && read < total * 9 / 10,
            "{read} of {total}"
        );
    }

    /// Uniformly random addresses, and IPv4-mapped and -compatible ones,
    /// are written as `Display` writes them.
    #[test]
    fn random_addresses_are_written_as_display_writes_them() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let mut next = rng(0x5eed_0000_1b7e_0002);
        let mut out = Vec::new();
        for _ in 0..50_000 {
            let bits = (u128::from(next()) << 64) | u128::from(next());
            let v4 = Ipv4Addr::from((next() >> 32) as u32);
            for a in [
                IpAddr::V6(Ipv6Addr::from(bits)),
                IpAddr::V4(v4),
                IpAddr::V6(v4.to_ipv6_mapped()),
                IpAddr::V6(v4.to_ipv6_compatible()),
                IpAddr::V6(Ipv6Addr::from(
                    bits & 0xffff_0000_ffff_0000_ffff_0000_ffff_0000,
                )),
                IpAddr::V6(Ipv6Addr::from(
                    bits & 0x0000_0000_0000_ffff_0000_0000_ffff_ffff,
                )),
            ] {
                let start = out.len();
                write(&mut out, a);
                assert_eq!(std::str::from_utf8(&out[start..]).unwrap(), a.to_string());
                assert_eq!(parse(&a.to_string()), Some(a));
            }
            if out.len() > 1 << 16 {
                out.clear();
            }
        }
    }
}
