//! # mlops-onnx
//!
//! ONNX models for mlops: the `onnx` flavor. A model trained anywhere — scikit-learn through
//! `skl2onnx`, PyTorch through `torch.onnx.export`, a graph built with `onnx.helper` — is one
//! file, `model.onnx`. This crate loads it as a [`Model`](mlops_core::Model) that the server,
//! the explainers and the drift monitors use like any other.
//!
//! - **Two runtimes.** [tract](https://github.com/sonos/tract), pure Rust, always built; and
//!   onnxruntime (feature `ort`), which runs every operator and is loaded at run time from the
//!   library the user points at with `ORT_DYLIB_PATH` (the `onnxruntime` Python wheel ships
//!   one: `site-packages/onnxruntime/capi/libonnxruntime.so.1.*`, 1.31 or newer) — nothing is
//!   downloaded or linked at build time. [`Runtime::Auto`], the default, uses onnxruntime when
//!   it is available — measured as fast or faster on every model tried, up to 700× on tree
//!   ensembles — and tract otherwise (no native library at all).
//! - **The signature comes from the graph**: one tensor per graph input (initializers excluded)
//!   and output, with the ONNX element type mapped to ours and every dimension that is not a
//!   fixed number (a `dim_param` such as `N`, or no value at all) as `-1`.
//! - **scikit-learn's ZipMap is unwrapped.** `skl2onnx` ends classifiers with a `ZipMap` that
//!   turns the probability tensor into a sequence of `{class: probability}` maps, which no
//!   tensor protocol carries. The output keeps its name (`output_probability`) and becomes FP32
//!   `[-1, classes]`, columns in the order of the ZipMap's class labels
//!   ([`OnnxModel::class_labels`]) — what the model gives when exported with
//!   `options={id(clf): {"zipmap": False}}`. A ZipMap whose maps feed other nodes is refused
//!   with that option in the message.
//! - **Common scikit-learn operators tract lacks are rewritten**: `ai.onnx.ml` `Scaler` (a
//!   `StandardScaler`) becomes `Cast`, `Sub` and `Mul`, so scaled pipelines run in pure Rust.
//! - **Files that read other files are refused**: a tensor stored as external data (beside the
//!   model) is `NotSupported` at load, so a registered model cannot pull files from where it is
//!   served.
//! - **Everything no runtime can run is refused at load**, never at request time:
//!   [`Error::NotSupported`](mlops_core::Error::NotSupported) naming every operator tract lacks
//!   (e.g. `ai.onnx.ml:TreeEnsembleRegressor`, `ai.onnx.ml:OneHotEncoder`) when onnxruntime is
//!   not available, a non-tensor input or output, or an element type we do not carry.
//! - **Requests are checked** against the signature (names, datatypes, fixed dimensions) and a
//!   mismatch is `InvalidArgument` naming the input.
//!
//! ```no_run
//! use mlops_core::{Model, Tensor};
//! use mlops_onnx::{OnnxModel, OnnxOptions, Runtime};
//!
//! let model = OnnxModel::from_path("model.onnx")?;
//! let x = Tensor::from_f32("float_input", vec![1, 4], &[5.1, 3.5, 1.4, 0.2])?;
//! let outputs = model.predict(&[x])?;
//!
//! // Pure Rust only: a graph tract cannot run is refused here.
//! let strict = OnnxOptions::default().with_runtime(Runtime::Tract);
//! let model = OnnxModel::from_path_with("model.onnx", &strict)?;
//! # Ok::<(), mlops_core::Error>(())
//! ```
//!
//! [`builder::GraphBuilder`] writes ONNX graphs, for exporters of models trained here.
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `ort` | no | onnxruntime as a runtime ([`Runtime::OnnxRuntime`], and [`Runtime::Auto`]'s first choice) |

pub mod builder;
mod graph;
mod model;
#[cfg(feature = "ort")]
mod ort;
mod tract;
mod values;

pub use graph::ClassLabels;
pub use model::{
    FLAVOR, MODEL_FILE, OnnxInfo, OnnxLoader, OnnxModel, OnnxOptions, Runtime, inspect,
    onnxruntime_available, without_zipmap,
};
#[cfg(feature = "ort")]
pub use ort::LIBRARY_ENV;
