//! A real browser for tests: headless Chromium (Debian's `chromium`)
//! driven over the DevTools protocol on `--remote-debugging-pipe`, always
//! inside a network namespace, never in this host's.
//!
//! Chromium reads protocol messages from its fd 3 and writes them to its fd
//! 4, each a JSON object ended by a NUL byte. The browser is started as
//! `ip netns exec NS sh -c 'exec "$@" 3<&0 4>&1 0</dev/null 1>&2' sh
//! chromium ...`: the test's pipes are the shell's stdin and stdout and the
//! shell moves them to fds 3 and 4 before it becomes Chromium, so no
//! `unsafe` `pre_exec` is needed (the crate denies `unsafe_code`), and
//! nothing can clash with pipe ends that happen to be fds 3 or 4 already.
//!
//! Where Chromium runs is the caller's choice between two namespaces, and
//! [`Browser::launch`] refuses any command that is not `ip netns exec`:
//! [`IsolatedNetns`], a fresh namespace with nothing but `lo` (for a page
//! read from a file), or a lab node (`Lab::command("v", "sh")`, for a page
//! served at the vantage), whose only links lead to other lab namespaces.
//! Either way no packet Chromium sends on its own (Google's services,
//! component updates) can leave this machine; the flags below ask it not to
//! try, and `--host-resolver-rules` makes every name fail to resolve.
//!
//! [`Page`] is one tab: every URL it requested (`Network.requestWillBeSent`),
//! every console error or warning, exception, log error and failed load,
//! JavaScript evaluation, a full-page PNG screenshot and an A4 PDF print.
//! Every read from the browser has a deadline, so a hung browser fails the
//! test instead of hanging it; the browser is closed (then killed, with its
//! process group) on drop.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Deadline of one protocol call (a screenshot or a PDF of a long page on a
/// busy two-core machine takes a few seconds; this is a hang guard).
const CALL: Duration = Duration::from_secs(60);

/// Deadline of a page's load event after `Page.navigate`.
const LOAD: Duration = Duration::from_secs(60);

/// How long events are still collected after the load event: the favicon
/// request, late console messages (Chromium asks for a favicon ~0.1 s
/// after the load event).
const SETTLE: Duration = Duration::from_millis(1500);

/// How long a closed browser has to exit before it is killed.
const EXIT: Duration = Duration::from_secs(5);

/// Chromium's flags: headless, no sandbox (tests run as root), a throwaway
/// profile, and everything that makes it talk to the network by itself
/// turned off.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions,PrivacySandboxSettings4",
    "--safebrowsing-disable-auto-update",
    "--metrics-recording-only",
    "--no-pings",
    "--no-service-autorun",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--hide-scrollbars",
    "--lang=en-US",
    "--window-size=1280,900",
    // Every host name fails to resolve; pages are opened by address.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--remote-debugging-pipe",
];

/// Chromium's binary: Debian's real one, not its `/usr/bin/chromium`
/// launcher (which exports Debian's Google API keys and adds flags that
/// allow remote extensions); the launcher or `chromium` on PATH elsewhere.
pub fn chromium() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/lib/chromium/chromium");
    if debian.is_file() {
        return Some(debian);
    }
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| super::have(name))
        .map(PathBuf::from)
}

/// Whether a browser test may run here: root (namespaces), `ip` and
/// Chromium; otherwise a `SKIPPED` line (a failure under
/// `TRANSITWATCH_REQUIRE_LAB=1`) and `false`.
pub fn available(test: &str) -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    if !super::has_cap(CAP_SYS_ADMIN) {
        return !super::skip(
            test,
            "a browser runs in a network namespace of its own (run as root)",
        );
    }
    if chromium().is_none() {
        return !super::skip(
            test,
            "chromium is not installed (scripts/setup.sh installs it)",
        );
    }
    super::have_all(test, &["ip"])
}

/// Where the browser tests leave their screenshots and PDFs for a person to
/// look at: `target/report-browser/` (`$CARGO_TARGET_DIR/report-browser/`
/// when that is set), created.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_relative() {
                super::root().join(t)
            } else {
                t
            }
        })
        .unwrap_or_else(|| super::root().join("target"));
    let dir = target.join("report-browser");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

static NEXT_NETNS: AtomicU32 = AtomicU32::new(0);

