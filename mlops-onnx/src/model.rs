//! [`OnnxModel`], the runtimes that run it and [`OnnxLoader`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use mlops_core::model::{Model, ModelArtifact, ModelLoader};
use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::{ArtifactPath, Error, Result, Tensor};

use crate::graph::{ClassLabels, Graph};
use crate::tract::{self, TractEngine};

/// The flavor name.
pub const FLAVOR: &str = "onnx";
/// The file of an `onnx` artifact: the ONNX model as exported, unchanged.
pub const MODEL_FILE: &str = "model.onnx";

/// Which runtime runs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Runtime {
    /// onnxruntime when it is available (built with the `ort` feature, its library found) and
    /// takes the graph, else tract; the default. Measured (`cargo bench -p mlops-benches --
    /// onnx/`): onnxruntime was as fast as tract on one row of a logistic regression (3.3 µs)
    /// and faster everywhere else — 1.2× to 5× on MLPs and a small CNN, 9× on 1024 rows of the
    /// logistic regression, 20× to 700× on a random forest — while tract needs no native
    /// library and is the pure-Rust fallback.
    #[default]
    Auto,
    /// tract only: a graph it cannot run is refused at load.
    Tract,
    /// onnxruntime only (the `ort` feature; otherwise refused at load).
    OnnxRuntime,
}

impl FromStr for Runtime {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "tract" => Ok(Self::Tract),
            "onnxruntime" | "ort" => Ok(Self::OnnxRuntime),
            other => Err(Error::invalid(
                "onnx runtime",
                format!("{other:?} is not a runtime: auto, tract or onnxruntime"),
            )),
        }
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Tract => "tract",
            Self::OnnxRuntime => "onnxruntime",
        })
    }
}

/// How ONNX models are loaded and run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnnxOptions {
    /// Which runtime (default [`Runtime::Auto`]).
    pub runtime: Runtime,
    /// The onnxruntime library; `None` reads `ORT_DYLIB_PATH`. One library per process.
    pub onnxruntime_library: Option<PathBuf>,
    /// onnxruntime sessions per model, each running one prediction at a time and holding its
    /// own copy of the model (default: the number of CPUs, at most 4, so that concurrent
    /// requests run in parallel).
    pub sessions: usize,
    /// Threads each onnxruntime session uses within one prediction (default 1: concurrency
    /// comes from the sessions; raise it for large single predictions).
    pub threads_per_session: usize,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        Self {
            runtime: Runtime::Auto,
            onnxruntime_library: None,
            sessions: std::thread::available_parallelism().map_or(1, |n| usize::from(n).min(4)),
            threads_per_session: 1,
        }
    }
}

impl OnnxOptions {
    /// Runs models with `runtime`.
    pub fn with_runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }

    /// Loads onnxruntime from `path` instead of `ORT_DYLIB_PATH`.
    pub fn with_onnxruntime_library(mut self, path: impl Into<PathBuf>) -> Self {
        self.onnxruntime_library = Some(path.into());
        self
    }

    /// Keeps `n` onnxruntime sessions per model.
    pub fn with_sessions(mut self, n: usize) -> Self {
        self.sessions = n.max(1);
        self
    }

    /// Gives each onnxruntime session `n` threads.
    pub fn with_threads_per_session(mut self, n: usize) -> Self {
        self.threads_per_session = n.max(1);
        self
    }
}

/// What runs a loaded model.
#[derive(Debug)]
enum Engine {
    Tract(TractEngine),
    #[cfg(feature = "ort")]
    Ort(crate::ort::OrtEngine),
}

/// An ONNX model, run by tract or onnxruntime.
///
/// Cheap to share: predictions take `&self` and run concurrently (tract plans are shared;
/// onnxruntime runs on a pool of sessions).
#[derive(Clone)]
pub struct OnnxModel {
    /// The file as given, so [`Model::to_artifact`] stores exactly what was exported.
    bytes: Bytes,
    signature: Signature,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    class_labels: Option<ClassLabels>,
    provenance: BTreeMap<String, String>,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("bytes", &self.bytes.len())
            .field("runtime", &self.runtime())
            .field("signature", &self.signature)
            .field("class_labels", &self.class_labels)
            .finish_non_exhaustive()
    }
}

