//! The feature registry: each project's definitions as one versioned, digest-addressed document
//! in the store (`features/<project>`), with `plan` (the diff `apply` would make) and `apply`.
//!
//! Unlike Feast's registry cache (`cache_ttl_seconds: 600`, feast-dev/feast#5664), nothing is
//! cached: every read takes the ref's latest commit, so a fresh `apply` is visible to every
//! reader at once. Two concurrent `apply`s of different definitions cannot both win: the second
//! gets [`Error::Conflict`] and changes nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use mlops_core::store::{CommitOptions, RefVersion};
use mlops_core::{Digest, Error, RefName, Result, Store, StoreExt, Version};
use serde::Serialize;

use crate::definitions::FeatureRepo;

/// The refs' prefix: `features/<project>`.
pub const REF_PREFIX: &str = "features";

/// A project's definitions as stored: which version of the registry they are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedRepo {
    /// The definitions.
    pub repo: FeatureRepo,
    /// The registry version (1, 2, … per project).
    pub version: Version,
    /// The digest of the stored document.
    pub digest: Digest,
    /// When it was applied, ms since the epoch.
    pub applied_ms: i64,
}

/// What `apply` does to one definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
#[non_exhaustive]
pub enum ChangeAction {
    /// A new definition.
    Create,
    /// A changed one, with the fields that differ.
    Update {
        /// Changed top-level fields.
        fields: Vec<String>,
    },
    /// A definition the new repo no longer has.
    Delete,
}

/// One definition's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Change {
    /// `entity`, `source`, `feature view` or `feature service`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// What happens to it.
    #[serde(flatten)]
    pub action: ChangeAction,
}

/// The changes `apply` would make, as `feast plan` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// The project.
    pub project: String,
    /// The registry version the plan was made against (`None`: the project is new).
    pub base_version: Option<Version>,
    /// Changes, by kind then name.
    pub changes: Vec<Change>,
}

impl Plan {
    /// Whether applying changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return writeln!(f, "No changes to project {}.", self.project);
        }
        for c in &self.changes {
            match &c.action {
                ChangeAction::Create => writeln!(f, "+ create {} {}", c.kind, c.name)?,
                ChangeAction::Update { fields } => {
                    writeln!(f, "~ update {} {} ({})", c.kind, c.name, fields.join(", "))?;
                }
                ChangeAction::Delete => writeln!(f, "- delete {} {}", c.kind, c.name)?,
            }
        }
        Ok(())
    }
}

/// The outcome of [`FeatureRegistry::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// What changed.
    pub plan: Plan,
    /// The definitions now in force (unchanged when the plan was empty).
    pub applied: AppliedRepo,
}

/// Projects' definitions in a store.
#[derive(Debug, Clone)]
pub struct FeatureRegistry {
    store: Arc<dyn Store>,
}