/// A network namespace with only `lo` (up): nothing in it reaches any
/// other host. Deleted on drop, after killing what still runs in it.
pub struct IsolatedNetns {
    name: String,
}

impl IsolatedNetns {
    /// `tw-browser-<pid>-<n>`, created with `lo` up.
    pub fn new() -> IsolatedNetns {
        let n = NEXT_NETNS.fetch_add(1, Ordering::SeqCst);
        let netns = IsolatedNetns {
            name: format!("tw-browser-{}-{n}", std::process::id()),
        };
        run(Command::new("ip").args(["netns", "add", &netns.name]));
        run(Command::new("ip").args(["-n", &netns.name, "link", "set", "lo", "up"]));
        // Nothing but the loopback device, and no route but its own.
        let links = output(Command::new("ip").args(["-n", &netns.name, "-o", "link", "show"]));
        assert_eq!(
            links.lines().count(),
            1,
            "{}: more than lo: {links}",
            netns.name
        );
        netns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME program`.
    pub fn command(&self, program: impl AsRef<Path>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program.as_ref());
        c
    }
}

impl Drop for IsolatedNetns {
    fn drop(&mut self) {
        // Only processes of this test run here (its browser's); a browser
        // process that outlived its kill must not keep the namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("run a command");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn output(command: &mut Command) -> String {
    let out = command.output().expect("run a command");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A message from the browser, or why none can come any more.
type Incoming = Result<Value, String>;

/// Headless Chromium on a DevTools pipe; closed and killed on drop.
pub struct Browser {
    child: Child,
    to_browser: ChildStdin,
    from_browser: Receiver<Incoming>,
    next_id: u64,
    /// Events received so far (all sessions), in order.
    events: Vec<Value>,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start Chromium through `netns_sh`, an `ip netns exec NS sh` command
    /// (`IsolatedNetns::command("sh")` or `Lab::command(node, "sh")`); its
    /// log goes to `DIR/chromium.log`. Panics for any other command: the
    /// browser never runs in this host's namespace.
    pub fn launch(mut netns_sh: Command, dir: &Path) -> Browser {
        let args: Vec<String> = netns_sh
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            netns_sh.get_program() == "ip"
                && args.len() == 4
                && args[..2] == ["netns", "exec"]
                && args[3] == "sh",
            "the browser runs only through `ip netns exec NS sh`, not {netns_sh:?}"
        );
        let chromium = chromium().expect("chromium is installed");
        let profile = tempfile::Builder::new()
            .prefix("chromium-profile")
            .tempdir_in(dir)
            .expect("a profile directory");
        let log = dir.join("chromium.log");
        let log_file =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        netns_sh
            .arg("-c")
            .arg(r#"exec "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg("sh")
            .arg(&chromium)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            // A clean environment: no API keys, caches and NSS database in
            // the throwaway profile instead of root's home.
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", profile.path())
            .env("XDG_CONFIG_HOME", profile.path().join(".config"))
            .env("XDG_CACHE_HOME", profile.path().join(".cache"))
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            // Its own process group (`ip` and `sh` exec themselves away,
            // so the group is Chromium's), killed as a whole on drop.
            .process_group(0);
        let mut child = netns_sh
            .spawn()
            .unwrap_or_else(|e| panic!("starting chromium: {e}"));
        let to_browser = child.stdin.take().expect("the browser's fd 3");
        let from_browser = child.stdout.take().expect("the browser's fd 4");
        // Reads block with no timeout of their own; a thread does them and
        // hands each message over a channel, so that every wait for the
        // browser is a `recv_timeout` with a deadline. It ends when the
        // browser closes its end (exit or kill); nothing joins it.
        let (tx, rx) = mpsc::channel::<Incoming>();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_browser);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) => {
                        let _ = tx.send(Err("the browser closed its pipe".into()));
                        return;
                    }
                    Ok(_) => {
                        if message.last() == Some(&0) {
                            message.pop();
                        }
                        let parsed = serde_json::from_slice(&message).map_err(|e| {
                            format!("not JSON ({e}): {}", String::from_utf8_lossy(&message))
                        });
                        if tx.send(parsed).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("reading the browser's pipe: {e}")));
                        return;
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            to_browser,
            from_browser: rx,
            next_id: 0,
            events: Vec::new(),
            log,
            _profile: profile,
        };
        let version = browser.call(None, "Browser.getVersion", json!({}));
        eprintln!(
            "browser: {} (protocol {})",
            version["product"].as_str().unwrap_or("?"),
            version["protocolVersion"].as_str().unwrap_or("?")
        );
        browser
    }

    /// The last lines of Chromium's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("--- chromium log ({})\n{tail}", self.log.display())
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("a protocol message");
        bytes.push(0);
        if let Err(e) = self.to_browser.write_all(&bytes) {
            panic!("sending {method} to the browser: {e}\n{}", self.log_tail());
        }
        self.next_id
    }

    /// The next message, by `deadline`.
    fn receive(&mut self, deadline: Instant, waiting_for: &str) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.from_browser.recv_timeout(left) {
            Ok(Ok(message)) => Some(message),
            Ok(Err(why)) => panic!("waiting for {waiting_for}: {why}\n{}", self.log_tail()),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!(
                "waiting for {waiting_for}: the browser's reader ended\n{}",
                self.log_tail()
            ),
        }
    }

    /// Call `method` and return its result (events that come meanwhile
    /// are kept); a protocol error or the deadline fails the test.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.send(session, method, params);
        let deadline = Instant::now() + CALL;
        loop {
            let Some(message) = self.receive(deadline, method) else {
                panic!("{method}: no answer within {CALL:?}\n{}", self.log_tail());
            };
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    panic!("{method}: {error}");
                }
                return message["result"].clone();
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    /// Keep events until `deadline`, or until `until` holds for one of them
    /// (`true` then; `false` at the deadline).
    fn collect(&mut self, deadline: Instant, until: impl Fn(&Value) -> bool) -> bool {
        while let Some(message) = self.receive(deadline, "browser events") {
            if message.get("method").is_some() {
                let done = until(&message);
                self.events.push(message);
                if done {
                    return true;
                }
            }
        }
        false
    }

    /// Open `url` in a new tab and wait for its load event (and a moment
    /// after it, for what a page does once loaded).
    pub fn open(&mut self, url: &str) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}))
            ["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let session = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        )["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        for domain in ["Network", "Runtime", "Log", "Page"] {
            self.call(Some(&session), &format!("{domain}.enable"), json!({}));
        }
        let first_event = self.events.len();
        let navigated = self.call(Some(&session), "Page.navigate", json!({"url": url}));
        if let Some(error) = navigated.get("errorText") {
            panic!("opening {url}: {error}\n{}", self.log_tail());
        }
        let loaded = |m: &Value| m["method"] == "Page.loadEventFired" && m["sessionId"] == session;
        let already = self.events[first_event..].iter().any(loaded);
        if !already && !self.collect(Instant::now() + LOAD, loaded) {
            panic!("{url}: no load event within {LOAD:?}\n{}", self.log_tail());
        }
        self.collect(Instant::now() + SETTLE, |_| false);
        Page {
            browser: self,
            session,
            target,
            url: url.to_string(),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pid = self.child.id();
        // Ask politely; a browser that does not answer is killed below.
        let mut close =
            serde_json::to_vec(&json!({"id": 0, "method": "Browser.close"})).unwrap_or_default();
        close.push(0);
        let _ = self.to_browser.write_all(&close);
        let deadline = Instant::now() + EXIT;
        while Instant::now() < deadline && !exited(pid) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The whole group (renderer, GPU and utility processes), by the id
        // of the group this test started; the leader is not reaped yet, so
        // the id cannot have been reused.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` has exited (a zombie not yet reaped, or gone).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// One tab of the browser, after its page loaded.
pub struct Page<'b> {
    browser: &'b mut Browser,
    session: String,
    target: String,
    url: String,
}

impl Page<'_> {
    /// The URL the tab was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn events(&self) -> impl Iterator<Item = &Value> {
        self.browser
            .events
            .iter()
            .filter(|m| m["sessionId"] == self.session.as_str())
    }

    /// Every URL the page requested, in order (the page itself included).
    pub fn requests(&self) -> Vec<String> {
        self.events()
            .filter(|m| m["method"] == "Network.requestWillBeSent")
            .map(|m| {
                m["params"]["request"]["url"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    }

    /// Every console error or warning, uncaught exception, log entry of
    /// level error and failed load, as text.
    pub fn problems(&self) -> Vec<String> {
        self.events()
            .filter_map(|m| {
                let p = &m["params"];
                match m["method"].as_str()? {
                    "Runtime.consoleAPICalled" => {
                        let kind = p["type"].as_str().unwrap_or("?");
                        matches!(kind, "error" | "warning" | "assert").then(|| {
                            let args: Vec<String> = p["args"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|a| {
                                    a["value"]
                                        .as_str()
                                        .map(str::to_string)
                                        .or_else(|| a["description"].as_str().map(str::to_string))
                                        .unwrap_or_else(|| a.to_string())
                                })
                                .collect();
                            format!("console.{kind}: {}", args.join(" "))
                        })
                    }
                    "Runtime.exceptionThrown" => {
                        let d = &p["exceptionDetails"];
                        Some(format!(
                            "exception: {} {}",
                            d["text"].as_str().unwrap_or(""),
                            d["exception"]["description"].as_str().unwrap_or("")
                        ))
                    }
                    "Log.entryAdded" => {
                        let e = &p["entry"];
                        (e["level"] == "error").then(|| {
                            format!(
                                "log ({}): {} {}",
                                e["source"].as_str().unwrap_or("?"),
                                e["text"].as_str().unwrap_or(""),
                                e["url"].as_str().unwrap_or("")
                            )
                        })
                    }
                    "Network.loadingFailed" => Some(format!(
                        "failed load: {} {}",
                        p["errorText"].as_str().unwrap_or(""),
                        p["blockedReason"].as_str().unwrap_or("")
                    )),
                    _ => None,
                }
            })
            .collect()
    }

    /// The value of JavaScript `expression` in the page (`returnByValue`).
    pub fn eval(&mut self, expression: &str) -> Value {
        let answer = self.browser.call(
            Some(&self.session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        if let Some(e) = answer.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        answer["result"]["value"].clone()
    }

    /// The page's visible text (`document.body.innerText`).
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the whole page, beyond the window.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let metrics = self
            .browser
            .call(Some(&self.session), "Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let (width, height) = (
            size["width"].as_f64().unwrap_or(1280.0).ceil(),
            size["height"].as_f64().unwrap_or(900.0).ceil(),
        );
        let shot = self.browser.call(
            Some(&self.session),
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            }),
        );
        base64(shot["data"].as_str().expect("screenshot data"))
    }

    /// The page printed to PDF as the browser's print dialog would: A4,
    /// backgrounds printed, the page's own print styles applied.
    pub fn pdf(&mut self) -> Vec<u8> {
        let print = self.browser.call(
            Some(&self.session),
            "Page.printToPDF",
            json!({
                "paperWidth": 8.27,
                "paperHeight": 11.69,
                "marginTop": 0.4,
                "marginBottom": 0.4,
                "marginLeft": 0.4,
                "marginRight": 0.4,
                "printBackground": true,
            }),
        );
        base64(print["data"].as_str().expect("PDF data"))
    }
}

impl Drop for Page<'_> {
    fn drop(&mut self) {
        // Best effort: the browser is closed with all its tabs anyway.
        let target = self.target.clone();
        self.browser
            .send(None, "Target.closeTarget", json!({"targetId": target}));
    }
}

