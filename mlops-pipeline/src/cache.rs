//! Step caching with `dvc repro` semantics: a step's key is the digest of its name, code
//! version, parameters and its inputs' digests; its last successful run's key and outputs are a
//! JSON record committed at `pipelines/<pipeline>/<step>` in the store.

use std::collections::BTreeMap;

use bytes::Bytes;
use mlops_core::store::{CommitOptions, RefVersion};
use mlops_core::{Digest, Error, RefName, Result, RunId, Store, StoreExt};
use serde::{Deserialize, Serialize};

use crate::pipeline::StepDef;
use crate::step::{Outputs, canonical_json};

/// A step's cache record, kept at the ref `pipelines/<pipeline>/<step>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The key it was computed under (hex).
    pub key: String,
    /// The outputs.
    pub outputs: Outputs,
    /// The run that produced them.
    pub run_id: Option<RunId>,
    /// When, ms.
    pub finished_ms: i64,
    /// The pipeline run it belongs to, when the runner was given one (exported workflows:
    /// steps in separate pods find their upstream outputs by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_token: Option<String>,
    /// The step was bypassed in that run (its `when` condition was false): no outputs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bypassed: bool,
}

/// The ref holding `step`'s cache record.
pub fn cache_ref(pipeline: &str, step: &str) -> Result<RefName> {
    RefName::new(format!("pipelines/{pipeline}/{step}"))
}

/// Reads a step's cache record, if any.
pub async fn read_cache(
    store: &dyn Store,
    pipeline: &str,
    step: &str,
) -> Result<Option<CacheRecord>> {
    let name = cache_ref(pipeline, step)?;
    let commit = match store.get_ref(&name, RefVersion::Latest).await {
        Ok(c) => c,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let bytes = store.get_bytes(&commit.target).await?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::corrupt("pipeline cache record", name, "not a cache record").with_source(e)
    })
}

/// Commits `record` as `step`'s latest cache record. Two runs of the same pipeline may race:
/// the later record wins, and both are valid.
pub(crate) async fn write_cache(
    store: &dyn Store,
    pipeline: &str,
    step: &str,
    record: &CacheRecord,
) -> Result<()> {
    let name = cache_ref(pipeline, step)?;
    let json = serde_json::to_vec(record).map_err(|e| Error::backend("serde_json", e))?;
    let blob = store.put_bytes(Bytes::from(json)).await?;
    for _ in 0..5 {
        match store
            .commit_latest(
                &name,
                blob.digest,
                CommitOptions::default().with_message(format!("cache {}", record.key)),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::conflict(
        "pipeline cache record",
        name,
        "it kept changing under us",
    ))
}

/// The cache key of a step: the digest of its name, code version, parameters and its inputs'
/// digests (canonical JSON).
pub fn cache_key(def: &StepDef, inputs: &Outputs) -> Digest {
    let doc = serde_json::json!({
        "step": def.name,
        "code_version": def.code_version,
        "params": def.params,
        "inputs": inputs.iter().map(|(k, o)| (k.clone(), o.digest.to_hex())).collect::<BTreeMap<_, _>>(),
    });
    Digest::of(canonical_json(&doc).as_bytes())
}
