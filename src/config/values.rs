//! Value types of the configuration that validate themselves while the YAML is read, so that a bad
//! duration, size, regex or label name is reported with the line it stands on.

use serde::de::{self, Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// A Go/Prometheus duration: `500ms`, `1m30s`, `2h`, `1d`, `1w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    pub const fn secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
    pub const fn millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
}

impl fmt::Display for GoDuration {
    /// As Go's `time.Duration.String` writes it: `500ms`, `10s`, `1m30s`, `5m0s`, `2h0m0s`.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let ns = self.0.as_nanos();
        let fraction = |value: u128, unit: u128| -> String {
            let whole = value / unit;
            let rest = value % unit;
            if rest == 0 {
                return whole.to_string();
            }
            let digits = unit.to_string().len() - 1;
            let frac = format!("{rest:0digits$}");
            format!("{whole}.{}", frac.trim_end_matches('0'))
        };
        if ns == 0 {
            return f.write_str("0s");
        }
        if ns < 1_000 {
            return write!(f, "{ns}ns");
        }
        if ns < 1_000_000 {
            return write!(f, "{}\u{b5}s", fraction(ns, 1_000));
        }
        if ns < 1_000_000_000 {
            return write!(f, "{}ms", fraction(ns, 1_000_000));
        }
        let hours = ns / 3_600_000_000_000;
        let minutes = ns / 60_000_000_000 % 60;
        let seconds = fraction(ns % 60_000_000_000, 1_000_000_000);
        match (hours, minutes) {
            (0, 0) => write!(f, "{seconds}s"),
            (0, m) => write!(f, "{m}m{seconds}s"),
            (h, m) => write!(f, "{h}h{m}m{seconds}s"),
        }
    }
}

/// Parses a Go duration string. Accepts a sign-less sequence of `<number><unit>` pairs.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number at {rest:?}"
            ));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| {
            format!(
                "invalid duration {text:?}: bad number {:?}",
                &rest[..num_len]
            )
        })?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "w" => 7.0 * 86400e9,
            "y" => 365.0 * 86400e9,
            "" => return Err(format!("invalid duration {text:?}: missing unit (use ms, s, m or h)")),
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ns, us, ms, s, m, h, d or w)"
                ))
            }
        };
        total += value * nanos_per;
    }
    Ok(Duration::from_nanos(total as u64))
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 500ms, 10s or 5m")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                parse_duration(v).map(GoDuration).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GoDuration, E> {
                if v == 0 {
                    Ok(GoDuration(Duration::ZERO))
                } else {
                    Err(E::custom(format!(
                        "invalid duration {v}: a number without a unit; Promtail (Go) reads it as {v} nanoseconds, which is almost never what is meant, so lokiship refuses it: write {v}s or {v}ms (or {v}ns if you mean it)"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GoDuration, E> {
                self.visit_u64(v.max(1) as u64)
            }
        }
        d.deserialize_any(V)
    }
}

/// A size in bytes: an integer, or a string such as `256KB`, `1MiB`, `10mb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ByteSize(pub u64);

pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("invalid size {text:?}"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {other:?} (use B, KB, MB or GB)"
            ))
        }
    };
    Ok((value * mult) as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes such as 1048576 or 256KB")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_byte_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A compiled regular expression, with Go's (RE2's) meaning: see [`super::go_regex`].
#[derive(Clone, Debug)]
pub struct Regex(pub regex::Regex);

impl<'de> Deserialize<'de> for Regex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        super::go_regex::compile(&text)
            .map(Regex)
            .map_err(|e| de::Error::custom(format!("invalid regular expression {text:?}: {e}")))
    }
}

/// A boolean as YAML 1.1 (Go's yaml.v2, hence Promtail) reads it: `true`/`false`, and also
/// `yes`/`no`, `on`/`off`, `y`/`n` in any case — real configs use them.
pub fn yaml11_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl de::Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean (true/false, or YAML 1.1's yes/no/on/off)")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" => Ok(true),
                "false" | "no" | "n" | "off" => Ok(false),
                _ => Err(E::custom(format!(
                    "{v:?} is not a boolean (true/false, or YAML 1.1's yes/no/on/off)"
                ))),
            }
        }
    }
    d.deserialize_any(V)
}

/// [`yaml11_bool`] for an optional value; a null is `None`.
pub fn yaml11_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "yaml11_bool")] bool);
    Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
}

/// Is `name` a valid Loki label name (`[a-zA-Z_][a-zA-Z0-9_]*`)?
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A label name, checked against Loki's syntax.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelName(pub String);

impl<'de> Deserialize<'de> for LabelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if is_valid_label_name(&name) {
            Ok(LabelName(name))
        } else {
            Err(de::Error::custom(format!(
                "invalid label name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]*"
            )))
        }
    }
}

