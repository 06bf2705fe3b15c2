//! Store maintenance: [`verify`] (an fsck for a store and everything kept in it) and [`repair`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::TryStreamExt;
use mlops_core::store::{Commit, GetOptions, RefVersion, Store};
use mlops_core::{DatasetName, Digest, RefName, Result, Version};
use serde::Serialize;

use crate::dataset::Datasets;
use crate::ref_walk::{self, Step};
use crate::registry::StoreRegistry;
use crate::tracker::{StoreTracker, StoreTrackerOptions, TrackerDamage, read_quarantine};

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Refs checked.
    pub refs: usize,
    /// Commit records read.
    pub commits: usize,
    /// Blobs read back and checked against their digests.
    pub blobs: usize,
    /// Bytes read back.
    pub bytes: u64,
    /// Experiments and runs the tracker holds (runs counted whatever their lifecycle).
    pub experiments: usize,
    /// Runs.
    pub runs: usize,
    /// Dataset versions whose manifests were read.
    pub dataset_versions: usize,
    /// Registered models read.
    pub models: usize,
    /// Every problem, in the order found; empty when the store is sound.
    pub problems: Vec<String>,
    /// Damage that `repair` quarantined: known and acknowledged, so not a problem.
    pub quarantined: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Problems as they are found: where (the `ref@version` or ref a problem is about, which is how
/// quarantine entries name damage) and what.
#[derive(Default)]
struct Findings {
    quarantine: BTreeSet<String>,
    report: VerifyReport,
    /// Where problems were already reported (exactly, and by ref), so later checks do not
    /// report the same damage twice.
    damaged_at: BTreeSet<String>,
    damaged_refs: BTreeSet<String>,
}

impl Findings {
    fn problem(&mut self, at: Option<String>, message: String) {
        match at {
            Some(at) if self.quarantine.contains(&at) => self.report.quarantined.push(message),
            Some(at) => {
                let r = at
                    .split_once('@')
                    .map_or(at.as_str(), |(r, _)| r)
                    .to_owned();
                self.damaged_refs.insert(r);
                self.damaged_at.insert(at);
                self.report.problems.push(message);
            }
            None => self.report.problems.push(message),
        }
    }
}

/// Checks the objects of any [`Store`]: every commit record of every ref reads, versions run
/// 1..=N without gaps and none was lost at the tail, every blob a commit points at or retains
/// exists, and every stored blob reads back matching its digest. Problems are collected, not
/// returned as errors; an `Err` means the store could not be listed at all. [`verify`] does this
/// and checks what the records say about each other.
pub async fn verify_objects(store: &dyn Store) -> Result<VerifyReport> {
    let mut f = Findings::default();
    check_objects(store, &mut f).await?;
    Ok(f.report)
}

/// Checks a whole store: its objects (as [`verify_objects`]) and what refers to what —
/// every run's experiment has a record, every tracker segment replays, every dataset version's
/// manifest reads, every alias points at a live version, and every model version's lineage that
/// names one of this store's datasets names a version that exists with the manifest digest it
/// was trained on (a lost and reused version number shows here; a dataset the store never held
/// may be another store's and is not checked). Damage that [`repair`] quarantined is listed apart, not as a
/// problem.
pub async fn verify(store: Arc<dyn Store>) -> Result<VerifyReport> {
    let mut f = Findings::default();
    match read_quarantine(store.as_ref()).await {
        Ok(q) => f.quarantine = q.into_iter().map(|e| e.at).collect(),
        Err(e) => f.problem(None, format!("tracker quarantine list: {e}")),
    }
    let commits = check_objects(store.as_ref(), &mut f).await?;

    // The tracker: replay everything, and report what could not be replayed.
    match StoreTracker::open(
        store.clone(),
        StoreTrackerOptions::default().with_flush_interval(None),
    )
    .await
    {
        Ok(tracker) => {
            (f.report.experiments, f.report.runs) = tracker.counts();
            for TrackerDamage { at, problem, .. } in tracker.damage() {
                // Damage the object check already reported is not reported again; replay adds
                // what only it can see (an unreadable document in a sound blob, runs whose
                // experiment has no record).
                if !f.damaged_at.contains(&at) {
                    f.problem(Some(at.clone()), format!("tracker: {at}: {problem}"));
                }
            }
        }
        Err(e) => f.problem(None, format!("tracker: cannot be replayed: {e}")),
    }

    // Datasets: every version's manifest reads; remember what each version is.
    let datasets = Datasets::new(store.clone());
    let mut versions: BTreeMap<(DatasetName, Version), Digest> = BTreeMap::new();
    let mut newest: BTreeMap<DatasetName, Version> = BTreeMap::new();
    for (name, history) in &commits {
        let Some(dataset) = name.as_str().strip_prefix("datasets/") else {
            continue;
        };
        let Ok(dataset) = DatasetName::new(dataset) else {
            continue;
        };
        for c in history {
            match datasets
                .version(&dataset, RefVersion::Exact(c.version))
                .await
            {
                Ok(v) => {
                    f.report.dataset_versions += 1;
                    versions.insert((dataset.clone(), v.version), v.digest);
                    newest.insert(dataset.clone(), v.version);
                }
                Err(e) => f.problem(
                    Some(format!("{name}@{}", c.version)),
                    format!("dataset {dataset}@{}: {e}", c.version),
                ),
            }
        }
    }

    // The registry: each model's document agrees with itself and with the datasets it names.
    let registry = StoreRegistry::new(store.clone());
    for (r, state) in registry.each_model().await? {
        let state = match state {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                if !f.damaged_refs.contains(&r) {
                    f.problem(Some(r.clone()), format!("model {r}: {e}"));
                }
                continue;
            }
        };
        f.report.models += 1;
        for problem in state.inconsistencies() {
            f.problem(Some(r.clone()), format!("model {problem}"));
        }
        for v in state.live_versions() {
            for d in &v.lineage.datasets {
                // A dataset this store never held may be another store's (an import, a
                // registry shared between stores): only a version missing from, or different
                // in, a dataset that is here is damage.
                let Some(newest) = newest.get(&d.name) else {
                    continue;
                };
                let found = versions.get(&(d.name.clone(), d.version));
                let message = match found {
                    Some(digest) if *digest == d.digest => continue,
                    Some(digest) => format!(
                        "model {}@{}: trained on dataset {}@{} with manifest {}, but {}@{} is now {} (the version number was reused for other content)",
                        v.name, v.version, d.name, d.version, d.digest, d.name, d.version, digest
                    ),
                    None => format!(
                        "model {}@{}: trained on dataset {}@{}, which does not exist (the newest version is {newest})",
                        v.name, v.version, d.name, d.version
                    ),
                };
                f.problem(Some(r.clone()), message);
            }
        }
    }
    Ok(f.report)
}

