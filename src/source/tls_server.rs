//! The TLS server side of the receivers (syslog over TLS, the audit webhook): a certificate and
//! key from PEM files, and client certificates checked against a CA file.

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// What a server asks of its clients' certificates.
#[derive(Debug, Clone, Copy)]
pub enum ClientCerts<'a> {
    /// None is asked for.
    NotAsked,
    /// Every client presents one this CA file signed, or the handshake fails.
    Required(&'a str),
    /// A client may present one (it must be valid if it does); the caller decides what a client
    /// without one may do.
    Optional(&'a str),
}

/// A TLS acceptor serving `cert_file` with `key_file`.
pub fn acceptor(
    cert_file: &str,
    key_file: &str,
    clients: ClientCerts<'_>,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let read = |what: &str, path: &str| {
        std::fs::read(path).with_context(|| format!("cannot read {what} {path:?}"))
    };
    let certs = CertificateDer::pem_slice_iter(&read("cert_file", cert_file)?)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cert_file {cert_file:?}"))?;
    let key = PrivateKeyDer::from_pem_slice(&read("key_file", key_file)?)
        .with_context(|| format!("key_file {key_file:?}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match clients {
        ClientCerts::NotAsked => builder.with_no_client_auth(),
        ClientCerts::Required(ca_file) | ClientCerts::Optional(ca_file) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&read("the client CA file", ca_file)?) {
                roots
                    .add(cert.with_context(|| format!("client CA file {ca_file:?}"))?)
                    .with_context(|| format!("client CA file {ca_file:?}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = match clients {
                ClientCerts::Optional(_) => verifier.allow_unauthenticated().build()?,
                _ => verifier.build()?,
            };
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .context("cert_file and key_file do not make a certificate")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
