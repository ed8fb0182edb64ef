//! Reading the files the program is told to read, bounded: every path a
//! configuration or a command line names goes through here (a leaf).
//!
//! A path is checked before a byte of it is read: it must name a regular
//! file (not a directory, a FIFO, a socket or a device such as `/dev/zero`
//! or `/dev/urandom`) no larger than the maximum of its [`FileKind`]. The
//! read itself is capped at that maximum plus one byte, so a file that grows
//! while it is read (or lies about its size) is still refused instead of
//! filling memory. Streams ([`open_stream`]) may also be FIFOs or sockets
//! (a pipe into `analyze`); their reader bounds each record instead.
//!
//! The maxima, per kind:
//!
//! | kind | maximum | why |
//! |---|---|---|
//! | configuration file | 1 MiB | a few hundred targets take tens of KiB |
//! | GeoIP database (MMDB) | 1 GiB | GeoLite2 City is ~70 MB, DB-IP City ~130 MB |
//! | overrides CSV | 64 MiB | a prefix per line: over a million lines |
//! | webhook secret file | 64 KiB | a key, one line |
//! | CA certificate file | 4 MiB | the whole Mozilla bundle is ~220 KB |
//! | RIPE Atlas probe metadata | 256 MiB | every Atlas probe ever is ~50 MB of JSON |
//! | geofeed CSV (RFC 8805) | 64 MiB | the largest published feeds are a few MB |
//! | PeeringDB dump (JSON) | 512 MiB | a full dump of every object is ~150 MB |
//! | operator table (`[dependency] operators`) | 4 MiB | the shipped table is ~5 KB; every AS allocated is ~120,000 lines |

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a file is for; decides its maximum size and how errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// The TOML configuration file.
    Config,
    /// A MaxMind DB (GeoIP database).
    GeoIpDatabase,
    /// A geolocation overrides CSV (also `geo build --csv`).
    Overrides,
    /// A webhook's `secret_file`.
    WebhookSecret,
    /// A webhook's `ca_file` (PEM certificates).
    CaCertificates,
    /// RIPE Atlas probe metadata (`analyze --probes`).
    ProbeMetadata,
    /// Traces to import (`analyze --input`): streamed, no total maximum.
    TraceInput,
    /// A state file the daemon wrote itself (`paths.json`, `alerts.json`).
    StateFile,
    /// An RFC 8805 geofeed CSV (`[geoip] geofeeds`).
    Geofeed,
    /// A PeeringDB dump (`[geoip] peeringdb`).
    PeeringDb,
    /// Operator rules for location hints in host names (`hostname_rules`).
    HostnameRules,
    /// A deployment's operator table (`[dependency] operators`).
    Operators,
    /// The HTTP endpoint's web configuration (`[metrics] web_config_file`).
    WebConfig,
    /// PEM certificates of the web configuration (server chain, client CAs).
    TlsCertificates,
    /// The PEM private key of the web configuration.
    TlsKey,
}

impl FileKind {
    /// The largest file of this kind that is read (bytes); `None` for
    /// streamed kinds, whose readers bound each record instead.
    #[must_use]
    pub const fn max_bytes(self) -> Option<u64> {
        match self {
            Self::Config => Some(1 << 20),
            Self::GeoIpDatabase => Some(1 << 30),
            Self::Overrides => Some(64 << 20),
            Self::WebhookSecret => Some(64 << 10),
            Self::CaCertificates => Some(4 << 20),
            Self::ProbeMetadata => Some(256 << 20),
            Self::TraceInput => None,
            Self::StateFile => Some(256 << 20),
            Self::Geofeed => Some(64 << 20),
            Self::PeeringDb => Some(512 << 20),
            Self::HostnameRules => Some(4 << 20),
            Self::Operators => Some(4 << 20),
            Self::WebConfig => Some(1 << 20),
            Self::TlsCertificates => Some(4 << 20),
            Self::TlsKey => Some(64 << 10),
        }
    }