/// What [`repair`] did, and what is still wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RepairReport {
    /// Experiments recreated for runs whose experiment record was lost.
    pub recovered: Vec<String>,
    /// Damage added to the quarantine list.
    pub quarantined: Vec<String>,
    /// The store verified after the repair.
    pub after: VerifyReport,
}

/// Repairs what can be repaired without losing anything still readable: experiments whose
/// record was lost are recreated (so their runs are visible again), and tracker damage —
/// unreadable segments, logs that lost their newest segments, unreadable experiment records —
/// is quarantined, so every tracker replays without it and [`verify`] lists it apart. Damaged
/// objects stay in place for forensics. What repair cannot fix (a lost dataset version, a model
/// document rolled back) stays in [`RepairReport::after`]'s problems.
pub async fn repair(store: Arc<dyn Store>) -> Result<RepairReport> {
    let tracker = StoreTracker::open(
        store.clone(),
        StoreTrackerOptions::default().with_flush_interval(None),
    )
    .await?;
    let mut recovered = Vec::new();
    let mut quarantined = Vec::new();
    for d in tracker.repair().await? {
        let line = format!("{}: {}", d.at, d.problem);
        if d.experiment.is_some() {
            recovered.push(line);
        } else {
            quarantined.push(line);
        }
    }
    let after = verify(store.clone()).await?;
    Ok(RepairReport {
        recovered,
        quarantined,
        after,
    })
}

