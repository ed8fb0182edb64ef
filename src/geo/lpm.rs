//! Longest-prefix match over a fixed set of prefixes in one binary search.
//!
//! CIDR prefixes either nest or are disjoint, so a set of them cuts the
//! address line into intervals on each of which one prefix — the longest
//! covering it — or none applies. [`LpmTable::build`] sweeps the prefixes in
//! address order once to produce those interval start points; a lookup is
//! then a binary search for the last start at or below the address. That is
//! a few dozen cache-friendly comparisons whatever the mix of prefix lengths,
//! and the table is two flat vectors (about 2 entries per prefix).

use super::prefix::{mask_v4, mask_v6, IpPrefix};
use std::net::IpAddr;

/// An unsigned address integer (`u32` for IPv4, `u128` for IPv6).
pub(crate) trait AddrBits: Copy + Ord {
    /// The lowest address.
    const ZERO: Self;
    /// The address after `self`, `None` at the top of the space.
    fn successor(self) -> Option<Self>;
}

impl AddrBits for u32 {
    const ZERO: Self = 0;
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl AddrBits for u128 {
    const ZERO: Self = 0;
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

/// Marks an interval no prefix covers.
const NONE: u32 = u32::MAX;

/// One prefix to put in a table: its first and last address, its length,
/// and the value (an index chosen by the caller) a match returns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span<K> {
    pub first: K,
    pub last: K,
    pub len: u8,
    pub value: u32,
}

/// Interval start points and the value that applies from each.
#[derive(Debug, Clone)]
pub(crate) struct LpmTable<K> {
    starts: Vec<K>,
    values: Vec<u32>,
}

impl<K: AddrBits> Default for LpmTable<K> {
    fn default() -> Self {
        Self {
            starts: vec![K::ZERO],
            values: vec![NONE],
        }
    }
}

impl<K: AddrBits> LpmTable<K> {
    /// Builds the table. Spans must be CIDR blocks (nested or disjoint);
    /// of two identical ones the later wins. `value` must not be `u32::MAX`.
    pub(crate) fn build(mut spans: Vec<Span<K>>) -> Self {
        // Address order, and the wider of two blocks sharing a first address
        // first, so that every block is seen after the blocks that enclose it.
        // The sort is stable: of two identical blocks the later stays later.
        spans.sort_by(|a, b| a.first.cmp(&b.first).then(a.len.cmp(&b.len)));
        let mut table = Self::default();
        // The enclosing blocks of the current position, innermost last, as
        // (last address, value).
        let mut open: Vec<(K, u32)> = Vec::new();
        for span in spans {
            table.close_before(&mut open, Some(span.first));
            table.mark(span.first, span.value);
            open.push((span.last, span.value));
        }
        table.close_before(&mut open, None);
        table.starts.shrink_to_fit();
        table.values.shrink_to_fit();
        table
    }

    /// Ends every open block whose last address is below `position` (all of
    /// them for `None`), handing the space after each back to its encloser.
    fn close_before(&mut self, open: &mut Vec<(K, u32)>, position: Option<K>) {
        while let Some(&(last, _)) = open.last() {
            if position.is_some_and(|p| last >= p) {
                break;
            }
            open.pop();
            let resumed = open.last().map_or(NONE, |&(_, value)| value);
            if let Some(next) = last.successor() {
                self.mark(next, resumed);
            }
        }
    }

    /// Records that `value` applies from `position` on.
    fn mark(&mut self, position: K, value: u32) {
        match (self.starts.last(), self.values.last_mut()) {
            (Some(&start), Some(current)) if start == position => *current = value,
            (Some(_), Some(current)) if *current == value => {}
            _ => {
                self.starts.push(position);
                self.values.push(value);
            }
        }
    }

    /// The value of the longest prefix containing `key`.
    pub(crate) fn get(&self, key: K) -> Option<u32> {
        let index = self
            .starts
            .partition_point(|&start| start <= key)
            .checked_sub(1)?;
        self.values.get(index).copied().filter(|&v| v != NONE)
    }

