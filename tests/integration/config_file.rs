//! The configuration file: the shipped sample loads, defaults apply, relative
//! paths resolve, and every kind of mistake is reported on one line with the
//! file, position and field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use transitwatch::config::{
    Config, ConfigError, Family, WebhookFormat, DEFAULT_METRICS_LISTEN, DEFAULT_STORE_MAX_AGE,
    DEFAULT_STORE_MAX_SIZE, DEFAULT_STORE_PATH,
};
use transitwatch::model::{Confidence, CountryCode, Protocol};
use transitwatch::units::{parse_duration, parse_size};

const FILE: &str = "/etc/transitwatch/tw.toml";

/// The smallest valid file (three lines).
const VANTAGE: &str = "[vantage]\nname = \"maseru-1\"\ncountry = \"LS\"\n";

fn cc(code: &str) -> CountryCode {
    code.parse().unwrap()
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_str(text, Path::new(FILE))
}

/// Parse `text` expecting an error; check that the message is one line that
/// starts with the file name, and return it.
fn error(text: &str) -> (ConfigError, String) {
    let err = match parse(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(err) => err,
    };
    let message = err.to_string();
    assert!(!message.contains('\n'), "not one line: {message:?}");
    assert!(message.starts_with(FILE), "no file name: {message}");
    (err, message)
}

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/transitwatch.toml")
}

#[test]
fn the_sample_config_loads() {
    let config = Config::load(&sample_path()).unwrap();
    assert_eq!(config.path, sample_path());
    assert_eq!(config.vantage.name, "maseru-1");
    assert_eq!(config.vantage.country, cc("LS"));
    assert_eq!(config.vantage.latitude, Some(-29.31));
    assert_eq!(config.vantage.longitude, Some(27.48));
    assert_eq!(config.policy.home, cc("LS"));
    assert_eq!(
        config.geoip.files,
        vec![
            PathBuf::from("/var/lib/GeoIP/GeoLite2-City.mmdb"),
            PathBuf::from("/var/lib/GeoIP/GeoLite2-ASN.mmdb"),
        ]
    );
    assert_eq!(config.geoip.overrides, None);
    assert_eq!(
        config.metrics.listen,
        "127.0.0.1:19968".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.store.path, PathBuf::from(DEFAULT_STORE_PATH));
    assert!(config.store.path_configured);
    assert_eq!(config.store.max_age, Some(Duration::from_secs(90 * 86_400)));
    assert_eq!(config.store.max_size, Some(1 << 30));
    assert_eq!(config.probe, transitwatch::config::ProbeConfig::default());
    assert!(config.alert.webhooks.is_empty());
    // The sample's [alert] values are the defaults, as it says.
    assert_eq!(config.alert, transitwatch::config::AlertConfig::default());

    let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
    assert!(names.len() >= 5, "{names:?}");
    let gov = &config.targets[0];
    assert_eq!(gov.name, "gov-portal");
    assert_eq!(gov.host, "www.gov.ls");
    assert_eq!(gov.category, "government");
    assert_eq!(gov.protocol, Protocol::Tcp);
    assert_eq!(gov.port, Some(443));
    assert_eq!(gov.family, Family::Auto);
    assert_eq!(gov.allowed_countries, vec![cc("LS")]);
    // Per-hop metrics: on for the portal alone.
    assert!(!config.metrics.per_hop);
    assert!(gov.per_hop);
    assert!(config.targets[1..].iter().all(|t| !t.per_hop));

    let bank = config
        .targets
        .iter()
        .find(|t| t.allowed_countries.len() > 1)
        .expect("a target with more than one allowed country");
    assert_eq!(bank.allowed_countries, vec![cc("LS"), cc("ZA")]);

    // A target without protocol or port inherits [probe].
    let ixp = config
        .targets
        .iter()
        .find(|t| t.name == "ixp-route-server")
        .unwrap();
    assert_eq!(ixp.protocol, Protocol::Icmp);
    assert_eq!(ixp.port, None);
}