impl FeatureRegistry {
    /// A registry in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The store it writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn ref_name(project: &str) -> Result<RefName> {
        RefName::new(format!("{REF_PREFIX}/{project}"))
    }

    /// A project's definitions: the latest, an exact registry version, or as of a time.
    pub async fn get(&self, project: &str, at: RefVersion) -> Result<AppliedRepo> {
        let name = Self::ref_name(project)?;
        let commit = match self.store.get_ref(&name, at).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => {
                return Err(Error::not_found("feature project", project)
                    .context("run `mlops features apply` first"));
            }
            Err(e) => return Err(e),
        };
        let bytes = self.store.get_bytes(&commit.target).await?;
        let repo: FeatureRepo = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt("feature registry", commit.target, e.to_string()))?;
        Ok(AppliedRepo {
            repo,
            version: commit.version,
            digest: commit.target,
            applied_ms: commit.timestamp_ms,
        })
    }

    /// The projects that have definitions.
    pub async fn projects(&self) -> Result<Vec<String>> {
        let prefix = RefName::new(REF_PREFIX)?;
        Ok(self
            .store
            .list_ref_children(&prefix)
            .await?
            .into_iter()
            .filter_map(|r| {
                r.as_str()
                    .strip_prefix(REF_PREFIX)
                    .and_then(|s| s.strip_prefix('/'))
                    .map(str::to_owned)
            })
            .collect())
    }

    async fn current(&self, project: &str) -> Result<Option<AppliedRepo>> {
        match self.get(project, RefVersion::Latest).await {
            Ok(a) => Ok(Some(a)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What applying `repo` would change, against the stored definitions.
    pub async fn plan(&self, repo: &FeatureRepo) -> Result<Plan> {
        repo.validate()?;
        let current = self.current(&repo.project).await?;
        Ok(diff(repo, current.as_ref()))
    }

    /// Stores `repo` as the project's next registry version, unless nothing changed. Fails with
    /// [`Error::Conflict`] when another apply of the project landed between this one's read and
    /// its commit.
    pub async fn apply(&self, repo: &FeatureRepo) -> Result<Applied> {
        repo.validate()?;
        let current = self.current(&repo.project).await?;
        let plan = diff(repo, current.as_ref());
        if let Some(current) = current
            && plan.is_empty()
        {
            return Ok(Applied {
                plan,
                applied: current,
            });
        }
        let doc =
            serde_json::to_vec(repo).map_err(|e| Error::invalid("feature repo", e.to_string()))?;
        let blob = self.store.put_bytes(Bytes::from(doc)).await?;
        let name = Self::ref_name(&repo.project)?;
        let summary: Vec<String> = plan
            .changes
            .iter()
            .map(|c| format!("{} {}", c.kind, c.name))
            .collect();
        let commit = self
            .store
            .commit(
                &name,
                blob.digest,
                CommitOptions::default()
                    .with_parent(plan.base_version)
                    .with_message(format!("apply: {}", summary.join(", "))),
            )
            .await?;
        Ok(Applied {
            plan,
            applied: AppliedRepo {
                repo: repo.clone(),
                version: commit.version,
                digest: commit.target,
                applied_ms: commit.timestamp_ms,
            },
        })
    }
}

fn diff(new: &FeatureRepo, current: Option<&AppliedRepo>) -> Plan {
    let empty = FeatureRepo::new(new.project.clone());
    let old = current.map_or(&empty, |c| &c.repo);
    let mut changes = Vec::new();
    diff_kind(
        "entity",
        &old.entities,
        &new.entities,
        |e| &e.name,
        &mut changes,
    );
    diff_kind(
        "source",
        &old.sources,
        &new.sources,
        |s| &s.name,
        &mut changes,
    );
    diff_kind(
        "feature view",
        &old.feature_views,
        &new.feature_views,
        |v| &v.name,
        &mut changes,
    );
    diff_kind(
        "on-demand feature view",
        &old.on_demand_feature_views,
        &new.on_demand_feature_views,
        |v| &v.name,
        &mut changes,
    );
    diff_kind(
        "feature service",
        &old.feature_services,
        &new.feature_services,
        |s| &s.name,
        &mut changes,
    );
    Plan {
        project: new.project.clone(),
        base_version: current.map(|c| c.version),
        changes,
    }
}

fn diff_kind<T: Serialize>(
    kind: &'static str,
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &String,
    out: &mut Vec<Change>,
) {
    let as_map = |items: &[T]| -> BTreeMap<String, serde_json::Value> {
        items
            .iter()
            .map(|i| (name(i).clone(), serde_json::to_value(i).unwrap_or_default()))
            .collect()
    };
    let (old, new) = (as_map(old), as_map(new));
    for (n, value) in &new {
        match old.get(n) {
            None => out.push(Change {
                kind,
                name: n.clone(),
                action: ChangeAction::Create,
            }),
            Some(before) if before != value => {
                let empty = serde_json::Map::new();
                let (a, b) = (
                    before.as_object().unwrap_or(&empty),
                    value.as_object().unwrap_or(&empty),
                );
                let mut fields: Vec<String> = a
                    .keys()
                    .chain(b.keys())
                    .filter(|k| a.get(*k) != b.get(*k))
                    .cloned()
                    .collect();
                fields.sort();
                fields.dedup();
                out.push(Change {
                    kind,
                    name: n.clone(),
                    action: ChangeAction::Update { fields },
                });
            }
            Some(_) => {}
        }
    }
    for n in old.keys().filter(|n| !new.contains_key(*n)) {
        out.push(Change {
            kind,
            name: n.clone(),
            action: ChangeAction::Delete,
        });
    }
}
