//! The dashboards and alert rules in `config/grafana/`: valid JSON and YAML, every PromQL
//! expression parsed (promql-parser) and naming only metrics lokiship serves, and every LogQL
//! query of the audit dashboard parsed and answered by a real Loki 3.6.15 — on audit events
//! shipped by lokiship's k8s-audit preset, where the panels find the requests they are about.

mod support;

use promql_parser::parser::Expr;
use promql_parser::util::{walk_expr, ExprVisitor};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::FakeLoki;

fn grafana_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/grafana")
        .join(name)
}

fn dashboard(name: &str) -> Value {
    let text = std::fs::read_to_string(grafana_file(name)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Grafana's variables as a query runs them (the ranges Grafana would pick, "All" for the
/// selections).
fn substitute(query: &str) -> String {
    query
        .replace("$__rate_interval", "5m")
        .replace("$__auto", "1m")
        .replace("$__range", "1h")
        .replace("$instance", ".+")
        .replace("$cluster", ".+")
        .replace("$user", ".+")
}

/// Every query of a dashboard: (panel title, datasource type, query with variables substituted).
fn queries(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap().to_string();
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            let kind = t["datasource"]["type"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                ["prometheus", "loki"].contains(&kind.as_str()),
                "{title}: datasource {kind:?}"
            );
            out.push((title.clone(), kind, substitute(t["expr"].as_str().unwrap())));
        }
    }
    out
}

/// The metric names a PromQL expression selects.
fn metric_names(expr: &str) -> Result<Vec<String>, String> {
    struct Names(Vec<String>);
    impl ExprVisitor for Names {
        type Error = ();
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
            let selector = match e {
                Expr::VectorSelector(vs) => Some(vs),
                Expr::MatrixSelector(ms) => Some(&ms.vs),
                _ => None,
            };
            if let Some(name) = selector.and_then(|vs| vs.name.clone()) {
                self.0.push(name);
            }
            Ok(true)
        }
    }
    let ast = promql_parser::parser::parse(expr)?;
    let mut names = Names(Vec::new());
    let _ = walk_expr(&mut names, &ast);
    Ok(names.0)
}

/// The alert rules: (name, expression).
fn alert_rules() -> Vec<(String, String, Value)> {
    let text = std::fs::read_to_string(grafana_file("alerts.yaml")).unwrap();
    let rules: Value = serde_yaml_ng::from_str(&text).unwrap();
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_string(),
                r["expr"].as_str().unwrap().to_string(),
                r.clone(),
            )
        })
        .collect()
}