/// Decode standard base64 (the protocol's binary data), padding optional.
pub fn base64(text: &str) -> Vec<u8> {
    fn value(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {:?}", char::from(c)),
        }
    }
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | (value(*c) << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// The width and height of a PNG (its IHDR chunk).
pub fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG"
    );
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

/// The number of pages of a PDF: its `/Type /Page` objects (not
/// `/Pages`); cross-checked with poppler's `pdfinfo` when it is installed.
pub fn pdf_pages(pdf: &[u8], path: &Path) -> usize {
    assert!(pdf.starts_with(b"%PDF-"), "{}: not a PDF", path.display());
    let mut pages = 0;
    for (at, _) in pdf.windows(5).enumerate().filter(|(_, w)| w == b"/Type") {
        let rest = &pdf[at + 5..];
        let rest = &rest[rest.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
        if rest.starts_with(b"/Page") && !rest[5..].first().is_some_and(u8::is_ascii_alphanumeric) {
            pages += 1;
        }
    }
    if super::have("pdfinfo") {
        let info = output(Command::new("pdfinfo").arg(path));
        let by_poppler: usize = info
            .lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("pdfinfo {}: {info}", path.display()));
        assert_eq!(
            pages,
            by_poppler,
            "{}: /Type /Page objects vs pdfinfo",
            path.display()
        );
    }
    pages
}
