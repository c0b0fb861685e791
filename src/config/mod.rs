//! Configuration: Promtail's YAML schema, read in two phases (as ripgrep does with its flags).
//!
//! 1. [`schema`]: the raw text, optionally `${ENV}`-expanded ([`expand`]), is deserialized into serde
//!    structs that mirror Promtail's schema. Typos, wrong types, bad durations, bad regexes and options
//!    lokiship does not implement are errors naming the line ([`error`]).
//! 2. [`load`] then checks what spans several keys and compiles every scrape config's pipeline, so
//!    that nothing starts unless the whole configuration is usable.

pub mod error;
pub mod expand;
pub mod go_regex;
mod introspect;
pub mod schema;
pub mod stages;
mod unknown;
pub mod values;
mod yaml_compat;

pub use error::ConfigError;
pub use schema::Config;

use crate::pipeline::Pipeline;

/// How to read the configuration file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Expand `${VAR}` and `${VAR:-default}` before parsing.
    pub expand_env: bool,
    /// Unknown keys inside pipeline stages are errors instead of warnings.
    pub strict: bool,
}

/// A configuration that passed both phases.
pub struct Loaded {
    pub config: Config,
    /// One compiled pipeline per entry of `scrape_configs`.
    pub pipelines: Vec<Pipeline>,
    /// Things worth telling the operator that do not stop lokiship (with file and line).
    pub warnings: Vec<String>,
}

/// Reads, expands, parses and validates the configuration file at `path`.
pub fn load_file(path: &str, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, None, format!("cannot read: {e}")))?;
    load_str(path, &text, opts)
}

