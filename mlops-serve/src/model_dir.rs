//! Model directories: an artifact's files in a folder plus a `FLAVOR` file, what `mlops train
//! --output` writes and `mlops serve --model-dir` reads.

use mlops_core::{Error, ModelArtifact, Result};

/// The file naming a model directory's flavor.
pub const FLAVOR_FILE: &str = "FLAVOR";

/// Writes `artifact` into `dir` (created): its files plus [`FLAVOR_FILE`].
pub fn write_model_dir(artifact: &ModelArtifact, dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("model directory", "create", dir, e))?;
    for (path, bytes) in &artifact.files {
        let target = dir.join(path.as_str());
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("model directory", "create", parent, e))?;
        }
        std::fs::write(&target, bytes).map_err(|e| Error::io("model file", "write", &target, e))?;
    }
    let flavor = dir.join(FLAVOR_FILE);
    std::fs::write(&flavor, format!("{}\n", artifact.flavor))
        .map_err(|e| Error::io("model file", "write", &flavor, e))
}

/// Reads a model directory (every file, recursively; the flavor from [`FLAVOR_FILE`]).
pub fn read_model_dir(dir: &std::path::Path) -> Result<ModelArtifact> {
    let flavor_path = dir.join(FLAVOR_FILE);
    let flavor = std::fs::read_to_string(&flavor_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && dir.is_dir() {
            // The folder is there but is not a model directory.
            Error::invalid(
                "model dir",
                format!(
                    "{} is missing (a model directory names its flavor in {FLAVOR_FILE})",
                    flavor_path.display()
                ),
            )
            .with_source(e)
        } else {
            Error::io("model file", "read", &flavor_path, e)
        }
    })?;
    let mut artifact = ModelArtifact::new(flavor.trim());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| Error::io("model directory", "read", &d, e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| Error::io("model directory", "read", &d, e))?
                .path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .map_err(|_| {
                    Error::invalid(
                        "model dir",
                        format!("{} escapes the folder", path.display()),
                    )
                })?
                .to_string_lossy()
                .replace('\\', "/");
            if rel == FLAVOR_FILE {
                continue;
            }
            let bytes =
                std::fs::read(&path).map_err(|e| Error::io("model file", "read", &path, e))?;
            artifact = artifact.with_file(mlops_core::ArtifactPath::new(rel)?, bytes);
        }
    }
    Ok(artifact)
}
