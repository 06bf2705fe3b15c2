//! [`StoreTracker`]: a durable, log-structured [`Tracker`] on any [`Store`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use mlops_core::page::Page;
use mlops_core::store::{CommitOptions, RefVersion, Store, StoreExt};
use mlops_core::tracker::{
    ArtifactInfo, CreateExperimentOptions, CreateRunOptions, LogBatch, PageOptions,
    SearchExperimentsOptions, SearchRunsOptions, Tracker, UpdateRunOptions,
};
use mlops_core::tracking::{DatasetInput, Experiment, LifecycleStage, Metric, Run, RunInfo, Tag};
use mlops_core::{
    ArtifactPath, Digest, Error, ExperimentId, ExperimentName, MetricKey, RefName, Result, RunId,
    TagKey, Version,
};
use serde::{Deserialize, Serialize};

use crate::memory::lock;
use crate::ref_walk::{self, Step};
use crate::tracker_snapshot::{self, SNAPSHOT_FORMAT, SnapshotManifest};
use crate::tracker_state::{Event, Tables, TrackerState, default_experiment, log_batch_event};

const SEGMENTS: &str = "tracker/segments";
const SNAPSHOTS: &str = "tracker/snapshots";
const EXPERIMENTS: &str = "tracker/experiments";
const QUARANTINE: &str = "tracker/quarantine";
const SEGMENT_FORMAT: &str = "mlops.tracker-segment/1";
const ARTIFACT_ROOT: &str = "mlops-store:/tracker";

/// Options for [`StoreTracker::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreTrackerOptions {
    /// A background task flushes buffered writes this often (default 1 s). `None` disables it:
    /// then only [`Tracker::flush`] and `end_run` write.
    pub flush_interval: Option<Duration>,
    /// A read replays other writers' new segments first, unless it did within this long
    /// (default zero: every read is current). A reader that many requests hit — a UI — can
    /// trade that much staleness of other processes' writes for not listing the store's logs
    /// on every request; this instance's own writes are always visible at once.
    pub refresh_interval: Duration,
}

impl Default for StoreTrackerOptions {
    fn default() -> Self {
        Self {
            flush_interval: Some(Duration::from_secs(1)),
            refresh_interval: Duration::ZERO,
        }
    }
}

impl StoreTrackerOptions {
    /// Sets the background flush interval (`None`: no background flushing).
    pub fn with_flush_interval(mut self, interval: Option<Duration>) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Sets how long a read may go without replaying other writers' segments (see
    /// [`refresh_interval`](Self::refresh_interval)).
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }
}

/// What [`StoreTracker::compact`] folded into its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Runs in the snapshot.
    pub runs: usize,
    /// Metric values in the snapshot.
    pub metric_values: usize,
    /// Segments it folds in (over every writer's log).
    pub segments: u64,
}

/// Part of the tracker's log that could not be replayed, and what it cost
/// ([`StoreTracker::damage`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackerDamage {
    /// Where: a segment (`tracker/segments/<writer>@<version>`), a whole log
    /// (`tracker/segments/<writer>`, when its newest segments were lost), an experiment record's
    /// ref, or `experiment <id>` for runs whose experiment has no record.
    pub at: String,
    /// What is wrong, and what it cost.
    pub problem: String,
    /// The experiment without a record, for the last kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ExperimentId>,
}

/// Damage found and acknowledged by a repair: replay skips it without a warning, and `verify`
/// reports it as quarantined rather than as a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// Where, as in [`TrackerDamage::at`].
    pub at: String,
    /// What was wrong.
    pub problem: String,
    /// When it was quarantined.
    pub quarantined_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Quarantine {
    format: String,
    entries: Vec<QuarantineEntry>,
}

const QUARANTINE_FORMAT: &str = "mlops.tracker-quarantine/1";

