//! MLflow model directories: a folder with an `MLmodel` file naming its flavors (`onnx`,
//! `python_function`, …), its signature in MLflow's encoding and where it came from, beside the
//! flavors' files (`model.onnx`).
//!
//! - [`MlModel`] reads and writes the `MLmodel` file.
//! - [`MlflowModelLoader`] serves such a directory, kept as an artifact of flavor
//!   [`FLAVOR`] (`mlflow`), by the first of its MLflow flavors that has a loader of ours —
//!   `onnx` through the `onnx` flavor's loader (mlops-onnx), handed in so this crate depends on
//!   core only.
//! - [`MlflowArtifacts`] fetches the directory of a version of a real MLflow registry through
//!   the server's artifact proxy, so `models:/name/3` of an MLflow registry serves from our
//!   server.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use mlops_core::model::{ArtifactSource, Model, ModelArtifact, ModelLoader};
use mlops_core::registry::ModelVersion;
use mlops_core::signature::{Schema, Signature};
use mlops_core::{ArtifactPath, Error, Result, Tensor};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::MlflowClient;

/// Our flavor name for an MLflow model directory kept as an artifact.
pub const FLAVOR: &str = "mlflow";
/// The file that makes a folder an MLflow model.
pub const MLMODEL_FILE: &str = "MLmodel";

/// `signature:` of an `MLmodel` file: schemas as JSON strings, MLflow's encoding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MlSignature {
    /// Inputs (`'[{"type": "tensor", …}]'`).
    #[serde(default)]
    pub inputs: Option<String>,
    /// Outputs.
    #[serde(default)]
    pub outputs: Option<String>,
    /// Inference parameters.
    #[serde(default)]
    pub params: Option<String>,
}

/// An `MLmodel` file. Keys this type does not name are kept as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MlModel {
    /// The flavors and their configuration, by name.
    pub flavors: BTreeMap<String, serde_yaml_ng::Value>,
    /// The signature, when logged with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<MlSignature>,
    /// The run that logged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The model's id (`m-…`, MLflow 3's LoggedModel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// A unique id of this copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_uuid: Option<String>,
    /// When it was saved (`2026-12-07 14:16:14.846075`, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_time_created: Option<String>,
    /// The MLflow version that saved it (or that the writer speaks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow_version: Option<String>,
    /// Everything else (`artifact_path`, `saved_input_example_info`, `metadata`, …).
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml_ng::Value>,
}

impl MlModel {
    /// Parses an `MLmodel` file.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let model: Self = serde_yaml_ng::from_slice(bytes).map_err(|e| {
            Error::invalid("MLmodel", format!("not an MLmodel file: {e}")).with_source(e)
        })?;
        if model.flavors.is_empty() {
            return Err(Error::invalid("MLmodel", "it names no flavors"));
        }
        Ok(model)
    }

    /// The file as YAML.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml_ng::to_string(self).map_err(|e| Error::backend("serde_yaml", e))
    }

    /// The signature, decoded; `None` when the model was logged without one.
    pub fn signature(&self) -> Result<Option<Signature>> {
        let Some(sig) = &self.signature else {
            return Ok(None);
        };
        let Some(inputs) = &sig.inputs else {
            return Ok(None);
        };
        Ok(Some(Signature {
            inputs: Schema::from_mlflow_json(inputs)?,
            outputs: sig
                .outputs
                .as_deref()
                .map(Schema::from_mlflow_json)
                .transpose()?,
        }))
    }

    /// A flavor's string setting (`flavors.onnx.data`).
    pub fn flavor_setting(&self, flavor: &str, key: &str) -> Option<&str> {
        self.flavors.get(flavor)?.get(key)?.as_str()
    }

    /// The ONNX file of an `onnx` flavor: `data`, else `onnx_model` (older MLflow), else
    /// `model.onnx`; `None` without an `onnx` flavor.
    pub fn onnx_file(&self) -> Option<&str> {
        self.flavors.get("onnx")?;
        Some(
            self.flavor_setting("onnx", "data")
                .or_else(|| self.flavor_setting("onnx", "onnx_model"))
                .unwrap_or("model.onnx"),
        )
    }
}

