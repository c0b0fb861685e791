//! The HTTP side of a client: the reqwest client (timeout, redirects, proxy, TLS) and the headers
//! every push carries.

use crate::config::schema::ClientConfig;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};

/// The HTTP client for a client's endpoint (`timeout` per push); the error names the option at
/// fault.
pub(super) fn client(
    timeout: std::time::Duration,
    config: &super::settings::Connection,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(format!("lokiship/{}", crate::VERSION))
        .redirect(if config.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    if !config.proxy_from_environment {
        builder = builder.no_proxy();
    }
    if !config.proxy_url.is_empty() {
        let proxy =
            reqwest::Proxy::all(&config.proxy_url).map_err(|e| format!("proxy_url: {e}"))?;
        builder = builder.proxy(proxy);
    }
    let tls = &config.tls;
    let ca = read_inline_or_file(&tls.ca, &tls.ca_file)
        .map_err(|e| format!("tls_config.ca_file: {e}"))?;
    let cert = read_inline_or_file(&tls.cert, &tls.cert_file)
        .map_err(|e| format!("tls_config.cert_file: {e}"))?;
    let key = read_inline_or_file(&tls.key, &tls.key_file)
        .map_err(|e| format!("tls_config.key_file: {e}"))?;
    if cert.is_some() != key.is_some() {
        return Err("tls_config needs both cert_file and key_file".into());
    }
    if !tls.server_name.is_empty() && !tls.insecure_skip_verify {
        let identity = cert.as_deref().zip(key.as_deref());
        let rustls_config =
            super::tls::config_with_server_name(&tls.server_name, ca.as_deref(), identity)?;
        builder = builder.use_preconfigured_tls(rustls_config);
    } else {
        if let Some(pem) = ca {
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("tls_config.ca_file: {e}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let (Some(mut cert), Some(key)) = (cert, key) {
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            let identity = reqwest::Identity::from_pem(&cert)
                .map_err(|e| format!("tls_config cert/key: {e}"))?;
            builder = builder.identity(identity);
        }
        if tls.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// The headers of every push: content type (and encoding), user agent, `headers`.
pub(super) fn static_headers(config: &ClientConfig) -> Result<HeaderMap, String> {
    let mut static_headers = HeaderMap::new();
    match config.encoding {
        crate::config::schema::PushEncoding::Protobuf => {
            static_headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            );
        }
        crate::config::schema::PushEncoding::Json => {
            static_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            static_headers.insert(
                reqwest::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
        }
    }
    static_headers.insert(
        USER_AGENT,
        HeaderValue::from_str(&format!("lokiship/{}", crate::VERSION))
            .map_err(|e| e.to_string())?,
    );
    for (name, value) in &config.headers {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name:?}: {e}"))?;
        let value = HeaderValue::from_str(value).map_err(|e| format!("header {name:?}: {e}"))?;
        static_headers.insert(name, value);
    }
    Ok(static_headers)
}

fn read_inline_or_file(inline: &str, file: &str) -> std::io::Result<Option<Vec<u8>>> {
    if !file.is_empty() {
        return std::fs::read(file).map(Some);
    }
    Ok((!inline.is_empty()).then(|| inline.as_bytes().to_vec()))
}
