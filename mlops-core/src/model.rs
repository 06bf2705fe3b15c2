//! The [`Model`] trait (a loaded model that predicts) and model artifacts.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::id::ArtifactPath;
use crate::signature::Signature;
use crate::tensor::Tensor;

/// A model directory as files in memory: `MLmodel`-style card, safetensors weights, ….
///
/// Self-describing: [`ModelArtifact::flavor`] says which [`ModelLoader`] reads it, so a server
/// loads a model with no code from training.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelArtifact {
    /// Which loader reads it (`mlops.linear`, `mlops.mlp`, …).
    pub flavor: String,
    /// Files by relative path.
    pub files: BTreeMap<ArtifactPath, Bytes>,
}

impl ModelArtifact {
    /// An artifact of `flavor` with no files yet.
    pub fn new(flavor: impl Into<String>) -> Self {
        Self {
            flavor: flavor.into(),
            files: BTreeMap::new(),
        }
    }

    /// Adds a file.
    pub fn with_file(mut self, path: ArtifactPath, data: impl Into<Bytes>) -> Self {
        self.files.insert(path, data.into());
        self
    }

    /// A file's bytes; [`Error::NotFound`] naming the path when absent.
    pub fn file(&self, path: &str) -> Result<&Bytes> {
        self.files
            .get(path)
            .ok_or_else(|| Error::not_found("artifact", format!("{path} in {} model", self.flavor)))
    }
}

impl ModelArtifact {
    /// Adds every regular file under `dir` (recursively, paths relative to it with `/`), but
    /// those whose relative path is in `skip`. A symbolic link is refused rather than followed
    /// (it could bring in any file the process can read), as is a path that is not a valid
    /// [`ArtifactPath`].
    pub fn with_dir(mut self, dir: &std::path::Path, skip: &[&str]) -> Result<Self> {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries =
                std::fs::read_dir(&d).map_err(|e| Error::io("model directory", "read", &d, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("model directory", "read", &d, e))?;
                let path = entry.path();
                let kind = entry
                    .file_type()
                    .map_err(|e| Error::io("model directory", "read", &path, e))?;
                if kind.is_symlink() {
                    return Err(Error::invalid(
                        "model directory",
                        format!(
                            "{} is a symbolic link; a model directory holds files",
                            path.display()
                        ),
                    ));
                }
                if kind.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path
                    .strip_prefix(dir)
                    .map_err(|_| {
                        Error::invalid(
                            "model directory",
                            format!("{} escapes the folder", path.display()),
                        )
                    })?
                    .to_string_lossy()
                    .replace('\\', "/");
                if skip.contains(&rel.as_str()) {
                    continue;
                }
                let bytes =
                    std::fs::read(&path).map_err(|e| Error::io("model file", "read", &path, e))?;
                self.files
                    .insert(ArtifactPath::new(rel)?, Bytes::from(bytes));
            }
        }
        Ok(self)
    }
}

/// A loaded model.
///
/// # Contract
///
/// - [`predict`](Model::predict) takes tensors matching [`signature`](Model::signature)'s inputs
///   (by name, datatype and shape, the first dimension being the batch) and returns one tensor
///   per output with the same batch size. Inputs that do not match are
///   [`Error::InvalidArgument`] naming the input; it never panics.
/// - Predictions are deterministic for a given model and input, and row `i` of the outputs depends
///   only on row `i` of the inputs (so servers may batch requests together).
/// - [`to_artifact`](Model::to_artifact) then [`ModelLoader::load`] gives a model whose
///   predictions are identical.
pub trait Model: Debug + Send + Sync + 'static {
    /// The flavor name, as in the artifact.
    fn flavor(&self) -> &str;

    /// Inputs and outputs.
    fn signature(&self) -> &Signature;

    /// Runs inference.
    fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>>;

    /// Serialises the model into a self-describing artifact.
    fn to_artifact(&self) -> Result<ModelArtifact>;
}

/// Reads artifacts of one flavor back into models.
pub trait ModelLoader: Debug + Send + Sync + 'static {
    /// The flavor it reads.
    fn flavor(&self) -> &str;

    /// Loads a model; a malformed artifact is [`Error::Corrupt`] or [`Error::InvalidArgument`].
    fn load(&self, artifact: &ModelArtifact) -> Result<Arc<dyn Model>>;
}

macro_rules! forward_model {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        impl<M: Model + ?Sized> Model for $ty {
            fn flavor(&self) -> &str {
                (**self).flavor()
            }
            fn signature(&self) -> &Signature {
                (**self).signature()
            }
            fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
                (**self).predict(inputs)
            }
            fn to_artifact(&self) -> Result<ModelArtifact> {
                (**self).to_artifact()
            }
        }
    };
}

forward_model!(Arc<M>);
forward_model!(Box<M>);

/// Fetches the artifact a registered model version points at (its `source`), so a server can
/// load `models:/name@alias` without knowing where artifacts are kept.
///
/// # Contract
///
/// - A source this implementation does not understand is [`Error::NotSupported`] naming it; a
///   missing artifact is [`Error::NotFound`].
#[async_trait::async_trait]
pub trait ArtifactSource: Debug + Send + Sync + 'static {
    /// The artifact of `version`.
    async fn fetch(&self, version: &crate::registry::ModelVersion) -> Result<ModelArtifact>;
}

macro_rules! forward_source {
    ($ty:ty) => {
        #[async_trait::async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<S: ArtifactSource + ?Sized> ArtifactSource for $ty {
            async fn fetch(
                &self,
                version: &crate::registry::ModelVersion,
            ) -> Result<ModelArtifact> {
                (**self).fetch(version).await
            }
        }
    };
}

forward_source!(Arc<S>);
forward_source!(Box<S>);

/// Keeps model artifacts and says where each one is: the `source` a registry version records and
/// an [`ArtifactSource`] fetches back. Training code stores models through it, so it needs no
/// storage implementation.
///
/// # Contract
///
/// - Storing the same artifact twice gives the same source (artifacts are content-addressed
///   or otherwise idempotent), and a source it returned is fetchable by the matching
///   [`ArtifactSource`].
#[async_trait::async_trait]
pub trait ModelSink: Debug + Send + Sync + 'static {
    /// Stores `artifact`; returns its source.
    async fn store_model(&self, artifact: &ModelArtifact) -> Result<String>;
}

macro_rules! forward_sink {
    ($ty:ty) => {
        #[async_trait::async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<S: ModelSink + ?Sized> ModelSink for $ty {
            async fn store_model(&self, artifact: &ModelArtifact) -> Result<String> {
                (**self).store_model(artifact).await
            }
        }
    };
}

forward_sink!(Arc<S>);
forward_sink!(Box<S>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_reads_as_files_and_refuses_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("sub/b.bin"), [1u8, 2]).unwrap();
        std::fs::write(dir.path().join("FLAVOR"), "x").unwrap();
        let artifact = ModelArtifact::new("x")
            .with_dir(dir.path(), &["FLAVOR"])
            .unwrap();
        let names: Vec<&str> = artifact.files.keys().map(ArtifactPath::as_str).collect();
        assert_eq!(names, vec!["a.txt", "sub/b.bin"]);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/hostname", dir.path().join("sub/link")).unwrap();
            let e = ModelArtifact::new("x")
                .with_dir(dir.path(), &[])
                .unwrap_err();
            assert!(e.is_invalid_argument(), "{e}");
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
    }
}