/// The tracker's quarantine list (empty when there is none).
pub async fn read_quarantine(store: &dyn Store) -> Result<Vec<QuarantineEntry>> {
    let commit = match store
        .get_ref(&RefName::new(QUARANTINE)?, RefVersion::Latest)
        .await
    {
        Ok(c) => c,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let raw = store.get_bytes(&commit.target).await?;
    let q: Quarantine = serde_json::from_slice(&raw).map_err(|e| {
        Error::corrupt("tracker quarantine", QUARANTINE, "unreadable list").with_source(e)
    })?;
    Ok(q.entries)
}

async fn add_to_quarantine(store: &dyn Store, add: Vec<QuarantineEntry>) -> Result<()> {
    let name = RefName::new(QUARANTINE)?;
    for _ in 0..16 {
        let mut entries = read_quarantine(store).await?;
        for a in &add {
            if !entries.iter().any(|e| e.at == a.at) {
                entries.push(a.clone());
            }
        }
        let json = serde_json::to_vec(&Quarantine {
            format: QUARANTINE_FORMAT.to_owned(),
            entries,
        })
        .map_err(|e| Error::backend("serde_json", e))?;
        let digest = store.put_bytes(Bytes::from(json)).await?.digest;
        match store.commit_next(&name, digest, "quarantine").await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(
        "tracker quarantine",
        QUARANTINE,
        "too many concurrent repairs",
    ))
}

/// Damage that costs only the records it holds: a missing record, an unreadable or corrupt one.
fn is_damage(e: &Error) -> bool {
    e.is_not_found() || e.is_corrupt()
}

/// A segment: the events one tracker instance flushed at once.
#[derive(Debug, Serialize, Deserialize)]
struct Segment {
    format: String,
    writer: String,
    events: Vec<Event>,
}

#[derive(Debug)]
struct Inner {
    state: TrackerState,
    /// Applied locally, not yet in a segment.
    pending: Vec<Event>,
    /// Newest version of our own segment log.
    own: Option<Version>,
    /// Other writers' logs, applied up to this version.
    seen: BTreeMap<RefName, Version>,
    /// Experiments already loaded from their name refs.
    known_experiments: BTreeMap<RefName, ExperimentId>,
    /// What could not be replayed, by where it is (see [`TrackerDamage::at`]).
    damage: BTreeMap<String, String>,
    /// Runs whose experiment had no record when they were replayed, by experiment: hidden, and
    /// their later events skipped, in this instance; a tracker opened once the experiment is
    /// back (`repair`) replays them whole.
    orphans: BTreeMap<ExperimentId, BTreeSet<RunId>>,
    /// Events of runs another log creates and that log is not replayed yet (logs replay in
    /// name order, not time order): applied right after the run's creation.
    deferred: BTreeMap<RunId, Vec<Event>>,
    /// The quarantine list, once damage made it worth reading.
    quarantine: Option<BTreeSet<String>>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn Store>,
    /// This instance's segment log: `tracker/segments/<writer>`.
    log: RefName,
    writer: String,
    inner: Mutex<Inner>,
    /// One flush at a time, so segments commit in order.
    flushing: tokio::sync::Mutex<()>,
    /// [`StoreTrackerOptions::refresh_interval`], and when a read last replayed.
    refresh_interval: Duration,
    refreshed: Mutex<Option<std::time::Instant>>,
}

/// A [`Tracker`] on any [`Store`] — a local directory, S3, memory — with MLflow's semantics.
///
/// # How it works
///
/// Object stores cannot append, so the tracker is log-structured. Every change is applied to an
/// in-memory view (so it costs the caller a map update, not I/O) and queued as an event; a
/// background task — and every [`flush`](Tracker::flush) and `end_run`, the durability points —
/// writes the queued events as one immutable segment blob and commits it to this instance's own
/// log, `tracker/segments/<writer id>`. Each process has its own log, so concurrent processes never
/// contend on a commit. Reads first replay what other writers have committed since last time.
///
/// Experiment names are unique across processes: creating one commits a ref named after the name's
/// digest with compare-and-swap, so of two racing creators one wins and the other gets
/// `AlreadyExists` (and `get_or_create_experiment` returns the winner's id).
///
/// A process killed mid-run loses what it logged since its last durability point and nothing
/// else; segments and experiment records are immutable blobs, so the store is never left corrupt.
/// Artifacts are stored as blobs at once and retained by the segment that records them.
///
/// [`compact`](StoreTracker::compact) folds everything replayed so far into a snapshot — Parquet
/// tables of runs and of metric values, committed to `tracker/snapshots` with the segment versions
/// it covers — so a tracker opened later loads the snapshot and replays only newer segments.
///
/// Writes to the same run from several processes merge: metrics append, tags take the last value
/// replayed, and of two different values for one param the first replayed wins.
#[derive(Debug, Clone)]
pub struct StoreTracker {
    shared: Arc<Shared>,
}

fn name_ref(name: &ExperimentName) -> Result<RefName> {
    // Names may hold characters ref names do not allow: address them by digest.
    let d = Digest::of(name.as_str().as_bytes()).to_hex();
    RefName::new(format!("{EXPERIMENTS}/{}", &d[..32]))
}

impl StoreTracker {
    /// Opens the tracker kept in `store`, replaying what is there, and starts the background
    /// flush (it needs a tokio runtime, which `open` runs on).
    pub async fn open(store: Arc<dyn Store>, options: StoreTrackerOptions) -> Result<Self> {
        let writer = RunId::generate().into_string();
        let log = RefName::new(format!("{SEGMENTS}/{writer}"))?;
        let tracker = Self {
            shared: Arc::new(Shared {
                store,
                log,
                writer,
                inner: Mutex::new(Inner {
                    state: TrackerState::new(default_experiment(ARTIFACT_ROOT, 0)),
                    pending: Vec::new(),
                    own: None,
                    seen: BTreeMap::new(),
                    known_experiments: BTreeMap::new(),
                    damage: BTreeMap::new(),
                    orphans: BTreeMap::new(),
                    deferred: BTreeMap::new(),
                    quarantine: None,
                }),
                flushing: tokio::sync::Mutex::new(()),
                refresh_interval: options.refresh_interval,
                refreshed: Mutex::new(None),
            }),
        };
        tracker.load_snapshot().await?;
        tracker.refresh().await?;
        if let Some(every) = options.flush_interval {
            let weak = Arc::downgrade(&tracker.shared);
            tokio::spawn(background_flush(weak, every));
        }
        Ok(tracker)
    }

    /// Replays experiments and other writers' segments committed since the last refresh.
    ///
    /// Damage costs only what it holds: an unreadable experiment record, a segment whose commit
    /// record or blob is missing or corrupt, or a log whose newest records were lost is skipped
    /// and reported by [`damage`](StoreTracker::damage) (and logged once as a warning), unless
    /// `mlops store repair` quarantined it; everything else is replayed. Only a store that cannot
    /// be listed at all is an error.
    pub async fn refresh(&self) -> Result<()> {
        let s = &self.shared;
        let experiments = RefName::new(EXPERIMENTS)?;
        for r in s.store.list_refs(Some(&experiments)).await? {
            {
                let inner = lock(&s.inner);
                if inner.known_experiments.contains_key(&r)
                    || inner.damage.contains_key(&format!("{r}@1"))
                {
                    continue;
                }
            }
            let read = async {
                let commit = s
                    .store
                    .get_ref(&r, RefVersion::Exact(Version::FIRST))
                    .await?;
                let raw = s.store.get_bytes(&commit.target).await?;
                serde_json::from_slice::<Experiment>(&raw).map_err(|e| {
                    Error::corrupt("experiment", &r, "unreadable record").with_source(e)
                })
            };
            match read.await {
                Ok(experiment) => {
                    let mut inner = lock(&s.inner);
                    inner
                        .known_experiments
                        .insert(r, experiment.experiment_id.clone());
                    inner.state.insert_experiment(experiment);
                }
                Err(e) if is_damage(&e) => {
                    self.damaged(
                        &format!("{r}@1"),
                        format!("experiment record unreadable: {e}"),
                    )
                    .await;
                }
                Err(e) => return Err(e),
            }
        }
        let segments = RefName::new(SEGMENTS)?;
        // One level of names, then only what is new in each log: a refresh costs per writer
        // and per new segment, never the whole history of every log (this writer's own
        // included), so a long-lived process does not slow down as its logs grow.
        for r in s.store.list_ref_children(&segments).await? {
            if r == s.log {
                continue;
            }
            let seen = lock(&s.inner).seen.get(&r).copied();
            // Walk what is listed, so that a gap or a lost tail costs only its own versions.
            let listed = match seen {
                Some(after) => s.store.ref_versions_after(&r, after).await?,
                None => s.store.ref_versions(&r).await?,
            };
            let Some(newest) = listed.newest_present().or(seen) else {
                if listed.committed.is_some() {
                    self.damaged(r.as_str(), "every segment record was lost".to_owned())
                        .await;
                }
                continue;
            };
            if let Some(committed) = listed.committed.filter(|c| *c > newest) {
                self.damaged(
                    r.as_str(),
                    format!(
                        "newest segments lost: version {committed} was committed but the newest record left is {newest}"
                    ),
                )
                .await;
            }
            let from = seen.map_or(Ok(Version::FIRST), Version::next)?;
            for step in ref_walk::walk(&listed, from) {
                match step {
                    Step::Read(v) | Step::Probe(v) => {
                        self.replay_version(&r, v).await?;
                        lock(&s.inner).seen.insert(r.clone(), v);
                    }
                    Step::Gap { first, last } => {
                        self.damaged(
                            &format!("{r}@{first}..{last}"),
                            "segment records missing (a gap), their events are lost".to_owned(),
                        )
                        .await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads and applies version `v` of another writer's log, or records it as damage.
    async fn replay_version(&self, r: &RefName, v: Version) -> Result<()> {
        let s = &self.shared;
        let at = format!("{r}@{v}");
        let read = async {
            let commit = s.store.get_ref(r, RefVersion::Exact(v)).await?;
            let raw = s.store.get_bytes(&commit.target).await?;
            serde_json::from_slice::<Segment>(&raw)
                .map_err(|e| Error::corrupt("tracker segment", &at, "unreadable").with_source(e))
        };
        match read.await {
            Ok(segment) => self.replay(r, v, segment),
            Err(e) if is_damage(&e) => {
                self.damaged(&at, format!("segment unreadable, its events are lost: {e}"))
                    .await;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Applies one segment of another writer's log.
    fn replay(&self, log: &RefName, version: Version, segment: Segment) {
        let mut inner = lock(&self.shared.inner);
        let inner = &mut *inner;
        for event in segment.events {
            if let Event::CreateRun { run } = &event
                && !inner.state.has_experiment(&run.info.experiment_id)
            {
                inner
                    .orphans
                    .entry(run.info.experiment_id.clone())
                    .or_default()
                    .insert(run.info.run_id.clone());
                continue;
            }
            if event
                .run_id()
                .is_some_and(|id| inner.orphans.values().any(|runs| runs.contains(id)))
            {
                continue;
            }
            // A run created in a log replayed later (`mlops runs end` on another process's run):
            // its change waits for the creation instead of being lost.
            if !matches!(event, Event::CreateRun { .. })
                && let Some(id) = event.run_id()
                && !inner.state.has_run(id)
            {
                inner.deferred.entry(id.clone()).or_default().push(event);
                continue;
            }
            let created = match &event {
                Event::CreateRun { run } => Some(run.info.run_id.clone()),
                _ => None,
            };
            let waiting = created
                .and_then(|id| inner.deferred.remove(&id))
                .unwrap_or_default();
            for event in std::iter::once(event).chain(waiting) {
                if let Err(e) = inner.state.apply(&event) {
                    // A change that was valid for its writer but conflicts here (two values for
                    // one param): the first replayed wins.
                    tracing::warn!(%log, %version, error = %e, "skipped a conflicting tracker event");
                }
            }
        }
    }

    /// Records damage at `at` (once), unless it is quarantined.
    async fn damaged(&self, at: &str, problem: String) {
        let s = &self.shared;
        if lock(&s.inner).quarantine.is_none() {
            let q = match read_quarantine(&*s.store).await {
                Ok(q) => q.into_iter().map(|e| e.at).collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "the tracker's quarantine list is unreadable");
                    BTreeSet::new()
                }
            };
            lock(&s.inner).quarantine = Some(q);
        }
        let mut inner = lock(&s.inner);
        if inner.quarantine.as_ref().is_some_and(|q| q.contains(at)) {
            return;
        }
        if !inner.damage.contains_key(at) {
            tracing::warn!(%at, %problem, "tracker damage skipped; `mlops store verify` reports it, `mlops store repair` quarantines it");
            inner.damage.insert(at.to_owned(), problem);
        }
    }

    /// How many experiments and runs the replayed state holds (whatever their lifecycle).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let inner = lock(&self.shared.inner);
        (inner.state.experiment_count(), inner.state.run_count())
    }

    /// What could not be replayed (and is not quarantined): unreadable segments and experiment
    /// records, logs that lost their newest segments, and runs hidden because their experiment
    /// has no record. Empty for a sound store.
    pub fn damage(&self) -> Vec<TrackerDamage> {
        let inner = lock(&self.shared.inner);
        let mut out: Vec<TrackerDamage> = inner
            .damage
            .iter()
            .map(|(at, problem)| TrackerDamage {
                at: at.clone(),
                problem: problem.clone(),
                experiment: None,
            })
            .collect();
        for (id, runs) in &inner.orphans {
            let shown: Vec<&str> = runs.iter().take(5).map(RunId::as_str).collect();
            let why = if inner.state.has_experiment(id) {
                "had no record when this tracker replayed its runs (it is back now: a tracker opened again shows them)"
            } else {
                "has no record (its ref under tracker/experiments is gone)"
            };
            out.push(TrackerDamage {
                at: format!("experiment {id}"),
                problem: format!(
                    "{why}, so its {} run(s) are hidden: {}{}",
                    runs.len(),
                    shown.join(", "),
                    if runs.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ),
                experiment: Some(id.clone()),
            });
        }
        out
    }

    /// Repairs what [`damage`](StoreTracker::damage) reports, without losing anything still
    /// readable: an experiment without a record gets a new one (named
    /// `recovered-experiment-<id>`, so its runs are visible again and can be moved or renamed),
    /// and every unreadable segment, experiment record or lost log tail is added to the
    /// quarantine list (`tracker/quarantine`), which replay, `verify` and later repairs honour.
    /// Returns what it did; the damaged objects themselves are left in place for forensics.
    pub async fn repair(&self) -> Result<Vec<TrackerDamage>> {
        self.refresh().await?;
        let damage = self.damage();
        let s = &self.shared;
        let mut quarantined = Vec::new();
        let mut done = Vec::new();
        for d in damage {
            if let Some(id) = &d.experiment {
                if lock(&s.inner).state.has_experiment(id) {
                    continue; // back already (a repair raced us, or a restore)
                }
                let mut name = ExperimentName::new(format!("recovered-experiment-{id}"))?;
                let mut n = 1;
                while lock(&s.inner).state.get_experiment_by_name(&name).is_ok() {
                    n += 1;
                    name = ExperimentName::new(format!("recovered-experiment-{id}-{n}"))?;
                }
                let now = mlops_core::time::now_ms();
                let experiment = Experiment {
                    experiment_id: id.clone(),
                    name: name.clone(),
                    artifact_location: format!("{ARTIFACT_ROOT}/{id}"),
                    lifecycle_stage: LifecycleStage::Active,
                    creation_time: now,
                    last_update_time: now,
                    tags: BTreeMap::from([(
                        TagKey::new("mlops.recovered")?,
                        "its record was lost; recreated by `mlops store repair`".to_owned(),
                    )]),
                };
                let json =
                    serde_json::to_vec(&experiment).map_err(|e| Error::backend("serde_json", e))?;
                let digest = s.store.put_bytes(Bytes::from(json)).await?.digest;
                s.store
                    .commit(
                        &name_ref(&name)?,
                        digest,
                        CommitOptions::default().with_message("recover experiment"),
                    )
                    .await?;
            } else {
                quarantined.push(QuarantineEntry {
                    at: d.at.clone(),
                    problem: d.problem.clone(),
                    quarantined_ms: mlops_core::time::now_ms(),
                });
            }
            done.push(d);
        }
        if !quarantined.is_empty() {
            add_to_quarantine(&*s.store, quarantined).await?;
        }
        Ok(done)
    }

    /// Loads the newest snapshot, if any, and marks the segments it folds in as seen. A damaged
    /// snapshot costs nothing but time: it is reported, and every segment is replayed instead
    /// (compaction leaves them in place).
    async fn load_snapshot(&self) -> Result<()> {
        let s = &self.shared;
        let commit = match s
            .store
            .get_ref(&RefName::new(SNAPSHOTS)?, RefVersion::Latest)
            .await
        {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) if is_damage(&e) => {
                self.damaged(
                    SNAPSHOTS,
                    format!("snapshot unreadable, every segment is replayed instead: {e}"),
                )
                .await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match self.read_snapshot(&commit).await {
            Err(e) if is_damage(&e) => {
                self.damaged(
                    &format!("{SNAPSHOTS}@{}", commit.version),
                    format!("snapshot unreadable, every segment is replayed instead: {e}"),
                )
                .await;
                Ok(())
            }
            other => other,
        }
    }

    async fn read_snapshot(&self, commit: &mlops_core::store::Commit) -> Result<()> {
        let s = &self.shared;
        let raw = s.store.get_bytes(&commit.target).await?;
        let manifest: SnapshotManifest = serde_json::from_slice(&raw).map_err(|e| {
            Error::corrupt("tracker snapshot", commit.target, "unreadable manifest").with_source(e)
        })?;
        if manifest.format != SNAPSHOT_FORMAT {
            return Err(Error::not_supported(
                "tracker snapshot format",
                format!("{:?}", manifest.format),
                format!("this version reads {SNAPSHOT_FORMAT}"),
            ));
        }
        let runs = s.store.get_bytes(&manifest.runs).await?;
        let metrics = s.store.get_bytes(&manifest.metrics).await?;
        let mut tables = Tables {
            experiments: manifest.experiments,
            artifacts: manifest.artifacts,
            ..Tables::default()
        };
        tracker_snapshot::decode(runs, metrics, &mut tables)?;
        let mut inner = lock(&s.inner);
        inner.state.load_tables(tables);
        for (log, v) in manifest.covered {
            if log != s.log {
                inner.seen.insert(log, v);
            }
        }
        Ok(())
    }

    /// Folds everything replayed so far into a snapshot — Parquet tables of runs and metric
    /// values — so that trackers opened later load it instead of replaying every segment.
    /// Segments committed after the snapshot are still replayed on top.
    pub async fn compact(&self) -> Result<CompactReport> {
        let s = &self.shared;
        let _one_at_a_time = s.flushing.lock().await;
        self.refresh().await?;
        // The snapshot must hold exactly the segments it says it covers: flush until nothing
        // logged meanwhile is left outside a segment.
        let (tables, covered) = loop {
            flush_locked(s).await?;
            let inner = lock(&s.inner);
            // Folding a replay that skipped damage into a snapshot would make the loss
            // permanent (later trackers skip the segments it covers): repair first. Checked
            // here, on exactly the state the snapshot would hold.
            if !inner.damage.is_empty() || !inner.orphans.is_empty() {
                return Err(Error::corrupt(
                    "tracker",
                    SEGMENTS,
                    "has damage that is not repaired (see `mlops store verify`); compacting now would make the loss permanent: run `mlops store repair`, then compact from a tracker opened after it",
                ));
            }
            if inner.pending.is_empty() {
                let mut covered = inner.seen.clone();
                if let Some(v) = inner.own {
                    covered.insert(s.log.clone(), v);
                }
                break (inner.state.to_tables(), covered);
            }
        };
        let (runs, metrics) = tracker_snapshot::encode(&tables)?;
        let runs = s.store.put_bytes(runs).await?.digest;
        let metrics = s.store.put_bytes(metrics).await?.digest;
        let report = CompactReport {
            runs: tables.runs.len(),
            metric_values: tables.metrics.len(),
            segments: covered.values().map(|v| v.get()).sum(),
        };
        let retains: Vec<Digest> = [runs, metrics]
            .into_iter()
            .chain(tables.artifacts.iter().map(|(_, a)| a.digest))
            .collect();
        let manifest = SnapshotManifest {
            format: SNAPSHOT_FORMAT.to_owned(),
            experiments: tables.experiments,
            artifacts: tables.artifacts,
            runs,
            metrics,
            covered,
        };
        let json = serde_json::to_vec(&manifest).map_err(|e| Error::backend("serde_json", e))?;
        let digest = s.store.put_bytes(Bytes::from(json)).await?.digest;
        let name = RefName::new(SNAPSHOTS)?;
        for _ in 0..16 {
            let options = CommitOptions::default()
                .with_retains(retains.clone())
                .with_message("compact");
            match s.store.commit_latest(&name, digest, options).await {
                Ok(_) => return Ok(report),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(
            "tracker snapshot",
            SNAPSHOTS,
            "too many concurrent compactions",
        ))
    }

    /// Applies a change locally and queues it for the next segment.
    fn record(&self, event: Event) -> Result<()> {
        let mut inner = lock(&self.shared.inner);
        inner.state.apply(&event)?;
        inner.pending.push(event);
        Ok(())
    }

    async fn read<T>(&self, f: impl FnOnce(&TrackerState) -> Result<T>) -> Result<T> {
        let interval = self.shared.refresh_interval;
        let due = interval.is_zero()
            || lock(&self.shared.refreshed).is_none_or(|at| at.elapsed() >= interval);
        if due {
            self.refresh().await?;
            if !interval.is_zero() {
                *lock(&self.shared.refreshed) = Some(std::time::Instant::now());
            }
        }
        f(&lock(&self.shared.inner).state)
    }
}

async fn flush_shared(s: &Shared) -> Result<()> {
    let _one_at_a_time = s.flushing.lock().await;
    flush_locked(s).await
}

/// Writes the queued events as one segment; the caller holds `s.flushing`.
async fn flush_locked(s: &Shared) -> Result<()> {
    let (events, parent) = {
        let mut inner = lock(&s.inner);
        (std::mem::take(&mut inner.pending), inner.own)
    };
    if events.is_empty() {
        return Ok(());
    }
    let retains: Vec<Digest> = events
        .iter()
        .filter_map(|e| match e {
            Event::PutArtifact { info, .. } => Some(info.digest),
            _ => None,
        })
        .collect();
    let segment = Segment {
        format: SEGMENT_FORMAT.to_owned(),
        writer: s.writer.clone(),
        events,
    };
    let result = async {
        let json = serde_json::to_vec(&segment).map_err(|e| Error::backend("serde_json", e))?;
        let digest = s.store.put_bytes(Bytes::from(json)).await?.digest;
        let options = CommitOptions::default()
            .with_parent(parent)
            .with_retains(retains)
            .with_metadata("events", segment.events.len().to_string());
        s.store.commit(&s.log, digest, options).await
    }
    .await;
    let mut inner = lock(&s.inner);
    match result {
        Ok(commit) => {
            inner.own = Some(commit.version);
            Ok(())
        }
        Err(e) => {
            // Keep the events, in order, ahead of anything logged meanwhile: the next flush retries.
            let later = std::mem::take(&mut inner.pending);
            inner.pending = segment.events;
            inner.pending.extend(later);
            Err(e)
        }
    }
}

async fn background_flush(shared: Weak<Shared>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(s) = shared.upgrade() else { return };
        if let Err(e) = flush_shared(&s).await {
            tracing::warn!(error = %e, "background flush failed; the events stay queued");
        }
    }
}

#[async_trait]
impl Tracker for StoreTracker {
    async fn create_experiment(
        &self,
        name: &ExperimentName,
        options: CreateExperimentOptions,
    ) -> Result<ExperimentId> {
        self.refresh().await?;
        let s = &self.shared;
        let experiment = lock(&s.inner)
            .state
            .new_experiment(name, options, ARTIFACT_ROOT)?;
        let json = serde_json::to_vec(&experiment).map_err(|e| Error::backend("serde_json", e))?;
        let digest = s.store.put_bytes(Bytes::from(json)).await?.digest;
        let r = name_ref(name)?;
        match s
            .store
            .commit(
                &r,
                digest,
                CommitOptions::default().with_message("create experiment"),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_conflict() => return Err(Error::already_exists("experiment", name)),
            Err(e) => return Err(e),
        }
        let id = experiment.experiment_id.clone();
        let mut inner = lock(&s.inner);
        inner.known_experiments.insert(r, id.clone());
        inner.state.insert_experiment(experiment);
        Ok(id)
    }

    async fn get_experiment(&self, id: &ExperimentId) -> Result<Experiment> {
        self.read(|s| s.get_experiment(id)).await
    }

    async fn get_experiment_by_name(&self, name: &ExperimentName) -> Result<Experiment> {
        self.read(|s| s.get_experiment_by_name(name)).await
    }

    async fn search_experiments(
        &self,
        options: SearchExperimentsOptions,
    ) -> Result<Page<Experiment>> {
        self.read(|s| s.search_experiments(options)).await
    }

    async fn set_experiment_lifecycle(
        &self,
        id: &ExperimentId,
        stage: LifecycleStage,
    ) -> Result<()> {
        self.refresh().await?;
        self.record(Event::SetExperimentLifecycle {
            id: id.clone(),
            stage,
        })
    }

    async fn set_experiment_tag(&self, id: &ExperimentId, tag: Tag) -> Result<()> {
        self.refresh().await?;
        self.record(Event::SetExperimentTag {
            id: id.clone(),
            tag,
        })
    }

    async fn create_run(&self, options: CreateRunOptions) -> Result<Run> {
        let needs_refresh = {
            let inner = lock(&self.shared.inner);
            let exp = options
                .experiment_id
                .clone()
                .unwrap_or_else(ExperimentId::default_experiment);
            !inner.state.has_experiment(&exp)
                || options
                    .parent_run_id
                    .as_ref()
                    .is_some_and(|p| inner.state.get_run(p).is_err())
        };
        if needs_refresh {
            self.refresh().await?;
        }
        let mut inner = lock(&self.shared.inner);
        let run = inner.state.new_run(options)?;
        let event = Event::CreateRun { run: run.clone() };
        inner.state.apply(&event)?;
        inner.pending.push(event);
        Ok(run)
    }

    async fn update_run(&self, run_id: &RunId, options: UpdateRunOptions) -> Result<RunInfo> {
        self.record(Event::UpdateRun {
            run_id: run_id.clone(),
            status: options.status,
            end_time: options.end_time,
            run_name: options.run_name,
        })?;
        Ok(lock(&self.shared.inner).state.get_run(run_id)?.info)
    }

    async fn set_run_lifecycle(&self, run_id: &RunId, stage: LifecycleStage) -> Result<()> {
        self.record(Event::SetRunLifecycle {
            run_id: run_id.clone(),
            stage,
        })
    }

    async fn log_batch(&self, run_id: &RunId, batch: LogBatch) -> Result<()> {
        self.record(log_batch_event(run_id, batch)?)
    }

    async fn delete_run_tag(&self, run_id: &RunId, key: &TagKey) -> Result<()> {
        self.record(Event::DeleteRunTag {
            run_id: run_id.clone(),
            key: key.clone(),
        })
    }

    async fn log_inputs(&self, run_id: &RunId, inputs: Vec<DatasetInput>) -> Result<()> {
        self.record(Event::LogInputs {
            run_id: run_id.clone(),
            inputs,
        })
    }

    async fn get_run(&self, run_id: &RunId) -> Result<Run> {
        self.read(|s| s.get_run(run_id)).await
    }

    async fn search_runs(&self, options: SearchRunsOptions) -> Result<Page<Run>> {
        self.read(|s| s.search_runs(options)).await
    }

    async fn get_metric_history(
        &self,
        run_id: &RunId,
        key: &MetricKey,
        options: PageOptions,
    ) -> Result<Page<Metric>> {
        self.read(|s| s.metric_history(run_id, key, options)).await
    }

    async fn put_artifact(
        &self,
        run_id: &RunId,
        path: &ArtifactPath,
        data: Bytes,
    ) -> Result<ArtifactInfo> {
        // Check the run before storing anything.
        lock(&self.shared.inner).state.get_run(run_id)?;
        let blob = self.shared.store.put_bytes(data).await?;
        let info = ArtifactInfo {
            path: path.clone(),
            size: blob.size,
            digest: blob.digest,
        };
        self.record(Event::PutArtifact {
            run_id: run_id.clone(),
            info: info.clone(),
        })?;
        Ok(info)
    }

    async fn get_artifact(&self, run_id: &RunId, path: &ArtifactPath) -> Result<Bytes> {
        let info = self.read(|s| s.artifact(run_id, path)).await?;
        self.shared.store.get_bytes(&info.digest).await
    }

    async fn list_artifacts(
        &self,
        run_id: &RunId,
        prefix: Option<&ArtifactPath>,
    ) -> Result<Vec<ArtifactInfo>> {
        self.read(|s| s.list_artifacts(run_id, prefix)).await
    }

    async fn flush(&self) -> Result<()> {
        flush_shared(&self.shared).await
    }
}
