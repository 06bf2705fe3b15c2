//! Models trained anywhere: the loaders every serving command registers (candle, ONNX on tract
//! or onnxruntime, MLflow model directories), reading a model from a path, and `mlops models
//! register|export`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use mlops::onnx::{OnnxLoader, OnnxOptions, Runtime};
use mlops::serve::ModelServerBuilder;
use mlops::{ArtifactPath, Error, ModelArtifact, Result};

/// How ONNX models run.
#[derive(Debug, Args)]
pub struct OnnxArgs {
    /// Which runtime runs ONNX models: auto (onnxruntime when its library is found, else tract),
    /// tract (pure Rust) or onnxruntime
    #[arg(long, value_name = "RUNTIME", default_value = "auto")]
    onnx_runtime: String,
    /// onnxruntime sessions per ONNX model, each holding a copy of the model and running one
    /// prediction at a time (default: the CPUs, at most 4)
    #[arg(long, value_name = "N")]
    onnx_sessions: Option<usize>,
    /// The onnxruntime library (libonnxruntime.so 1.31 or newer, e.g. from `pip install
    /// onnxruntime`: site-packages/onnxruntime/capi/libonnxruntime.so.1.*)
    #[arg(long, value_name = "FILE", env = "ORT_DYLIB_PATH")]
    onnxruntime_library: Option<PathBuf>,
}

impl OnnxArgs {
    /// The options they describe.
    pub fn options(&self) -> Result<OnnxOptions> {
        let runtime: Runtime = self.onnx_runtime.parse()?;
        let mut options = OnnxOptions::default().with_runtime(runtime);
        if let Some(lib) = &self.onnxruntime_library {
            options = options.with_onnxruntime_library(lib);
        }
        if let Some(n) = self.onnx_sessions {
            options = options.with_sessions(n);
        }
        Ok(options)
    }
}

/// `builder` with the loaders of every flavor the command serves: candle, onnx, and MLflow
/// model directories by their onnx flavor.
pub fn with_loaders(builder: ModelServerBuilder, onnx: &OnnxArgs) -> Result<ModelServerBuilder> {
    let onnx: Arc<dyn mlops::ModelLoader> = Arc::new(OnnxLoader::with_options(onnx.options()?));
    Ok(builder
        .loader(Arc::new(mlops::train::CandleLoader::new()))
        .loader(Arc::clone(&onnx))
        .loader(Arc::new(
            mlops::mlflow::model::MlflowModelLoader::new().with_onnx(onnx),
        )))
}