    /// How messages name a file of this kind.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Config => "configuration file",
            Self::GeoIpDatabase => "GeoIP database",
            Self::Overrides => "overrides CSV",
            Self::WebhookSecret => "webhook secret file",
            Self::CaCertificates => "CA certificate file",
            Self::ProbeMetadata => "probe metadata file",
            Self::TraceInput => "trace input",
            Self::StateFile => "state file",
            Self::Geofeed => "geofeed CSV",
            Self::PeeringDb => "PeeringDB dump",
            Self::HostnameRules => "host name rules file",
            Self::Operators => "operator table",
            Self::WebConfig => "web configuration file",
            Self::TlsCertificates => "TLS certificate file",
            Self::TlsKey => "TLS key file",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a file was not read. The `Display` form is one line naming the file
/// and its kind: `PATH: WHY`.
#[derive(Debug, thiserror::Error)]
pub enum InputFileError {
    /// The operating system refused (missing, no permission, ...).
    #[error("{}: cannot read the {kind}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What it is for.
        kind: FileKind,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Not a regular file (a directory, a device, a FIFO, ...).
    #[error("{}: the {kind} is {what}, not a regular file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is for.
        kind: FileKind,
        /// What it is instead (`a directory`, `a character device`, ...).
        what: &'static str,
    },
    /// Larger than the maximum of its kind.
    #[error(
        "{}: the {kind} is {}, over its limit of {}",
        path.display(),
        size_text(*.size, *.at_least),
        bytes_text(*.limit)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What it is for.
        kind: FileKind,
        /// Its size (or how much of it was read before giving up).
        size: u64,
        /// Whether `size` is only what was read (the file grew, or its
        /// size was not what its metadata said).
        at_least: bool,
        /// The maximum of its kind.
        limit: u64,
    },
    /// Not UTF-8 text where text is expected.
    #[error("{}: the {kind} is not UTF-8 text: {source}", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
        /// What it is for.
        kind: FileKind,
        /// Where the first invalid byte is.
        #[source]
        source: std::str::Utf8Error,
    },
}

impl InputFileError {
    /// The file the error is about.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::NotRegular { path, .. }
            | Self::TooLarge { path, .. }
            | Self::NotText { path, .. } => path,
        }
    }
}

fn size_text(size: u64, at_least: bool) -> String {
    if at_least {
        format!("more than {}", bytes_text(size))
    } else {
        bytes_text(size)
    }
}

/// `N bytes`, with a binary-unit reading for large sizes.
fn bytes_text(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in UNITS {
        if bytes >= 1 << shift {
            let whole = bytes >> shift;
            return if bytes.is_multiple_of(1 << shift) {
                format!("{whole} {unit}")
            } else {
                format!("{bytes} bytes (over {whole} {unit})")
            };
        }
    }
    format!("{bytes} bytes")
}

/// What a non-regular file is, for messages; `None` for a regular file.
fn not_regular(meta: &Metadata, streams_allowed: bool) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_fifo() {
        (!streams_allowed).then_some("a FIFO (named pipe)")
    } else if t.is_socket() {
        (!streams_allowed).then_some("a socket")
    } else {
        Some("not a file")
    }
}