/// Parses and validates configuration `text`; `file` names it in messages.
pub fn load_str(file: &str, text: &str, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let (expanded, references) = expand::expand_reporting(text, |name| std::env::var(name).ok());
    let mut warnings = Vec::new();
    let text = if opts.expand_env {
        for r in references.iter().filter(|r| r.unset && !r.has_default) {
            warnings.push(
                ConfigError::new(
                    file,
                    Some(r.line),
                    format!(
                        "environment variable {} is not set: ${{{}}} expanded to an empty value",
                        r.name, r.name
                    ),
                )
                .to_string(),
            );
        }
        expanded
    } else {
        text.to_string()
    };
    // Why a value may still hold `${VAR}`: said in the errors it causes (a URL that is not one).
    let unexpanded = |value: &str| -> String {
        match references.iter().find(|r| value.contains(&format!("${{{}", r.name))) {
            Some(r) if !opts.expand_env => format!(
                " (it holds ${{{}}}, and environment variables are not expanded: pass -config.expand-env=true)",
                r.name
            ),
            _ => String::new(),
        }
    };
    let text = yaml_compat::empty_flow_values(text);
    let mut ignored = Vec::new();
    let de = serde_yaml_ng::Deserializer::from_str(&text);
    let parsed: Result<Config, _> =
        serde_ignored::deserialize(de, |path| ignored.push(path.to_string()));
    let mut config = parsed.map_err(|e| yaml_error(file, &text, &e, &ignored))?;
    for path in ignored {
        let unknown = unknown::UnknownOption::new(&text, &path);
        if opts.strict {
            return Err(ConfigError::new(file, unknown.line, unknown.message(true)));
        }
        warnings.push(ConfigError::new(file, unknown.line, unknown.message(false)).to_string());
    }

    if let Some(client) = config.client.take() {
        config.clients.insert(0, client);
    }
    let lines = LineFinder { text: &text, file };
    for (i, client) in config.clients.iter().enumerate() {
        let url = reqwest::Url::parse(&client.url).map_err(|e| {
            lines.error(
                "url:",
                0,
                format!(
                    "clients[{i}].url {:?} is not a valid URL: {e}{}",
                    client.url,
                    unexpanded(&client.url)
                ),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(lines.error(
                "url:",
                0,
                format!(
                    "clients[{i}].url must be http or https, not {:?}",
                    url.scheme()
                ),
            ));
        }
        if let Some(auth) = &client.basic_auth {
            if !auth.password.is_empty() && !auth.password_file.is_empty() {
                return Err(lines.error(
                    "password_file:",
                    0,
                    format!("clients[{i}].basic_auth: set password or password_file, not both"),
                ));
            }
        }
        if !client.bearer_token.is_empty() && !client.bearer_token_file.is_empty() {
            return Err(lines.error(
                "bearer_token_file:",
                0,
                format!("clients[{i}]: set bearer_token or bearer_token_file, not both"),
            ));
        }
    }
    {
        if !matches!(
            config.wal.when_full.as_deref(),
            None | Some("drop_oldest") | Some("backpressure")
        ) {
            return Err(lines.error(
                "when_full:",
                0,
                "wal.when_full must be drop_oldest or backpressure",
            ));
        }
    }
    if config.target_config.stdin {
        return Err(lines.error("stdin:", 0, "target_config.stdin is not supported yet"));
    }

    let mut pipelines = Vec::with_capacity(config.scrape_configs.len());
    let mut seen = std::collections::HashSet::new();
    for sc in &config.scrape_configs {
        let job_line = lines
            .find(&format!("job_name: {}", sc.job_name), 0)
            .or_else(|| lines.find(&sc.job_name, 0))
            .unwrap_or(0);
        if !seen.insert(sc.job_name.clone()) {
            return Err(ConfigError::new(
                file,
                Some(job_line),
                format!("duplicate job_name {:?}", sc.job_name),
            ));
        }
        if !sc.encoding.is_empty() {
            return Err(lines.error("encoding:", job_line, "encoding is not supported yet"));
        }
        if sc.decompression.enabled {
            if let Err(why) =
                crate::source::file::compressed::Format::parse(&sc.decompression.format)
            {
                return Err(lines.error("decompression:", job_line, why));
            }
        }
        if let Some(api) = &sc.loki_push_api {
            if !sc.relabel_configs.is_empty() {
                return Err(lines.error(
                    "relabel_configs:",
                    job_line,
                    "relabel_configs with loki_push_api is not supported yet",
                ));
            }
            if let Some(name) = api.labels.keys().find(|n| !values::is_valid_label_name(n)) {
                return Err(lines.error(
                    name,
                    job_line,
                    format!("invalid label name {name:?} in loki_push_api.labels"),
                ));
            }
            if !config.server.disable
                && api.server.http_listen_port == config.server.http_listen_port
            {
                return Err(lines.error(
                    "loki_push_api:",
                    job_line,
                    format!(
                        "loki_push_api.server.http_listen_port {} is lokiship's own server's port; give the receiver another",
                        api.server.http_listen_port
                    ),
                ));
            }
        }
        for st in &sc.static_configs {
            for name in st.labels.keys() {
                if !name.starts_with("__") && !values::is_valid_label_name(name) {
                    return Err(lines.error(
                        name,
                        job_line,
                        format!("invalid label name {name:?} in job {:?}", sc.job_name),
                    ));
                }
            }
            if !st.labels.contains_key("__path__") && sc.relabel_configs.is_empty() {
                warnings.push(format!("{file}:{job_line}: job {:?} has a static config without __path__: it reads nothing", sc.job_name));
            }
        }
        let mut after = lines.find("relabel_configs:", job_line).unwrap_or(job_line);
        for (i, rule) in sc.relabel_configs.iter().enumerate() {
            let line = lines.find("- ", after + 1);
            after = line.unwrap_or(after);
            if let Err(e) = crate::source::relabel::Relabel::new(rule) {
                return Err(ConfigError::new(
                    file,
                    line,
                    format!("job {:?}: relabel_configs[{i}]: {e}", sc.job_name),
                ));
            }
        }
        let pipeline = Pipeline::build(&sc.pipeline_stages, &sc.job_name).map_err(|e| {
            let line = lines.find(&format!("{}:", e.stage), job_line);
            ConfigError::new(file, line, format!("job {:?}: {}", sc.job_name, e))
        })?;
        pipelines.push(pipeline);
    }
    Ok(Loaded {
        config,
        pipelines,
        warnings,
    })
}

/// Finds the line of a key for errors found after parsing, when serde no longer knows positions.
/// A parse error, pointed at the line that causes it: an unsupported option's own line, a key
/// found at the wrong depth, or a misspelt required option (named with its did-you-mean).
fn yaml_error(file: &str, text: &str, e: &serde_yaml_ng::Error, ignored: &[String]) -> ConfigError {
    let mut err = ConfigError::from_yaml(file, e);
    let finder = LineFinder { text, file };
    if let Some(found) = unknown::misspelt_required(text, &err.message, ignored) {
        return ConfigError::new(file, found.line, found.message(true));
    }
    // serde_yaml_ng places errors of a skipped value at the start of the enclosing map; a key at
    // the wrong depth is reported at its stage: point at the key's own line instead.
    let key = if let Some((name, _)) = err.message.split_once(" is not supported") {
        let name = name.rsplit(' ').next().unwrap_or(name);
        Some(
            name.rsplit('.')
                .next()
                .unwrap_or(name)
                .trim_matches('"')
                .to_string(),
        )
    } else {
        err.message
            .split_once("\" is at the depth of")
            .and_then(|(before, _)| before.rsplit_once('"'))
            .map(|(_, key)| key.to_string())
    };
    if let Some(line) = key.and_then(|k| finder.find(&format!("{k}:"), err.line.unwrap_or(0))) {
        err.line = Some(line);
    }
    err
}

struct LineFinder<'a> {
    text: &'a str,
    file: &'a str,
}

impl LineFinder<'_> {
    /// The first line at or after `after` (1-based) that contains `needle`.
    fn find(&self, needle: &str, after: usize) -> Option<usize> {
        self.text
            .lines()
            .enumerate()
            .skip(after.saturating_sub(1))
            .find(|(_, l)| l.contains(needle))
            .map(|(i, _)| i + 1)
    }

    fn error(&self, needle: &str, after: usize, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, self.find(needle, after), message)
    }
}
