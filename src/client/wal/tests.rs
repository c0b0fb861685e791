//! The disk queue's behaviour: order, restarts, torn and prepended records, limits, expiry.
use super::*;
use std::fs::OpenOptions;

fn entries(from: usize, n: usize) -> Vec<Entry> {
    (from..from + n)
        .map(|i| Entry {
            labels: [("job", "wal")].into_iter().collect(),
            timestamp_ns: i as i64,
            line: format!("line {i:06} {}", "x".repeat(100)),
            structured_metadata: vec![("id".into(), i.to_string())],
            ack: None,
        })
        .collect()
}

fn lines(e: &[Entry]) -> Vec<String> {
    e.iter().map(|e| e.line.clone()).collect()
}

#[test]
fn entries_come_back_in_order_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "wal-test-1").unwrap();
    assert!(wal.is_empty());
    wal.append(&entries(0, 10)).unwrap();
    wal.append(&entries(10, 10)).unwrap();
    assert!(!wal.is_empty());
    let first = wal.read(500).unwrap();
    assert_eq!(
        lines(&first),
        lines(&entries(0, 10)),
        "one record at a time, up to the byte budget"
    );
    assert_eq!(
        first[3].structured_metadata,
        vec![("id".to_string(), "3".to_string())]
    );
    assert_eq!(first[3].labels.get("job"), Some("wal"));
    wal.commit().unwrap();
    // Read but not committed: a crash now sends it again.
    let second = wal.read(500).unwrap();
    assert_eq!(lines(&second), lines(&entries(10, 10)));
    drop(wal);
    let mut wal = Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "wal-test-1").unwrap();
    assert_eq!(lines(&wal.read(1 << 20).unwrap()), lines(&entries(10, 10)));
    wal.commit().unwrap();
    assert!(wal.is_empty());
}

#[test]
fn prepended_entries_come_before_everything_unsent_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "wal-test-6").unwrap();
    // Empty: a prepend is an append.
    wal.prepend(&entries(0, 3)).unwrap();
    wal.append(&entries(10, 10)).unwrap();
    wal.append(&entries(20, 10)).unwrap();
    // The first record was delivered; the second was read, not yet delivered.
    assert_eq!(lines(&wal.read(1).unwrap()), lines(&entries(0, 3)));
    wal.commit().unwrap();
    assert_eq!(lines(&wal.read(1).unwrap()), lines(&entries(10, 10)));
    wal.prepend(&entries(100, 5)).unwrap();
    wal.prepend(&entries(105, 1)).unwrap();
    wal.append(&entries(30, 2)).unwrap();
    let mut want = lines(&entries(105, 1));
    want.extend(lines(&entries(100, 5)));
    want.extend(lines(&entries(10, 20)));
    want.extend(lines(&entries(30, 2)));
    drop(wal);
    let mut wal = Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "wal-test-6").unwrap();
    assert_eq!(lines(&wal.read(1 << 20).unwrap()), want);
    wal.commit().unwrap();
    assert!(wal.is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("seg".as_ref()))
            .count(),
        1,
        "the replaced segments are gone"
    );
}

#[test]
fn a_crash_before_a_prepend_moved_the_cursor_leaves_the_queue_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "wal-test-7").unwrap();
    wal.append(&entries(0, 5)).unwrap();
    drop(wal);
    // What a prepend writes first: a segment below the cursor's.
    let below = dir.path().join(format!("{:010}.seg", FIRST_SEGMENT - 1));
    std::fs::write(&below, format::encode(&entries(100, 5)).unwrap()).unwrap();
    let mut wal = Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "wal-test-7").unwrap();
    assert_eq!(lines(&wal.read(1 << 20).unwrap()), lines(&entries(0, 5)));
    assert!(!below.exists());
}

#[test]
fn a_torn_last_record_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "wal-test-2").unwrap();
    wal.append(&entries(0, 5)).unwrap();
    wal.append(&entries(5, 5)).unwrap();
    drop(wal);
    let seg = dir.path().join(format!("{FIRST_SEGMENT:010}.seg"));
    let len = std::fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let mut wal = Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "wal-test-2").unwrap();
    assert_eq!(lines(&wal.read(1 << 20).unwrap()), lines(&entries(0, 5)));
    wal.commit().unwrap();
    wal.append(&entries(10, 1)).unwrap();
    assert_eq!(
        lines(&wal.read(1 << 20).unwrap()),
        lines(&entries(10, 1)),
        "appends continue after the cut"
    );
}

