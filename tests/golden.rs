//! lokiship's push body for the golden input decodes to the same streams, labels, entries, timestamps
//! and structured metadata as the body Promtail 3.6.15 sent (../shared/spec/golden/).

mod support;

use std::path::Path;
use std::time::Duration;
use support::{decode, FakeLoki, Lokiship};

fn golden_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/golden")
}

/// Streams as a sorted set, so the order Loki does not care about does not matter.
fn normalized(req: lokiship::wire::logproto::PushRequest) -> Vec<(String, Vec<String>)> {
    let mut streams: Vec<(String, Vec<String>)> = req
        .streams
        .into_iter()
        .map(|s| {
            (
                s.labels,
                s.entries.iter().map(|e| format!("{e:?}")).collect(),
            )
        })
        .collect();
    streams.sort();
    streams
}

#[test]
fn push_matches_promtails_golden_body() {
    if !golden_dir().exists() {
        support::skip(&format!("{} is not there", golden_dir().display()));
        return;
    }
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        golden_dir().join("input-audit.log"),
        dir.path().join("input-audit.log"),
    )
    .unwrap();
    // Promtail's own config, with only the URL and the file paths pointed at this test.
    let config = std::fs::read_to_string(golden_dir().join("promtail-config.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:39123/loki/api/v1/push", &loki.url())
        .replace(
            "filename: positions.yaml",
            &format!("filename: {}/positions.yaml", dir.path().display()),
        )
        .replace(
            "__path__: input-audit.log",
            &format!("__path__: {}/input-audit.log", dir.path().display()),
        );
    let config_path = dir.path().join("promtail-config.yaml");
    std::fs::write(&config_path, config).unwrap();

    let lokiship = Lokiship::start(&config_path, &[]);
    loki.wait_for(Duration::from_secs(20), "the 3 golden entries", |r| {
        r.len() >= 3
    });
    assert!(lokiship.terminate().success());

    let requests = loki.requests();
    assert_eq!(requests.len(), 1, "one push, as Promtail sent");
    let req = &requests[0];
    assert_eq!(req.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(req.header("x-scope-orgid"), Some("ops"));
    assert_eq!(req.header("content-encoding"), None);
    assert!(req.header("user-agent").unwrap().starts_with("lokiship/"));

    let golden =
        decode(&std::fs::read(golden_dir().join("promtail-push.snappy")).unwrap()).unwrap();
    let ours = decode(&req.body).unwrap();
    assert!(ours.streams.iter().all(|s| s.hash == 0));
    assert_eq!(normalized(ours), normalized(golden));
}
