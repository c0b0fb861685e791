//! The connection to the API server a `kubernetes_sd_configs` entry names: its `api_server` with
//! the HTTP client options, a `kubeconfig_file`, or — with neither — the pod's service account
//! (in-cluster: the token is read again when it rotates, the CA from the service account).

use crate::config::schema::KubernetesSdConfig;
use std::path::Path;

const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A client of the API server `sd` names. A token file of the config (`bearer_token_file`,
/// `authorization.credentials_file`) is read at every request, trimmed, as Prometheus reads it: a
/// rotated token is used at once, and a file ending in a newline works.
pub async fn client(sd: &KubernetesSdConfig) -> Result<kube::Client, String> {
    let config = config(sd).await?;
    let token_file = if !sd.bearer_token.is_empty() {
        None
    } else if !sd.bearer_token_file.is_empty() {
        Some(TokenFile::new(&sd.bearer_token_file, "Bearer"))
    } else {
        sd.authorization
            .as_ref()
            .filter(|a| a.credentials.is_empty() && !a.credentials_file.is_empty())
            .map(|a| {
                let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
                TokenFile::new(&a.credentials_file, kind)
            })
    };
    let builder = kube::client::ClientBuilder::try_from(config).map_err(|e| e.to_string())?;
    Ok(match token_file {
        None => builder.build(),
        Some(file) => {
            let file = std::sync::Arc::new(file);
            builder
                .with_layer(&tower::util::MapRequestLayer::new(
                    move |mut request: http::Request<kube::client::Body>| {
                        if let Some(value) = file.header() {
                            request
                                .headers_mut()
                                .insert(http::header::AUTHORIZATION, value);
                        }
                        request
                    },
                ))
                .build()
        }
    })
}

/// A credentials file, read again at each request; the last good value if a read fails.
struct TokenFile {
    path: String,
    kind: String,
    last: std::sync::Mutex<Option<http::HeaderValue>>,
}

impl TokenFile {
    fn new(path: &str, kind: &str) -> Self {
        Self {
            path: path.to_string(),
            kind: kind.to_string(),
            last: std::sync::Mutex::new(None),
        }
    }

    fn header(&self) -> Option<http::HeaderValue> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                match http::HeaderValue::from_str(&format!("{} {}", self.kind, text.trim())) {
                    Ok(mut v) => {
                        v.set_sensitive(true);
                        *last = Some(v);
                    }
                    Err(_) => {
                        tracing::warn!(file = %self.path, "the token file holds what cannot be a header value; using the last good token");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(file = %self.path, error = %e, "cannot read the token file; using the last good token");
            }
        }
        last.clone()
    }
}

async fn config(sd: &KubernetesSdConfig) -> Result<kube::Config, String> {
    if !sd.kubeconfig_file.is_empty() {
        let kubeconfig = kube::config::Kubeconfig::read_from(&sd.kubeconfig_file)
            .map_err(|e| format!("kubeconfig_file {}: {e}", sd.kubeconfig_file))?;
        return kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| format!("kubeconfig_file {}: {e}", sd.kubeconfig_file));
    }
    if sd.api_server.is_empty() {
        return kube::Config::incluster().map_err(|e| {
            format!(
                "no api_server or kubeconfig_file, and not in a cluster (in-cluster config: {e})"
            )
        });
    }
    let url = sd
        .api_server
        .parse::<http::Uri>()
        .map_err(|e| format!("api_server {:?}: {e}", sd.api_server))?;
    let mut config = kube::Config::new(url);
    let tls = &sd.tls_config;
    config.accept_invalid_certs = tls.insecure_skip_verify;
    if !tls.server_name.is_empty() {
        config.tls_server_name = Some(tls.server_name.clone());
    }
    if !tls.ca_file.is_empty() {
        config.root_cert_file = Some(tls.ca_file.clone().into());
    } else if !tls.ca.is_empty() {
        config.root_cert = Some(pem_certificates(tls.ca.as_bytes())?);
    }
    if !tls.cert_file.is_empty() {
        config.auth_info.client_certificate = Some(tls.cert_file.clone());
        config.auth_info.client_key = Some(tls.key_file.clone());
    }
    let auth = &mut config.auth_info;
    if !sd.bearer_token.is_empty() {
        auth.token = Some(sd.bearer_token.clone().into());
    } else if !sd.bearer_token_file.is_empty() {
        // Sent by the layer `client` adds.
    } else if let Some(a) = &sd.authorization {
        if !a.credentials.is_empty() {
            auth.token = Some(a.credentials.clone().into());
        }
    } else if let Some(b) = &sd.basic_auth {
        auth.username = Some(b.username.clone());
        let password = if b.password_file.is_empty() {
            b.password.clone()
        } else {
            std::fs::read_to_string(&b.password_file)
                .map_err(|e| format!("basic_auth.password_file {}: {e}", b.password_file))?
                .trim_end()
                .to_string()
        };
        auth.password = Some(password.into());
    } else if Path::new(SERVICE_ACCOUNT).join("token").exists() && tls.ca_file.is_empty() {
        // An api_server named from inside a cluster: Prometheus uses the service account too.
        auth.token_file = Some(format!("{SERVICE_ACCOUNT}/token"));
        config.root_cert_file = Some(format!("{SERVICE_ACCOUNT}/ca.crt").into());
    }
    if !sd.proxy_url.is_empty() {
        config.proxy_url = Some(
            sd.proxy_url
                .parse()
                .map_err(|e| format!("proxy_url {:?}: {e}", sd.proxy_url))?,
        );
    }
    Ok(config)
}

fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|c| {
            c.map(|c| c.to_vec())
                .map_err(|e| format!("tls_config.ca: {e}"))
        })
        .collect()
}

/// The namespace this pod runs in, for `namespaces.own_namespace`.
pub fn own_namespace() -> Result<String, String> {
    std::fs::read_to_string(format!("{SERVICE_ACCOUNT}/namespace"))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("namespaces.own_namespace: {SERVICE_ACCOUNT}/namespace: {e}"))
}