#[test]
fn full_queue_drops_the_oldest_segment_or_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(
        dir.path(),
        SEGMENT_BYTES * 2,
        WhenFull::DropOldest,
        "wal-test-3",
    )
    .unwrap();
    let chunk = entries(0, 2000); // ~250 KB a record
    let mut appended = 0;
    while wal.bytes() < SEGMENT_BYTES * 2 - 300_000 {
        wal.append(&chunk).unwrap();
        appended += 1;
    }
    for _ in 0..40 {
        wal.append(&chunk).unwrap();
    }
    assert!(wal.bytes() <= SEGMENT_BYTES * 2, "{} bytes", wal.bytes());
    assert!(appended > 0);
    let dropped = crate::metrics::metrics()
        .dropped_entries
        .get_or_create(&crate::metrics::DropLabels {
            host: "wal-test-3".into(),
            reason: "wal_full".into(),
            tenant: String::new(),
        })
        .get();
    assert!(dropped >= 2000, "{dropped}");

    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(
        dir.path(),
        SEGMENT_BYTES * 2,
        WhenFull::Backpressure,
        "wal-test-4",
    )
    .unwrap();
    let mut appends = 0;
    while !wal.is_full() {
        wal.append(&chunk).unwrap();
        appends += 1;
        assert!(appends < 200, "never full");
    }
    assert!(
        wal.bytes() >= SEGMENT_BYTES * 2,
        "full at max_size, nothing dropped"
    );
    wal.read(1 << 30).unwrap();
    wal.commit().unwrap();
    assert!(!wal.is_full(), "room again once delivered");
}

#[test]
fn segments_older_than_the_max_age_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), 1 << 30, WhenFull::DropOldest, "wal-test-5")
        .unwrap()
        .with_max_age(Some(std::time::Duration::from_millis(50)));
    let chunk = entries(0, 2000);
    while wal.segments.len() < 2 {
        wal.append(&chunk).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(120));
    wal.append(&entries(5000, 1)).unwrap();
    assert_eq!(
        wal.segments.len(),
        1,
        "the old segment is gone, the one being written stays"
    );
    let expired = crate::metrics::metrics()
        .dropped_entries
        .get_or_create(&crate::metrics::DropLabels {
            host: "wal-test-5".into(),
            reason: "wal_expired".into(),
            tenant: String::new(),
        })
        .get();
    assert!(expired >= 2000, "{expired}");
}

#[test]
fn what_a_client_moves_to_disk_is_kept_in_records_it_can_commit_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(
        dir.path(),
        1 << 30,
        WhenFull::DropOldest,
        "wal-test-records",
    )
    .unwrap();
    let long: Vec<Entry> = (0..300)
        .map(|i| {
            let mut e = entries(i, 1).remove(0);
            e.line = format!("{i:04} {}", "y".repeat(1000));
            e
        })
        .collect();
    wal.append(&entries(1000, 1)).unwrap();
    wal.read(1).unwrap();
    // In front of an unsent record (a prepend proper), and into an empty queue (an append).
    wal.prepend(&long).unwrap();
    let first = wal.read(1).unwrap();
    assert!(
        !first.is_empty() && first.len() < long.len(),
        "300 KB of lines are more than one record: {} entries read",
        first.len()
    );
    assert_eq!(first[0].line, long[0].line);
    wal.commit().unwrap();
    let rest = wal.read(1 << 30).unwrap();
    assert_eq!(first.len() + rest.len(), long.len() + 1);
    assert_eq!(
        rest.last().map(|e| e.line.as_str()),
        entries(1000, 1).first().map(|e| e.line.as_str())
    );
}

/// Segment files of `dir`, by name.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn damaged(file: &str) -> u64 {
    crate::metrics::metrics()
        .state_damaged
        .get_or_create(&crate::metrics::FileLabels { file: file.into() })
        .get()
}

/// Three records in one segment, the queue closed; the segment's path and the records' offsets.
fn three_records(dir: &Path, host: &str) -> (PathBuf, Vec<u64>) {
    let mut wal = Wal::open(dir, 1 << 30, WhenFull::DropOldest, host).unwrap();
    for i in 0..3 {
        wal.append(&entries(i * 10, 10)).unwrap();
    }
    let seg = wal.segments.front().unwrap();
    (seg.path.clone(), seg.records.iter().map(|r| r.0).collect())
}

