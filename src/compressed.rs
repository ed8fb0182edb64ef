//! Compressed inputs: a stream whose first bytes say gzip, bzip2, zstd or
//! xz is decompressed as it is read; anything else passes through as it
//! is. RIPE Atlas daily dumps come as `.bz2`, M-Lab archives and many
//! mirrors as `.gz`, `.zst` or `.xz`: `analyze` reads them directly, from
//! a file or standard input, without a temporary copy.
//!
//! **Sniffing, not names.** The format is told by its magic bytes (gzip
//! `1f 8b`, bzip2 `BZh`, zstd `28 b5 2f fd`, xz `fd 37 7a 58 5a 00`), so a
//! pipe or a misnamed file works; the first bytes read are put back in
//! front of the stream. Concatenated members (what `pigz`, `pbzip2`,
//! `lbzip2` and `zstd -T` write) are read to the end.
//!
//! **Damage** is a read error that names the format and how far the
//! decompressed data went ("the bzip2 data is damaged after 1048576
//! decompressed bytes: ..."): the records before it are analysed and the
//! caller reports where the input stopped.
//!
//! Decoders: `flate2` (gzip), `bzip2` with its pure-Rust `libbz2-rs-sys`
//! back end, `zstd` and `liblzma` (xz), all streaming with bounded
//! buffers. gzip, zstd and xz decompress on the reading thread. bzip2, the
//! slowest to decode and the format of the largest dumps, decodes its
//! blocks on as many threads as the caller allows ([`bzip2_parallel`]),
//! unless only one is allowed or the whole input is small
//! ([`PARALLEL_BZIP2_FROM`]); the output is the same either way.

mod bzip2_parallel;

pub use bzip2_parallel::{Bzip2Error, ParallelBzip2};

use std::io::{self, BufRead, BufReader, Read};

/// bzip2 input shorter than this (compressed) is decoded on the reading
/// thread: about two blocks of text at `-9`, too little to share.
pub const PARALLEL_BZIP2_FROM: usize = 256 << 10;

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed (or not in a format known here).
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// bzip2.
    Bzip2,
    /// Zstandard (RFC 8878).
    Zstd,
    /// xz (LZMA2).
    Xz,
}

impl Compression {
    /// The most bytes [`Compression::sniff`] looks at.
    pub const MAGIC_LEN: usize = 6;

    /// The format the first bytes of a stream say (fewer than
    /// [`Compression::MAGIC_LEN`] bytes at the end of a short stream are
    /// fine).
    #[must_use]
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Self::Bzip2
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Self::Xz
        } else {
            Self::None
        }
    }

    /// Its name in messages (`bzip2`); `none` when not compressed.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Bzip2 => "bzip2",
            Self::Zstd => "zstd",
            Self::Xz => "xz",
        }
    }
}

/// `input`, decompressed when its first bytes say it is compressed, as a
/// buffered reader of `capacity` bytes; and what it was. bzip2 is decoded
/// on up to `threads` threads.
///
/// # Errors
/// Reading the first bytes failed, or a decoder could not be set up.
pub fn decoded(
    mut input: Box<dyn Read + Send>,
    capacity: usize,
    threads: usize,
) -> io::Result<(Compression, Box<dyn BufRead + Send>)> {
    let mut head = Vec::with_capacity(Compression::MAGIC_LEN);
    while head.len() < Compression::MAGIC_LEN {
        let mut byte = [0u8; Compression::MAGIC_LEN];
        let want = Compression::MAGIC_LEN - head.len();
        match input.read(&mut byte[..want]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&byte[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = Compression::sniff(&head);
    if compression == Compression::Bzip2 && threads > 1 {
        // Read ahead to tell a small input from a large one.
        read_up_to(&mut input, &mut head, PARALLEL_BZIP2_FROM)?;
    }
    let parallel = head.len() >= PARALLEL_BZIP2_FROM;
    let whole = io::Cursor::new(head).chain(input);
    let decoder: Box<dyn Read + Send> = match compression {
        Compression::None => {
            return Ok((
                compression,
                Box::new(BufReader::with_capacity(capacity, whole)),
            ))
        }
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Bzip2 if parallel => Box::new(ParallelBzip2::new(whole, threads)?),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole)?),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(whole)),
    };
    let counted = Damage {
        inner: decoder,
        compression,
        produced: 0,
    };
    Ok((
        compression,
        Box::new(BufReader::with_capacity(capacity, counted)),
    ))
}

/// Reads from `input` onto `head` until it holds `want` bytes or the input
/// ends.
fn read_up_to(input: &mut dyn Read, head: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let mut chunk = vec![0u8; 1 << 16];
    while head.len() < want {
        let room = (want - head.len()).min(chunk.len());
        match input.read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A decoder whose errors say what was being decompressed and how far it
/// got.
struct Damage {
    inner: Box<dyn Read + Send>,
    compression: Compression,
    produced: u64,
}

impl Read for Damage {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.produced += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the {} data is damaged after {} decompressed bytes: {e}",
                    self.compression.name(),
                    self.produced
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"{\"a\": 1}\n{\"b\": 2}\n";

    fn read_all(bytes: Vec<u8>) -> (Compression, io::Result<Vec<u8>>) {
        let (c, mut r) = decoded(Box::new(io::Cursor::new(bytes)), 64, 2).unwrap();
        let mut out = Vec::new();
        let res = r.read_to_end(&mut out).map(|_| out);
        (c, res)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_format_is_told_by_its_first_bytes_and_read_whole() {
        let zstd = zstd::encode_all(TEXT, 3).unwrap();
        for (bytes, want) in [
            (TEXT.to_vec(), Compression::None),
            (gzip(TEXT), Compression::Gzip),
            (bzip2(TEXT), Compression::Bzip2),
            (zstd, Compression::Zstd),
            (xz(TEXT), Compression::Xz),
        ] {
            let (c, out) = read_all(bytes);
            assert_eq!(c, want);
            assert_eq!(out.unwrap(), TEXT, "{}", want.name());
        }
        // Short and empty streams pass through.
        assert_eq!(read_all(b"{}".to_vec()).1.unwrap(), b"{}");
        assert_eq!(read_all(Vec::new()).0, Compression::None);
        // "BZ" followed by no block size is text.
        assert_eq!(Compression::sniff(b"BZhx"), Compression::None);
    }

    #[test]
    fn concatenated_members_are_read_to_the_end() {
        for (one, two) in [
            (gzip(b"first\n"), gzip(b"second\n")),
            (bzip2(b"first\n"), bzip2(b"second\n")),
            (
                zstd::encode_all(&b"first\n"[..], 1).unwrap(),
                zstd::encode_all(&b"second\n"[..], 1).unwrap(),
            ),
            (xz(b"first\n"), xz(b"second\n")),
        ] {
            let (c, out) = read_all([one, two].concat());
            assert_eq!(out.unwrap(), b"first\nsecond\n", "{}", c.name());
        }
    }

    #[test]
    fn damage_is_an_error_naming_the_format_and_how_far_it_got() {
        let long: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{{\"n\": {i}}}\n").into_bytes())
            .collect();
        for (mut bytes, name) in [
            (gzip(&long), "gzip"),
            (bzip2(&long), "bzip2"),
            (zstd::encode_all(&long[..], 3).unwrap(), "zstd"),
            (xz(&long), "xz"),
        ] {
            // Cut in the middle.
            bytes.truncate(bytes.len() / 2);
            let (_, out) = read_all(bytes);
            let e = out.unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("the {name} data is damaged after ")),
                "{e}"
            );
        }
    }
}
