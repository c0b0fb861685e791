//! The config of `lokiship backfill`: one job of a loaded config, made to read the given files
//! once instead of what it tails.
//!
//! The job keeps its pipeline, its relabel rules and the labels of its first `static_configs`
//! entry (without the `__` ones); each file becomes a target of its own, so its lines carry
//! its own `filename`, as they would have when they were tailed. Files are decompressed by what
//! their first bytes say (gzip, zstd, bzip2, xz, zlib), whatever their name. Positions go to a
//! file of their own beside the config's positions file, so that an interrupted backfill
//! resumes and the node's lokiship keeps its own; no disk queue (the node's lokiship owns it):
//! a position moves once Loki has the lines.

use super::schema::{Config, StaticConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a backfill cannot run with this config and these files.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("the config has no scrape_configs: backfill takes its pipeline and labels from a job")]
    NoJob,
    #[error("no job named {name:?} in scrape_configs (jobs: {jobs})")]
    UnknownJob { name: String, jobs: String },
    #[error("no file to backfill: name the files after the flags (lokiship backfill -config.file=x.yaml FILE...)")]
    NoFiles,
    #[error("cannot backfill {path:?}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot backfill {path:?}: not a regular file")]
    NotAFile { path: String },
}

/// The name of the backfill's positions file, beside the config's.
pub const POSITIONS_FILE: &str = "lokiship-backfill-positions.yaml";

/// Makes `config` the backfill of `files` through job `job` (the first one when `None`); the
/// job's name.
pub fn for_backfill(
    config: &mut Config,
    job: Option<&str>,
    files: &[String],
) -> Result<String, BackfillError> {
    let index = match job {
        None if config.scrape_configs.is_empty() => return Err(BackfillError::NoJob),
        None => 0,
        Some(name) => config
            .scrape_configs
            .iter()
            .position(|sc| sc.job_name == name)
            .ok_or_else(|| BackfillError::UnknownJob {
                name: name.to_string(),
                jobs: config
                    .scrape_configs
                    .iter()
                    .map(|sc| sc.job_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
    };
    if files.is_empty() {
        return Err(BackfillError::NoFiles);
    }
    let paths = files
        .iter()
        .map(|f| regular_file(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sc = config.scrape_configs.swap_remove(index);
    let mut labels: BTreeMap<String, String> = sc
        .static_configs
        .first()
        .map(|s| s.labels.clone())
        .unwrap_or_default();
    labels.retain(|name, _| !name.starts_with("__"));
    if labels.is_empty() {
        labels.insert("job".into(), sc.job_name.clone());
    }
    sc.static_configs = paths
        .iter()
        .map(|path| {
            let mut labels = labels.clone();
            let glob = globset::escape(&path.display().to_string());
            labels.insert("__path__".into(), glob);
            StaticConfig {
                targets: vec!["localhost".into()],
                labels,
            }
        })
        .collect();
    sc.file_sd_configs.clear();
    sc.kubernetes_sd_configs.clear();
    sc.docker_sd_configs.clear();
    sc.journal = None;
    sc.syslog = None;
    sc.loki_push_api = None;
    sc.k8s_audit_webhook = None;
    sc.decompression.enabled = true;
    sc.decompression.format = "auto".into();
    sc.decompression.initial_delay = None;
    let name = sc.job_name.clone();
    config.scrape_configs = vec![sc];
    config.positions.filename = Path::new(&config.positions.filename)
        .parent()
        .unwrap_or(Path::new("."))
        .join(POSITIONS_FILE)
        .display()
        .to_string();
    config.wal.enabled = Some(false);
    Ok(name)
}

/// `path` made absolute, if it is a regular file that can be opened.
fn regular_file(path: &str) -> Result<PathBuf, BackfillError> {
    let unreadable = |source| BackfillError::Unreadable {
        path: path.to_string(),
        source,
    };
    let absolute = std::fs::canonicalize(path).map_err(unreadable)?;
    std::fs::File::open(&absolute).map_err(unreadable)?;
    if !absolute.metadata().map_err(unreadable)?.is_file() {
        return Err(BackfillError::NotAFile {
            path: path.to_string(),
        });
    }
    Ok(absolute)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        crate::config::load_str("t.yaml", yaml, &Default::default())
            .unwrap()
            .config
    }

    const TWO_JOBS: &str = "positions:\n  filename: /var/lib/lokiship/positions.yaml\nscrape_configs:\n  - job_name: journal\n    journal: {}\n  - job_name: audit\n    static_configs:\n      - labels: {job: kube-audit, __path__: /var/log/audit/*.log}\n";

    #[test]
    fn the_named_job_reads_each_file_as_a_target_with_its_labels() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("audit-2026-11-25T10-00-00.log.gz");
        let b = dir.path().join("odd [name].log");
        std::fs::write(&a, "x").unwrap();
        std::fs::write(&b, "y").unwrap();
        let mut c = config(TWO_JOBS);
        let files = [a.display().to_string(), b.display().to_string()];
        assert_eq!(
            for_backfill(&mut c, Some("audit"), &files).unwrap(),
            "audit"
        );
        assert_eq!(c.scrape_configs.len(), 1);
        let sc = &c.scrape_configs[0];
        assert!(sc.decompression.enabled && sc.decompression.format == "auto");
        let globs: Vec<&str> = sc
            .static_configs
            .iter()
            .map(|s| s.labels["__path__"].as_str())
            .collect();
        for (glob, file) in globs.iter().zip([&a, &b]) {
            let matcher = globset::Glob::new(glob).unwrap().compile_matcher();
            assert!(matcher.is_match(file), "{glob} matches {}", file.display());
        }
        assert_eq!(sc.static_configs[1].labels["job"], "kube-audit");
        assert_eq!(
            c.positions.filename,
            "/var/lib/lokiship/lokiship-backfill-positions.yaml"
        );
        assert_eq!(c.wal.enabled, Some(false));
    }

    #[test]
    fn a_missing_job_or_file_is_said_with_what_there_is() {
        let mut c = config(TWO_JOBS);
        let err = for_backfill(&mut c, Some("audti"), &["/etc/hostname".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no job named \"audti\" in scrape_configs (jobs: journal, audit)"
        );
        let err = for_backfill(&mut c, None, &["/nonexistent/a.log".into()]).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("cannot backfill \"/nonexistent/a.log\": No such file"));
        let err = for_backfill(&mut c, None, &["/tmp".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot backfill \"/tmp\": not a regular file"
        );
        assert!(matches!(
            for_backfill(&mut c, None, &[]),
            Err(BackfillError::NoFiles)
        ));
    }
}
