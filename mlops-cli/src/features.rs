//! `mlops features …`: the feature store — apply and plan definitions, list them, build
//! point-in-time-correct training sets, materialize into the online store and look up.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use clap::Subcommand;
use mlops::OnlineStore;
use mlops::features::online::{entity_columns, now_ns};
use mlops::features::{
    EmbeddedOnlineStore, FeatureRegistry, FeatureRepo, FeatureSelection, FeatureStore,
    FeatureValue, HistoricalOptions, MaterializeOptions, MemoryOnlineStore, OnlineFeatures,
    PushTarget,
};
use mlops::steps::features::{StoreSources, write_training_set};
use mlops::storage::{Datasets, WriteOptions};
use mlops::store::RefVersion;
use mlops::{Error, Result, Store};

use crate::datasets::{is_local_file, parse_ref, read_parquet};
use crate::output::{print_json, when};

#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Store a YAML feature repo as its project's next registry version (nothing when it is
    /// unchanged); every reader sees it at once
    ///
    /// Example: mlops features apply features.yaml
    Apply {
        /// The feature repo (YAML: project, entities, sources, feature_views, feature_services)
        #[arg(default_value = "features.yaml")]
        repo: PathBuf,
        /// Print the changes and the new version as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show what `apply` would change, as `feast plan` does; changes nothing
    ///
    /// Example: mlops features plan features.yaml
    Plan {
        /// The feature repo
        #[arg(default_value = "features.yaml")]
        repo: PathBuf,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List the projects, or one project's entities, sources, feature views and services
    ///
    /// Example: mlops features list --project churn
    List {
        /// The project to show (all projects when absent)
        #[arg(long)]
        project: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Build a point-in-time-correct training set: each entity row (join keys, an
    /// event_timestamp, labels) with the latest feature values as of its time
    ///
    /// Example: mlops features get-historical --project churn --service churn_v1 --entities
    /// labels.parquet --dataset churn-training
    GetHistorical {
        /// The project
        #[arg(long)]
        project: String,
        /// Feature references view:feature (comma-separated or repeated)
        #[arg(long, value_delimiter = ',', required_unless_present = "service")]
        features: Vec<String>,
        /// A feature service instead of --features
        #[arg(long, conflicts_with = "features")]
        service: Option<String>,
        /// Entity rows: a Parquet file or a dataset NAME[@VERSION]
        #[arg(long)]
        entities: String,
        /// Name feature columns view__feature
        #[arg(long)]
        full_feature_names: bool,
        /// Only rows created by each entity row's time (Feast's filter_by_created_timestamp)
        #[arg(long)]
        filter_by_created_timestamp: bool,
        /// The folder relative Parquet source paths start from
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Write the training set to this Parquet file
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Write the training set as the next version of this dataset, with its lineage
        #[arg(long)]
        dataset: Option<String>,
        /// Print the lineage as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write the latest row per entity key with START <= event time <= END of every online
    /// view into the online store (resumes a killed run of the same window)
    ///
    /// Example: mlops features materialize --project churn 2026-11-01T00:00:00Z
    /// 2026-12-01T00:00:00Z
    Materialize {
        /// The project
        #[arg(long)]
        project: String,
        /// Window start (RFC 3339, UTC)
        start: String,
        /// Window end (RFC 3339, UTC, or "now")
        end: String,
        /// Source rows per atomic write (and per resumable watermark)
        #[arg(long, default_value_t = 50_000)]
        chunk_rows: usize,
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// Materialize each online view from where its last materialization ended (else now -
    /// ttl, else now - 52 weeks) to END
    ///
    /// Example: mlops features materialize-incremental --project churn now
    MaterializeIncremental {
        /// The project
        #[arg(long)]
        project: String,
        /// Window end (RFC 3339, UTC, or "now")
        end: String,
        /// Source rows per atomic write (and per resumable watermark)
        #[arg(long, default_value_t = 50_000)]
        chunk_rows: usize,
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// Look features up in the online store by entity key: values, statuses (PRESENT,
    /// NULL_VALUE, NOT_FOUND, OUTSIDE_MAX_AGE) and event times
    ///
    /// Example: mlops features get-online --project churn --service churn_v1 --entity
    /// customer_id=1001,1002
    GetOnline {
        /// The project
        #[arg(long)]
        project: String,
        /// Feature references view:feature (comma-separated or repeated)
        #[arg(long, value_delimiter = ',', required_unless_present = "service")]
        features: Vec<String>,
        /// A feature service instead of --features
        #[arg(long, conflicts_with = "features")]
        service: Option<String>,
        /// Entity key values, JOIN_KEY=V1,V2,... (repeat for several join keys)
        #[arg(long = "entity", value_name = "KEY=VALUES", required = true)]
        entities: Vec<String>,
        /// Name feature columns view__feature
        #[arg(long)]
        full_feature_names: bool,
        #[command(flatten)]
        online: OnlineArgs,
        /// Print Feast's HTTP response JSON
        #[arg(long)]
        json: bool,
    },
    /// Push rows of a source (a Parquet file: join keys, timestamps, features) into the online
    /// store of every materialized view reading it, and/or append them to the source's dataset
    /// as its next version
    ///
    /// Example: mlops features push --project churn --source customer_stats rows.parquet --to
    /// online_and_offline
    Push {
        /// The project
        #[arg(long)]
        project: String,
        /// The source the rows belong to
        #[arg(long)]
        source: String,
        /// The rows: a Parquet file
        rows: PathBuf,
        /// Where they go: online, offline or online_and_offline
        #[arg(long, default_value = "online")]
        to: String,
        #[command(flatten)]
        online: OnlineArgs,
        /// Print what was written as JSON
        #[arg(long)]
        json: bool,
    },
    /// Serve Feast's feature server API (POST /get-online-features, POST /push) over the
    /// online store until Ctrl-C; definitions are re-read every --refresh-ms
    ///
    /// Example: mlops features serve --project churn --port 6566
    Serve {
        /// The project
        #[arg(long)]
        project: String,
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port (Feast's default 6566; 0 picks a free one, printed)
        #[arg(long, default_value_t = 6566)]
        port: u16,
        /// Require `Authorization: Bearer <token>` with the token in this file
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// How often to re-read definitions and materialized layouts, in ms
        #[arg(long, default_value_t = 1000)]
        refresh_ms: u64,
        #[command(flatten)]
        online: OnlineArgs,
    },
}

/// Where the online store is.
#[derive(Debug, clap::Args)]
pub struct OnlineArgs {
    /// The online store: a redb file (created when absent), redis://[user:password@]host:port[/db],
    /// or memory://
    #[arg(
        long = "online",
        env = "MLOPS_ONLINE_STORE",
        default_value = "mlops-online.redb"
    )]
    pub location: String,
    /// The prefix of every Redis key the online store writes
    #[arg(long, default_value = "mlops:")]
    pub redis_prefix: String,
    /// The folder relative Parquet source paths start from
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
}

impl OnlineArgs {
    pub async fn open(&self) -> Result<Arc<dyn OnlineStore>> {
        if self.location == "memory://" {
            return Ok(Arc::new(MemoryOnlineStore::new()));
        }
        if self.location.starts_with("redis://") || self.location.starts_with("rediss://") {
            return Ok(Arc::new(
                mlops::features::RedisOnlineStore::connect(&self.location, &self.redis_prefix)
                    .await?,
            ));
        }
        Ok(Arc::new(EmbeddedOnlineStore::open(&self.location)?))
    }
}

/// RFC 3339 (a missing zone is UTC) or `now`, as ns since the epoch.
fn parse_time(s: &str) -> Result<i64> {
    if s == "now" {
        return Ok(now_ns());
    }
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).map_err(|e| {
        Error::invalid(
            "time",
            format!("{s:?} is not an RFC 3339 time (2026-12-01T00:00:00Z) or now: {e}"),
        )
    })?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::invalid("time", format!("{s} is before 1970")))?;
    i64::try_from(d.as_nanos()).map_err(|_| Error::invalid("time", format!("{s} is after 2262")))
}

/// `KEY=1,2,3`: integers when every value is one, else strings.
fn parse_entity(spec: &str) -> Result<(String, Vec<FeatureValue>)> {
    let (key, values) = spec
        .split_once('=')
        .filter(|(k, _)| !k.trim().is_empty())
        .ok_or_else(|| Error::invalid("--entity", format!("{spec:?} is not JOIN_KEY=V1,V2,...")))?;
    let raw: Vec<&str> = values.split(',').map(str::trim).collect();
    let ints: Option<Vec<i64>> = raw.iter().map(|v| v.parse().ok()).collect();
    let values = match ints {
        Some(ints) => ints.into_iter().map(FeatureValue::Int64).collect(),
        None => raw
            .iter()
            .map(|v| FeatureValue::String((*v).to_owned()))
            .collect(),
    };
    Ok((key.trim().to_owned(), values))
}

fn print_materialized(report: &mlops::features::MaterializeReport) {
    for v in &report.views {
        println!(
            "{}: {} rows in {} .. {}, {} entities written ({} older skipped) in {} chunk(s){}",
            v.view,
            v.rows_in_window,
            mlops::features::online::rfc3339(v.start_ns),
            mlops::features::online::rfc3339(v.end_ns),
            v.written,
            v.skipped_older,
            v.chunks,
            v.resumed_after
                .map(|n| format!(", resumed after {n} entities an interrupted run wrote"))
                .unwrap_or_default()
        );
    }
}

impl FeaturesCommand {
    /// Whether the command writes into the store.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Self::Apply { .. }
                | Self::GetHistorical {
                    dataset: Some(_),
                    ..
                }
        ) || matches!(self, Self::Push { to, .. } if to != "online")
    }
}

fn read_repo(path: &Path) -> Result<FeatureRepo> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io("feature repo", "read", path, e))?;
    FeatureRepo::from_yaml(&text).map_err(|e| e.context(path.display()))
}

