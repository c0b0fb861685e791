//! The ledger, the copytruncate generations and the on-disk formats, together.

use super::*;

/// `a.log` (8 bytes) acknowledged up to 4 and saved, then up to 8 and saved again.
fn saved_at_4_then_8() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    FileId,
) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    std::fs::write(&log, b"one\ntwo\n").unwrap();
    let pos_path = dir.path().join("positions.yaml");
    let id = FileId::of(&std::fs::metadata(&log).unwrap());
    let f = File::open(&log).unwrap();
    let p = Positions::load(&pos_path, false, 1).unwrap();
    let tracker = p.open(id, log.to_str().unwrap(), &f, 8).tracker;
    tracker.register(4).done();
    p.save().unwrap();
    tracker.register(8).done();
    p.save().unwrap();
    (dir, log, pos_path, id)
}

#[test]
fn saves_and_resumes_by_identity() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    std::fs::write(&log, b"one\ntwo\n").unwrap();
    let pos_path = dir.path().join("positions.yaml");
    let meta = std::fs::metadata(&log).unwrap();
    let id = FileId::of(&meta);
    let f = File::open(&log).unwrap();

    let p = Positions::load(&pos_path, false, 1).unwrap();
    let Opened { start, tracker, .. } = p.open(id, log.to_str().unwrap(), &f, 8);
    assert_eq!(start, 0);
    tracker.register(4).done();
    let in_flight = tracker.register(8);
    p.close(id, 8);
    let Opened {
        start,
        tracker: again,
        ..
    } = p.open(id, log.to_str().unwrap(), &f, 8);
    assert_eq!(
        start, 8,
        "reopened in the same run: continue after what was read"
    );
    assert!(
        Arc::ptr_eq(&tracker, &again),
        "acknowledgements still in flight keep counting"
    );
    in_flight.abandon();
    p.save().unwrap();
    let text = std::fs::read_to_string(&pos_path).unwrap();
    assert!(
        text.contains(&format!("{}: '4'", log.display())),
        "Promtail's map: {text}"
    );

    // After a rename the identity still resumes at 4.
    let renamed = dir.path().join("a.log.1");
    std::fs::rename(&log, &renamed).unwrap();
    let p = Positions::load(&pos_path, false, 1).unwrap();
    let f = File::open(&renamed).unwrap();
    assert_eq!(p.open(id, renamed.to_str().unwrap(), &f, 8).start, 4);
}

#[test]
fn a_closed_file_that_left_its_path_is_remembered_across_saves() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    std::fs::write(&log, b"0123456789\n").unwrap();
    let p = Positions::load(&dir.path().join("positions.yaml"), false, 1).unwrap();
    let id = FileId::of(&std::fs::metadata(&log).unwrap());
    let f = File::open(&log).unwrap();
    let tracker = p.open(id, log.to_str().unwrap(), &f, 11).tracker;
    tracker.register(11).done();
    p.close(id, 11);
    // Rotated: the path now holds a new file; the old one has a name the glob also matches.
    let rotated = dir.path().join("audit-1.log");
    std::fs::rename(&log, &rotated).unwrap();
    std::fs::write(&log, b"new\n").unwrap();
    p.save().unwrap();
    let f = File::open(&rotated).unwrap();
    assert_eq!(
        p.open(id, rotated.to_str().unwrap(), &f, 11).start,
        11,
        "not read again"
    );
}

#[test]
fn a_short_fingerprint_grows_with_the_file_until_it_is_full() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    std::fs::write(&log, b"short\n").unwrap();
    let p = Positions::load(&dir.path().join("positions.yaml"), false, 1).unwrap();
    let id = FileId::of(&std::fs::metadata(&log).unwrap());
    let f = File::open(&log).unwrap();
    p.open(id, log.to_str().unwrap(), &f, 6);
    let mut w = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    w.write_all(&[b'x'; 94]).unwrap();
    assert!(
        !p.refresh_fingerprint(id, &f, 100),
        "100 bytes: still short, keep refreshing"
    );
    w.write_all(&[b'y'; 300]).unwrap();
    assert!(p.refresh_fingerprint(id, &f, 400), "400 bytes: full");
}