#[test]
fn a_minimal_file_gets_every_default() {
    let config = parse(VANTAGE).unwrap();
    assert_eq!(config.policy.home, cc("LS"));
    assert_eq!(config.vantage.latitude, None);
    assert!(config.geoip.files.is_empty());
    assert_eq!(
        config.metrics.listen,
        DEFAULT_METRICS_LISTEN.parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.store.path, PathBuf::from(DEFAULT_STORE_PATH));
    assert!(!config.store.path_configured);
    assert_eq!(config.store.max_age, Some(DEFAULT_STORE_MAX_AGE));
    assert_eq!(config.store.max_size, Some(DEFAULT_STORE_MAX_SIZE));
    assert!(config.targets.is_empty());
    let probe = &config.probe;
    assert_eq!(probe.settings.protocol, Protocol::Icmp);
    assert_eq!(probe.settings.port, None);
    assert_eq!(probe.family, Family::Auto);
    assert_eq!(probe.interval, Duration::from_secs(300));
    assert_eq!(probe.jitter, Duration::from_secs(30));
    assert_eq!(probe.concurrency, 8);
    assert_eq!(probe.settings.probes_per_hop, 3);
    assert_eq!(probe.settings.first_ttl, 1);
    assert_eq!(probe.settings.max_ttl, 30);
    assert_eq!(probe.settings.packet_size, 64);
    assert_eq!(probe.settings.grace, Duration::from_millis(100));
    assert_eq!(probe.settings.deadline, Duration::from_secs(3));
}

#[test]
fn targets_inherit_probe_and_policy_defaults() {
    let text = format!(
        "{VANTAGE}[policy]\nhome = \"ls\"\n[probe]\nprotocol = \"UDP\"\nport = 33434\nfamily = \"ipv4\"\n\
         [[target]]\nname = \"a\"\nhost = \"a.ls\"\n\
         [[target]]\nname = \"b\"\nhost = \"b.ls\"\nprotocol = \"icmp\"\nfamily = \"both\"\n\
         [[target]]\nname = \"c\"\nhost = \"c.ls\"\nprotocol = \"tcp\"\nport = 443\nallowed_countries = [\"za\", \"LS\", \"ZA\"]\n"
    );
    let config = parse(&text).unwrap();
    let [a, b, c] = config.targets.as_slice() else {
        panic!("{:?}", config.targets)
    };
    assert_eq!(
        (a.protocol, a.port, a.family),
        (Protocol::Udp, Some(33434), Family::Ipv4)
    );
    assert_eq!(a.category, "uncategorized");
    assert_eq!(a.allowed_countries, vec![cc("LS")]);
    // ICMP has no port, even when [probe] sets one for udp and tcp.
    assert_eq!(
        (b.protocol, b.port, b.family),
        (Protocol::Icmp, None, Family::Both)
    );
    assert_eq!((c.protocol, c.port), (Protocol::Tcp, Some(443)));
    // Upper-cased and de-duplicated, in file order.
    assert_eq!(c.allowed_countries, vec![cc("ZA"), cc("LS")]);
}

#[test]
fn per_hop_metrics_default_off_follow_metrics_and_are_overridden_per_target() {
    let targets = "[[target]]\nname = \"a\"\nhost = \"a.ls\"\n\
                   [[target]]\nname = \"b\"\nhost = \"b.ls\"\nper_hop = true\n\
                   [[target]]\nname = \"c\"\nhost = \"c.ls\"\nper_hop = false\n";
    let per_hop =
        |config: &Config| -> Vec<bool> { config.targets.iter().map(|t| t.per_hop).collect() };
    let off = parse(&format!("{VANTAGE}{targets}")).unwrap();
    assert!(!off.metrics.per_hop);
    assert_eq!(per_hop(&off), [false, true, false]);
    let on = parse(&format!("{VANTAGE}[metrics]\nper_hop = true\n{targets}")).unwrap();
    assert!(on.metrics.per_hop);
    assert_eq!(per_hop(&on), [true, true, false]);

    let (err, msg) = error(&format!(
        "{VANTAGE}[[target]]\nname = \"a\"\nhost = \"a.ls\"\nper_hop = \"yes\"\n"
    ));
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert!(
        msg.starts_with(&format!(
            "{FILE}:7:11: field `target[0].per_hop`: invalid type"
        )),
        "{msg}"
    );
}

#[test]
fn inline_and_dotted_tables_are_accepted() {
    let text = "vantage = { name = \"m\", country = \"LS\" }\nprobe.interval = \"1m\"\nprobe.jitter = \"10s\"\n\
                target = [{ name = \"x\", host = \"192.0.2.1\" }]\n";
    let config = parse(text).unwrap();
    assert_eq!(config.probe.interval, Duration::from_secs(60));
    assert_eq!(config.targets[0].host, "192.0.2.1");
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tw.toml");
    let text = format!(
        "{VANTAGE}[geoip]\nfiles = [\"GeoLite2-Country.mmdb\", \"/srv/geo/asn.mmdb\"]\noverrides = \"geo/overrides.csv\"\n\
         [store]\npath = \"data/tw.db\"\n"
    );
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.path, path);
    assert_eq!(
        config.geoip.files,
        vec![
            dir.path().join("GeoLite2-Country.mmdb"),
            PathBuf::from("/srv/geo/asn.mmdb"),
        ]
    );
    assert_eq!(
        config.geoip.overrides,
        Some(dir.path().join("geo/overrides.csv"))
    );
    assert_eq!(config.store.path, dir.path().join("data/tw.db"));
}