pub async fn run(store: Arc<dyn Store>, cmd: &FeaturesCommand) -> Result<()> {
    let registry = FeatureRegistry::new(store.clone());
    match cmd {
        FeaturesCommand::Apply { repo, json } => {
            let applied = registry.apply(&read_repo(repo)?).await?;
            if *json {
                return print_json(&serde_json::json!({
                    "project": applied.applied.repo.project,
                    "version": applied.applied.version,
                    "digest": applied.applied.digest,
                    "changes": applied.plan.changes,
                }));
            }
            print!("{}", applied.plan);
            if !applied.plan.is_empty() {
                println!(
                    "applied {} as registry version {}",
                    applied.applied.repo.project, applied.applied.version
                );
            }
        }
        FeaturesCommand::Plan { repo, json } => {
            let plan = registry.plan(&read_repo(repo)?).await?;
            if *json {
                return print_json(&plan);
            }
            print!("{plan}");
        }
        FeaturesCommand::List {
            project: None,
            json,
        } => {
            let projects = registry.projects().await?;
            if *json {
                return print_json(&projects);
            }
            if projects.is_empty() {
                println!("no feature projects in this store (mlops features apply adds one)");
            }
            for p in projects {
                let a = registry.get(&p, RefVersion::Latest).await?;
                println!(
                    "{p}: registry version {}, applied {}, {} feature views, {} services",
                    a.version,
                    when(a.applied_ms),
                    a.repo.feature_views.len(),
                    a.repo.feature_services.len()
                );
            }
        }
        FeaturesCommand::List {
            project: Some(project),
            json,
        } => {
            let a = registry.get(project, RefVersion::Latest).await?;
            if *json {
                return print_json(&a.repo);
            }
            println!(
                "project {project}: registry version {}, applied {}",
                a.version,
                when(a.applied_ms)
            );
            for e in &a.repo.entities {
                println!("entity {}: join keys {}", e.name, e.join_keys.join(", "));
            }
            for s in &a.repo.sources {
                println!(
                    "source {}: {} (event time {})",
                    s.name, s.location, s.timestamp_field
                );
            }
            for v in &a.repo.feature_views {
                let features: Vec<String> = v
                    .schema
                    .iter()
                    .map(|f| format!("{}: {:?}", f.name, f.dtype))
                    .collect();
                println!(
                    "feature view {}: entities [{}], ttl {}, source {}, features [{}]",
                    v.name,
                    v.entities.join(", "),
                    v.ttl
                        .map_or("none".to_owned(), |t| humantime::format_duration(t)
                            .to_string()),
                    v.source,
                    if features.is_empty() {
                        "inferred".to_owned()
                    } else {
                        features.join(", ")
                    }
                );
            }
            for o in &a.repo.on_demand_feature_views {
                let features: Vec<String> = o
                    .features
                    .iter()
                    .map(|f| {
                        let how = match (&f.expression, &f.udf) {
                            (Some(e), _) => format!("= {e}"),
                            (None, Some(u)) => format!("= closure {u}"),
                            (None, None) => String::new(),
                        };
                        format!("{}: {:?} {how}", f.name, f.dtype)
                    })
                    .collect();
                println!(
                    "on-demand feature view {}: sources [{}], request fields [{}], features [{}]",
                    o.name,
                    o.sources.join(", "),
                    o.request_schema
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    features.join(", ")
                );
            }
            for s in &a.repo.feature_services {
                println!("feature service {}: {}", s.name, s.features.join(", "));
            }
        }
        FeaturesCommand::GetHistorical {
            project,
            features,
            service,
            entities,
            full_feature_names,
            filter_by_created_timestamp,
            root,
            output,
            dataset,
            json,
        } => {
            let selection = match service {
                Some(s) => FeatureSelection::service(s.clone()),
                None => FeatureSelection::features(features)?,
            };
            let datasets = Datasets::new(store.clone());
            let entity_rows: Vec<RecordBatch> = if is_local_file(entities) {
                read_parquet(Path::new(entities))?
            } else {
                let (name, at) = parse_ref(entities)?;
                datasets.read_all(&name, at).await?.1
            };
            let fs = FeatureStore::new(store.clone(), Arc::new(StoreSources::new(store, root)));
            let options = HistoricalOptions::default()
                .with_full_feature_names(*full_feature_names)
                .with_filter_by_created_timestamp(*filter_by_created_timestamp);
            let set = fs
                .get_historical_features(project, &entity_rows, &selection, options)
                .await?;
            if let Some(path) = output {
                write_parquet(path, &set.rows)?;
            }
            let written = match dataset {
                Some(name) => Some(
                    write_training_set(
                        &datasets,
                        &name.parse()?,
                        &set,
                        WriteOptions::default().with_message(format!("training set of {project}")),
                    )
                    .await?,
                ),
                None => None,
            };
            if *json {
                return print_json(&serde_json::json!({
                    "rows": set.rows.num_rows(),
                    "columns": set.rows.schema().fields().iter().map(|f| f.name()).collect::<Vec<_>>(),
                    "lineage": set.lineage,
                    "dataset": written.as_ref().map(|v| format!("{}@{}", v.name, v.version)),
                }));
            }
            if output.is_none() && written.is_none() {
                // Neither a file nor a dataset: the rows go to stdout as CSV.
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(std::io::stdout());
                w.write(&set.rows)
                    .map_err(|e| Error::invalid("output", e.to_string()))?;
                return Ok(());
            }
            eprintln!(
                "{} rows with {} features (project {project}, registry version {}); sources: {}",
                set.rows.num_rows(),
                set.lineage.features.len(),
                set.lineage.registry_version,
                set.lineage
                    .sources
                    .iter()
                    .map(|s| s.location.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(path) = output {
                eprintln!("wrote {}", path.display());
            }
            if let Some(v) = written {
                eprintln!("wrote dataset {}@{}", v.name, v.version);
            }
        }
        FeaturesCommand::Serve {
            project,
            host,
            port,
            token_file,
            refresh_ms,
            online,
        } => {
            let fs = FeatureStore::new(
                store.clone(),
                Arc::new(StoreSources::new(store, &online.root)),
            );
            let client = OnlineFeatures::open(fs, online.open().await?, project).await?;
            let mut server = mlops::features::http::FeatureServer::new(client)
                .with_refresh(Some(std::time::Duration::from_millis((*refresh_ms).max(1))));
            if let Some(file) = token_file {
                server = server.with_bearer_token(crate::server::read_token(file)?);
            }
            let (listener, addr) = crate::listen(host, *port).await?;
            let stop = crate::stop_signal();
            println!(
                "listening on http://{addr} (Feast's feature server API for project {project}; Ctrl-C or SIGTERM stops)"
            );
            mlops::serve::http::serve(listener, server.router(), async {
                let why = stop.await;
                println!("{why}: shutting down");
            })
            .await?;
        }
        FeaturesCommand::Push {
            project,
            source,
            rows,
            to,
            online,
            json,
        } => {
            let target: PushTarget = to.parse()?;
            let batches = read_parquet(rows)?;
            let schema = batches.first().map_or_else(
                || Arc::new(arrow::datatypes::Schema::empty()),
                RecordBatch::schema,
            );
            let batch = arrow::compute::concat_batches(&schema, &batches)
                .map_err(|e| Error::invalid("rows", e.to_string()))?;
            if batch.num_rows() == 0 {
                return Err(Error::invalid(
                    "rows",
                    format!("{} has no rows to push", rows.display()),
                ));
            }
            let fs = FeatureStore::new(
                store.clone(),
                Arc::new(StoreSources::new(store, &online.root)),
            );
            let client = OnlineFeatures::open(fs, online.open().await?, project).await?;
            let report = client
                .push_to(source, &entity_columns(&batch)?, target)
                .await?;
            if *json {
                return print_json(&report);
            }
            println!("pushed {} rows of source {source}", report.rows);
            for (view, written, skipped) in &report.views {
                println!(
                    "online view {view}: {written} entities written ({skipped} older skipped)"
                );
            }
            if let Some(l) = &report.offline {
                println!("offline: {}", l.location);
            }
        }
        FeaturesCommand::Materialize {
            project,
            start,
            end,
            chunk_rows,
            online,
        } => {
            let (start, end) = (parse_time(start)?, parse_time(end)?);
            let fs = FeatureStore::new(
                store.clone(),
                Arc::new(StoreSources::new(store, &online.root)),
            );
            let options = MaterializeOptions::default().with_chunk_rows(*chunk_rows);
            let report = fs
                .materialize(project, online.open().await?.as_ref(), start, end, &options)
                .await?;
            print_materialized(&report);
        }
        FeaturesCommand::MaterializeIncremental {
            project,
            end,
            chunk_rows,
            online,
        } => {
            let end = parse_time(end)?;
            let fs = FeatureStore::new(
                store.clone(),
                Arc::new(StoreSources::new(store, &online.root)),
            );
            let options = MaterializeOptions::default().with_chunk_rows(*chunk_rows);
            let report = fs
                .materialize_incremental(project, online.open().await?.as_ref(), end, &options)
                .await?;
            print_materialized(&report);
        }
        FeaturesCommand::GetOnline {
            project,
            features,
            service,
            entities,
            full_feature_names,
            online,
            json,
        } => {
            let selection = match service {
                Some(s) => FeatureSelection::service(s.clone()),
                None => FeatureSelection::features(features)?,
            };
            let entities: Vec<(String, Vec<FeatureValue>)> = entities
                .iter()
                .map(|e| parse_entity(e))
                .collect::<Result<_>>()?;
            let fs = FeatureStore::new(
                store.clone(),
                Arc::new(StoreSources::new(store, &online.root)),
            );
            let client = OnlineFeatures::open(fs, online.open().await?, project).await?;
            let response = client
                .get_online_features(&selection, &entities, *full_feature_names)
                .await?;
            if *json {
                return print_json(&response.to_feast_json());
            }
            let rows = response.results.first().map_or(0, |r| r.values.len());
            for row in 0..rows {
                let cells: Vec<String> = response
                    .feature_names
                    .iter()
                    .zip(&response.results)
                    .map(|(n, r)| {
                        let status = match r.statuses[row] {
                            mlops::features::FeatureStatus::Present => String::new(),
                            other => format!(
                                " ({})",
                                serde_json::to_value(other)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_owned))
                                    .unwrap_or_default()
                            ),
                        };
                        format!("{n}={}{status}", r.values[row].to_json())
                    })
                    .collect();
                println!("{}", cells.join("  "));
            }
        }
    }
    Ok(())
}

/// One Parquet file, written to a temporary name and renamed: never a partial file.
fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    let tmp = path.with_extension("parquet.partial");
    let file =
        std::fs::File::create(&tmp).map_err(|e| Error::io("output file", "create", &tmp, e))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
        .map_err(|e| Error::invalid("output", e.to_string()))?;
    w.write(batch)
        .and_then(|()| w.close().map(|_| ()))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::invalid("output", format!("cannot write {}: {e}", path.display()))
        })?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("output file", "write", path, e))
}