#[test]
fn reads_a_promtail_positions_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    std::fs::write(&log, b"0123456789").unwrap();
    let pos_path = dir.path().join("positions.yaml");
    std::fs::write(
        &pos_path,
        format!("positions:\n  {}: \"6\"\n", log.display()),
    )
    .unwrap();
    let p = Positions::load(&pos_path, false, 1).unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    let f = File::open(&log).unwrap();
    assert_eq!(
        p.open(FileId::of(&meta), log.to_str().unwrap(), &f, 10)
            .start,
        6
    );
}

#[test]
fn a_damaged_file_resumes_from_the_previous_copy() {
    let (_dir, log, pos_path, id) = saved_at_4_then_8();
    std::fs::write(&pos_path, b"positions: {\0\0 half written").unwrap();
    let p = Positions::load(&pos_path, false, 1).expect("no crash loop");
    let f = File::open(&log).unwrap();
    assert_eq!(
        p.open(id, log.to_str().unwrap(), &f, 8).start,
        4,
        "the copy before the last write: at most one write's lines again"
    );
}

#[test]
fn a_copy_is_recognised_but_never_a_files_own_new_content_or_a_closed_file() {
    let dir = tempfile::tempdir().unwrap();
    let header = "h".repeat(300);
    let log = dir.path().join("app.log");
    std::fs::write(&log, format!("{header}\nfirst\n")).unwrap();
    let p = Positions::load(&dir.path().join("positions.yaml"), false, 1).unwrap();
    let f = File::open(&log).unwrap();
    let id = FileId::of(&f.metadata().unwrap());
    p.open(id, log.to_str().unwrap(), &f, 307);
    let fp = Fingerprint::read(&f).unwrap();
    p.truncated(id, 307);

    // The program wrote its log again from scratch, same header: not a copy of itself.
    assert_eq!(p.copy_source(id, &fp), None);

    // logrotate's copy, another inode with the same beginning: the truncated content.
    let copy = dir.path().join("app.log.1");
    std::fs::write(&copy, format!("{header}\nfirst\n")).unwrap();
    let c = File::open(&copy).unwrap();
    let copy_id = FileId::of(&c.metadata().unwrap());
    p.open(copy_id, copy.to_str().unwrap(), &c, 307);
    assert_eq!(p.copy_source(copy_id, &fp), Some(CopySource::Truncated));
    assert_eq!(p.adopt(copy_id, fp).map(|(end, _)| end), Some(307));

    // A closed file with the same beginning cannot be compared: the new one is read in full.
    p.close(copy_id, 307);
    let other = dir.path().join("other.log");
    std::fs::write(&other, format!("{header}\nsomething else\n")).unwrap();
    let o = File::open(&other).unwrap();
    let other_id = FileId::of(&o.metadata().unwrap());
    p.open(other_id, other.to_str().unwrap(), &o, 316);
    assert_eq!(p.copy_source(other_id, &fp), None);
}

#[test]
fn a_garbage_file_without_a_previous_copy_is_set_aside_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let pos_path = dir.path().join("positions.yaml");
    for garbage in [
        &b"\0\0\0garbage: ["[..],
        &[0u8; 4096],
        b"\xff\xfe positions: {",
    ] {
        std::fs::write(&pos_path, garbage).unwrap();
        let p = Positions::load(&pos_path, false, 1).expect("no crash loop");
        assert!(p.lock().legacy.is_empty());
        let aside = dir.path().join("positions.yaml.damaged");
        assert_eq!(
            std::fs::read(&aside).unwrap(),
            garbage,
            "kept for the operator"
        );
        assert!(!pos_path.exists(), "the next save writes a new one");
    }
}

#[test]
fn the_entries_of_a_damaged_file_that_still_parse_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let pos_path = dir.path().join("positions.yaml");
    // A torn write in the middle of Promtail's map.
    std::fs::write(
        &pos_path,
        "positions:\n  /var/log/a.log: \"120\"\n  /var/log/b.log: \"\0\0\0\n  '/var/log/c: d.log': \"7\"\n  journal-system: s=abc\n",
    )
    .unwrap();
    let p = Positions::load(&pos_path, false, 1).expect("no crash loop");
    let inner = p.lock();
    assert_eq!(inner.legacy.get("/var/log/a.log"), Some(&120));
    assert_eq!(inner.legacy.get("/var/log/c: d.log"), Some(&7));
    assert!(
        !inner.legacy.contains_key("/var/log/b.log"),
        "read from its start"
    );
    assert!(inner.cursors.contains_key("journal-system"));
}