/// A model from a path: an ONNX file (`.onnx`), an MLflow model directory (an `MLmodel`
/// file) or a model directory (a `FLAVOR` file).
pub fn read_model(path: &Path) -> Result<ModelArtifact> {
    if path.is_file() {
        if path.extension().and_then(|e| e.to_str()) != Some("onnx") {
            return Err(Error::invalid(
                "model",
                format!(
                    "{} is a file but not an ONNX model (.onnx); a model directory is a folder",
                    path.display()
                ),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io("onnx model", "read", path, e))?;
        return Ok(ModelArtifact::new(mlops::onnx::FLAVOR)
            .with_file(ArtifactPath::new(mlops::onnx::MODEL_FILE)?, bytes));
    }
    if path.join(mlops::mlflow::model::MLMODEL_FILE).is_file()
        && !path.join(mlops::serve::FLAVOR_FILE).exists()
    {
        // Checked as an MLflow model (its MLmodel parses) as it is read.
        return mlops::mlflow::model::read_mlflow_dir(path);
    }
    mlops::serve::read_model_dir(path)
}

/// `mlops models register`: stores the model's files and creates a version whose signature is
/// the graph's and whose tags say where it came from.
pub async fn register(
    registry: &mlops::storage::StoreRegistry,
    artifacts: &mlops::storage::Artifacts,
    name: &mlops::ModelName,
    source: &Path,
    description: &str,
    tags: &[(String, String)],
) -> Result<mlops::ModelVersion> {
    use mlops::registry::{CreateModelOptions, CreateVersionOptions};
    use mlops::{Registry, Tag};

    let artifact = read_model(source)?;
    let (onnx_bytes, mut lineage_tags) = match artifact.flavor.as_str() {
        mlops::onnx::FLAVOR => (artifact.file(mlops::onnx::MODEL_FILE)?.clone(), Vec::new()),
        mlops::mlflow::model::FLAVOR => {
            let mlmodel = mlops::mlflow::model::MlModel::parse(
                artifact.file(mlops::mlflow::model::MLMODEL_FILE)?,
            )?;
            let file = mlmodel.onnx_file().ok_or_else(|| {
                Error::not_supported(
                    "MLflow model",
                    source.display(),
                    format!(
                        "it has no onnx flavor (flavors: {}); log it with mlflow.onnx",
                        mlmodel
                            .flavors
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            let mut tags = Vec::new();
            for (key, value) in [
                ("mlflow.run_id", &mlmodel.run_id),
                ("mlflow.model_id", &mlmodel.model_id),
                ("mlflow.mlflow_version", &mlmodel.mlflow_version),
            ] {
                if let Some(v) = value {
                    tags.push((key.to_owned(), v.clone()));
                }
            }
            (artifact.file(file)?.clone(), tags)
        }
        other => {
            return Err(Error::invalid(
                "models register",
                format!(
                    "{} is a {other} model; register takes ONNX files and MLflow model directories",
                    source.display()
                ),
            ));
        }
    };
    let info = mlops::onnx::inspect(&onnx_bytes)?;
    lineage_tags.push(("mlops.flavor".into(), artifact.flavor.clone()));
    lineage_tags.push(("mlops.source.path".into(), source.display().to_string()));
    lineage_tags.push((
        "mlops.source.onnx_digest".into(),
        mlops::Digest::of(&onnx_bytes).to_string(),
    ));
    for (key, value) in &info.provenance {
        if !key.starts_with("metadata.") {
            lineage_tags.push((format!("onnx.{key}"), value.clone()));
        }
    }
    if !info.tract_lacks.is_empty() {
        lineage_tags.push((
            "onnx.needs_onnxruntime".into(),
            info.tract_lacks
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    let mut version_tags = Vec::new();
    for (key, value) in lineage_tags.iter().chain(tags) {
        version_tags.push(Tag::new(key.parse()?, value.clone())?);
    }
    match registry
        .create_registered_model(name, CreateModelOptions::default())
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e),
    }
    let stored = artifacts.put_model(&artifact).await?;
    let mut options = CreateVersionOptions::new(mlops::storage::Artifacts::model_source(&stored));
    options.description = description.to_owned();
    options.tags = version_tags;
    options.signature = Some(info.signature.clone());
    let version = registry.create_model_version(name, options).await?;
    let runs_here = if info.tract_lacks.is_empty() {
        "runs on tract".to_owned()
    } else {
        format!(
            "serving needs onnxruntime: tract lacks {}",
            info.tract_lacks
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    eprintln!(
        "registered {} as models:/{name}/{} ({}; {}; {runs_here})",
        source.display(),
        version.version,
        artifact.flavor,
        signature_summary(&info.signature),
    );
    Ok(version)
}

/// `float_input FP32 [-1, 4] -> output_label INT64 [-1], …`.
fn signature_summary(signature: &mlops::signature::Signature) -> String {
    let side = |schema: &mlops::signature::Schema| match schema {
        mlops::signature::Schema::Tensors(t) => t
            .iter()
            .map(|t| {
                format!(
                    "{} {} {:?}",
                    t.name.as_deref().unwrap_or("?"),
                    t.datatype,
                    t.shape
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        mlops::signature::Schema::Columns(c) => c
            .iter()
            .map(|c| c.name.clone().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", "),
    };
    format!(
        "{} -> {}",
        side(&signature.inputs),
        signature.outputs.as_ref().map(side).unwrap_or_default()
    )
}

/// `mlops models export`.
pub async fn export(
    registry: &mlops::storage::StoreRegistry,
    artifacts: &mlops::storage::Artifacts,
    uri: &mlops::ModelUri,
    out: &Path,
    format: &str,
) -> Result<()> {
    use mlops::RegistryExt;
    use mlops::model::ArtifactSource;

    let version = registry.resolve(uri).await?;
    let artifact = artifacts.fetch(&version).await?;
    match format {
        "mlflow" => {
            let mut export = mlops::steps::export::MlflowExport::default()
                .with_metadata("registered_model_name", version.name.to_string())
                .with_metadata("registered_model_version", version.version.to_string());
            if let Some(run) = &version.run_id {
                export = export.with_run_id(run.to_string());
            }
            let dir = mlops::steps::export::mlflow_model(&artifact, &export)?;
            mlops::mlflow::model::write_mlflow_dir(&dir, out)?;
            println!(
                "wrote {} (MLflow model of {} version {}: mlflow.pyfunc.load_model({:?}))",
                out.display(),
                version.name,
                version.version,
                out.display().to_string()
            );
        }
        "onnx" => {
            let onnx = mlops::steps::export::onnx_artifact(&artifact)?;
            let bytes = onnx.file(mlops::onnx::MODEL_FILE)?;
            // Written beside it, then linked into place: never over an existing file, never
            // half-written.
            let tmp = out.with_file_name(format!(
                ".{}.partial-{}",
                out.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            std::fs::write(&tmp, bytes).map_err(|e| Error::io("onnx model", "write", &tmp, e))?;
            let linked = std::fs::hard_link(&tmp, out);
            let _ = std::fs::remove_file(&tmp);
            linked.map_err(|e| Error::io("onnx model", "write", out, e))?;
            println!(
                "wrote {} (ONNX model of {} version {})",
                out.display(),
                version.name,
                version.version
            );
        }
        other => {
            return Err(Error::invalid(
                "export format",
                format!("{other:?}: use mlflow or onnx"),
            ));
        }
    }
    Ok(())
}

/// The KServe model format of a version: `onnx` for ONNX models and MLflow models served by
/// their onnx flavor, else `mlops`.
pub async fn kserve_format(
    artifacts: &mlops::storage::Artifacts,
    version: &mlops::ModelVersion,
) -> Result<&'static str> {
    use mlops::serve::kserve::{MLOPS_FORMAT, ONNX_FORMAT};
    let Some(digest) = version
        .source
        .strip_prefix(mlops::storage::MODEL_SOURCE_PREFIX)
        .and_then(|d| d.parse::<mlops::Digest>().ok())
    else {
        return Ok(MLOPS_FORMAT);
    };
    let tree = artifacts.tree(&digest).await?;
    Ok(match tree.kind.strip_prefix("model:") {
        Some(mlops::onnx::FLAVOR) => ONNX_FORMAT,
        Some(mlops::mlflow::model::FLAVOR) => {
            let mlmodel = mlops::mlflow::model::MlModel::parse(
                &artifacts
                    .read_file(&tree, mlops::mlflow::model::MLMODEL_FILE)
                    .await?,
            )?;
            if mlmodel.onnx_file().is_some() {
                ONNX_FORMAT
            } else {
                MLOPS_FORMAT
            }
        }
        _ => MLOPS_FORMAT,
    })
}
