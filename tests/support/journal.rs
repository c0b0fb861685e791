//! Real journal files for tests: Debian's `systemd-journal-remote` writes them from the export
//! format, and `journalctl --directory` reads them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";

/// Whether this machine can write and read journal files; says why not.
pub fn have_journal_tools() -> bool {
    let journalctl = Command::new("journalctl").arg("--version").output().is_ok();
    if !journalctl || !Path::new(JOURNAL_REMOTE).exists() {
        super::skip("journalctl and systemd-journal-remote are needed (apt-get install systemd-journal-remote)");
        return false;
    }
    true
}

/// One journal entry: `(field, value)` pairs; a value of bytes that are not UTF-8 is written as
/// a binary field.
pub type Fields = Vec<(&'static str, Vec<u8>)>;

/// `n` entries of `first..first+n`, a minute old, each with unit, priority and host.
pub fn entries(first: usize, n: usize) -> Vec<Fields> {
    (first..first + n)
        .map(|i| {
            vec![
                ("MESSAGE", format!("message {i}").into_bytes()),
                ("PRIORITY", (i % 8).to_string().into_bytes()),
                (
                    "_SYSTEMD_UNIT",
                    if i % 2 == 0 {
                        "ssh.service"
                    } else {
                        "cron.service"
                    }
                    .into(),
                ),
                ("_HOSTNAME", b"node-1".to_vec()),
                ("SYSLOG_IDENTIFIER", b"sshd".to_vec()),
            ]
        })
        .collect()
}

/// Writes `entries` as the journal file `dir/name.journal`.
pub fn write_journal(dir: &Path, name: &str, entries: &[Fields], first_seq: usize) {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
        - 60_000_000;
    let mut export = Vec::new();
    for (i, fields) in entries.iter().enumerate() {
        let seq = (first_seq + i) as u64;
        write!(
            export,
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n",
            now_us + seq,
            seq + 1
        )
        .unwrap();
        for (name, value) in fields {
            if std::str::from_utf8(value).is_ok() && !value.contains(&b'\n') {
                export.extend_from_slice(format!("{name}=").as_bytes());
                export.extend_from_slice(value);
            } else {
                export.extend_from_slice(format!("{name}\n").as_bytes());
                export.extend_from_slice(&(value.len() as u64).to_le_bytes());
                export.extend_from_slice(value);
            }
            export.push(b'\n');
        }
        export.push(b'\n');
    }
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!(
            "--output={}",
            dir.join(format!("{name}.journal")).display()
        ))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&export).unwrap();
    assert!(child.wait().unwrap().success());
}