impl OnnxModel {
    /// Loads `model.onnx` from a file with the default options.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_path_with(path, &OnnxOptions::default())
    }

    /// Loads a model from a file.
    pub fn from_path_with(path: impl AsRef<Path>, options: &OnnxOptions) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io("onnx model", "read", path, e))?;
        Self::from_bytes_with(bytes, options)
    }

    /// Loads a model from the bytes of an ONNX file with the default options.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<Self> {
        Self::from_bytes_with(bytes, &OnnxOptions::default())
    }

    /// Loads a model from the bytes of an ONNX file (a serialized `ModelProto`).
    ///
    /// Fails with [`Error::InvalidArgument`] when the bytes are not an ONNX model, and with
    /// [`Error::NotSupported`] when no runtime allowed by `options` can run it, naming every
    /// operator the pure-Rust runtime lacks — always here, never at request time.
    pub fn from_bytes_with(bytes: impl Into<Bytes>, options: &OnnxOptions) -> Result<Self> {
        let bytes = bytes.into();
        let graph = Graph::parse(&bytes)?;
        let engine = select(&bytes, &graph, options)?;
        Ok(Self {
            signature: Signature::tensors(graph.inputs.clone(), graph.outputs.clone()),
            provenance: graph.provenance(),
            inputs: graph.inputs,
            outputs: graph.outputs,
            class_labels: graph.zipmap.map(|z| z.labels),
            engine: Arc::new(engine),
            bytes,
        })
    }

    /// The class labels behind the probability output when the graph ended in a ZipMap
    /// (columns in this order); `None` for a model without one.
    pub fn class_labels(&self) -> Option<&ClassLabels> {
        self.class_labels.as_ref()
    }

    /// The runtime that runs this model: [`Runtime::Tract`] or [`Runtime::OnnxRuntime`].
    pub fn runtime(&self) -> Runtime {
        match &*self.engine {
            Engine::Tract(_) => Runtime::Tract,
            #[cfg(feature = "ort")]
            Engine::Ort(_) => Runtime::OnnxRuntime,
        }
    }

    /// What the file says about its origin (`producer_name`, `producer_version`, `opset.<domain>`,
    /// `ir_version`, `metadata.<key>` for the model's metadata properties), for lineage tags.
    pub fn provenance(&self) -> &BTreeMap<String, String> {
        &self.provenance
    }

    /// The ONNX file as loaded.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Checks `inputs` against the signature; returns them in graph order.
    fn ordered<'a>(&self, inputs: &'a [Tensor]) -> Result<Vec<&'a Tensor>> {
        if let Some(t) = inputs.iter().find(|t| {
            !self
                .inputs
                .iter()
                .any(|s| s.name.as_deref() == Some(t.name()))
        }) {
            return Err(Error::invalid(
                "input",
                format!(
                    "unexpected input {:?}; the model takes {}",
                    t.name(),
                    self.inputs
                        .iter()
                        .filter_map(|s| s.name.as_deref())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let mut ordered = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let name = spec.name.as_deref().unwrap_or_default();
            let mut found = inputs.iter().filter(|t| t.name() == name);
            let t = found
                .next()
                .ok_or_else(|| Error::invalid("input", format!("missing input {name:?}")))?;
            if found.next().is_some() {
                return Err(Error::invalid(
                    "input",
                    format!("input {name:?} given twice"),
                ));
            }
            if t.datatype() != spec.datatype {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "input {name:?} must be {}, got {}",
                        spec.datatype,
                        t.datatype()
                    ),
                ));
            }
            if !spec.accepts_shape(t.shape()) {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "input {name:?} must have shape {:?} (-1 = any), got {:?}",
                        spec.shape,
                        t.shape()
                    ),
                ));
            }
            ordered.push(t);
        }
        Ok(ordered)
    }
}

/// The engine `options` allow for `graph`.
fn select(bytes: &Bytes, graph: &Graph, options: &OnnxOptions) -> Result<Engine> {
    let missing = tract::missing_operators(graph);
    let unsupported = || {
        Error::not_supported(
            "onnx operator",
            missing.iter().cloned().collect::<Vec<_>>().join(", "),
            "the pure-Rust runtime (tract) does not implement it; run the model with \
             onnxruntime (the `ort` feature, with ORT_DYLIB_PATH naming libonnxruntime) or \
             re-export it without that operator",
        )
    };
    match options.runtime {
        Runtime::Tract if !missing.is_empty() => Err(unsupported()),
        Runtime::Tract => TractEngine::plan(graph).map(Engine::Tract),
        Runtime::OnnxRuntime => onnxruntime(bytes, graph, options),
        Runtime::Auto => match onnxruntime(bytes, graph, options) {
            Ok(engine) => Ok(engine),
            // Not available here (no feature, no library), or it refused the graph: tract.
            Err(ort) if ort.is_not_supported() => {
                tracing::debug!(error = %ort, "onnxruntime not used; trying tract");
                if missing.is_empty() {
                    TractEngine::plan(graph)
                        .map(Engine::Tract)
                        .map_err(|e| e.context(format!("onnxruntime: {ort}")))
                } else {
                    // Name the operators; say why onnxruntime did not take over.
                    Err(unsupported().context(format!("onnxruntime: {ort}")))
                }
            }
            Err(e) => Err(e),
        },
    }
}

#[cfg(feature = "ort")]
fn onnxruntime(bytes: &Bytes, graph: &Graph, options: &OnnxOptions) -> Result<Engine> {
    crate::ort::OrtEngine::new(
        bytes,
        graph,
        options.onnxruntime_library.as_deref(),
        options.sessions,
        options.threads_per_session,
    )
    .map(Engine::Ort)
}