#[test]
fn a_damaged_identity_file_falls_back_to_the_offsets_by_path() {
    let (dir, log, pos_path, id) = saved_at_4_then_8();
    let ids = dir.path().join("positions.yaml.lokiship");
    let prev_ids = dir.path().join("positions.yaml.prev.lokiship");
    std::fs::write(&ids, b"version: 2\nfiles: [{\0\0").unwrap();
    std::fs::write(&prev_ids, b"\0").unwrap();
    let p = Positions::load(&pos_path, false, 1).expect("no crash loop");
    let f = File::open(&log).unwrap();
    assert_eq!(
        p.open(id, log.to_str().unwrap(), &f, 8).start,
        8,
        "Promtail's map still says 8"
    );
    assert!(dir.path().join("positions.yaml.lokiship.damaged").exists());
}

#[test]
fn the_positions_file_stays_readable_by_promtail_and_identities_survive_damage() {
    let (dir, log, pos_path, id) = saved_at_4_then_8();
    // Promtail reads this file strictly: nothing but its `positions:` map may be in it.
    let main = std::fs::read_to_string(&pos_path).unwrap();
    assert_eq!(main, format!("positions:\n  {}: '8'\n", log.display()));
    // Renamed, and the positions file damaged: the previous pair still knows the file by identity.
    let renamed = dir.path().join("a.log.1");
    std::fs::rename(&log, &renamed).unwrap();
    std::fs::write(&pos_path, b"positions: {\0\0 half written").unwrap();
    let p = Positions::load(&pos_path, false, 1).expect("no crash loop");
    let f = File::open(&renamed).unwrap();
    assert_eq!(p.open(id, renamed.to_str().unwrap(), &f, 8).start, 4);
}

#[test]
fn deleting_the_positions_file_starts_over_as_with_promtail() {
    let (_dir, log, pos_path, id) = saved_at_4_then_8();
    let f = File::open(&log).unwrap();
    std::fs::remove_file(&pos_path).unwrap();
    let p = Positions::load(&pos_path, false, 1).unwrap();
    assert_eq!(p.open(id, log.to_str().unwrap(), &f, 8).start, 0);
}

#[test]
fn a_journal_cursor_is_saved_once_acknowledged_and_read_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pos_path = dir.path().join("positions.yaml");
    std::fs::write(
        &pos_path,
        "positions:\n  journal-system: promtails-cursor\n",
    )
    .unwrap();
    let p = Positions::load(&pos_path, false, 1).unwrap();
    let ledger = p.cursor_ledger("journal-system");
    assert_eq!(ledger.committed().as_deref(), Some("promtails-cursor"));
    let ack = ledger.tracker().register(1);
    ledger.read_up_to(1, "ours".into());
    p.save().unwrap();
    let text = std::fs::read_to_string(&pos_path).unwrap();
    assert!(text.contains("journal-system: promtails-cursor"), "{text}");
    ack.done();
    p.save().unwrap();
    let again = Positions::load(&pos_path, false, 1).unwrap();
    assert_eq!(
        again.cursor_ledger("journal-system").committed().as_deref(),
        Some("ours")
    );
}

#[test]
fn fuzz_positions_reader() {
    // The positions file and the identity file, as one input split at the first 0x1e byte.
    let (dir, _log, pos_path, _id) = saved_at_4_then_8();
    let mut seed = std::fs::read(&pos_path).unwrap();
    seed.push(0x1e);
    seed.extend(std::fs::read(dir.path().join("positions.yaml.lokiship")).unwrap());
    let promtail = b"positions:\n  /var/log/a.log: \"120\"\n  '/var/log/c: d.log': \"7\"\n  journal-system: s=abc;i=1\n  cursor-0123abcd: \"1796288405.5\"\n".to_vec();
    let tokens = [
        "positions:",
        "\n  ",
        ": \"",
        "version: 2",
        "files:",
        "- path: ",
        "inode: ",
        "offset: ",
        "fingerprint_len: ",
        "truncated:",
        "journal-",
        "cursor-",
        "&a",
        "*a",
        "!!binary",
        "~",
    ];
    crate::fuzz::run("positions_reader", &[seed, promtail], &tokens, |input| {
        let (positions, identities) = match input.iter().position(|b| *b == 0x1e) {
            Some(at) => (input[..at].to_vec(), Some(input[at + 1..].to_vec())),
            None => (input.to_vec(), None),
        };
        let texts = salvage::Texts {
            positions: Some(positions),
            identities,
        };
        let _ = texts.parse();
        let _ = texts.salvage();
    });
}
