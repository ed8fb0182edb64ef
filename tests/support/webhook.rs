//! The webhook receiver of `tests/tools/webhook_receiver.py`, on this
//! host's loopback or at the lab's vantage.
//!
//! It appends each POST it answers (path, headers, body, the status it
//! answered, whether an HMAC signature was valid) as one JSON line to
//! `DIR/NAME.jsonl`; a receiver started again under the same name appends
//! to the same file. The process is a `Service`, killed on drop (the
//! receiver "down"), also when the test panics.

use super::services::{wait_for, Service};
use super::{root, Lab};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A running webhook receiver; killed on drop.
pub struct Receiver {
    service: Service,
    port: u16,
    out: PathBuf,
}

impl Receiver {
    /// A receiver on this host listening on `listen` (`127.0.0.1:0` picks a
    /// free port), with more receiver arguments in `extra` (`--secret S`,
    /// `--status 503,200`, `--tls CERT KEY`).
    pub fn local(dir: &Path, name: &str, listen: &str, extra: &[&str]) -> Receiver {
        Receiver::launch(Command::new("python3"), dir, name, listen, extra)
    }

    /// A receiver at the lab's vantage listening on `listen`.
    pub fn in_lab(lab: &Lab, dir: &Path, name: &str, listen: &str, extra: &[&str]) -> Receiver {
        Receiver::launch(lab.command("v", "python3"), dir, name, listen, extra)
    }

    fn launch(
        mut python: Command,
        dir: &Path,
        name: &str,
        listen: &str,
        extra: &[&str],
    ) -> Receiver {
        let out = dir.join(format!("{name}.jsonl"));
        let port_file = dir.join(format!("{name}.port"));
        // Written once the socket is bound: its presence means "listening".
        let _ = std::fs::remove_file(&port_file);
        python
            .arg(root().join("tests/tools/webhook_receiver.py"))
            .args(["--listen", listen, "--out"])
            .arg(&out)
            .arg("--port-file")
            .arg(&port_file)
            .args(extra);
        let service = Service::spawn(name, python, dir);
        let port = wait_for(
            &format!("the webhook receiver {name} to listen"),
            Duration::from_secs(20),
            || {
                service.assert_running();
                let text = std::fs::read_to_string(&port_file).ok()?;
                Some(text.trim().parse().expect("a port number"))
            },
            || service.log_tail(),
        );
        Receiver { service, port, out }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The file the posts go to.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Every post received so far (by any receiver with this file).
    pub fn posts(&self) -> Vec<Value> {
        posts(&self.out)
    }

    /// The receiver's process (its log, whether it runs).
    pub fn service(&self) -> &Service {
        &self.service
    }
}

/// Every post recorded in a receiver's file, also after the receiver
/// stopped; none if it does not exist yet.
pub fn posts(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad line {l}: {e}", file.display()))
        })
        .collect()
}

/// The `X-Transitwatch-Notification-Id` header of each post.
pub fn notification_ids(posts: &[Value]) -> Vec<&str> {
    posts
        .iter()
        .map(|p| {
            p["headers"]["x-transitwatch-notification-id"]
                .as_str()
                .unwrap_or_else(|| panic!("no notification id: {p}"))
        })
        .collect()
}
