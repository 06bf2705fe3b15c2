//! Training checkpoints: one safetensors file per checkpoint (`epoch-000012.safetensors`) with
//! the weights (`model.*`), the optimizer's state (`optim.*`), the best weights so far
//! (`best.*`, with early stopping) and, in the header's metadata, everything else a resumed run
//! needs to continue exactly where this one stopped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use mlops_core::train::EpochReport;
use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::preprocess::{Preprocessor, TargetEncoder};

/// The checkpoint format this build writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 1;
const META_KEY: &str = "mlops.checkpoint";

/// The state of a run at the end of an epoch, besides tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckpointMeta {
    pub format: u32,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub optimizer_steps: u64,
    pub config: TrainConfig,
    pub seed: u64,
    pub validation_fraction: f64,
    pub target: String,
    pub rows: usize,
    pub preprocessing: Preprocessor,
    pub target_encoder: TargetEncoder,
    /// Best epoch and its validation loss (early stopping).
    pub best: Option<(usize, f64)>,
    /// Epochs since the best.
    pub bad_epochs: usize,
    pub history: Vec<EpochReport>,
}

/// Writes a checkpoint into `dir` atomically (a temporary file renamed into place, so a crash
/// leaves either the whole checkpoint or none). Returns its path.
pub(crate) fn write(
    dir: &Path,
    meta: &CheckpointMeta,
    tensors: Vec<(String, Tensor)>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io("checkpoint directory", "create", dir, e))?;
    let json = serde_json::to_string(meta).map_err(|e| Error::backend("serde_json", e))?;
    let bytes = safetensors::serialize(tensors, Some(HashMap::from([(META_KEY.to_owned(), json)])))
        .map_err(|e| Error::backend("safetensors", e))?;
    let path = dir.join(format!("epoch-{:06}.safetensors", meta.epochs_done));
    let tmp = dir.join(format!(".epoch-{:06}.safetensors.tmp", meta.epochs_done));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io("checkpoint", "write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("checkpoint", "rename", &path, e))?;
    Ok(path)
}

/// Reads a checkpoint: its metadata and tensors (on `device`).
pub(crate) fn read(
    path: &Path,
    device: &Device,
) -> Result<(CheckpointMeta, HashMap<String, Tensor>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("checkpoint", "read", path, e))?;
    let corrupt = |m: String| Error::corrupt("checkpoint", path.display(), m);
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| corrupt("not a safetensors file".into()).with_source(e))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| corrupt(format!("no {META_KEY} metadata: not an mlops checkpoint")))?;
    let meta: CheckpointMeta = serde_json::from_str(json)
        .map_err(|e| corrupt(format!("bad {META_KEY} metadata")).with_source(e))?;
    if meta.format != CHECKPOINT_FORMAT {
        return Err(corrupt(format!(
            "format {} (this build reads {CHECKPOINT_FORMAT})",
            meta.format
        )));
    }
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| corrupt("its tensors do not load".into()).with_source(e))?;
    Ok((meta, tensors))
}

/// The newest checkpoint in `dir` (by epoch), if any.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("checkpoint directory", "read", dir, e)),
    };
    let mut best: Option<(usize, PathBuf)> = None;
    for entry in entries {
        let path = entry
            .map_err(|e| Error::io("checkpoint directory", "read", dir, e))?
            .path();
        let epoch = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("epoch-"))
            .and_then(|n| n.strip_suffix(".safetensors"))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(epoch) = epoch
            && best.as_ref().is_none_or(|(b, _)| epoch > *b)
        {
            best = Some((epoch, path));
        }
    }
    Ok(best.map(|(_, p)| p))
}