#[test]
fn webhooks_parse_with_their_format() {
    let text = format!(
        "{VANTAGE}[[alert.webhook]]\nurl = \"http://127.0.0.1:9000/hook\"\n\
         [[alert.webhook]]\nurl = \"https://hooks.example.org/tw\"\nformat = \"json\"\n"
    );
    let config = parse(&text).unwrap();
    let hooks = &config.alert.webhooks;
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0].url, "http://127.0.0.1:9000/hook");
    assert_eq!(hooks[0].format, WebhookFormat::Alertmanager);
    assert_eq!(hooks[1].format, WebhookFormat::Json);

    let (_, msg) = error(&format!("{VANTAGE}[[alert.webhook]]\nurl = \"ftp://x\"\n"));
    assert!(msg.contains(":5:7: field `alert.webhook[0].url`"), "{msg}");
    let (_, msg) = error(&format!(
        "{VANTAGE}[[alert.webhook]]\nurl = \"http://x/\"\nformat = \"slack\"\n"
    ));
    assert!(
        msg.contains(":6:10: field `alert.webhook[0].format`"),
        "{msg}"
    );
    assert!(msg.contains("`slack`"), "{msg}");
    let (_, msg) = error(&format!("{VANTAGE}[[alert.webhook]]\nformat = \"json\"\n"));
    assert!(msg.contains(":4:1: field `alert.webhook[0].url`"), "{msg}");
}

#[test]
fn alert_delivery_settings_have_defaults_and_ranges() {
    let config = parse(VANTAGE).unwrap();
    let a = &config.alert;
    assert_eq!(a.queue_capacity, 1000);
    assert_eq!(a.retry_initial, Duration::from_secs(1));
    assert_eq!(a.retry_max, Duration::from_secs(300));
    assert_eq!(a.max_age, None);
    assert_eq!(a.timeout, Duration::from_secs(10));
    assert_eq!(a.external_url, None);

    let config = parse(&format!(
        "{VANTAGE}[alert]\nqueue_capacity = 5\nretry_initial = \"200ms\"\nretry_max = \"2s\"\n\
         max_age = \"1h\"\ntimeout = \"3s\"\nexternal_url = \"http://tw.example:19968\"\n"
    ))
    .unwrap();
    let a = &config.alert;
    assert_eq!(a.queue_capacity, 5);
    assert_eq!(a.retry_initial, Duration::from_millis(200));
    assert_eq!(a.retry_max, Duration::from_secs(2));
    assert_eq!(a.max_age, Some(Duration::from_secs(3600)));
    assert_eq!(a.timeout, Duration::from_secs(3));
    assert_eq!(a.external_url.as_deref(), Some("http://tw.example:19968"));

    let (_, msg) = error(&format!("{VANTAGE}[alert]\nqueue_capacity = 0\n"));
    assert!(
        msg.contains(":5:18: field `alert.queue_capacity`: 0 is out of range"),
        "{msg}"
    );
    let (_, msg) = error(&format!(
        "{VANTAGE}[alert]\nretry_initial = \"10s\"\nretry_max = \"5s\"\n"
    ));
    assert!(msg.contains(":6:13: field `alert.retry_max`"), "{msg}");
    assert!(
        msg.contains("must not be shorter than retry_initial"),
        "{msg}"
    );
    let (_, msg) = error(&format!("{VANTAGE}[alert]\ntimeout = \"1ms\"\n"));
    assert!(msg.contains(":5:11: field `alert.timeout`"), "{msg}");
    let (_, msg) = error(&format!("{VANTAGE}[alert]\nmax_age = \"soon\"\n"));
    assert!(msg.contains(":5:11: field `alert.max_age`"), "{msg}");
    let (_, msg) = error(&format!("{VANTAGE}[alert]\nexternal_url = \"tw:19968\"\n"));
    assert!(msg.contains(":5:16: field `alert.external_url`"), "{msg}");
    let (_, msg) = error(&format!("{VANTAGE}[alert]\nretries = 3\n"));
    assert!(msg.contains(":5:1: field `alert.retries`"), "{msg}");
}

