//! The status pages, for an operator with a browser: `/targets` (each followed file with its
//! position, size, lag and state; each receiver; each client with its queues and last error) and
//! `/config` (the config file as read, secrets masked). Both are rendered from what the sources
//! and clients publish ([`crate::metrics::status`], [`ClientHealth`], the queue gauges); neither
//! holds a lock while it writes HTML.

use super::Readiness;
use crate::client::health::ClientHealth;
use crate::metrics::status::{board, FileStatus, ReceiverStatus};
use crate::metrics::{metrics, HostLabels};
use std::fmt::Write;
use std::time::SystemTime;

/// A client's numbers on the status page.
struct ClientRow {
    host: String,
    queue_bytes: i64,
    queue_entries: i64,
    wal_bytes: i64,
    wal_entries: i64,
    failing_for: Option<std::time::Duration>,
    last_delivery: Option<SystemTime>,
    last_error: Option<(SystemTime, String)>,
}

impl ClientRow {
    fn of(client: &ClientHealth) -> Self {
        let host = HostLabels {
            host: client.host.clone(),
        };
        let m = metrics();
        Self {
            queue_bytes: m.client_queue_bytes.get_or_create(&host).get(),
            queue_entries: m.client_queue_entries.get_or_create(&host).get(),
            wal_bytes: m.wal_bytes.get_or_create(&host).get(),
            wal_entries: m.wal_entries.get_or_create(&host).get(),
            host: host.host,
            failing_for: client.failing_for(),
            last_delivery: client.last_delivery(),
            last_error: client.last_error(),
        }
    }
}

/// `/targets`.
pub fn targets_page(ready: &Readiness) -> String {
    let (published, files) = board().files();
    let receivers = board().receivers();
    let clients: Vec<ClientRow> = ready.clients().iter().map(|c| ClientRow::of(c)).collect();
    let mut html = page_head("targets");
    let state = match ready.why_not() {
        None => "ready".to_string(),
        Some(why) => format!("not ready: {why}"),
    };
    let _ = write!(
        html,
        "<p id=\"state\" class=\"{}\">{}</p>",
        if ready.get() { "ok" } else { "bad" },
        escape(&state)
    );
    files_table(&mut html, published, &files);
    receivers_table(&mut html, &receivers);
    clients_table(&mut html, &clients);
    html.push_str("</body></html>\n");
    html
}

fn files_table(html: &mut String, published: Option<SystemTime>, files: &[FileStatus]) {
    let _ = write!(html, "<h2>Files <small>({}", files.len());
    if let Some(at) = published {
        let _ = write!(html, ", as of {}", time(at));
    }
    html.push_str(")</small></h2>");
    table_head(
        html,
        "files",
        &[
            "path",
            "labels",
            "state",
            "size",
            "read",
            "acknowledged",
            "lag",
        ],
    );
    for f in files {
        let _ = write!(
            html,
            "<tr><td class=\"path\">{}</td><td>{}</td><td class=\"state\">{}</td>{}{}{}{}</tr>",
            escape(&f.path),
            escape(&f.labels),
            escape(f.state),
            bytes_cell(f.size as i64),
            bytes_cell(f.read as i64),
            bytes_cell(f.acknowledged as i64),
            bytes_cell(f.lag() as i64),
        );
    }
    html.push_str("</table>");
}

fn receivers_table(html: &mut String, receivers: &[ReceiverStatus]) {
    let _ = write!(
        html,
        "<h2>Receivers and journals <small>({})</small></h2>",
        receivers.len()
    );
    table_head(html, "receivers", &["job", "kind", "address"]);
    for r in receivers {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.job),
            escape(&r.kind),
            escape(&r.address)
        );
    }
    html.push_str("</table>");
}

fn clients_table(html: &mut String, clients: &[ClientRow]) {
    let _ = write!(html, "<h2>Clients <small>({})</small></h2>", clients.len());
    table_head(
        html,
        "clients",
        &[
            "host",
            "queue",
            "disk queue",
            "state",
            "last delivery",
            "last error",
        ],
    );
    for c in clients {
        let state = match c.failing_for {
            None => "<td class=\"ok\">pushing</td>".to_string(),
            Some(d) => format!("<td class=\"bad\">failing for {}s</td>", d.as_secs()),
        };
        let error = c.last_error.as_ref().map_or_else(
            || "—".to_string(),
            |(at, what)| format!("{}: {}", time(*at), escape(what)),
        );
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{} entries, {}</td><td>{} entries, {}</td>{state}<td>{}</td><td class=\"error\">{error}</td></tr>",
            escape(&c.host),
            c.queue_entries,
            human_bytes(c.queue_bytes),
            c.wal_entries,
            human_bytes(c.wal_bytes),
            c.last_delivery.map_or_else(|| "never".to_string(), time),
        );
    }
    html.push_str("</table>");
}

/// Opens the table `id` with its header row of `columns`.
fn table_head(html: &mut String, id: &str, columns: &[&str]) {
    let _ = write!(html, "<table id=\"{id}\"><tr>");
    for c in columns {
        let _ = write!(html, "<th>{c}</th>");
    }
    html.push_str("</tr>");
}

/// `/config`: the config file as it was read, with secrets replaced by `<secret>`.
pub fn config_page(masked_config: &str) -> String {
    let mut html = page_head("config");
    let _ = writeln!(
        html,
        "<p>The config file as lokiship read it (after <code>-config.expand-env</code>); passwords, tokens and credentials are masked. Flags on the command line override it.</p><pre id=\"config\">{}</pre></body></html>",
        escape(masked_config)
    );
    html
}

fn page_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"10\">\
         <title>lokiship: {title}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}\
         table{{border-collapse:collapse;margin-bottom:1.5em}}\
         th,td{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}\
         th{{background:#f2f2f2}} td.num{{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}}\
         .ok{{color:#1a7f37}} .bad{{color:#cf222e}} td.error{{max-width:40em;overflow-wrap:anywhere}}\
         pre{{background:#f6f8fa;padding:1em}} nav a{{margin-right:1em}}\
         </style></head><body><nav><a href=\"/targets\">targets</a><a href=\"/config\">config</a>\
         <a href=\"/metrics\">metrics</a><a href=\"/ready\">ready</a></nav>\
         <h1>lokiship {} — {title}</h1>",
        crate::VERSION
    )
}

/// A table cell with a byte count and, when it is large, the same in KiB/MiB/GiB.
fn bytes_cell(n: i64) -> String {
    if n < 1024 {
        return format!("<td class=\"num\">{n}</td>");
    }
    format!("<td class=\"num\">{n} ({})</td>", human_bytes(n))
}

fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn time(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Text made safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_errors_cannot_inject_markup() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn sizes_are_readable() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(bytes_cell(10), "<td class=\"num\">10</td>");
    }
}
