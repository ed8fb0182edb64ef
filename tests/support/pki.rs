//! Certificates for the TLS tests, made at test time with rcgen: a CA, a
//! server certificate for `localhost` and 127.0.0.1 signed by it, and a
//! client certificate signed by it, written as PEM files into a folder;
//! and a web configuration file (the exporter-toolkit format) around them.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};

/// The files `Pki::write` made.
pub struct Pki {
    /// The CA certificate (trusts the server's and the client's).
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client's certificate and key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// Make the CA and both certificates in `dir`.
    pub fn write(dir: &Path) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "transitwatch test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, client: bool| {
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages.push(if client {
                rcgen::ExtendedKeyUsagePurpose::ClientAuth
            } else {
                rcgen::ExtendedKeyUsagePurpose::ServerAuth
            });
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["localhost".to_string(), "127.0.0.1".to_string()],
            false,
        );
        let (client_cert, client_key) = leaf(vec!["prometheus.lab".to_string()], true);
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca: write("ca.crt", &ca_cert.pem()),
            server_cert: write("server.crt", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.crt", &client_cert),
            client_key: write("client.key", &client_key),
        }
    }

    /// A web configuration with this server certificate and `users`
    /// (name, password; hashed here with bcrypt at cost 4), plus `more`
    /// YAML lines under `tls_server_config`; written to `DIR/web.yml`.
    pub fn web_config(&self, dir: &Path, users: &[(&str, &str)], more_tls: &str) -> PathBuf {
        let mut text = format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n{more_tls}",
            self.server_cert.display(),
            self.server_key.display()
        );
        if !users.is_empty() {
            text.push_str("basic_auth_users:\n");
            for (user, password) in users {
                let hash = bcrypt::hash(password, 4).unwrap();
                text.push_str(&format!("  {user}: {hash}\n"));
            }
        }
        text.push_str(
            "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n",
        );
        let path = dir.join("web.yml");
        std::fs::write(&path, text).unwrap();
        path
    }
}