#[test]
fn webhooks_take_names_secrets_and_certificates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.secret"), "s3cret\n").unwrap();
    std::fs::write(dir.path().join("empty.secret"), "\n").unwrap();
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources/tls");
    let load = |text: &str| {
        let path = dir.path().join("tw.toml");
        std::fs::write(&path, format!("{VANTAGE}{text}")).unwrap();
        Config::load(&path)
    };
    let config = load(&format!(
        "[[alert.webhook]]\nurl = \"http://127.0.0.1:9000/hook\"\nsecret = \"abc\"\n\
         [[alert.webhook]]\nurl = \"https://localhost:9443/\"\nname = \"ops\"\n\
         secret_file = \"hook.secret\"\nca_file = {:?}\n",
        tls.join("ca.pem").to_str().unwrap()
    ))
    .unwrap();
    let hooks = &config.alert.webhooks;
    assert_eq!(hooks[0].name, "127.0.0.1:9000");
    assert_eq!(hooks[0].secret.as_ref().unwrap().expose(), b"abc");
    assert!(hooks[0].ca.is_none());
    assert_eq!(hooks[1].name, "ops");
    assert_eq!(hooks[1].secret.as_ref().unwrap().expose(), b"s3cret");
    assert_eq!(hooks[1].ca.as_ref().unwrap().certs.len(), 1);
    // A secret never shows in debug output.
    assert!(!format!("{config:?}").contains("s3cret"));

    let msg = |text: &str| load(text).unwrap_err().to_string();
    let m = msg(
        "[[alert.webhook]]\nurl = \"http://x/\"\nsecret = \"a\"\nsecret_file = \"hook.secret\"\n",
    );
    assert!(
        m.contains(":7:15: field `alert.webhook[0].secret_file`: set either"),
        "{m}"
    );
    let m = msg("[[alert.webhook]]\nurl = \"http://x/\"\nsecret_file = \"missing.secret\"\n");
    assert!(
        m.contains(":6:15: field `alert.webhook[0].secret_file`: ")
            && m.contains("missing.secret: cannot read the webhook secret file: "),
        "{m}"
    );
    let m = msg("[[alert.webhook]]\nurl = \"http://x/\"\nsecret_file = \"empty.secret\"\n");
    assert!(m.contains("is empty"), "{m}");
    let m = msg("[[alert.webhook]]\nurl = \"http://x/\"\nsecret = \"\"\n");
    assert!(m.contains(":6:10: field `alert.webhook[0].secret`"), "{m}");
    let m = msg("[[alert.webhook]]\nurl = \"http://x/\"\nca_file = \"hook.secret\"\n");
    assert!(
        m.contains("field `alert.webhook[0].ca_file`: `ca_file` applies to https"),
        "{m}"
    );
    let m = msg("[[alert.webhook]]\nurl = \"https://x/\"\nca_file = \"hook.secret\"\n");
    assert!(m.contains(":6:11: field `alert.webhook[0].ca_file`"), "{m}");
    assert!(m.contains("no PEM certificate"), "{m}");
    let m = msg("[[alert.webhook]]\nurl = \"http://user:pw@x/\"\n");
    assert!(m.contains(":5:7: field `alert.webhook[0].url`"), "{m}");
    assert!(m.contains("credentials"), "{m}");
    let m = msg(
        "[[alert.webhook]]\nurl = \"http://x:1/a\"\n[[alert.webhook]]\nurl = \"http://x:1/b\"\n",
    );
    assert!(m.contains(":7:7: field `alert.webhook[1].name`"), "{m}");
    assert!(m.contains("give each webhook its own `name`"), "{m}");
    let m = msg("[[alert.webhook]]\nurl = \"http://x/\"\nname = \"a\"\n[[alert.webhook]]\nurl = \"http://x/\"\nname = \"b\"\n");
    assert!(m.contains(":8:7: field `alert.webhook[1].url`"), "{m}");
}

#[test]
fn a_misspelt_key_names_file_position_and_field() {
    let text = format!("{VANTAGE}\n[probe]\ninterval = \"5m\"\nprotocl = \"udp\"\n");
    let (err, msg) = error(&text);
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert_eq!(err.position(), Some((7, 1)));
    assert_eq!(err.field(), Some("probe.protocl"));
    assert!(
        msg.starts_with(&format!(
            "{FILE}:7:1: field `probe.protocl`: unknown field `protocl`"
        )),
        "{msg}"
    );
    assert!(msg.contains("expected one of"), "{msg}");
}

#[test]
fn a_misspelt_key_in_a_target_names_its_index() {
    let text = format!(
        "{VANTAGE}[[target]]\nname = \"a\"\nhost = \"a.ls\"\n[[target]]\nname = \"b\"\n  hots = \"b.ls\"\n"
    );
    let (err, msg) = error(&text);
    assert_eq!(err.position(), Some((9, 3)));
    assert!(
        msg.starts_with(&format!(
            "{FILE}:9:3: field `target[1].hots`: unknown field `hots`"
        )),
        "{msg}"
    );
}

#[test]
fn an_unknown_table_is_reported() {
    let (err, msg) = error(&format!("{VANTAGE}[probes]\n"));
    assert_eq!(err.position(), Some((4, 2)));
    assert!(
        msg.contains("field `probes`: unknown field `probes`"),
        "{msg}"
    );
}