    /// How many intervals the table holds.
    #[cfg(test)]
    pub(crate) fn intervals(&self) -> usize {
        self.starts.len()
    }
}

/// A longest-prefix-match index over a list of prefixes of both families:
/// a lookup gives the position in the list of the longest prefix covering
/// an address (of two identical prefixes, the later).
#[derive(Debug, Clone, Default)]
pub(crate) struct PrefixIndex {
    v4: LpmTable<u32>,
    v6: LpmTable<u128>,
}

impl PrefixIndex {
    /// Indexes `prefixes`; positions past `u32::MAX - 1` are not indexed (no
    /// real file comes near).
    pub(crate) fn build(prefixes: impl IntoIterator<Item = IpPrefix>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (index, prefix) in prefixes.into_iter().enumerate() {
            let Ok(value) = u32::try_from(index) else {
                break;
            };
            if value == NONE {
                break;
            }
            let len = prefix.prefix_len();
            match prefix.addr() {
                IpAddr::V4(a) => {
                    let first = u32::from(a);
                    v4.push(Span {
                        first,
                        last: first | !mask_v4(len),
                        len,
                        value,
                    });
                }
                IpAddr::V6(a) => {
                    let first = u128::from(a);
                    v6.push(Span {
                        first,
                        last: first | !mask_v6(len),
                        len,
                        value,
                    });
                }
            }
        }
        Self {
            v4: LpmTable::build(v4),
            v6: LpmTable::build(v6),
        }
    }

    /// The position of the longest prefix covering `addr` (IPv4-mapped
    /// addresses as their IPv4 address).
    pub(crate) fn get(&self, addr: IpAddr) -> Option<usize> {
        let value = match addr.to_canonical() {
            IpAddr::V4(a) => self.v4.get(u32::from(a)),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        }?;
        usize::try_from(value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(s: &str, value: u32) -> Span<u32> {
        let p: IpPrefix = s.parse().unwrap();
        let IpAddr::V4(a) = p.addr() else { panic!() };
        let first = u32::from(a);
        Span {
            first,
            last: first | !mask_v4(p.prefix_len()),
            len: p.prefix_len(),
            value,
        }
    }

    fn get(t: &LpmTable<u32>, a: &str) -> Option<u32> {
        t.get(u32::from(a.parse::<std::net::Ipv4Addr>().unwrap()))
    }

    /// The slow reference: longest of all containing prefixes.
    fn naive(spans: &[Span<u32>], key: u32) -> Option<u32> {
        spans
            .iter()
            .filter(|s| s.first <= key && key <= s.last)
            .max_by_key(|s| s.len)
            .map(|s| s.value)
    }

    #[test]
    fn nested_prefixes_resolve_to_the_longest() {
        let t = LpmTable::build(vec![
            span("10.0.0.0/8", 1),
            span("10.1.0.0/16", 2),
            span("10.1.2.0/24", 3),
            span("10.255.0.0/16", 4),
            span("0.0.0.0/0", 5),
            span("255.255.255.255/32", 6),
        ]);
        assert_eq!(get(&t, "9.255.255.255"), Some(5));
        assert_eq!(get(&t, "10.0.0.0"), Some(1));
        assert_eq!(get(&t, "10.1.0.0"), Some(2));
        assert_eq!(get(&t, "10.1.2.200"), Some(3));
        assert_eq!(get(&t, "10.1.3.0"), Some(2));
        assert_eq!(get(&t, "10.2.0.0"), Some(1));
        assert_eq!(get(&t, "10.255.255.255"), Some(4));
        assert_eq!(get(&t, "11.0.0.0"), Some(5));
        assert_eq!(get(&t, "255.255.255.254"), Some(5));
        assert_eq!(get(&t, "255.255.255.255"), Some(6));
    }

    #[test]
    fn uncovered_space_is_none_and_empty_table_finds_nothing() {
        let t = LpmTable::build(vec![span("192.0.2.0/24", 0)]);
        assert_eq!(get(&t, "192.0.1.255"), None);
        assert_eq!(get(&t, "192.0.2.0"), Some(0));
        assert_eq!(get(&t, "192.0.3.0"), None);
        assert_eq!(LpmTable::<u32>::build(Vec::new()).get(7), None);
        assert_eq!(t.intervals(), 3);
    }

    #[test]
    fn agrees_with_a_naive_scan_on_generated_prefixes() {
        // A fixed-seed xorshift so the case is reproducible.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut spans = Vec::new();
        for value in 0..400 {
            let len = (next() % 25) as u8 + 8;
            // Cluster the prefixes in a small space so that they nest.
            let base = ((next() as u32) & 0x00FF_FFFF) | 0x0A00_0000;
            let first = base & mask_v4(len);
            if spans
                .iter()
                .any(|s: &Span<u32>| s.first == first && s.len == len)
            {
                continue;
            }
            spans.push(Span {
                first,
                last: first | !mask_v4(len),
                len,
                value,
            });
        }
        let t = LpmTable::build(spans.clone());
        for _ in 0..20_000 {
            let key = ((next() as u32) & 0x01FF_FFFF) | 0x0A00_0000;
            assert_eq!(t.get(key), naive(&spans, key), "{key:#x}");
        }
        for s in &spans {
            for key in [s.first, s.last] {
                assert_eq!(t.get(key), naive(&spans, key));
            }
        }
    }
}
