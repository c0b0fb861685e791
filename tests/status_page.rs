//! The status pages of a running lokiship: `/targets` lists each file with its position, size,
//! lag and state, each receiver, and each client with its queues and last error; `/config` shows
//! the config with secrets masked. Loaded in headless Chromium, as an operator's browser would;
//! a screenshot of each page is kept in `target/test-artifacts/`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{config, gen_audit, FakeLoki, Lokiship};

/// A config with an audit job on `dir/logs/*.log`, a push receiver, a client with a password,
/// and the HTTP server on `port`.
fn config_file(dir: &Path, url: &str, port: u16, push_port: u16) -> PathBuf {
    let text = format!(
        "server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}
positions: {{filename: {dir}/positions.yaml, sync_period: 200ms}}
target_config: {{sync_period: 60s}}
clients:
  - url: {url}
    batchwait: 100ms
    basic_auth: {{username: shipper, password: hunter2-very-secret}}
    backoff_config: {{min_period: 20ms, max_period: 100ms, max_retries: 100}}
scrape_configs:
  - job_name: audit
    static_configs:
      - targets: [localhost]
        labels: {{job: audit, __path__: '{dir}/logs/*.log'}}
    pipeline_stages:
{stages}
  - job_name: pushed
    loki_push_api:
      server: {{http_listen_address: 127.0.0.1, http_listen_port: {push_port}}}
      labels: {{via: push}}
",
        dir = dir.display(),
        stages = config::AUDIT_STAGES,
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The rows of the table with id `table` in `html`, each as its cells' text.
fn rows(html: &str, table: &str) -> Vec<Vec<String>> {
    let start = html
        .find(&format!("<table id=\"{table}\">"))
        .unwrap_or_else(|| panic!("no table {table}"));
    let body = &html[start..start + html[start..].find("</table>").unwrap()];
    body.split("<tr>")
        .skip(2) // what precedes the first row, and the header
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let text = &cell[cell.find('>').unwrap() + 1..];
                    text[..text.find("</td>").unwrap()].to_string()
                })
                .collect()
        })
        .collect()
}

fn number(cell: &str) -> u64 {
    cell.split_whitespace().next().unwrap().parse().unwrap()
}

/// The page at `url` as headless Chromium renders it (its DOM after scripts and layout), and a
/// screenshot of it in `target/test-artifacts/<name>.png`. `None` when Chromium is missing.
fn in_chromium(url: &str, name: &str) -> Option<String> {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())?;
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let run = |mode: &str| {
        let out = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(mode)
            .arg(url)
            .output()
            .expect("running chromium");
        assert!(
            out.status.success(),
            "chromium {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let screenshot = artifacts.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&screenshot);
    run(&format!("--screenshot={}", screenshot.display()));
    let png = std::fs::read(&screenshot).expect("chromium wrote no screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "an empty screenshot"
    );
    Some(run("--dump-dom"))
}

#[test]
fn the_status_pages_show_files_receivers_clients_and_the_masked_config() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    gen_audit(&logs.join("audit.log"), 120, 3);
    gen_audit(&logs.join("other.log"), 40, 4);
    let loki = FakeLoki::start();
    // Loki fails the first pushes: the client's last error stays on the page.
    loki.script(&[503, 503]);
    let (port, push_port) = (support::free_port(), support::free_port());
    let config = config_file(dir.path(), &loki.url(), port, push_port);
    let lokiship = Lokiship::start(&config, &[]);
    let sizes: Vec<u64> = ["audit.log", "other.log"]
        .iter()
        .map(|f| std::fs::metadata(logs.join(f)).unwrap().len())
        .collect();
    // Wait until the page says both files are delivered to their end: as the acknowledgements
    // arrive, not at the next look at the files (60 s away).
    let mut html = String::new();
    support::eventually(
        Duration::from_secs(30),
        "both files acknowledged on /targets",
        || {
            html = support::http_get(port, "/targets")
                .and_then(|r| support::status_and_body(&r))
                .map(|(_, body)| body)
                .unwrap_or_default();
            html.contains("<table id=\"files\">")
                && rows(&html, "files").len() == 2
                && rows(&html, "files")
                    .iter()
                    .zip(&sizes)
                    .all(|(r, size)| number(&r[5]) == *size)
        },
    );

    let Some(dom) = in_chromium(&format!("http://127.0.0.1:{port}/targets"), "targets") else {
        support::skip("chromium is not installed (apt-get install chromium)");
        return;
    };
    assert!(dom.contains("<title>lokiship: targets</title>"));
    let files = rows(&dom, "files");
    assert_eq!(files.len(), 2, "{dom}");
    for (row, (name, size)) in files
        .iter()
        .zip(["audit.log", "other.log"].iter().zip(&sizes))
    {
        assert_eq!(row[0], logs.join(name).display().to_string());
        assert!(row[1].contains(r#"job="audit""#), "labels: {}", row[1]);
        assert_eq!(row[2], "following");
        assert_eq!(
            (number(&row[3]), number(&row[4]), number(&row[5])),
            (*size, *size, *size)
        );
        assert_eq!(number(&row[6]), 0, "no lag once delivered");
    }
    let receivers = rows(&dom, "receivers");
    assert_eq!(
        receivers,
        [["pushed", "loki_push_api", &format!("127.0.0.1:{push_port}")]]
    );
    let clients = rows(&dom, "clients");
    assert_eq!(clients.len(), 1);
    let host = loki.url().split('/').nth(2).unwrap().to_string();
    assert_eq!(clients[0][0], host);
    assert_eq!(clients[0][1], "0 entries, 0 B");
    assert_eq!(clients[0][3], "pushing");
    assert!(
        clients[0][5].contains("503"),
        "the last error: {}",
        clients[0][5]
    );
    assert!(dom.contains("id=\"state\" class=\"ok\">ready<"), "ready");

    let dom = in_chromium(&format!("http://127.0.0.1:{port}/config"), "config").unwrap();
    assert!(dom.contains("username: shipper"), "{dom}");
    assert!(dom.contains("password: &lt;secret&gt;"), "{dom}");
    assert!(!dom.contains("hunter2"), "the password is on the page");
    drop(lokiship);
}