#[test]
fn the_dashboards_are_well_formed() {
    for name in ["lokiship-health.json", "kube-audit.json"] {
        let d = dashboard(name);
        assert!(d["uid"].is_string() && d["title"].is_string(), "{name}");
        let panels = d["panels"].as_array().unwrap();
        let ids: BTreeSet<_> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
        assert_eq!(ids.len(), panels.len(), "{name}: panel ids are unique");
        // No panel hides another: their grid cells do not overlap.
        let cells: Vec<(u64, u64)> = panels
            .iter()
            .flat_map(|p| {
                let g = &p["gridPos"];
                let (x, y, w, h) = (
                    g["x"].as_u64().unwrap(),
                    g["y"].as_u64().unwrap(),
                    g["w"].as_u64().unwrap(),
                    g["h"].as_u64().unwrap(),
                );
                assert!(x + w <= 24, "{name}: {} is wider than the grid", p["title"]);
                (x..x + w).flat_map(move |cx| (y..y + h).map(move |cy| (cx, cy)))
            })
            .collect();
        let unique: BTreeSet<_> = cells.iter().collect();
        assert_eq!(unique.len(), cells.len(), "{name}: panels overlap");
        // Every datasource a panel uses is one of the dashboard's variables, so an import asks for it.
        let variables: BTreeSet<String> = d["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("${{{}}}", v["name"].as_str().unwrap()))
            .collect();
        for p in panels {
            let uid = p["datasource"]["uid"].as_str().unwrap().to_string();
            assert!(
                variables.contains(&uid),
                "{name}: {} uses datasource {uid}",
                p["title"]
            );
        }
    }
}

#[test]
fn every_promql_expression_parses() {
    let mut checked = 0;
    for name in ["lokiship-health.json", "kube-audit.json"] {
        for (title, kind, expr) in queries(&dashboard(name)) {
            if kind == "prometheus" {
                metric_names(&expr).unwrap_or_else(|e| panic!("{name}: {title}: {expr}: {e}"));
                checked += 1;
            }
        }
    }
    for (alert, expr, rule) in alert_rules() {
        metric_names(&expr).unwrap_or_else(|e| panic!("alert {alert}: {expr}: {e}"));
        assert!(
            rule["labels"]["severity"].is_string(),
            "alert {alert} has a severity"
        );
        assert!(
            rule["annotations"]["summary"].is_string(),
            "alert {alert} has a summary"
        );
        if let Some(d) = rule["for"].as_str() {
            promql_parser::util::parse_duration(d)
                .unwrap_or_else(|e| panic!("alert {alert}: for {d}: {e}"));
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} expressions");
    // The parser does refuse what Prometheus refuses.
    assert!(metric_names("sum by (le (rate(x[5m]))").is_err());
}

/// The metric names a lokiship running the k8s-audit preset serves on `/metrics`, as Prometheus
/// stores them (counters with `_total`, histograms as `_bucket`, `_count` and `_sum`).
fn served_metric_names() -> BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    support::gen_audit(&dir.path().join("audit.log"), 300, 5);
    let loki = FakeLoki::start();
    let port = support::free_port();
    let mut child = preset(&dir, &loki.url(), port);
    loki.wait_for(Duration::from_secs(30), "entries", |got| !got.is_empty());
    let text = support::http_get(port, "/metrics").unwrap();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = support::wait_timeout(&mut child, Duration::from_secs(30));
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_count", "_sum"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// lokiship running `config/k8s-audit.yaml` on `dir/audit.log`, pushing to `url`.
fn preset(dir: &tempfile::TempDir, url: &str, port: u16) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!(
            "-config.file={}",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/k8s-audit.yaml")
                .display()
        ))
        .arg("-config.expand-env=true")
        .env("LOKI_URL", url.trim_end_matches("/loki/api/v1/push"))
        .env("CLUSTER", "test")
        .env("AUDIT_LOG_DIR", dir.path())
        .env("LOKISHIP_POSITIONS", dir.path().join("positions.yaml"))
        .env("LOKISHIP_LISTEN_ADDRESS", "127.0.0.1")
        .env("LOKISHIP_LISTEN_PORT", port.to_string())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn every_metric_the_dashboards_and_alerts_use_is_served() {
    let served = served_metric_names();
    let mut used = BTreeSet::new();
    for name in ["lokiship-health.json", "kube-audit.json"] {
        for (_, kind, expr) in queries(&dashboard(name)) {
            if kind == "prometheus" {
                used.extend(metric_names(&expr).unwrap());
            }
        }
    }
    for (_, expr, _) in alert_rules() {
        used.extend(metric_names(&expr).unwrap());
    }
    // `up` is Prometheus' own.
    let missing: Vec<_> = used
        .iter()
        .filter(|n| *n != "up" && !served.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "not on lokiship's /metrics: {missing:?}"
    );
}

/// Audit events of the last minutes, as the API server logs them: the requests the audit
/// dashboard's panels are about, among ordinary ones.
fn recent_audit_events() -> Vec<Value> {
    let now = chrono::Utc::now();
    let event = |i: i64,
                 user: &str,
                 verb: &str,
                 resource: &str,
                 sub: Option<&str>,
                 ns: &str,
                 name: &str,
                 code: u16| {
        let t = (now - chrono::Duration::seconds(300 - i * 10))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut object =
            json!({"resource": resource, "namespace": ns, "name": name, "apiVersion": "v1"});
        if let Some(sub) = sub {
            object["subresource"] = json!(sub);
        }
        json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": format!("00000000-0000-0000-0000-{i:012}"), "stage": "ResponseComplete",
            "requestURI": format!("/api/v1/namespaces/{ns}/{resource}/{name}"), "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]},
            "sourceIPs": ["10.0.0.5"], "userAgent": "kubectl/v1.36.2",
            "objectRef": object, "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": t, "stageTimestamp": t,
        })
    };
    vec![
        event(
            0,
            "alice",
            "get",
            "secrets",
            None,
            "default",
            "db-password",
            200,
        ),
        event(1, "alice", "list", "pods", None, "web", "", 200),
        event(
            2,
            "mallory",
            "get",
            "secrets",
            None,
            "kube-system",
            "admin-token",
            403,
        ),
        event(3, "mallory", "list", "nodes", None, "", "", 401),
        event(
            4,
            "bob",
            "create",
            "pods",
            Some("exec"),
            "web",
            "shop-7d9",
            101,
        ),
        event(
            5,
            "bob",
            "delete",
            "configmaps",
            None,
            "kube-system",
            "coredns",
            200,
        ),
        event(6, "bob", "delete", "pods", None, "web", "shop-7d9", 200),
        event(
            7,
            "system:kube-scheduler",
            "watch",
            "pods",
            None,
            "",
            "",
            200,
        ),
    ]
}