/// Open `path` for reading after checking what it is; the returned file is
/// checked again (the path may have been swapped between the two looks).
fn open_checked(
    path: &Path,
    kind: FileKind,
    streams_allowed: bool,
) -> Result<File, InputFileError> {
    let io = |source| InputFileError::Io {
        path: path.to_path_buf(),
        kind,
        source,
    };
    let check = |meta: &Metadata| -> Result<(), InputFileError> {
        if let Some(what) = not_regular(meta, streams_allowed) {
            return Err(InputFileError::NotRegular {
                path: path.to_path_buf(),
                kind,
                what,
            });
        }
        match kind.max_bytes() {
            Some(limit) if meta.is_file() && meta.len() > limit => Err(InputFileError::TooLarge {
                path: path.to_path_buf(),
                kind,
                size: meta.len(),
                at_least: false,
                limit,
            }),
            _ => Ok(()),
        }
    };
    check(&std::fs::metadata(path).map_err(io)?)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    if !streams_allowed {
        // Opening a FIFO that replaced the file after the check above would
        // otherwise wait for a writer; non-blocking it opens at once and
        // the check below refuses it. Regular files ignore the flag.
        options.custom_flags(O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    check(&file.metadata().map_err(io)?)?;
    Ok(file)
}

/// `O_NONBLOCK` of Linux (the same on every architecture it runs on here).
const O_NONBLOCK: i32 = 0o4000;

/// The bytes of the regular file at `path`, at most `kind`'s maximum.
///
/// # Errors
/// [`InputFileError`] naming the file: it cannot be opened or read, is not
/// a regular file, or is larger than `kind` allows (also when it grows past
/// the maximum while being read).
pub fn read(path: &Path, kind: FileKind) -> Result<Vec<u8>, InputFileError> {
    let file = open_checked(path, kind, false)?;
    let limit = kind.max_bytes().unwrap_or(u64::MAX);
    let expected = file.metadata().map_or(0, |m| m.len()).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| InputFileError::Io {
            path: path.to_path_buf(),
            kind,
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(InputFileError::TooLarge {
            path: path.to_path_buf(),
            kind,
            size: limit,
            at_least: true,
            limit,
        });
    }
    Ok(bytes)
}

/// [`read`], as UTF-8 text.
///
/// # Errors
/// As [`read`], and [`InputFileError::NotText`] when the bytes are not UTF-8.
pub fn read_to_string(path: &Path, kind: FileKind) -> Result<String, InputFileError> {
    String::from_utf8(read(path, kind)?).map_err(|e| InputFileError::NotText {
        path: path.to_path_buf(),
        kind,
        source: e.utf8_error(),
    })
}

/// Open `path` to be streamed: a regular file, a FIFO or a socket (a pipe
/// from another program); directories and devices are refused. The reader
/// must bound what it keeps in memory (per record).
///
/// # Errors
/// [`InputFileError`] naming the file.
pub fn open_stream(path: &Path, kind: FileKind) -> Result<File, InputFileError> {
    open_checked(path, kind, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_within_the_limit_are_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(
            read_to_string(&path, FileKind::WebhookSecret).unwrap(),
            "s3cret\n"
        );
        let exact = vec![b'x'; 64 << 10];
        std::fs::write(&path, &exact).unwrap();
        assert_eq!(read(&path, FileKind::WebhookSecret).unwrap(), exact);
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.mmdb");
        // Sparse: 100 GiB of nothing on disk.
        File::create(&path).unwrap().set_len(100 << 30).unwrap();
        let e = read(&path, FileKind::GeoIpDatabase).unwrap_err();
        assert!(matches!(e, InputFileError::TooLarge { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "{}: the GeoIP database is 100 GiB, over its limit of 1 GiB",
                path.display()
            )
        );
        let secret = dir.path().join("big.secret");
        std::fs::write(&secret, vec![b'x'; (64 << 10) + 1]).unwrap();
        let e = read(&secret, FileKind::WebhookSecret).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("is 65537 bytes (over 64 KiB), over its limit of 64 KiB"),
            "{e}"
        );
    }

    #[test]
    fn devices_directories_and_fifos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (path, what) in [
            (Path::new("/dev/zero"), "a character device"),
            (Path::new("/dev/urandom"), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let e = read(path, FileKind::Overrides).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "{}: the overrides CSV is {what}, not a regular file",
                    path.display()
                )
            );
            assert!(open_stream(path, FileKind::TraceInput).is_err());
        }
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let e = read(&fifo, FileKind::Config).unwrap_err();
            assert!(e.to_string().contains("a FIFO (named pipe)"), "{e}");
        }
    }

    #[test]
    fn missing_files_and_non_text_name_the_file_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        let e = read_to_string(&path, FileKind::Config).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "{}: cannot read the configuration file: ",
                path.display()
            )),
            "{e}"
        );
        assert_eq!(e.path(), path);
        std::fs::write(&path, [0xff, 0xfe, b'a']).unwrap();
        let e = read_to_string(&path, FileKind::Config).unwrap_err();
        assert!(e.to_string().contains("is not UTF-8 text"), "{e}");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes_text(12), "12 bytes");
        assert_eq!(bytes_text(1 << 20), "1 MiB");
        assert_eq!(bytes_text((1 << 20) + 1), "1048577 bytes (over 1 MiB)");
        assert_eq!(size_text(1 << 30, true), "more than 1 GiB");
    }
}