/// Declares types for Promtail options lokiship does not implement yet: reading one is an error that
/// names it, so that a config never silently loses a feature. An option given but empty (null, `""`,
/// `[]`, or a mapping of such — as Promtail's `-print-config-stderr` writes what is not set) asks
/// for nothing and is accepted.
macro_rules! unsupported_options {
    ($($ty:ident => $name:literal),* $(,)?) => {$(
        #[derive(Debug, Clone, Copy)]
        pub struct $ty;

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if is_unset(&serde_json::Value::deserialize(d)?) {
                    return Ok($ty);
                }
                Err(de::Error::custom(concat!($name, " is not supported yet")))
            }
        }
    )*};
}

/// Whether an option's value sets nothing.
fn is_unset(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::String(s) => s.is_empty(),
        serde_json::Value::Array(items) => items.is_empty(),
        serde_json::Value::Object(map) => map.values().all(is_unset),
        serde_json::Value::Bool(_) | serde_json::Value::Number(_) => false,
    }
}

unsupported_options! {
    ConsulSdConfigs => "consul_sd_configs",
    ConsulAgentSdConfigs => "consulagent_sd_configs",
    Gcplog => "gcplog",
    WindowsEvents => "windows_events",
    Kafka => "kafka",
    Gelf => "gelf",
    Cloudflare => "cloudflare",
    HerokuDrain => "heroku_drain",
    AzureEventHubs => "azure_event_hubs",
    ScrapeLimitsConfig => "limits_config",
    Oauth2 => "oauth2",
    ProxyConnectHeader => "proxy_connect_header",
    GrpcTlsConfig => "server.grpc_tls_config",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsupported_option_is_refused_unless_it_sets_nothing() {
        let read = |yaml: &str| serde_yaml_ng::from_str::<GrpcTlsConfig>(yaml).map(|_| ());
        assert!(read("{cert: '', key: null, client_ca_file: ''}").is_ok());
        assert!(read("[]").is_ok());
        let err = read("{cert_file: /etc/tls.crt}").unwrap_err().to_string();
        assert!(
            err.contains("server.grpc_tls_config is not supported yet"),
            "{err}"
        );
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        for (text, go) in [
            ("5m", "5m0s"),
            ("90s", "1m30s"),
            ("2h", "2h0m0s"),
            ("500ms", "500ms"),
            ("1.5s", "1.5s"),
            ("0", "0s"),
            ("1d", "24h0m0s"),
            ("250us", "250\u{b5}s"),
        ] {
            let d = GoDuration(parse_duration(text).unwrap());
            assert_eq!(d.to_string(), go, "{text}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5x")
            .unwrap_err()
            .contains("unknown unit \"x\""));
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("256KB"), Ok(256 * 1024));
        assert_eq!(parse_byte_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_byte_size("42"), Ok(42));
        assert!(parse_byte_size("3 parsecs").is_err());
    }

    #[test]
    fn label_names() {
        assert!(is_valid_label_name("user"));
        assert!(is_valid_label_name("_x9"));
        assert!(!is_valid_label_name("9x"));
        assert!(!is_valid_label_name("a-b"));
        assert!(!is_valid_label_name(""));
    }
}

/// A keyword from a fixed set: an enum read case-insensitively (as Promtail and Prometheus do),
/// anything else an error that lists the set — checked once, when the file is loaded. With
/// `empty = Variant`, an empty value is that variant (where Promtail treats `""` as the default).
macro_rules! keyword {
    ($(#[$meta:meta])* $name:ident $(, empty = $empty:ident)? { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The keyword as written in the configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $(if text.is_empty() {
                    return Ok(Self::$empty);
                })?
                match text.to_ascii_lowercase().as_str() {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(serde::de::Error::custom(format!(
                        "{text:?} is not one of: {}",
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

keyword! {
    /// `wal.when_full`.
    WhenFull {
        /// The oldest segment goes (counted).
        DropOldest = "drop_oldest",
        /// The sources pause; lines wait in the log files.
        Backpressure = "backpressure",
    }
}

keyword! {
    /// A relabel rule's `action` (Prometheus').
    RelabelAction, empty = Replace {
        Replace = "replace",
        Keep = "keep",
        Drop = "drop",
        KeepEqual = "keepequal",
        DropEqual = "dropequal",
        HashMod = "hashmod",
        LabelMap = "labelmap",
        LabelDrop = "labeldrop",
        LabelKeep = "labelkeep",
        Lowercase = "lowercase",
        Uppercase = "uppercase",
    }
}

keyword! {
    /// A `metrics` stage metric's `type`.
    MetricKind {
        Counter = "counter",
        Gauge = "gauge",
        Histogram = "histogram",
    }
}

keyword! {
    /// A `metrics` stage metric's `config.action`.
    MetricAction {
        Inc = "inc",
        Add = "add",
        Set = "set",
        Dec = "dec",
        Sub = "sub",
    }
}

keyword! {
    /// The `timestamp` stage's `action_on_failure`.
    OnTimestampFailure, empty = Fudge {
        /// Use the last timestamp this stage parsed, plus a nanosecond (Promtail's default).
        Fudge = "fudge",
        /// Keep the entry's timestamp.
        Skip = "skip",
    }
}

keyword! {
    /// The `match` stage's `action`.
    MatchAction, empty = Keep {
        Keep = "keep",
        Drop = "drop",
    }
}