/// Loads MLflow model directories (artifacts of flavor [`FLAVOR`]) by their `onnx` flavor, the
/// one MLflow flavor that needs no Python to run: its ONNX file becomes the `model.onnx` of an
/// artifact for the `onnx` flavor's loader (mlops-onnx's `OnnxLoader`), which is handed in so
/// that this crate depends on core only.
///
/// ```no_run
/// # fn example(onnx_loader: std::sync::Arc<dyn mlops_core::ModelLoader>) -> mlops_core::Result<()> {
/// use mlops_mlflow::model::{MlflowModelLoader, read_mlflow_dir};
/// use mlops_core::ModelLoader;
///
/// let loader = MlflowModelLoader::new().with_onnx(onnx_loader);
/// let model = loader.load(&read_mlflow_dir("path/to/model".as_ref())?)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MlflowModelLoader {
    onnx: Option<Arc<dyn ModelLoader>>,
}

impl MlflowModelLoader {
    /// A loader that serves no flavor yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves the `onnx` flavor with `loader`.
    pub fn with_onnx(mut self, loader: Arc<dyn ModelLoader>) -> Self {
        self.onnx = Some(loader);
        self
    }

    /// The model of an MLflow model directory, typed.
    pub fn load_mlflow(&self, artifact: &ModelArtifact) -> Result<MlflowModel> {
        let mlmodel = MlModel::parse(artifact.file(MLMODEL_FILE)?)?;
        let (Some(loader), Some(file)) = (&self.onnx, mlmodel.onnx_file()) else {
            return Err(Error::not_supported(
                "MLflow flavor",
                mlmodel
                    .flavors
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                format!(
                    "no loader for any of the model's flavors (served: {})",
                    if self.onnx.is_some() { "onnx" } else { "none" }
                ),
            ));
        };
        let bytes = artifact.file(file).map_err(|e| {
            e.context(format!(
                "the onnx flavor's file {file:?} of the MLflow model"
            ))
        })?;
        let inner = loader.load(
            &ModelArtifact::new(loader.flavor())
                .with_file(ArtifactPath::new("model.onnx")?, bytes.clone()),
        )?;
        // The graph's signature is what the model takes; the logged one must not contradict it.
        if let Some(logged) = mlmodel.signature()? {
            check_signature(&logged, inner.signature())?;
        }
        Ok(MlflowModel {
            inner,
            artifact: artifact.clone(),
            mlmodel,
        })
    }
}

/// A logged tensor signature whose named inputs the model takes with another datatype
/// contradicts the model: refused, naming the input.
fn check_signature(logged: &Signature, model: &Signature) -> Result<()> {
    let (Schema::Tensors(logged), Schema::Tensors(actual)) = (&logged.inputs, &model.inputs) else {
        return Ok(());
    };
    for spec in logged {
        let Some(name) = &spec.name else { continue };
        if let Some(real) = actual.iter().find(|a| a.name.as_deref() == Some(name))
            && real.datatype != spec.datatype
        {
            return Err(Error::invalid(
                "MLmodel",
                format!(
                    "its signature says input {name:?} is {}, the model takes {}",
                    spec.datatype, real.datatype
                ),
            ));
        }
    }
    Ok(())
}

impl ModelLoader for MlflowModelLoader {
    fn flavor(&self) -> &str {
        FLAVOR
    }

    fn load(&self, artifact: &ModelArtifact) -> Result<Arc<dyn Model>> {
        Ok(Arc::new(self.load_mlflow(artifact)?))
    }
}

