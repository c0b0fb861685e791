//! `lokiship backfill [-job NAME] [-restamp|-force] FILE...`: the command line's side of a
//! backfill (the library's is `config::backfill` and `run::backfill`).

use crate::cli::Cli;
use lokiship::config::compile::Compiled;
use std::sync::Arc;

/// The files to backfill when the command is `backfill`; `None` for a plain run.
pub fn files(cli: &Cli) -> anyhow::Result<Option<Vec<String>>> {
    let files = match cli.command.split_first() {
        None => None,
        Some((command, files)) if command == "backfill" => Some(files.to_vec()),
        Some((command, _)) => anyhow::bail!(
            "unknown command {command:?}: the one command is backfill (lokiship backfill -config.file=x.yaml FILE...)"
        ),
    };
    if files.is_none() && (cli.job.is_some() || cli.restamp || cli.force) {
        anyhow::bail!("-job, -restamp and -force are flags of lokiship backfill");
    }
    if cli.restamp && cli.force {
        anyhow::bail!("-restamp and -force say different things: choose one");
    }
    if files.is_some() && cli.stdin {
        anyhow::bail!(
            "-stdin and backfill do not go together: backfill reads the files it is given"
        );
    }
    Ok(files)
}

/// Whether the backfill's files can be read together: with `-restamp` (each entry gets the
/// time it is sent, in order), or when the check finds that no two files share a stream. Without
/// `-restamp` or `-force` it first refuses to start when Loki would refuse entries, saying how
/// many and what to do.
pub fn files_together(cli: &Cli, compiled: &Compiled) -> anyhow::Result<bool> {
    if cli.restamp {
        return Ok(true);
    }
    if cli.force || cli.dry_run {
        return Ok(false);
    }
    check_timestamps(compiled)
}

/// Refuses to start when Loki would refuse entries; whether the files can be read together.
fn check_timestamps(compiled: &Compiled) -> anyhow::Result<bool> {
    let (Some(sc), Some(job)) = (
        compiled.config.scrape_configs.first(),
        compiled.jobs.first(),
    ) else {
        return Ok(false);
    };
    let max_age = compiled
        .config
        .clients
        .iter()
        .map(|c| c.reject_old_samples_max_age.0)
        .min()
        .unwrap_or(std::time::Duration::from_secs(7 * 24 * 3600));
    let max_line = lokiship::run::max_line(&compiled.config.limits_config);
    let check = lokiship::run::backfill::check(sc, job, max_age, max_line)?;
    tracing::info!(
        entries = check.entries,
        too_old = check.too_old,
        out_of_order = check.behind,
        files_share_streams = check.files_share_streams,
        "backfill: timestamps checked"
    );
    if check.refused() == 0 {
        return Ok(!check.files_share_streams);
    }
    let oldest = check
        .oldest_ns
        .map(|ns| chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339())
        .unwrap_or_default();
    anyhow::bail!(
        "{refused} of {entries} entries would be refused by Loki: {old} older than reject_old_samples_max_age ({age}; the oldest is {oldest}), {behind} more than {window} behind a newer entry of their stream; nothing was sent. \
         Run again with -restamp (each entry sent with the time now, its own in structured metadata original_timestamp) or -force (sent as they are; Loki refuses those)",
        refused = check.refused(),
        entries = check.entries,
        old = check.too_old,
        age = lokiship::config::values::GoDuration(max_age),
        behind = check.behind,
        window = lokiship::config::values::GoDuration(lokiship::run::backfill::ORDERING_WINDOW),
    )
}

/// Every entry of the backfill's job is sent with the time now (`-restamp`).
pub fn restamp(compiled: &mut Compiled) -> anyhow::Result<()> {
    use lokiship::pipeline::{stages::restamp::RestampStage, Pipeline};
    let (Some(sc), Some(job)) = (
        compiled.config.scrape_configs.first(),
        compiled.jobs.first_mut(),
    ) else {
        return Ok(());
    };
    let pipeline = Pipeline::build(&sc.pipeline_stages, &sc.job_name)?
        .then(Box::new(RestampStage::default()), "restamp");
    job.pipeline = Arc::new(pipeline);
    Ok(())
}
