//! Model directories: an artifact's files in a folder plus a `FLAVOR` file, what `mlops train
//! --output` writes and `mlops serve --model-dir` reads. A folder with MLflow's `MLmodel` file
//! and no `FLAVOR` file is an MLflow model directory: flavor [`MLFLOW_FLAVOR`], served by a
//! loader of that flavor (mlops-mlflow's).

use mlops_core::{Error, ModelArtifact, Result};

/// The file naming a model directory's flavor.
pub const FLAVOR_FILE: &str = "FLAVOR";
/// The flavor of an MLflow model directory (a folder with an `MLmodel` file).
pub const MLFLOW_FLAVOR: &str = "mlflow";
/// The file that makes a folder an MLflow model directory.
pub const MLMODEL_FILE: &str = "MLmodel";

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

/// Reads a model directory (every file, recursively; the flavor from [`FLAVOR_FILE`], or
/// [`MLFLOW_FLAVOR`] for a folder with an `MLmodel` file and no `FLAVOR` file). Symbolic links
/// inside it are refused.
pub fn read_model_dir(dir: &std::path::Path) -> Result<ModelArtifact> {
    let flavor_path = dir.join(FLAVOR_FILE);
    let flavor = std::fs::read_to_string(&flavor_path).or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && dir.join(MLMODEL_FILE).is_file() {
            Ok(MLFLOW_FLAVOR.to_owned())
        } else {
            Err(e)
        }
    });
    let flavor = flavor.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && dir.is_dir() {
            // The folder is there but is not a model directory.
            Error::invalid(
                "model dir",
                format!(
                    "{} is missing (a model directory names its flavor in {FLAVOR_FILE}; an \
                     MLflow model directory has an {MLMODEL_FILE} file)",
                    flavor_path.display()
                ),
            )
            .with_source(e)
        } else {
            Error::io("model file", "read", &flavor_path, e)
        }
    })?;
    ModelArtifact::new(flavor.trim()).with_dir(dir, &[FLAVOR_FILE])
}
