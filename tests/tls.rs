//! `tls_config`: lokiship pushes over HTTPS, trusting the CA in `ca_file`, presenting the client
//! certificate in `cert_file`/`key_file`, verifying the server as `server_name`, or skipping
//! verification with `insecure_skip_verify`.

mod support;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{audit_config, gen_audit, Lokiship};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pki {
    ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
    ca_der: CertificateDer<'static>,
}

fn pki() -> Pki {
    pki_for(&["127.0.0.1", "localhost"])
}

/// A CA, a server certificate for `server_names`, and a client certificate.
fn pki_for(server_names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(
        server_names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
    )
    .unwrap()
    .signed_by(&server_key, &ca, &ca_key)
    .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["lokiship".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_cert: server.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// An HTTPS server that answers every push with 204 and counts the pushes it accepted.
struct TlsLoki {
    port: u16,
    pushes: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl TlsLoki {
    fn start(pki: &Pki, require_client_cert: bool) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(pki.ca_der.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let pushes = Arc::new(AtomicUsize::new(0));
        let counter = pushes.clone();
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // Keep-alive: answer each request on the connection.
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 16384];
                        let Ok(n) = tls.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                            if buf.len() < end + 4 + len {
                                break;
                            }
                            let body = buf[end + 4..end + 4 + len].to_vec();
                            buf.drain(..end + 4 + len);
                            let ok = support::decode(&body).is_ok();
                            if ok {
                                counter.fetch_add(1, Ordering::SeqCst);
                            }
                            let status = if ok {
                                "204 No Content"
                            } else {
                                "400 Bad Request"
                            };
                            let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                            if tls.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Self {
            port,
            pushes,
            _runtime: runtime,
        }
    }

    fn wait_for_push(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.pushes.load(Ordering::SeqCst) > 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

fn config_with_tls(dir: &Path, port: u16, tls: &str) -> std::path::PathBuf {
    let log = dir.join("audit.log");
    gen_audit(&log, 10, 61);
    let config = audit_config(
        dir,
        &log.display().to_string(),
        &format!("https://127.0.0.1:{port}/loki/api/v1/push"),
        "",
    );
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "    tenant_id: ops\n",
        &format!("    tenant_id: ops\n    timeout: 2s\n    tls_config: {tls}\n"),
    );
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn trusts_the_ca_in_ca_file() {
    let pki = pki();
    let loki = TlsLoki::start(&pki, false);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
    let config = config_with_tls(
        dir.path(),
        loki.port,
        &format!("{{ca_file: {}/ca.pem}}", dir.path().display()),
    );
    let lokiship = Lokiship::start(&config, &[]);
    assert!(
        loki.wait_for_push(Duration::from_secs(30)),
        "push over TLS with the configured CA"
    );
    assert!(lokiship.terminate().success());
}

#[test]
fn refuses_an_unknown_ca_unless_verification_is_skipped() {
    let pki = pki();
    let loki = TlsLoki::start(&pki, false);
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_tls(dir.path(), loki.port, "{}");
    let lokiship = Lokiship::start(&config, &[]);
    assert!(
        !loki.wait_for_push(Duration::from_secs(2)),
        "an unknown CA must not be trusted"
    );
    assert!(lokiship.terminate().success());

    let dir = tempfile::tempdir().unwrap();
    let config = config_with_tls(dir.path(), loki.port, "{insecure_skip_verify: true}");
    let lokiship = Lokiship::start(&config, &[]);
    assert!(
        loki.wait_for_push(Duration::from_secs(30)),
        "insecure_skip_verify accepts it"
    );
    assert!(lokiship.terminate().success());
}

#[test]
fn presents_the_client_certificate() {
    let pki = pki();
    let loki = TlsLoki::start(&pki, true);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
    std::fs::write(dir.path().join("client.pem"), &pki.client_cert_pem).unwrap();
    std::fs::write(dir.path().join("client.key"), &pki.client_key_pem).unwrap();
    let config = config_with_tls(
        dir.path(),
        loki.port,
        &format!("{{ca_file: {d}/ca.pem, cert_file: {d}/client.pem, key_file: {d}/client.key}}"),
    );
    let lokiship = Lokiship::start(&config, &[]);
    assert!(
        loki.wait_for_push(Duration::from_secs(30)),
        "mutual TLS push"
    );
    assert!(lokiship.terminate().success());
}

#[test]
fn verifies_the_server_certificate_as_server_name_with_a_client_certificate() {
    // The certificate names loki.internal; lokiship connects to 127.0.0.1.
    let pki = pki_for(&["loki.internal"]);
    let loki = TlsLoki::start(&pki, true);
    let tls = |dir: &Path, server_name: &str| {
        std::fs::write(dir.join("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(dir.join("client.pem"), &pki.client_cert_pem).unwrap();
        std::fs::write(dir.join("client.key"), &pki.client_key_pem).unwrap();
        let d = dir.display();
        format!("{{ca_file: {d}/ca.pem, cert_file: {d}/client.pem, key_file: {d}/client.key{server_name}}}")
    };
    let without = tempfile::tempdir().unwrap();
    let config = config_with_tls(without.path(), loki.port, &tls(without.path(), ""));
    let lokiship = Lokiship::start(&config, &[]);
    assert!(
        !loki.wait_for_push(Duration::from_secs(3)),
        "a certificate for another name is refused"
    );
    lokiship.kill();

    let with = tempfile::tempdir().unwrap();
    let config = config_with_tls(
        with.path(),
        loki.port,
        &tls(with.path(), ", server_name: loki.internal"),
    );
    let lokiship = Lokiship::start(&config, &[]);
    assert!(
        loki.wait_for_push(Duration::from_secs(30)),
        "verified as server_name, with the client certificate (mTLS)"
    );
    assert!(lokiship.terminate().success());
}
