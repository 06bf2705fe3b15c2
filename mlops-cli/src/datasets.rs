//! `mlops datasets …`: versioned Parquet datasets in a store.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use mlops::storage::{Datasets, SchemaPolicy, WriteOptions};

use crate::output::{human_bytes, print_json, spinner, when};
use mlops::store::RefVersion;
use mlops::{DatasetName, Error, Result, Version};

#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// Import a .parquet or .csv file as a new version of a dataset
    ///
    /// Example: mlops datasets put churn data/churn.csv --meta license=CC-BY-4.0 --meta pii=none
    Put {
        /// Dataset name
        name: String,
        /// The file to import (.parquet or .csv)
        file: PathBuf,
        /// Metadata kept with the version, as key=value (repeatable)
        #[arg(long = "meta", value_name = "KEY=VALUE")]
        meta: Vec<String>,
        /// Commit message
        #[arg(long, short)]
        message: Option<String>,
        /// Fail if the schema differs from the latest version's
        #[arg(long)]
        schema_must_match: bool,
        /// Start a new Parquet part file after this many bytes
        #[arg(long, default_value_t = 128 << 20)]
        part_bytes: usize,
        /// Print the new version as JSON
        #[arg(long)]
        json: bool,
    },
    /// List datasets with their latest version
    ///
    /// Example: mlops datasets list --json
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show every version of a dataset
    ///
    /// Example: mlops datasets log churn
    Log {
        /// Dataset name
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one version: schema, column statistics, parts and metadata
    ///
    /// Example: mlops datasets show churn@2
    Show {
        /// NAME or NAME@VERSION (latest when no version)
        dataset: String,
        /// Print the manifest as JSON
        #[arg(long)]
        json: bool,
    },
    /// Export a version to one Parquet file
    ///
    /// Example: mlops datasets get churn@2 -o churn-v2.parquet
    Get {
        /// NAME or NAME@VERSION (latest when no version)
        dataset: String,
        /// Output Parquet file
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Show how the schema changed between two versions
    ///
    /// Example: mlops datasets diff churn 1 2
    Diff {
        /// Dataset name
        name: String,
        /// Older version
        from: u64,
        /// Newer version
        to: u64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// Whether a data argument names a local file (a `.parquet`/`.pq` name or an existing file)
/// rather than a stored dataset.
pub fn is_local_file(spec: &str) -> bool {
    let p = Path::new(spec);
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"))
        || p.is_file()
}

/// Reads a local Parquet file, at least one batch (an empty one carrying the schema when the file
/// has no rows); a missing file is [`Error::NotFound`], content that is not Parquet is
/// [`Error::InvalidArgument`] naming the file.
pub fn read_parquet(path: &Path) -> Result<Vec<arrow::array::RecordBatch>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("file", "open", path, e))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| {
            Error::invalid("data", format!("{} is not Parquet", path.display())).with_source(e)
        })?;
    let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
    let mut batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid("data", path.display().to_string()).with_source(e))?;
    if batches.is_empty() {
        // A file without rows still has columns: checks and tests see them (and zero rows).
        batches.push(arrow::array::RecordBatch::new_empty(schema));
    }
    Ok(batches)
}

/// `name` or `name@version`.
pub fn parse_ref(s: &str) -> Result<(DatasetName, RefVersion)> {
    match s.split_once('@') {
        Some((name, v)) => Ok((name.parse()?, RefVersion::Exact(v.parse::<Version>()?))),
        None => Ok((s.parse()?, RefVersion::Latest)),
    }
}

