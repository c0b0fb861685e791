//! Phase 2: a loaded configuration compiled, once, into what run time uses.
//!
//! Each scrape config becomes a [`Job`]: its pipeline built, its relabel rules compiled, its
//! decompression format parsed and its targets ready to be listed. Nothing here is built again at
//! run time, and every error names the line it comes from. This module sits above the sources and
//! the pipeline (it builds them); the rest of `config` sits below them.

use super::load::{Lines, Loaded};
use super::schema::ScrapeConfig;
use super::{Config, ConfigError};
use crate::pipeline::Pipeline;
use crate::source::file::compressed::{Decompression, Format};
use crate::source::file::discover::PathGlob;
use crate::source::journal::{self, JournalJob};
use crate::source::relabel::Relabel;
use crate::source::targets::ScrapeTargets;
use std::sync::Arc;

/// A configuration ready to run.
pub struct Compiled {
    /// The raw settings run time still reads once at start (server, positions, limits, `wal`).
    pub config: Config,
    /// One per entry of `clients`, in order.
    pub clients: Vec<crate::client::settings::Settings>,
    /// One per entry of `scrape_configs`, in order.
    pub jobs: Vec<Job>,
    pub warnings: Vec<String>,
}

/// One scrape config, compiled.
pub struct Job {
    pub name: String,
    pub pipeline: Arc<Pipeline>,
    /// Its static and file-discovered targets, after its relabel rules.
    pub targets: ScrapeTargets,
    /// Its `journal`, if it reads the journal.
    pub journal: Option<JournalJob>,
}

/// Compiles every job of `loaded`.
pub fn compile(loaded: Loaded) -> Result<Compiled, ConfigError> {
    let Loaded {
        config,
        warnings,
        lines,
    } = loaded;
    let jobs = config
        .scrape_configs
        .iter()
        .enumerate()
        .map(|(i, sc)| compile_job(i, sc, &lines))
        .collect::<Result<_, _>>()?;
    let clients = config
        .clients
        .iter()
        .map(|c| {
            crate::client::settings::Settings::compile(c)
                .map_err(|e| lines.error("url:", 0, e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok(Compiled {
        config,
        clients,
        jobs,
        warnings,
    })
}

fn compile_job(index: usize, sc: &ScrapeConfig, lines: &Lines) -> Result<Job, ConfigError> {
    let job_line = lines.job_line(&sc.job_name);
    let decompression = if sc.decompression.enabled {
        let format = Format::parse(&sc.decompression.format)
            .map_err(|why| lines.error("decompression:", job_line, why))?;
        Some(Decompression {
            format,
            initial_delay: sc
                .decompression
                .initial_delay
                .map(|d| d.0)
                .unwrap_or_default(),
        })
    } else {
        None
    };
    let relabel = relabel_rules(sc, lines, job_line)?;
    check_static_globs(sc, lines, job_line)?;
    let pipeline = Pipeline::build(&sc.pipeline_stages, &sc.job_name).map_err(|e| {
        let line = lines.find(&format!("{}:", e.stage), job_line);
        ConfigError::new(&lines.file, line, format!("job {:?}: {}", sc.job_name, e))
    })?;
    let pipeline = Arc::new(pipeline);
    let journal = sc.journal.as_ref().map(|j| JournalJob {
        job: sc.job_name.clone(),
        json: j.json,
        max_age: j.max_age.map_or(journal::DEFAULT_MAX_AGE, |d| d.0),
        path: j.path.clone(),
        matches: journal::split_matches(&j.matches),
        labels: j.labels.clone().into_iter().collect(),
        relabel: relabel.clone(),
        pipeline: pipeline.clone(),
    });
    let targets = ScrapeTargets::new(index, sc, relabel, decompression).map_err(|e| {
        ConfigError::new(
            &lines.file,
            Some(job_line),
            format!("job {:?}: {e}", sc.job_name),
        )
    })?;
    Ok(Job {
        name: sc.job_name.clone(),
        pipeline,
        targets,
        journal,
    })
}

/// Each rule compiled, an error pointing at the rule's own `- ` line.
fn relabel_rules(
    sc: &ScrapeConfig,
    lines: &Lines,
    job_line: usize,
) -> Result<Vec<Relabel>, ConfigError> {
    let mut after = lines.find("relabel_configs:", job_line).unwrap_or(job_line);
    let mut rules = Vec::with_capacity(sc.relabel_configs.len());
    for (i, rule) in sc.relabel_configs.iter().enumerate() {
        let line = lines.find("- ", after + 1);
        after = line.unwrap_or(after);
        let compiled = Relabel::new(rule).map_err(|e| {
            ConfigError::new(
                &lines.file,
                line,
                format!("job {:?}: relabel_configs[{i}]: {e}", sc.job_name),
            )
        })?;
        rules.push(compiled);
    }
    Ok(rules)
}

/// A static `__path__` glob that cannot work is a config error, not a warning at run time.
fn check_static_globs(
    sc: &ScrapeConfig,
    lines: &Lines,
    job_line: usize,
) -> Result<(), ConfigError> {
    for st in &sc.static_configs {
        if let Some(pattern) = st.labels.get("__path__") {
            let exclude = st.labels.get("__path_exclude__").map(String::as_str);
            if let Err(e) = PathGlob::new(pattern, exclude) {
                return Err(lines.error(
                    "__path__",
                    job_line,
                    format!(
                        "job {:?}: invalid __path__ glob {pattern:?}: {e}",
                        sc.job_name
                    ),
                ));
            }
        }
    }
    Ok(())
}