#[test]
fn a_table_of_the_wrong_shape_names_the_table() {
    // `[target]` where `[[target]]` is meant.
    let (err, msg) = error(&format!("{VANTAGE}[target]\nname = \"a\"\n"));
    assert_eq!(err.position(), Some((4, 1)));
    assert_eq!(err.field(), Some("target"));
    assert!(
        msg.contains("invalid type: map, expected a sequence"),
        "{msg}"
    );
}

#[test]
fn a_wrong_type_names_file_position_and_field() {
    let text = format!("{VANTAGE}[probe]\nconcurrency = \"many\"\n");
    let (err, msg) = error(&text);
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert!(
        msg.starts_with(&format!(
            "{FILE}:5:15: field `probe.concurrency`: invalid type"
        )),
        "{msg}"
    );
    assert!(msg.contains("\"many\""), "{msg}");
}

#[test]
fn a_toml_syntax_error_is_one_line() {
    let (err, msg) = error("[vantage]\nname = \"m\nport = [\n");
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert!(msg.starts_with(&format!("{FILE}:2:")), "{msg}");
}

#[test]
fn a_missing_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: cannot read the configuration file: ",
            path.display()
        )),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}

#[test]
fn an_invalid_vantage_country_is_located() {
    let (err, msg) = error("[vantage]\nname = \"maseru-1\"\ncountry = \"LSO\"\n");
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
    assert!(
        msg.starts_with(&format!(
            "{FILE}:3:11: field `vantage.country`: `LSO` is not an ISO 3166-1 alpha-2 country code"
        )),
        "{msg}"
    );
}

#[test]
fn an_unassigned_country_code_is_rejected() {
    let (_, msg) = error("[vantage]\nname = \"maseru-1\"\ncountry = \"XX\"\n");
    assert!(
        msg.starts_with(&format!(
            "{FILE}:3:11: field `vantage.country`: `XX` is not an assigned ISO 3166-1 alpha-2 country code"
        )),
        "{msg}"
    );
}

#[test]
fn an_invalid_allowed_country_is_located() {
    let text = format!(
        "{VANTAGE}[[target]]\nname = \"a\"\nhost = \"a.ls\"\n[[target]]\nname = \"b\"\nhost = \"b.ls\"\nallowed_countries = [\"LS\", \"ZAF\"]\n"
    );
    let (_, msg) = error(&text);
    assert!(
        msg.starts_with(&format!(
            "{FILE}:10:28: field `target[1].allowed_countries`: `ZAF` is not an ISO 3166-1 alpha-2 country code"
        )),
        "{msg}"
    );
}