/// A model loaded from an MLflow model directory: predictions by the flavor's model, the
/// directory kept whole (its artifact is the directory, `MLmodel` included).
#[derive(Debug, Clone)]
pub struct MlflowModel {
    inner: Arc<dyn Model>,
    artifact: ModelArtifact,
    mlmodel: MlModel,
}

impl MlflowModel {
    /// The `MLmodel` file.
    pub fn mlmodel(&self) -> &MlModel {
        &self.mlmodel
    }

    /// The model the flavor loaded.
    pub fn inner(&self) -> &Arc<dyn Model> {
        &self.inner
    }
}

impl Model for MlflowModel {
    fn flavor(&self) -> &str {
        FLAVOR
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.inner.predict(inputs)
    }

    fn to_artifact(&self) -> Result<ModelArtifact> {
        Ok(self.artifact.clone())
    }
}

/// Reads an MLflow model directory (every file, recursively) as an artifact of flavor
/// [`FLAVOR`]; the `MLmodel` file must parse. Symbolic links are refused.
pub fn read_mlflow_dir(dir: &std::path::Path) -> Result<ModelArtifact> {
    let mlmodel = dir.join(MLMODEL_FILE);
    let bytes = std::fs::read(&mlmodel).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && dir.is_dir() {
            Error::invalid(
                "MLflow model",
                format!("{} has no {MLMODEL_FILE} file", dir.display()),
            )
        } else {
            Error::io("MLflow model", "read", &mlmodel, e)
        }
    })?;
    MlModel::parse(&bytes)?;
    ModelArtifact::new(FLAVOR).with_dir(dir, &[])
}

/// Writes an artifact's files (an MLflow model directory) as `dir`, which must not exist or be
/// empty: into a temporary sibling first, renamed into place at the end, so a failure leaves no
/// half-written directory.
pub fn write_mlflow_dir(artifact: &ModelArtifact, dir: &std::path::Path) -> Result<()> {
    artifact.file(MLMODEL_FILE)?;
    let occupied = || {
        Error::already_exists("directory", dir.display().to_string())
            .context("exports go to a new or empty directory")
    };
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(|e| Error::io("MLflow model", "read", dir, e))?
            .next()
            .is_some()
    {
        return Err(occupied());
    }
    let name = dir
        .file_name()
        .ok_or_else(|| Error::invalid("directory", format!("{} names no folder", dir.display())))?;
    let staging = dir.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        for (path, bytes) in &artifact.files {
            let target = staging.join(path.as_str());
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io("MLflow model", "create", parent, e))?;
            }
            std::fs::write(&target, bytes)
                .map_err(|e| Error::io("MLflow model", "write", &target, e))?;
        }
        // Renaming onto an empty directory replaces it; onto a non-empty one (another writer
        // won the race) fails.
        std::fs::rename(&staging, dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::DirectoryNotEmpty => occupied(),
            _ => Error::io("MLflow model", "rename", dir, e),
        })
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    written
}

/// Fetches model versions' files from a real MLflow server's artifact proxy
/// (`mlflow server --serve-artifacts`, the default): the version's download URI
/// (`mlflow-artifacts:/1/models/m-…/artifacts`) is listed and every file downloaded. A folder
/// with an `MLmodel` file becomes an artifact of flavor [`FLAVOR`].
#[derive(Debug, Clone)]
pub struct MlflowArtifacts {
    client: MlflowClient,
    /// Files fetched per version, at most (a guard against a wrong URI that lists a whole store).
    max_files: usize,
    /// Folders listed per version, at most.
    max_dirs: usize,
    /// Bytes fetched per version, at most (the files are held in memory).
    max_bytes: u64,
}

#[derive(Deserialize)]
struct DownloadUri {
    artifact_uri: String,
}

#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    files: Vec<ListedFile>,
}

#[derive(Deserialize)]
struct ListedFile {
    path: String,
    #[serde(default)]
    is_dir: bool,
}

