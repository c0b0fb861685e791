//! `kubernetes_sd_configs` against an in-process API server that speaks the real protocol (a pod
//! list, then a watch stream of ADDED / MODIFIED / DELETED / BOOKMARK events, a 410 Gone, bearer
//! token auth), scripted so that each part of the watch contract is seen: a dropped watch resumes
//! from the last resourceVersion (the bookmark's), a 410 lists again and what the new list lacks is
//! gone, a request without the token is refused.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{eventually, FakeLoki, Lokiship};

const NODE: &str = "node-a";
const TOKEN: &str = "s3cret-token";

fn pod(name: &str, uid: &str, rv: u32, tier: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"shop","uid":"{uid}","resourceVersion":"{rv}","labels":{{"tier":"{tier}"}}}},"spec":{{"nodeName":"{NODE}","containers":[{{"name":"app","image":"x"}}]}},"status":{{"phase":"Running","podIP":"10.0.0.9"}}}}"#
    )
}

fn event(kind: &str, object: &str) -> String {
    format!(r#"{{"type":"{kind}","object":{object}}}"#)
}

/// What the fake server saw: each request's path and query, and whether it had the token.
#[derive(Default)]
struct Seen {
    requests: Vec<String>,
    unauthorized: usize,
}

/// The script: the answer to the n-th list and the n-th watch.
fn answer(seen: &Mutex<Seen>, query: &str, lists: &mut usize, watches: &mut usize) -> Response {
    let watch = query.contains("watch=true") || query.contains("watch=1");
    if !watch {
        *lists += 1;
        let items = match *lists {
            1 => vec![pod("a", "uid-a", 10, "one")],
            _ => vec![pod("a", "uid-a", 13, "two"), pod("c", "uid-c", 20, "one")],
        };
        let rv = if *lists == 1 { 10 } else { 20 };
        return Response::Body(format!(
            r#"{{"apiVersion":"v1","kind":"PodList","metadata":{{"resourceVersion":"{rv}"}},"items":[{}]}}"#,
            items.join(",")
        ));
    }
    *watches += 1;
    seen.lock()
        .unwrap()
        .requests
        .push(format!("watch {}: {query}", *watches));
    match *watches {
        1 => Response::Events(
            vec![
                event("ADDED", &pod("b", "uid-b", 11, "one")),
                event(
                    "BOOKMARK",
                    r#"{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12"}}"#,
                ),
            ],
            Hold::For(Duration::from_secs(2)),
        ),
        2 => Response::Events(
            vec![
                event("MODIFIED", &pod("a", "uid-a", 13, "two")),
                event("DELETED", &pod("b", "uid-b", 14, "one")),
                event(
                    "ERROR",
                    r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 14 (20)","reason":"Expired","code":410}"#,
                ),
            ],
            Hold::For(Duration::from_secs(2)),
        ),
        _ => Response::Events(Vec::new(), Hold::For(Duration::from_secs(120))),
    }
}

enum Response {
    Body(String),
    /// The events, then the stream is held open that long (lokiship reads what a pod logs
    /// meanwhile) and ended.
    Events(Vec<String>, Hold),
}

enum Hold {
    For(Duration),
}

fn serve(stream: TcpStream, seen: Arc<Mutex<Seen>>, counts: Arc<Mutex<(usize, usize)>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if line.to_ascii_lowercase().starts_with("authorization:")
            && line.contains(&format!("Bearer {TOKEN}"))
        {
            authorized = true;
        }
    }
    let target = request.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut out = stream;
    if !authorized {
        seen.lock().unwrap().unauthorized += 1;
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
        let _ = write!(out, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        return;
    }
    let query = target.split_once('?').map_or("", |(_, q)| q).to_string();
    let response = {
        let mut c = counts.lock().unwrap();
        let (mut lists, mut watches) = *c;
        let r = answer(&seen, &query, &mut lists, &mut watches);
        *c = (lists, watches);
        r
    };
    match response {
        Response::Body(body) => {
            let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
        Response::Events(events, hold) => {
            let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
            for e in events {
                let chunk = e + "\n";
                let _ = write!(out, "{:x}\r\n{chunk}\r\n", chunk.len());
                let _ = out.flush();
            }
            let Hold::For(time) = hold;
            std::thread::sleep(time);
            let _ = write!(out, "0\r\n\r\n");
        }
    }
}

fn write_log(logs: &Path, uid: &str, lines: &[&str]) {
    let dir = logs.join(format!("shop_x_{uid}")).join("app");
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("0.log"))
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

#[test]
fn the_watch_resumes_after_a_drop_and_lists_again_after_410_gone() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let counts = Arc::new(Mutex::new((0, 0)));
    {
        let (seen, counts) = (seen.clone(), counts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, counts) = (seen.clone(), counts.clone());
                std::thread::spawn(move || serve(stream, seen, counts));
            }
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("pods");
    for uid in ["uid-a", "uid-b", "uid-c"] {
        write_log(&logs, uid, &[&format!("first line of {uid}")]);
    }
    let loki = FakeLoki::start();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{disable: true}}
positions: {{filename: {d}/positions.yaml}}
clients: [{{url: '{url}', batchwait: 100ms}}]
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        api_server: http://127.0.0.1:{port}
        bearer_token: {TOKEN}
        namespaces: {{names: [shop]}}
    relabel_configs:
      - {{source_labels: [__meta_kubernetes_pod_name], target_label: pod}}
      - {{source_labels: [__meta_kubernetes_pod_label_tier], target_label: tier}}
      - source_labels: [__meta_kubernetes_pod_uid, __meta_kubernetes_pod_container_name]
        separator: /
        replacement: {logs}/*$1/*.log
        target_label: __path__
"#,
            d = dir.path().display(),
            url = loki.url(),
            logs = logs.display(),
        ),
    )
    .unwrap();
    let lokiship = Lokiship::start_with_env(&config, &[], &[("HOSTNAME", NODE)]);
    let wait = Duration::from_secs(30);
    loki.wait_for(
        wait,
        "the lines of a, b (added) and c (listed after the 410)",
        |r| {
            ["uid-a", "uid-b", "uid-c"]
                .iter()
                .all(|u| r.iter().any(|e| e.line == format!("first line of {u}")))
        },
    );
    eventually(wait, "a third watch, after the second list", || {
        counts.lock().unwrap().1 >= 3
    });
    let requests = seen.lock().unwrap().requests.clone();
    assert!(
        requests[1].contains("resourceVersion=12"),
        "the second watch resumes from the bookmark's resourceVersion: {requests:?}"
    );
    assert!(
        requests[2].contains("resourceVersion=20"),
        "after the 410, a list, then a watch from the new list's version: {requests:?}"
    );
    assert_eq!(
        counts.lock().unwrap().0,
        2,
        "one list at the start, one after the 410"
    );
    // a's new label applies to what it writes next; b, deleted, is no longer read.
    write_log(&logs, "uid-b", &["b after its deletion"]);
    write_log(&logs, "uid-a", &["a after its change"]);
    loki.wait_for(wait, "a's next line with tier two", |r| {
        r.iter()
            .any(|e| e.line == "a after its change" && e.labels.contains(r#"tier="two""#))
    });
    assert!(
        !loki
            .accepted()
            .iter()
            .any(|e| e.line == "b after its deletion"),
        "a deleted pod's file is not read"
    );
    assert_eq!(
        seen.lock().unwrap().unauthorized,
        0,
        "every request had the token"
    );
    drop(lokiship);

    // Without the token, nothing is discovered, and the refusals are retried.
    let before = seen.lock().unwrap().unauthorized;
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(TOKEN, "wrong");
    std::fs::write(&config, text).unwrap();
    let http = support::enable_server(&config);
    let _lokiship = Lokiship::start_with_env(&config, &[], &[("HOSTNAME", NODE)]);
    eventually(wait, "two refused requests", || {
        seen.lock().unwrap().unauthorized >= before + 2
    });
    eventually(wait, "the failures counted", || {
        support::http_get(http, "/metrics").is_some_and(|m| {
            m.contains(r#"lokiship_kubernetes_discovery_errors_total{job="pods",reason="watch"}"#)
        })
    });
}

/// An API server whose accepted token changes: lists pod `a`; once the token rotated, pod `d` is
/// in the list and added in every watch. Every watch ends after a second, so requests keep coming.
fn serve_rotating(stream: TcpStream, token: Arc<Mutex<String>>, refused: Arc<Mutex<usize>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let current = token.lock().unwrap().clone();
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if line.to_ascii_lowercase().starts_with("authorization:")
            && line.trim_end().ends_with(&format!("Bearer {current}"))
        {
            authorized = true;
        }
    }
    let mut out = stream;
    if !authorized {
        *refused.lock().unwrap() += 1;
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
        let _ = write!(out, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        return;
    }
    let rotated = current != "token-one";
    if request.contains("watch=true") || request.contains("watch=1") {
        let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        if rotated {
            let chunk = event("ADDED", &pod("d", "uid-d", 30, "one")) + "\n";
            let _ = write!(out, "{:x}\r\n{chunk}\r\n", chunk.len());
        }
        let _ = out.flush();
        std::thread::sleep(Duration::from_secs(1));
        let _ = write!(out, "0\r\n\r\n");
        return;
    }
    let mut items = vec![pod("a", "uid-a", 10, "one")];
    if rotated {
        items.push(pod("d", "uid-d", 30, "one"));
    }
    let rv = if rotated { 30 } else { 10 };
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"PodList","metadata":{{"resourceVersion":"{rv}"}},"items":[{}]}}"#,
        items.join(",")
    );
    let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
}

#[test]
fn a_rotated_token_file_is_read_again() {
    // Tokens are rotated (bound service account tokens: hourly); the file is read at each request,
    // as Prometheus reads it, trimmed (this one ends in a newline, as `echo` writes it).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let token = Arc::new(Mutex::new("token-one".to_string()));
    let refused = Arc::new(Mutex::new(0usize));
    {
        let (token, refused) = (token.clone(), refused.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (token, refused) = (token.clone(), refused.clone());
                std::thread::spawn(move || serve_rotating(stream, token, refused));
            }
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("pods");
    for uid in ["uid-a", "uid-d"] {
        write_log(&logs, uid, &[&format!("first line of {uid}")]);
    }
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "token-one\n").unwrap();
    let loki = FakeLoki::start();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{disable: true}}
positions: {{filename: {d}/positions.yaml}}
clients: [{{url: '{url}', batchwait: 100ms}}]
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        api_server: http://127.0.0.1:{port}
        bearer_token_file: {token}
        namespaces: {{names: [shop]}}
    relabel_configs:
      - {{source_labels: [__meta_kubernetes_pod_name], target_label: pod}}
      - source_labels: [__meta_kubernetes_pod_uid, __meta_kubernetes_pod_container_name]
        separator: /
        replacement: {logs}/*$1/*.log
        target_label: __path__
"#,
            d = dir.path().display(),
            url = loki.url(),
            logs = logs.display(),
            token = token_file.display(),
        ),
    )
    .unwrap();
    let _lokiship = Lokiship::start_with_env(&config, &[], &[("HOSTNAME", NODE)]);
    loki.wait_for(Duration::from_secs(30), "pod a's line", |r| {
        r.iter().any(|e| e.line == "first line of uid-a")
    });
    std::fs::write(&token_file, "token-two\n").unwrap();
    *token.lock().unwrap() = "token-two".into();
    // Only the new token lists pod d: the old one would be refused from now on.
    loki.wait_for(
        Duration::from_secs(30),
        "pod d's line, listed with the new token",
        |r| r.iter().any(|e| e.line == "first line of uid-d"),
    );
    assert_eq!(
        *refused.lock().unwrap(),
        0,
        "a request went with a stale token"
    );
}
