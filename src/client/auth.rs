//! A client's credentials (`basic_auth`, `bearer_token[_file]`, `authorization`), read from the
//! configuration once at start; files are read again at every request, so a rotated secret (a
//! Kubernetes service-account token) applies to the next push.

use crate::config::schema::ClientConfig;
use std::path::PathBuf;

/// A secret given inline or as a file.
#[derive(Debug, Clone)]
pub enum Secret {
    Inline(String),
    File(PathBuf),
}

impl Secret {
    /// The file wins over the inline value, as in Promtail; `None` when neither is set.
    fn of(inline: &str, file: &str) -> Option<Self> {
        if !file.is_empty() {
            Some(Self::File(PathBuf::from(file)))
        } else if !inline.is_empty() {
            Some(Self::Inline(inline.to_string()))
        } else {
            None
        }
    }

    fn read(&self) -> Option<String> {
        match self {
            Self::Inline(s) => Some(s.clone()),
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(s) => Some(s.trim().to_string()),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "cannot read credentials file");
                    None
                }
            },
        }
    }
}

/// How a client authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    Basic {
        user: Option<Secret>,
        password: Option<Secret>,
    },
    /// `Authorization: <scheme> <credential>` (a bearer token, or `authorization.type`).
    Scheme { scheme: String, credential: Secret },
}

impl Credentials {
    /// The client's credentials, if it has any: `basic_auth` first, then a bearer token, then
    /// `authorization` (whose `type` defaults to `Bearer`).
    pub fn of(config: &ClientConfig) -> Option<Self> {
        if let Some(basic) = &config.basic_auth {
            return Some(Self::Basic {
                user: Secret::of(&basic.username, &basic.username_file),
                password: Secret::of(&basic.password, &basic.password_file),
            });
        }
        if let Some(token) = Secret::of(&config.bearer_token, &config.bearer_token_file) {
            return Some(Self::Scheme {
                scheme: "Bearer".into(),
                credential: token,
            });
        }
        let auth = config.authorization.as_ref()?;
        let scheme = if auth.kind.is_empty() {
            "Bearer".to_string()
        } else {
            auth.kind.clone()
        };
        Some(Self::Scheme {
            scheme,
            credential: Secret::of(&auth.credentials, &auth.credentials_file)?,
        })
    }

    /// The `Authorization` header's value now (files read again); `None` if a file cannot be
    /// read.
    pub fn header(&self) -> Option<String> {
        match self {
            Self::Basic { user, password } => {
                use base64::Engine as _;
                let read =
                    |s: &Option<Secret>| s.as_ref().and_then(Secret::read).unwrap_or_default();
                let pair = format!("{}:{}", read(user), read(password));
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            Self::Scheme { scheme, credential } => {
                credential.read().map(|cred| format!("{scheme} {cred}"))
            }
        }
    }
}