impl MlflowArtifacts {
    /// For the server at `tracking_uri` (see [`MlflowClient::new`]: credentials from
    /// `MLFLOW_TRACKING_TOKEN` or basic auth).
    pub fn new(tracking_uri: &str) -> Result<Self> {
        Ok(Self {
            client: MlflowClient::new(tracking_uri)?,
            max_files: 10_000,
            max_dirs: 10_000,
            max_bytes: 4 << 30,
        })
    }

    /// Fetches at most `bytes` per version (default 4 GiB).
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Downloads every file under an `mlflow-artifacts:` URI.
    pub async fn fetch_uri(&self, uri: &str) -> Result<BTreeMap<String, Bytes>> {
        let path = uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
            Error::not_supported(
                "artifact location",
                uri,
                "only mlflow-artifacts: URIs (the server's artifact proxy) are fetched; \
                 start `mlflow server` with artifact serving (its default)",
            )
        })?;
        if path.starts_with("//") {
            return Err(Error::not_supported(
                "artifact location",
                uri,
                "an mlflow-artifacts URI naming another host; only this server's proxy is read",
            ));
        }
        let root = path.trim_start_matches('/').trim_end_matches('/');
        let mut files = BTreeMap::new();
        let mut dirs = vec![String::new()];
        let (mut listed, mut bytes) = (0usize, 0u64);
        let too_big = |what: String| {
            Error::invalid("artifact location", format!("{uri} holds more than {what}"))
        };
        while let Some(rel) = dirs.pop() {
            listed += 1;
            if listed > self.max_dirs {
                return Err(too_big(format!("{} folders", self.max_dirs)));
            }
            let full = if rel.is_empty() {
                root.to_owned()
            } else {
                format!("{root}/{rel}")
            };
            let listing: Listing = serde_json::from_value(self.client.list_artifacts(&full).await?)
                .map_err(|e| Error::backend("mlflow artifact listing", e))?;
            for f in listing.files {
                let name = f.path.rsplit('/').next().unwrap_or(&f.path);
                if name.is_empty() || name == "." || name == ".." {
                    return Err(Error::corrupt(
                        "artifact listing",
                        full.clone(),
                        format!("an entry named {name:?}"),
                    ));
                }
                let child = if rel.is_empty() {
                    name.to_owned()
                } else {
                    format!("{rel}/{name}")
                };
                if f.is_dir {
                    dirs.push(child);
                } else {
                    if files.len() >= self.max_files {
                        return Err(too_big(format!("{} files", self.max_files)));
                    }
                    let data = self
                        .client
                        .get_artifact(&encode_path(&format!("{root}/{child}")))
                        .await?;
                    bytes = bytes.saturating_add(data.len() as u64);
                    if bytes > self.max_bytes {
                        return Err(too_big(format!("{} bytes", self.max_bytes)));
                    }
                    files.insert(child, data);
                }
            }
        }
        if files.is_empty() {
            return Err(Error::not_found("artifact", uri));
        }
        Ok(files)
    }
}

/// A `/`-separated path with every segment percent-encoded (names may hold `#`, `?`, `%` or
/// spaces, which would otherwise change the URL).
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let mut out = String::with_capacity(segment.len());
            for b in segment.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[async_trait]