#[test]
fn a_corrupt_length_header_costs_its_record_only_and_the_segment_is_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, offsets) = three_records(dir.path(), "wal-test-damage-1");
    let before = damaged("wal_segment");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = offsets[1] as usize;
    bytes[at..at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    std::fs::write(&seg, &bytes).unwrap();
    let mut wal = Wal::open(
        dir.path(),
        1 << 30,
        WhenFull::DropOldest,
        "wal-test-damage-1",
    )
    .unwrap();
    let mut expected = lines(&entries(0, 10));
    expected.extend(lines(&entries(20, 10)));
    assert_eq!(
        lines(&wal.read(1 << 20).unwrap()),
        expected,
        "the records on both sides are read"
    );
    assert!(
        files_in(dir.path())
            .iter()
            .any(|n| n.ends_with(".seg.damaged")),
        "{:?}",
        files_in(dir.path())
    );
    assert!(damaged("wal_segment") > before);
}

#[test]
fn a_zero_filled_block_is_skipped_and_what_follows_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, offsets) = three_records(dir.path(), "wal-test-damage-2");
    let mut bytes = std::fs::read(&seg).unwrap();
    // A lost write-back: the middle record's blocks read back as zeros.
    bytes[offsets[1] as usize..offsets[2] as usize].fill(0);
    std::fs::write(&seg, &bytes).unwrap();
    let mut wal = Wal::open(
        dir.path(),
        1 << 30,
        WhenFull::DropOldest,
        "wal-test-damage-2",
    )
    .unwrap();
    let mut expected = lines(&entries(0, 10));
    expected.extend(lines(&entries(20, 10)));
    assert_eq!(lines(&wal.read(1 << 20).unwrap()), expected);
}

#[test]
fn a_header_claiming_more_than_the_file_holds_is_refused_not_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.seg");
    let mut header = 0xFFFF_FFF0u32.to_le_bytes().to_vec();
    header.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, b'[', b']']);
    std::fs::write(&path, header).unwrap();
    assert!(matches!(format::read_at(&path, 0), Ok(None)));
}

#[test]
fn a_garbage_cursor_is_set_aside_and_the_whole_queue_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(
        dir.path(),
        1 << 30,
        WhenFull::DropOldest,
        "wal-test-damage-3",
    )
    .unwrap();
    wal.append(&entries(0, 10)).unwrap();
    wal.append(&entries(10, 10)).unwrap();
    wal.read(1).unwrap();
    wal.commit().unwrap();
    drop(wal);
    let before = damaged("wal_cursor");
    std::fs::write(dir.path().join("cursor"), b"\0\0\0\xff garbage").unwrap();
    let mut wal = Wal::open(
        dir.path(),
        1 << 30,
        WhenFull::DropOldest,
        "wal-test-damage-3",
    )
    .unwrap();
    assert!(dir.path().join("cursor.damaged").exists());
    assert!(damaged("wal_cursor") > before);
    // Duplicates, not loss: the first record was delivered, and is sent again.
    assert_eq!(lines(&wal.read(1 << 20).unwrap()), lines(&entries(0, 20)));
}

/// `bytes` with the checksum of each record it holds set right, so that what a mutation did to a
/// payload reaches the JSON reader instead of stopping at the checksum.
fn with_checksums_fixed(mut bytes: Vec<u8>) -> Vec<u8> {
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 12).checked_add(len).filter(|e| *e <= bytes.len()) else {
            break;
        };
        let mut c = flate2::Crc::new();
        c.update(&bytes[at + 12..end]);
        bytes[at + 8..at + 12].copy_from_slice(&c.sum().to_le_bytes());
        at = end;
    }
    bytes
}

#[test]
fn fuzz_disk_queue_records() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, _) = three_records(dir.path(), "wal-fuzz");
    let mut seed = std::fs::read(&seg).unwrap();
    let mut odd = entries(0, 2);
    odd[0].line = "\u{0}\u{1b}[31m \"quoted\" \\ \u{10ffff}".into();
    odd[1].labels = [("a", "b\"c"), ("__x", "")].into_iter().collect();
    seed.extend_from_slice(&format::encode(&odd).unwrap());
    let path = dir.path().join("fuzz.seg");
    let tokens = [
        "[",
        "]",
        "{\"l\":[[\"a\",\"b\"]],\"t\":1,\"m\":\"x\"}",
        "\"s\":",
        "\\u0000",
        "\\ud800",
        "-1",
        "1e999",
    ];
    crate::fuzz::run("disk_queue_records", &[seed], &tokens, |input| {
        // Half the inputs as damaged on disk, half with their checksums right.
        let bytes = if input.first().is_some_and(|b| b & 1 == 0) {
            with_checksums_fixed(input.to_vec())
        } else {
            input.to_vec()
        };
        std::fs::write(&path, &bytes).unwrap();
        let scanned = format::scan(&path, "wal-fuzz").unwrap();
        for (offset, _) in scanned.records {
            let _ = format::read_at(&path, offset);
        }
    });
}
