//! Certificates for the TLS tests, made with rcgen.

use std::path::Path;

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
pub fn write_pki(dir: &Path) -> rustls::RootCertStore {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let signed = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    for (file, (cert, key)) in [
        ("server", signed("127.0.0.1")),
        ("client", signed("sender")),
    ] {
        std::fs::write(dir.join(format!("{file}.crt")), cert).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key).unwrap();
    }
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    roots
}