impl ArtifactSource for MlflowArtifacts {
    async fn fetch(&self, version: &ModelVersion) -> Result<ModelArtifact> {
        let r: DownloadUri = self
            .client
            .call(
                Method::GET,
                "model-versions/get-download-uri",
                &json!({"name": version.name.as_str(), "version": version.version.to_string()}),
                "model version",
                &format!("{}/{}", version.name, version.version),
            )
            .await?;
        let files = self.fetch_uri(&r.artifact_uri).await?;
        if !files.contains_key(MLMODEL_FILE) {
            return Err(Error::not_supported(
                "model artifact",
                r.artifact_uri,
                format!("it has no {MLMODEL_FILE} file: not an MLflow model directory"),
            ));
        }
        let mut artifact = ModelArtifact::new(FLAVOR);
        for (path, data) in files {
            artifact = artifact.with_file(ArtifactPath::new(path)?, data);
        }
        Ok(artifact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MLMODEL: &str = r#"flavors:
  onnx:
    code: null
    data: model.onnx
    onnx_session_options: null
    onnx_version: 1.23.2
    providers:
    - CUDAExecutionProvider
    - CPUExecutionProvider
  python_function:
    data: model.onnx
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.onnx
    python_version: 3.11.7
is_signature_from_type_hint: false
mlflow_version: 3.17.2
model_id: null
model_size_bytes: 758
model_uuid: 1f16c48c97b448c78bd8818d8ea6a200
prompts: null
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]'
  outputs: '[{"name": "y", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 1]}}]'
  params: null
utc_time_created: '2026-12-07 14:16:14.846075'
"#;

    #[test]
    fn mlflow_3_mlmodel_files_parse_and_keep_unknown_keys() {
        let m = MlModel::parse(MLMODEL.as_bytes()).unwrap();
        assert_eq!(m.onnx_file(), Some("model.onnx"));
        assert_eq!(m.mlflow_version.as_deref(), Some("3.17.2"));
        assert_eq!(m.other["model_size_bytes"], serde_yaml_ng::Value::from(758));
        let sig = m.signature().unwrap().unwrap();
        let Schema::Tensors(inputs) = sig.inputs else {
            panic!("tensor inputs")
        };
        assert_eq!(inputs[0].shape, vec![-1, 4]);
        // Written back, it reads the same.
        let again = MlModel::parse(m.to_yaml().unwrap().as_bytes()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn bad_mlmodel_files_are_invalid() {
        for bad in [
            "",
            "flavors: {}",
            "[1, 2]",
            "flavors: {onnx: {}}\nsignature: 3",
        ] {
            let e = MlModel::parse(bad.as_bytes()).unwrap_err();
            assert!(e.is_invalid_argument(), "{bad:?}: {e}");
        }
        let m = MlModel::parse(b"flavors: {onnx: {}}\nsignature: {inputs: 'nope'}").unwrap();
        assert!(m.signature().unwrap_err().is_invalid_argument());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(
            encode_path("1/models/m-1/artifacts/a b#c?.onnx"),
            "1/models/m-1/artifacts/a%20b%23c%3F.onnx"
        );
    }

    #[test]
    fn a_directory_is_written_whole_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("model");
        let artifact = ModelArtifact::new(FLAVOR)
            .with_file(
                ArtifactPath::new(MLMODEL_FILE).unwrap(),
                "flavors: {onnx: {}}",
            )
            .with_file(ArtifactPath::new("model.onnx").unwrap(), vec![1u8, 2, 3]);
        write_mlflow_dir(&artifact, &out).unwrap();
        assert_eq!(
            std::fs::read(out.join("model.onnx")).unwrap(),
            vec![1, 2, 3]
        );
        // Not over a directory with files in it; nothing staged is left behind.
        let e = write_mlflow_dir(&artifact, &out).unwrap_err();
        assert!(e.is_already_exists(), "{e}");
        let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // No MLmodel: not an MLflow model directory.
        let bare = ModelArtifact::new(FLAVOR)
            .with_file(ArtifactPath::new("model.onnx").unwrap(), vec![1u8]);
        assert!(
            write_mlflow_dir(&bare, &root.path().join("bare"))
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn a_directory_without_a_flavor_we_serve_is_not_supported() {
        let artifact = ModelArtifact::new(FLAVOR).with_file(
            ArtifactPath::new(MLMODEL_FILE).unwrap(),
            "flavors: {sklearn: {pickled_model: model.pkl}}",
        );
        let e = MlflowModelLoader::new().load(&artifact).unwrap_err();
        assert!(e.is_not_supported(), "{e}");
        assert!(e.to_string().contains("sklearn"), "{e}");
    }
}
