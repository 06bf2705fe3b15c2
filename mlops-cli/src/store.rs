//! `mlops store …`: checking and cleaning a store.

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use mlops::storage::{GcOptions, ObjectStoreStore, VerifyReport, repair, verify};
use mlops::{Result, Store};

use crate::output::print_json;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Check every ref and blob (commit records read, versions have no gaps or lost tails,
    /// referenced blobs exist and match their digests) and what refers to what (runs and their
    /// experiments, aliases and versions, model lineage and dataset versions). Exits 1 when
    /// something is wrong
    ///
    /// Example: mlops --store ./mlops-data store verify
    Verify {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Repair what can be repaired without losing anything still readable: recreate lost
    /// experiment records so their runs are visible again, and quarantine damaged tracker
    /// segments so tracking replays without them (damaged objects stay for inspection). Then
    /// verify; exits 1 when problems remain
    ///
    /// Example: mlops --store ./mlops-data store repair
    Repair {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove blobs no version reaches, and abandoned uploads, older than the grace period
    ///
    /// Example: mlops store gc --grace 1h --dry-run
    Gc {
        /// Keep anything younger than this (e.g. 30s, 10m, 1h, 2d); writers must commit within it
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        grace: Duration,
        /// Only report what would be removed
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
}

/// `90s`, `10m`, `1h`, `2d`, or plain seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 10m, 1h or 2d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?} has unit {unit:?}; use s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

fn print_verify(url: &str, report: &VerifyReport) {
    println!(
        "{url}: {} refs, {} commits, {} blobs ({} bytes) checked; {} experiments, {} runs, {} dataset versions, {} models",
        report.refs,
        report.commits,
        report.blobs,
        report.bytes,
        report.experiments,
        report.runs,
        report.dataset_versions,
        report.models
    );
    for q in &report.quarantined {
        println!("quarantined: {q}");
    }
    for p in &report.problems {
        println!("problem: {p}");
    }
    if report.is_ok() {
        println!("ok: no corruption found");
    }
}

/// Runs the command; `Ok(false)` when `verify` found problems (or `repair` left some).
pub async fn run(store: ObjectStoreStore, cmd: &StoreCommand) -> Result<bool> {
    let url = store.url().to_string();
    match cmd {
        StoreCommand::Verify { json } => {
            let report = verify(Arc::new(store)).await?;
            if *json {
                print_json(&report)?;
            } else {
                print_verify(&url, &report);
            }
            Ok(report.is_ok())
        }
        StoreCommand::Repair { json } => {
            let store: Arc<dyn Store> = Arc::new(store);
            let report = repair(store).await?;
            if *json {
                print_json(&report)?;
            } else {
                for e in &report.recovered {
                    println!("recovered: experiment {e} recreated for its runs");
                }
                for q in &report.quarantined {
                    println!("newly quarantined: {q}");
                }
                if report.recovered.is_empty() && report.quarantined.is_empty() {
                    println!("nothing to repair");
                }
                print_verify(&url, &report.after);
            }
            Ok(report.after.is_ok())
        }
        StoreCommand::Gc {
            grace,
            dry_run,
            json,
        } => {
            let report = store
                .gc(GcOptions::default()
                    .with_grace(*grace)
                    .with_dry_run(*dry_run))
                .await?;
            if *json {
                print_json(&report)?;
            } else {
                let verb = if *dry_run { "would remove" } else { "removed" };
                println!(
                    "{verb} {} unreachable blob(s) ({} bytes) and {} abandoned upload(s); {} reachable, {} unreachable but younger than the grace period",
                    report.removed.len(),
                    report.bytes_freed,
                    report.staging_removed,
                    report.reachable,
                    report.young
                );
            }
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