pub async fn run(datasets: &Datasets, cmd: &DatasetsCommand) -> Result<()> {
    match cmd {
        DatasetsCommand::Put {
            name,
            file,
            meta,
            message,
            schema_must_match,
            part_bytes,
            json,
        } => {
            let name: DatasetName = name.parse()?;
            let mut options = WriteOptions::default().with_part_bytes(*part_bytes);
            for kv in meta {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| Error::invalid("--meta", format!("{kv:?} is not KEY=VALUE")))?;
                options = options.with_metadata(k.trim(), v.trim());
            }
            if let Some(m) = message {
                options = options.with_message(m.clone());
            }
            if *schema_must_match {
                options = options.with_schema_policy(SchemaPolicy::MustMatch);
            }
            let spinner = spinner(format!("importing {}", file.display()));
            let result = datasets.import_file(&name, file, options).await;
            spinner.finish_and_clear();
            let v = result?;
            if *json {
                return print_json(&v);
            }
            println!(
                "{}@{}: {} rows, {} columns, {} in {} part(s), manifest {}",
                v.name,
                v.version,
                v.manifest.rows,
                v.manifest.schema.len(),
                human_bytes(v.manifest.bytes),
                v.manifest.parts.len(),
                &v.digest.to_hex()[..16]
            );
        }
        DatasetsCommand::List { json } => {
            let all = datasets.list().await?;
            if *json {
                return print_json(&all);
            }
            if all.is_empty() {
                println!("no datasets in this store");
                return Ok(());
            }
            println!(
                "{:<24} {:>7} {:>12} {:>10}  COMMITTED",
                "NAME", "VERSION", "ROWS", "SIZE"
            );
            for v in all {
                println!(
                    "{:<24} {:>7} {:>12} {:>10}  {}",
                    v.name.as_str(),
                    v.version,
                    v.manifest.rows,
                    human_bytes(v.manifest.bytes),
                    when(v.committed_ms)
                );
            }
        }
        DatasetsCommand::Log { name, json } => {
            let log = datasets.log(&name.parse()?).await?;
            if *json {
                return print_json(&log);
            }
            for v in log.iter().rev() {
                println!(
                    "version {:<4} {}  {:>12} rows  {:>10}  {}  {}",
                    v.version,
                    when(v.committed_ms),
                    v.manifest.rows,
                    human_bytes(v.manifest.bytes),
                    &v.digest.to_hex()[..16],
                    v.message
                );
            }
        }
        DatasetsCommand::Show { dataset, json } => {
            let (name, at) = parse_ref(dataset)?;
            let v = datasets.version(&name, at).await?;
            if *json {
                return print_json(&v);
            }
            let m = &v.manifest;
            println!(
                "{}@{}  {} rows  {}  manifest {}",
                v.name,
                v.version,
                m.rows,
                human_bytes(m.bytes),
                v.digest
            );
            for (k, val) in &m.metadata {
                println!("  {k}: {val}");
            }
            println!(
                "{:<24} {:<16} {:>8} {:>10} {:>14} {:>14}",
                "COLUMN", "TYPE", "NULLS", "DISTINCT", "MIN", "MAX"
            );
            for c in &m.columns {
                let show = |v: &Option<serde_json::Value>| {
                    v.as_ref().map_or("-".to_owned(), |v| v.to_string())
                };
                println!(
                    "{:<24} {:<16} {:>8} {:>10} {:>14} {:>14}",
                    c.name,
                    c.data_type,
                    c.null_count,
                    c.distinct_estimate
                        .map_or("-".to_owned(), |d| format!("~{d}")),
                    show(&c.min),
                    show(&c.max)
                );
            }
        }
        DatasetsCommand::Get { dataset, output } => {
            let (name, at) = parse_ref(dataset)?;
            let spinner = spinner(format!("exporting {dataset} to {}", output.display()));
            let rows = datasets.export_parquet(&name, at, output).await;
            spinner.finish_and_clear();
            let rows = rows?;
            println!("wrote {rows} rows to {}", output.display());
        }
        DatasetsCommand::Diff {
            name,
            from,
            to,
            json,
        } => {
            let name: DatasetName = name.parse()?;
            let (from, to) = (Version::new(*from)?, Version::new(*to)?);
            let diff = datasets.diff(&name, from, to).await?;
            if *json {
                return print_json(&diff);
            }
            if diff.is_empty() {
                println!("{name}: schema unchanged from {from} to {to}");
            }
            for line in diff.lines() {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// The rows of `data` — a Parquet file or a stored dataset (`NAME` or `NAME@VERSION`) — as one
/// batch, with the dataset's metadata (none for a file).
pub(crate) async fn read_table(
    data: &str,
    datasets: &Datasets,
) -> Result<(
    arrow::array::RecordBatch,
    std::collections::BTreeMap<String, String>,
)> {
    let (batches, metadata) = if is_local_file(data) {
        (read_parquet(Path::new(data))?, Default::default())
    } else {
        let (name, at) = parse_ref(data)?;
        let (version, batches) = datasets.read_all(&name, at).await?;
        (batches, version.manifest.metadata)
    };
    let schema = batches
        .first()
        .ok_or_else(|| Error::invalid("data", format!("{data} has no rows")))?
        .schema();
    let batch = arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| Error::backend("arrow", e))?;
    Ok((batch, metadata))
}
