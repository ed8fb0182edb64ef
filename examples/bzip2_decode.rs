//! Decodes a compressed file to standard output the way `analyze` reads
//! its input (`transitwatch::compressed::decoded`): what
//! `benches/compressed_input.sh` times to compare the serial bzip2 decoder
//! (`--threads 1`) with the block-parallel one.
//!
//! Usage: `bzip2_decode [--threads N] FILE` (N: 0, the default, is one
//! thread per available core).

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut threads = 0;
    let mut path = None;
    while let Some(arg) = args.next() {
        if arg == "--threads" {
            match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => threads = n,
                None => return usage(),
            }
        } else if path.is_none() {
            path = Some(arg);
        } else {
            return usage();
        }
    }
    let Some(path) = path else {
        return usage();
    };
    if threads == 0 {
        threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    }
    let run = || -> std::io::Result<u64> {
        let file = std::fs::File::open(&path)?;
        let (_, mut reader) = transitwatch::compressed::decoded(Box::new(file), 1 << 18, threads)?;
        let mut out = std::io::stdout().lock();
        let n = std::io::copy(&mut reader, &mut out)?;
        out.flush()?;
        Ok(n)
    };
    match run() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bzip2_decode: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: bzip2_decode [--threads N] FILE");
    ExitCode::from(2)
}
