//! Who may send data to a receiver (`loki_push_api`, `k8s_audit_webhook`): a client certificate
//! the configured CA signed (checked by the TLS handshake), or the bearer token of
//! `auth.bearer_token_file`. With neither configured, anyone who can connect.

use axum::http::{header, HeaderMap};

/// The credentials a request must carry.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Read at every request, so that a rotated token counts at once.
    pub bearer_token_file: Option<String>,
    /// A verified client certificate is enough.
    pub client_certificates: bool,
}

pub use crate::source::http_receiver::Peer;

/// Why a request is not let in.
#[derive(Debug)]
pub enum Refusal {
    /// 401: no valid credentials.
    Unauthorized(&'static str),
    /// 503: the token file cannot be read; the sender retries once it can.
    TokenUnreadable(String),
}

impl Refusal {
    /// What `lokiship_push_errors_total{reason}` calls it.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Unauthorized(_) => "unauthorized",
            Refusal::TokenUnreadable(_) => "token_unreadable",
        }
    }

    /// 401 (with `WWW-Authenticate: Bearer`) or 503, saying why.
    pub fn response(&self) -> axum::response::Response {
        use axum::http::StatusCode;
        use axum::response::IntoResponse as _;
        match self {
            Refusal::Unauthorized(why) => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                format!("{why}\n"),
            )
                .into_response(),
            Refusal::TokenUnreadable(why) => {
                (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response()
            }
        }
    }
}

impl Credentials {
    pub fn none_required(&self) -> bool {
        self.bearer_token_file.is_none() && !self.client_certificates
    }

    /// Whether `peer`, sending `headers`, may send.
    pub fn check(&self, peer: Peer, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.none_required() || (self.client_certificates && peer.verified_certificate) {
            return Ok(());
        }
        let Some(file) = &self.bearer_token_file else {
            return Err(Refusal::Unauthorized("no client certificate"));
        };
        let Some(sent) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return Err(Refusal::Unauthorized("no bearer token"));
        };
        let token = std::fs::read_to_string(file).map_err(|e| {
            Refusal::TokenUnreadable(format!("cannot read bearer_token_file {file:?}: {e}"))
        })?;
        let token = token.trim();
        if token.is_empty() {
            return Err(Refusal::TokenUnreadable(format!(
                "bearer_token_file {file:?} is empty"
            )));
        }
        if same_secret(sent.trim().as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(Refusal::Unauthorized("wrong bearer token"))
        }
    }
}

/// Equality in a time that does not depend on where the texts differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_token_or_a_certificate_lets_in() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        let creds = Credentials {
            bearer_token_file: Some(file.to_str().unwrap().into()),
            client_certificates: true,
        };
        let anonymous = Peer::default();
        let with_cert = Peer {
            verified_certificate: true,
        };
        assert!(creds.check(anonymous, &bearer("s3cret")).is_ok());
        assert!(creds.check(with_cert, &HeaderMap::new()).is_ok());
        assert!(matches!(
            creds.check(anonymous, &bearer("s3cre")),
            Err(Refusal::Unauthorized(_))
        ));
        assert!(matches!(
            creds.check(anonymous, &HeaderMap::new()),
            Err(Refusal::Unauthorized(_))
        ));
        // A rotated token counts at once; the old one no longer does.
        std::fs::write(&file, "n3w").unwrap();
        assert!(creds.check(anonymous, &bearer("n3w")).is_ok());
        assert!(creds.check(anonymous, &bearer("s3cret")).is_err());
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(
            creds.check(anonymous, &bearer("n3w")),
            Err(Refusal::TokenUnreadable(_))
        ));
        assert!(Credentials::default()
            .check(anonymous, &HeaderMap::new())
            .is_ok());
    }
}