/// The object checks; returns every ref's readable commits.
async fn check_objects(
    store: &dyn Store,
    f: &mut Findings,
) -> Result<BTreeMap<RefName, Vec<Commit>>> {
    let mut referenced: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    let mut all = BTreeMap::new();
    for name in store.list_refs(None).await? {
        f.report.refs += 1;
        let commits = ref_commits(store, &name, f).await;
        for commit in &commits {
            f.report.commits += 1;
            let at = format!("{name}@{}", commit.version);
            for d in std::iter::once(&commit.target).chain(&commit.retains) {
                referenced.entry(*d).or_default().push(at.clone());
            }
        }
        all.insert(name, commits);
    }
    let stored: Vec<_> = store.list_blobs().await?.try_collect().await?;
    let stored_set: BTreeSet<Digest> = stored.iter().map(|b| b.digest).collect();
    // A blob only quarantined commits refer to is quarantined with them.
    let at_of = |d: &Digest| -> Option<String> {
        let by = referenced.get(d)?;
        by.iter()
            .find(|a| !f.quarantine.contains(*a))
            .or(by.first())
            .cloned()
    };
    let mut found = Vec::new();
    for (missing, by) in referenced.iter().filter(|(d, _)| !stored_set.contains(d)) {
        found.push((
            at_of(missing),
            format!(
                "blob {missing} is missing (referenced by {})",
                by.join(", ")
            ),
        ));
    }
    for blob in stored {
        f.report.blobs += 1;
        let read = async {
            let stream = store.get_blob(&blob.digest, GetOptions::default()).await?;
            stream
                .try_fold(0u64, |n, chunk| async move { Ok(n + chunk.len() as u64) })
                .await
        };
        // What the damage costs: the commits that refer to the blob.
        let users = referenced.get(&blob.digest).map_or_else(
            || " (no commit refers to it)".to_owned(),
            |by| format!(" (referenced by {})", by.join(", ")),
        );
        match read.await {
            Ok(n) if n == blob.size => f.report.bytes += n,
            Ok(n) => found.push((
                at_of(&blob.digest),
                format!(
                    "blob {}: read {n} bytes, listed as {}{users}",
                    blob.digest, blob.size
                ),
            )),
            Err(e) => found.push((
                at_of(&blob.digest),
                format!("blob {}: {e}{users}", blob.digest),
            )),
        }
    }
    for (at, message) in found {
        f.problem(at, message);
    }
    Ok(all)
}

/// A ref's readable commits, reporting each unreadable or missing version (and a lost tail) on
/// its own, so one bad record does not hide the rest. Only what the store lists is walked.
async fn ref_commits(store: &dyn Store, name: &RefName, f: &mut Findings) -> Vec<Commit> {
    let listed = match store.ref_versions(name).await {
        Ok(l) => l,
        Err(e) => {
            f.problem(
                Some(name.to_string()),
                format!("ref {name}: cannot be listed: {e}"),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for step in ref_walk::walk(&listed, Version::FIRST) {
        match step {
            Step::Gap { first, last } => {
                let at = format!("{name}@{first}..{last}");
                f.problem(
                    Some(at.clone()),
                    format!("ref {at}: the commit records are missing (a gap)"),
                );
            }
            Step::Read(v) | Step::Probe(v) => match store.get_ref(name, RefVersion::Exact(v)).await
            {
                Ok(c) => out.push(c),
                // Not listed, and still not readable: lost.
                Err(e)
                    if matches!(step, Step::Probe(_)) && (e.is_not_found() || e.is_corrupt()) =>
                {
                    f.problem(
                        Some(format!("{name}@{v}")),
                        format!("ref {name}@{v}: the commit record is missing (a gap)"),
                    )
                }
                Err(e) => f.problem(Some(format!("{name}@{v}")), format!("ref {name}@{v}: {e}")),
            },
        }
    }
    if listed.lost_tail() {
        let committed = listed.committed.map_or(0, Version::get);
        let newest = listed.newest_present().map_or(0, Version::get);
        f.problem(
            Some(name.to_string()),
            format!(
                "ref {name}: version {committed} was committed but the newest record left is {newest}: records were lost"
            ),
        );
    }
    out
}
