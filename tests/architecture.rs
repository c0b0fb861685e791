//! The module graph follows the data and stays a DAG: shared types at the bottom, then the raw
//! configuration, then the client and the pipeline (which know nothing of each other), then the
//! sources (which run the pipeline and hand entries to the sink the clients' side implements),
//! and at the top what builds and wires them all.
//!
//! This test reads every file under `src/` and fails when a module names a module of its own
//! layer or of a layer above it (through `crate::…` or `super::…` paths), or one it must stay
//! apart from ([`APART`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Layers, bottom first. A module path belongs to the longest prefix listed.
const LAYERS: &[(&str, u8)] = &[
    ("entry", 0),
    ("logfmt", 0),
    ("process_metrics", 0),
    ("durable", 0),
    ("fuzz", 0),
    ("log_limit", 0),
    ("shutdown", 0),
    ("reload", 0),
    ("wire", 1),
    ("metrics", 1),
    ("config", 2),
    ("client", 3),
    ("pipeline", 3),
    ("source", 4),
    ("config::compile", 5),
    ("server", 5),
    ("summary", 5),
    ("run", 6),
];

/// Pairs (importer, imported) that the layers would allow but that must stay apart: the sources
/// hand entries to the sink trait beside `Entry`, never to the client's own types.
const APART: &[(&str, &str)] = &[("source", "client")];

fn unit(module: &str) -> Option<(&'static str, u8)> {
    LAYERS
        .iter()
        .filter(|(prefix, _)| module == *prefix || module.starts_with(&format!("{prefix}::")))
        .max_by_key(|(prefix, _)| prefix.len())
        .copied()
}

/// `src/client/wal/mod.rs` → `client::wal`; `src/config/compile.rs` → `config::compile`.
fn module_of(file: &Path, src: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

/// Every module path a file names: `crate::a::b`, `crate::{a, b::c}`, `super::x` (resolved).
fn references(text: &str, module: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // Outside `#[cfg(test)]` modules: tests may use what they like.
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    // Comments may name any module (a doc link upwards is documentation, not a dependency).
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for item in group.split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() {
                    out.insert(name.to_string());
                }
            }
        } else {
            out.insert(path_prefix(rest));
        }
    }
    // `super::` from `a/b.rs` is `a`; from `a/b/mod.rs` it is `a` too (the parent of `a::b`).
    let mut parent: Vec<&str> = module.split("::").collect();
    parent.pop();
    for (i, _) in code.match_indices("super::") {
        let before = &code[..i];
        if before.ends_with("::") || before.ends_with("super") {
            continue; // `super::super::`: counted from its first `super`
        }
        let mut rest = &code[i + "super::".len()..];
        let mut base = parent.clone();
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        if rest.starts_with('{') {
            continue; // siblings of the same module
        }
        let tail = path_prefix(rest);
        let mut full = base.join("::");
        if !full.is_empty() && !tail.is_empty() {
            full.push_str("::");
        }
        full.push_str(&tail);
        out.insert(full);
    }
    out
}

/// The path at the start of `rest`, as far as it names modules (lowercase segments).
fn path_prefix(rest: &str) -> String {
    let mut segments = Vec::new();
    let mut rest = rest;
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let segment = &rest[..end];
        if segment.is_empty() || !segment.starts_with(|c: char| c.is_ascii_lowercase()) {
            break;
        }
        segments.push(segment);
        match rest[end..].strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    segments.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_its_own_layer_or_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        // The binary's own files sit above everything.
        if [
            "main.rs",
            "cli.rs",
            "signals.rs",
            "backfill_command.rs",
            "lib.rs",
        ]
        .contains(&name.as_ref())
        {
            continue;
        }
        let module = module_of(file, &src);
        let Some((own_unit, own_layer)) = unit(&module) else {
            violations.push(format!(
                "{module}: not in any layer of tests/architecture.rs"
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for target in references(&text, &module) {
            let Some((unit_named, layer)) = unit(&target) else {
                continue;
            };
            if unit_named == own_unit {
                continue;
            }
            if layer >= own_layer || APART.contains(&(own_unit, unit_named)) {
                violations.push(format!(
                    "{} ({own_unit}, layer {own_layer}) imports {target} ({unit_named}, layer {layer})",
                    file.strip_prefix(&src).unwrap().display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the module graph (see the layers in tests/architecture.rs):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_upward_imports() {
    // The checker itself must catch what it is for, or the test above passes for nothing.
    let refs = references(
        "use crate::client::queue::QueueSender;\nuse crate::{entry::Entry, metrics};\nuse super::super::super::run::x;",
        "source::file::read",
    );
    assert!(refs.contains("client::queue::QueueSender") || refs.contains("client::queue"));
    assert!(refs.contains("entry") && refs.contains("metrics"));
    assert!(refs.iter().any(|r| r.starts_with("run")), "{refs:?}");
    assert_eq!(unit("config::compile::x"), Some(("config::compile", 5)));
    assert_eq!(unit("config::schema"), Some(("config", 2)));
}
