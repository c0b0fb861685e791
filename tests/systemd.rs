//! Running under systemd: `config/systemd/lokiship.service` passes `systemd-analyze verify` and
//! rates ≤ 2.0 in `systemd-analyze security`, and the process speaks `Type=notify` — READY=1 once
//! running, WATCHDOG=1 pings at half `WatchdogSec`, RELOADING=1 and READY=1 around a reload,
//! STOPPING=1 when told to stop.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{audit_config, gen_audit, FakeLoki, Lokiship};

fn unit_for_this_build(dir: &Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/systemd/lokiship.service"),
    )
    .unwrap()
    .replace("/usr/local/bin/lokiship", env!("CARGO_BIN_EXE_lokiship"));
    let path = dir.join("lokiship.service");
    std::fs::write(&path, unit).unwrap();
    path
}

fn systemd_analyze(args: &[&str], unit: &Path) -> Option<(bool, String)> {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), text))
}

#[test]
fn the_unit_verifies_and_its_exposure_is_at_most_2() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let Some((ok, text)) = systemd_analyze(&["verify"], &unit) else {
        support::skip("systemd-analyze is not installed (apt-get install systemd)");
        return;
    };
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify: {text}"
    );
    let (ok, text) =
        systemd_analyze(&["security", "--offline=yes", "--threshold=20"], &unit).unwrap();
    let overall = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_default();
    assert!(ok, "exposure over 2.0: {overall}\n{text}");
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "Restart=on-failure",
        "StateDirectory=lokiship",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "CapabilityBoundingSet=CAP_DAC_READ_SEARCH",
        "WatchdogSec=",
    ] {
        assert!(
            unit_text.lines().any(|l| l.starts_with(line)),
            "{line} missing"
        );
    }
}

/// The next notification on `socket`, within `timeout`.
fn next(socket: &UnixDatagram, timeout: Duration) -> Option<String> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).trim().to_string())
}

#[test]
fn notifies_ready_pings_the_watchdog_and_says_stopping() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    gen_audit(&log, 10, 1);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", config.display()))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "300000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lokiship = Lokiship { child };
    assert_eq!(
        next(&socket, Duration::from_secs(20)).as_deref(),
        Some("READY=1")
    );
    // Ready means running: the file is being shipped.
    loki.wait_for(Duration::from_secs(20), "the 10 lines", |r| r.len() >= 10);
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(
            next(&socket, Duration::from_secs(5)).as_deref(),
            Some("WATCHDOG=1")
        );
    }
    // Three pings at half of 300 ms take about 450 ms, not the full timeout each.
    assert!(started.elapsed() < Duration::from_secs(3));
    // `systemctl reload` (SIGHUP) of a changed config: RELOADING=1 with the time, then READY=1
    // once it runs, and no STOPPING=1 (systemd would take the service for stopping).
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("batchwait: 100ms"));
    std::fs::write(
        &config,
        text.replace("batchwait: 100ms", "batchwait: 200ms"),
    )
    .unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &lokiship.child.id().to_string()])
        .status()
        .unwrap();
    let mut during = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(n) = next(&socket, Duration::from_secs(10)) {
        assert!(
            Instant::now() < deadline,
            "no READY=1 after the reload: {during:?}"
        );
        let ready = n == "READY=1";
        during.push(n);
        if ready {
            break;
        }
    }
    let reloading = during
        .iter()
        .position(|n| n.starts_with("RELOADING=1\nMONOTONIC_USEC="));
    assert!(
        reloading.is_some() && during.last().map(String::as_str) == Some("READY=1"),
        "{during:?}"
    );
    assert!(!during.iter().any(|n| n.contains("STOPPING")), "{during:?}");
    assert!(lokiship.terminate().success());
    let mut rest = Vec::new();
    while let Some(n) = next(&socket, Duration::from_millis(500)) {
        rest.push(n);
    }
    assert!(rest.iter().any(|n| n == "STOPPING=1"), "{rest:?}");
}