#[cfg(not(feature = "ort"))]
fn onnxruntime(_bytes: &Bytes, _graph: &Graph, _options: &OnnxOptions) -> Result<Engine> {
    Err(no_onnxruntime())
}

#[cfg(not(feature = "ort"))]
fn no_onnxruntime() -> Error {
    Error::not_supported(
        "onnx runtime",
        "onnxruntime",
        "this build has no onnxruntime support (the `ort` feature of mlops-onnx)",
    )
}

impl Model for OnnxModel {
    fn flavor(&self) -> &str {
        FLAVOR
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let ordered = self.ordered(inputs)?;
        match &*self.engine {
            Engine::Tract(engine) => engine.run(&ordered, &self.outputs),
            #[cfg(feature = "ort")]
            Engine::Ort(engine) => engine.run(&ordered, &self.inputs, &self.outputs),
        }
    }

    fn to_artifact(&self) -> Result<ModelArtifact> {
        Ok(
            ModelArtifact::new(FLAVOR)
                .with_file(ArtifactPath::new(MODEL_FILE)?, self.bytes.clone()),
        )
    }
}

/// Loads `onnx` artifacts (`model.onnx`) with its options.
#[derive(Debug, Clone, Default)]
pub struct OnnxLoader {
    options: OnnxOptions,
}

impl OnnxLoader {
    /// A loader with the default options ([`Runtime::Auto`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A loader with these options.
    pub fn with_options(options: OnnxOptions) -> Self {
        Self { options }
    }

    /// Its options.
    pub fn options(&self) -> &OnnxOptions {
        &self.options
    }

    /// The model of an artifact, typed (the [`ModelLoader`] answers it as `dyn Model`).
    pub fn load_onnx(&self, artifact: &ModelArtifact) -> Result<OnnxModel> {
        if artifact.flavor != FLAVOR {
            return Err(Error::invalid(
                "model artifact",
                format!("flavor {:?} is not {FLAVOR:?}", artifact.flavor),
            ));
        }
        OnnxModel::from_bytes_with(artifact.file(MODEL_FILE)?.clone(), &self.options)
    }
}

impl ModelLoader for OnnxLoader {
    fn flavor(&self) -> &str {
        FLAVOR
    }

    fn load(&self, artifact: &ModelArtifact) -> Result<Arc<dyn Model>> {
        Ok(Arc::new(self.load_onnx(artifact)?))
    }
}

/// What an ONNX file declares, read without planning or running it: for registering a model
/// where no runtime is at hand.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnnxInfo {
    /// The signature a loaded model will have (ZipMap outputs as `[N, classes]` tensors).
    pub signature: Signature,
    /// The class labels of an unwrapped ZipMap.
    pub class_labels: Option<ClassLabels>,
    /// Producer, opsets and metadata properties (see [`OnnxModel::provenance`]).
    pub provenance: BTreeMap<String, String>,
    /// Every operator the graph uses, as `domain:op_type` (`op_type` in the default domain).
    pub operators: std::collections::BTreeSet<String>,
    /// The operators the pure-Rust runtime lacks: non-empty means serving needs onnxruntime.
    pub tract_lacks: std::collections::BTreeSet<String>,
}

/// Reads what an ONNX file declares ([`OnnxInfo`]); malformed bytes are `InvalidArgument`, a
/// non-tensor input or output `NotSupported`.
pub fn inspect(bytes: &[u8]) -> Result<OnnxInfo> {
    let graph = Graph::parse(bytes)?;
    Ok(OnnxInfo {
        signature: Signature::tensors(graph.inputs.clone(), graph.outputs.clone()),
        class_labels: graph.zipmap.as_ref().map(|z| z.labels.clone()),
        provenance: graph.provenance(),
        tract_lacks: tract::missing_operators(&graph),
        operators: graph.operators,
    })
}

/// The ONNX file as served: scikit-learn's ZipMap replaced by the `[N, classes]` tensor it
/// wraps (what this crate serves under the output's name, and what skl2onnx writes with
/// `options={id(model): {"zipmap": False}}`); the file unchanged when it has none. For handing a
/// model to tools that read tensors only (MLflow's pyfunc, Triton).
pub fn without_zipmap(bytes: &Bytes) -> Result<Bytes> {
    Graph::parse(bytes)?.for_onnxruntime(bytes)
}

/// Whether onnxruntime can be used in this process: built with the `ort` feature and its library
/// found (at `library`, else `ORT_DYLIB_PATH`). The error says what is missing.
pub fn onnxruntime_available(library: Option<&Path>) -> Result<()> {
    #[cfg(feature = "ort")]
    {
        crate::ort::available(library)
    }
    #[cfg(not(feature = "ort"))]
    {
        let _ = library;
        Err(no_onnxruntime())
    }
}