#[test]
fn a_real_loki_answers_every_query_of_the_audit_dashboard() {
    let Some(loki) = support::peers::RealLoki::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let events = recent_audit_events();
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(dir.path().join("audit.log"), text).unwrap();
    let mut child = preset(&dir, &loki.push_url(), support::free_port());
    support::eventually(Duration::from_secs(60), "the events in Loki", || {
        loki.instant_sum(r#"sum(count_over_time({job="kube-audit"}[1h]))"#) == events.len() as u64
    });
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = support::wait_timeout(&mut child, Duration::from_secs(30));

    let (start, end) = (
        (chrono::Utc::now() - chrono::Duration::hours(1)).timestamp(),
        chrono::Utc::now().timestamp() + 60,
    );
    let mut answers = std::collections::BTreeMap::new();
    for (title, kind, query) in queries(&dashboard("kube-audit.json")) {
        if kind != "loki" {
            continue;
        }
        let path = format!(
            "/loki/api/v1/query_range?query={}&start={start}&end={end}&step=60&limit=1000",
            support::peers::encode(&query)
        );
        let (status, body) = loki.get(&path).unwrap();
        assert_eq!(status, 200, "{title}: Loki refuses {query}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        answers.insert(title, v["data"]["result"].clone());
    }
    assert_eq!(answers.len(), 10, "every Loki panel was asked");
    // The log panels find exactly the requests they are about, formatted for a reader.
    let lines = |title: &str| -> Vec<String> {
        let mut out: Vec<String> = answers[title]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["values"].as_array().unwrap().iter())
            .map(|v| v[1].as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        lines("Secret reads"),
        [
            "alice get secrets default/db-password → 200 from 10.0.0.5",
            "mallory get secrets kube-system/admin-token → 403 from 10.0.0.5"
        ]
    );
    assert_eq!(
        lines("What was refused"),
        [
            "mallory get secrets kube-system/admin-token → 403 from 10.0.0.5",
            "mallory list nodes / → 401 from 10.0.0.5"
        ]
    );
    assert_eq!(
        lines("pods/exec, attach and port-forward"),
        ["bob exec web/shop-7d9 → 101 from 10.0.0.5"]
    );
    assert_eq!(
        lines("Deletes in kube-system"),
        ["bob delete configmaps kube-system/coredns → 200 from 10.0.0.5"]
    );
    assert_eq!(lines("Who did what").len(), events.len());
    // The metric panels count by the labels they name.
    let top_refused: BTreeSet<String> = answers["Top refused users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["metric"]["user"].as_str().unwrap(),
                s["metric"]["verb"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        top_refused,
        BTreeSet::from(["mallory get".to_string(), "mallory list".to_string()])
    );
    let verbs: BTreeSet<&str> = answers["Requests by verb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["verb"].as_str().unwrap())
        .collect();
    assert_eq!(
        verbs,
        BTreeSet::from(["create", "delete", "get", "list", "watch"])
    );
}