#[test]
fn min_confidence_defaults_to_low_and_names_a_bad_level() {
    assert_eq!(
        parse(VANTAGE).unwrap().policy.min_confidence,
        Confidence::Low
    );
    let config = parse(&format!("{VANTAGE}[policy]\nmin_confidence = \"Medium\"\n")).unwrap();
    assert_eq!(config.policy.min_confidence, Confidence::Medium);
    let (_, msg) = error(&format!("{VANTAGE}[policy]\nmin_confidence = \"sure\"\n"));
    assert!(
        msg.contains(":5:18: field `policy.min_confidence`: `sure` is not a confidence level (expected low, medium or high)"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
}

#[test]
fn an_invalid_policy_home_is_reported() {
    let (_, msg) = error(&format!("{VANTAGE}[policy]\nhome = \"Lesotho\"\n"));
    assert!(
        msg.contains(":5:8: field `policy.home`: `Lesotho`"),
        "{msg}"
    );
}

#[test]
fn an_unknown_protocol_names_value_and_field() {
    let (_, msg) = error(&format!("{VANTAGE}[probe]\nprotocol = \"sctp\"\n"));
    assert!(msg.contains(":5:12: field `probe.protocol`:"), "{msg}");
    assert!(msg.contains("`sctp`"), "{msg}");

    let (_, msg) = error(&format!(
        "{VANTAGE}[[target]]\nname = \"a\"\nhost = \"a.ls\"\nprotocol = \"quic\"\n"
    ));
    assert!(msg.contains(":7:12: field `target[0].protocol`:"), "{msg}");
    assert!(msg.contains("`quic`"), "{msg}");
}

#[test]
fn an_unknown_family_is_reported() {
    let (_, msg) = error(&format!("{VANTAGE}[probe]\nfamily = \"v4\"\n"));
    assert!(msg.contains("field `probe.family`: `v4`"), "{msg}");
}

#[test]
fn ports_must_be_1_to_65535() {
    for (port, col) in [("0", 8), ("70000", 8), ("-1", 8)] {
        let text = format!(
            "{VANTAGE}[[target]]\nname = \"a\"\nhost = \"a.ls\"\nprotocol = \"tcp\"\nport = {port}\n"
        );
        let (err, msg) = error(&text);
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
        assert!(
            msg.contains(&format!(
                ":8:{col}: field `target[0].port`: port {port} is out of range"
            )),
            "{msg}"
        );
    }
    let (_, msg) = error(&format!("{VANTAGE}[probe]\nport = 0\n"));
    assert!(msg.contains(":5:8: field `probe.port`:"), "{msg}");
}

#[test]
fn a_port_on_an_icmp_target_is_rejected() {
    let (_, msg) = error(&format!(
        "{VANTAGE}[[target]]\nname = \"a\"\nhost = \"a.ls\"\nport = 53\n"
    ));
    assert!(msg.contains("field `target[0].port`"), "{msg}");
    assert!(msg.contains("icmp"), "{msg}");
}

#[test]
fn store_retention_parses_sizes_ages_and_none() {
    let config = parse(&format!(
        "{VANTAGE}[store]\nmax_age = \"7d12h\"\nmax_size = \"500MB\"\n"
    ))
    .unwrap();
    assert_eq!(
        config.store.max_age,
        Some(Duration::from_secs(7 * 86_400 + 12 * 3600))
    );
    assert_eq!(config.store.max_size, Some(500_000_000));
    let config = parse(&format!(
        "{VANTAGE}[store]\nmax_age = \"none\"\nmax_size = \"None\"\n"
    ))
    .unwrap();
    assert_eq!((config.store.max_age, config.store.max_size), (None, None));

    let (_, msg) = error(&format!("{VANTAGE}[store]\nmax_size = \"1.5GiB\"\n"));
    assert!(
        msg.contains(":5:12: field `store.max_size`: `1.5GiB` is not a size"),
        "{msg}"
    );
    let (_, msg) = error(&format!("{VANTAGE}[store]\nmax_size = \"100KiB\"\n"));
    assert!(
        msg.contains("field `store.max_size`: 100KiB is out of range, expected at least 1MiB"),
        "{msg}"
    );
    let (_, msg) = error(&format!("{VANTAGE}[store]\nmax_age = \"10m\"\n"));
    assert!(
        msg.contains("field `store.max_age`: 10m is out of range"),
        "{msg}"
    );
    let (_, msg) = error(&format!("{VANTAGE}[store]\nmax_age = 30\n"));
    assert!(msg.contains("field `store.max_age`"), "{msg}");
    let (_, msg) = error(&format!("{VANTAGE}[store]\nretention = \"30d\"\n"));
    assert!(msg.contains("unknown field `retention`"), "{msg}");
}

#[test]
fn parse_size_accepts_decimal_and_binary_units() {
    assert_eq!(parse_size("1048576"), Ok(1 << 20));
    assert_eq!(parse_size("64B"), Ok(64));
    assert_eq!(parse_size("2KB"), Ok(2000));
    assert_eq!(parse_size("2kib"), Ok(2048));
    assert_eq!(parse_size(" 1GiB "), Ok(1 << 30));
    assert_eq!(parse_size("3 TB"), Ok(3_000_000_000_000));
    for (bad, why) in [
        ("", "start with a number"),
        ("GiB", "start with a number"),
        ("1.5GiB", "fractions"),
        ("10 parsecs", "unknown unit `parsecs`"),
        ("99999999999TiB", "too large"),
        ("-1", "start with a number"),
    ] {
        let err = parse_size(bad).unwrap_err().to_string();
        assert!(err.contains(why), "{bad:?}: {err}");
        assert!(!err.contains('\n'));
    }
}

#[test]
fn the_file_hash_is_the_sha256_of_its_bytes() {
    let text = format!("{VANTAGE}# a comment changes the hash\n");
    let a = parse(VANTAGE).unwrap();
    let b = parse(&text).unwrap();
    assert_eq!(a.sha256.len(), 64);
    assert_ne!(a.sha256, b.sha256);
    // The same bytes hash the same: the SHA-256 of the file's content.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tw.toml");
    std::fs::write(&path, VANTAGE).unwrap();
    assert_eq!(Config::load(&path).unwrap().sha256, a.sha256);
    let sum = std::process::Command::new("sha256sum").arg(&path).output();
    if let Ok(out) = sum {
        let hex = String::from_utf8_lossy(&out.stdout);
        assert!(hex.starts_with(&a.sha256), "{hex}");
    }
}

#[test]
fn a_bad_duration_is_located() {
    let (_, msg) = error(&format!("{VANTAGE}[probe]\ninterval = \"5 minutes\"\n"));
    assert!(msg.contains(":5:12: field `probe.interval`:"), "{msg}");
    assert!(msg.contains("`5 minutes` is not a duration"), "{msg}");
}

#[test]
fn durations_out_of_range_are_rejected() {
    let (_, msg) = error(&format!("{VANTAGE}[probe]\ngrace = \"10s\"\n"));
    assert!(
        msg.contains("field `probe.grace`: 10s is out of range"),
        "{msg}"
    );
    let (_, msg) = error(&format!("{VANTAGE}[probe]\ndeadline = \"50ms\"\n"));
    assert!(msg.contains("field `probe.deadline`"), "{msg}");
    let (_, msg) = error(&format!("{VANTAGE}[probe]\ninterval = \"0s\"\n"));
    assert!(msg.contains("field `probe.interval`"), "{msg}");
}

#[test]
fn deadline_must_not_be_shorter_than_grace() {
    let (_, msg) = error(&format!(
        "{VANTAGE}[probe]\ngrace = \"2s\"\ndeadline = \"1s\"\n"
    ));
    assert!(msg.contains(":6:12: field `probe.deadline`"), "{msg}");
}

#[test]
fn jitter_must_be_shorter_than_interval() {
    let (_, msg) = error(&format!(
        "{VANTAGE}[probe]\ninterval = \"30s\"\njitter = \"30s\"\n"
    ));
    assert!(
        msg.contains(
            ":6:10: field `probe.jitter`: jitter (30s) must be shorter than interval (30s)"
        ),
        "{msg}"
    );
    // The default jitter (30s) against a short interval points at the interval.
    let (_, msg) = error(&format!("{VANTAGE}[probe]\ninterval = \"10s\"\n"));
    assert!(msg.contains(":5:12: field `probe.jitter`"), "{msg}");
}

#[test]
fn integer_settings_are_range_checked() {
    for (key, value) in [
        ("concurrency", "0"),
        ("concurrency", "201"),
        ("probes_per_hop", "17"),
        ("first_ttl", "0"),
        ("max_ttl", "65"),
        ("packet_size", "47"),
        ("packet_size", "1025"),
    ] {
        let (_, msg) = error(&format!("{VANTAGE}[probe]\n{key} = {value}\n"));
        assert!(
            msg.contains(&format!("field `probe.{key}`: {value} is out of range")),
            "{msg}"
        );
    }
}

#[test]
fn multipath_cadence_is_inherited_overridden_or_off_and_checked() {
    let text = format!(
        "{VANTAGE}[probe]\nmultipath_interval = \"1h\"\n\
         [[target]]\nname = \"a\"\nhost = \"a.ls\"\n\
         [[target]]\nname = \"b\"\nhost = \"b.ls\"\nmultipath_interval = \"10m\"\n\
         [[target]]\nname = \"c\"\nhost = \"c.ls\"\nmultipath_interval = \"off\"\n"
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.probe.multipath, Some(Duration::from_secs(3600)));
    let cadence: Vec<Option<Duration>> = config.targets.iter().map(|t| t.multipath).collect();
    assert_eq!(
        cadence,
        [
            Some(Duration::from_secs(3600)),
            Some(Duration::from_secs(600)),
            None
        ]
    );
    // Off unless asked for.
    assert_eq!(parse(VANTAGE).unwrap().probe.multipath, None);
    let (_, msg) = error(&format!(
        "{VANTAGE}[[target]]\nname = \"a\"\nhost = \"a.ls\"\nmultipath_interval = \"500ms\"\n"
    ));
    assert!(
        msg.contains(":7:22: field `target[0].multipath_interval`: 500ms is out of range, expected 1s..=720h"),
        "{msg}"
    );
    let (_, msg) = error(&format!(
        "{VANTAGE}[probe]\nmultipath_interval = \"often\"\n"
    ));
    assert!(
        msg.contains(":5:22: field `probe.multipath_interval`"),
        "{msg}"
    );
}

#[test]
fn max_ttl_below_first_ttl_is_rejected() {
    let (_, msg) = error(&format!("{VANTAGE}[probe]\nfirst_ttl = 10\nmax_ttl = 5\n"));
    assert!(
        msg.contains(":6:11: field `probe.max_ttl`: max_ttl (5) must not be below first_ttl (10)"),
        "{msg}"
    );
}

#[test]
fn duplicate_target_names_point_at_the_second() {
    let text = format!(
        "{VANTAGE}[[target]]\nname = \"dns\"\nhost = \"a.ls\"\n[[target]]\nname = \"dns\"\nhost = \"b.ls\"\n"
    );
    let (_, msg) = error(&text);
    assert!(
        msg.contains(":8:8: field `target[1].name`: target name `dns` is used more than once"),
        "{msg}"
    );
}

#[test]
fn target_names_must_be_label_and_file_safe() {
    for name in ["", "gov portal", "../etc", "..", "tw/1"] {
        let (_, msg) = error(&format!(
            "{VANTAGE}[[target]]\nname = \"{name}\"\nhost = \"a.ls\"\n"
        ));
        assert!(msg.contains("field `target[0].name`"), "{msg}");
    }
}

#[test]
fn missing_required_keys_point_at_their_table() {
    let (err, msg) = error("[policy]\nhome = \"LS\"\n");
    assert_eq!(err.position(), None);
    assert!(
        msg.starts_with(&format!("{FILE}: field `vantage`:")),
        "{msg}"
    );

    let (_, msg) = error("# vantage point\n[vantage]\ncountry = \"LS\"\n");
    assert!(msg.contains(":2:2: field `vantage.name`:"), "{msg}");
    let (_, msg) = error("[vantage]\nname = \"m\"\n");
    assert!(msg.contains(":1:2: field `vantage.country`:"), "{msg}");

    let (_, msg) = error(&format!("{VANTAGE}\n[[target]]\nname = \"a\"\n"));
    assert!(msg.contains(":5:1: field `target[0].host`:"), "{msg}");
    let (_, msg) = error(&format!("{VANTAGE}[[target]]\nhost = \"a.ls\"\n"));
    assert!(msg.contains(":4:1: field `target[0].name`:"), "{msg}");
}

#[test]
fn coordinates_are_range_checked_and_paired() {
    let (_, msg) = error(&format!("{VANTAGE}latitude = -91\nlongitude = 0\n"));
    assert!(msg.contains(":4:12: field `vantage.latitude`"), "{msg}");
    let (_, msg) = error(&format!("{VANTAGE}latitude = 0\nlongitude = 180.5\n"));
    assert!(msg.contains(":5:13: field `vantage.longitude`"), "{msg}");
    let (_, msg) = error(&format!("{VANTAGE}latitude = -29.31\n"));
    assert!(msg.contains("field `vantage.longitude`"), "{msg}");
    let (_, msg) = error(&format!("{VANTAGE}longitude = 27.48\n"));
    assert!(msg.contains("field `vantage.latitude`"), "{msg}");
    let config = parse(&format!("{VANTAGE}latitude = -29\nlongitude = 27\n")).unwrap();
    assert_eq!(config.vantage.latitude, Some(-29.0));
}

#[test]
fn an_address_literal_must_match_the_family() {
    let (_, msg) = error(&format!(
        "{VANTAGE}[[target]]\nname = \"a\"\nhost = \"2001:db8::1\"\nfamily = \"ipv4\"\n"
    ));
    assert!(msg.contains("field `target[0].family`"), "{msg}");
}

#[test]
fn a_bad_listen_address_is_reported() {
    let (_, msg) = error(&format!("{VANTAGE}[metrics]\nlisten = \"localhost\"\n"));
    assert!(msg.contains(":5:10: field `metrics.listen`"), "{msg}");
}

#[test]
fn family_parses_from_cli_strings() {
    assert_eq!("auto".parse::<Family>().unwrap(), Family::Auto);
    assert_eq!("IPv4".parse::<Family>().unwrap(), Family::Ipv4);
    assert_eq!("ipv6".parse::<Family>().unwrap(), Family::Ipv6);
    assert_eq!("both".parse::<Family>().unwrap(), Family::Both);
    assert!("inet".parse::<Family>().is_err());
    assert_eq!(Family::Ipv6.as_str(), "ipv6");
}

#[test]
fn parse_duration_accepts_units_and_combinations() {
    assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(
        parse_duration("1h2m3s4ms"),
        Ok(Duration::from_millis(3_723_004))
    );
    assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
    assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
    assert_eq!(parse_duration(" 10s "), Ok(Duration::from_secs(10)));
}

#[test]
fn parse_duration_rejects_bad_text() {
    for (text, why) in [
        ("", "empty"),
        ("   ", "empty"),
        ("-5s", "negative"),
        ("300", "unit is missing"),
        ("5 minutes", "unknown unit `minutes`"),
        ("5 m", "spaces"),
        ("5w", "unknown unit `w`"),
        ("1.5s", "fractions"),
        ("s", "number must come before"),
        ("30s1m", "largest to smallest"),
        ("1m1m", "largest to smallest"),
        ("99999999999999999999s", "too large"),
        ("18446744073709551615h", "too large"),
    ] {
        let err = parse_duration(text).unwrap_err().to_string();
        assert!(err.contains(why), "{text:?}: {err}");
        assert!(!err.contains('\n'));
    }
}
