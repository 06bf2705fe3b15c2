//! onnxruntime as a second runtime (feature `ort`): every ONNX operator, loaded at run time
//! from the library the user points at (the `onnxruntime` Python wheel ships one). Nothing is
//! downloaded or linked at build time, and no `ort` call is made before the library loaded, so
//! a missing or wrong library is an error, never a panic.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use mlops_core::signature::TensorSpec;
use mlops_core::{DataType, Error, Result, Tensor};
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor as OrtTensor;

use crate::graph::{Graph, WHAT};
use crate::values::Values;

/// The environment variable naming the onnxruntime shared library
/// (`…/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0`), as `ort` itself reads it.
pub const LIBRARY_ENV: &str = "ORT_DYLIB_PATH";

/// The one environment of the process, with the library it loaded (set once loading
/// succeeded: a failed attempt may be retried with another library).
static ENVIRONMENT: Mutex<Option<(PathBuf, ort::environment::Environment)>> = Mutex::new(None);

/// The library `ort` loaded, once one loaded (whether or not its environment then built).
static LIBRARY: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The library to load: the one given, else [`LIBRARY_ENV`].
fn library_path(given: Option<&Path>) -> Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os(LIBRARY_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => {
                return Err(Error::not_supported(
                    "onnx runtime",
                    "onnxruntime",
                    format!(
                        "no onnxruntime library is configured: set {LIBRARY_ENV} to \
                         libonnxruntime.so (e.g. from `pip install onnxruntime`: \
                         site-packages/onnxruntime/capi/libonnxruntime.so.1.*, version 1.31 or newer)"
                    ),
                ));
            }
        },
    };
    // `ort` resolves a relative path against the executable's folder (and panics if it cannot
    // find that folder): hand it an absolute one.
    std::fs::canonicalize(&path).map_err(|e| {
        Error::not_supported(
            "onnx runtime",
            path.display().to_string(),
            format!(
                "the onnxruntime library {} cannot be opened: {e}",
                path.display()
            ),
        )
    })
}

/// The process's onnxruntime environment, loading the library on first use.
fn environment(given: Option<&Path>) -> Result<ort::environment::Environment> {
    let path = library_path(given)?;
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((loaded, env)) = slot.as_ref() {
        if *loaded != path {
            return Err(Error::invalid(
                "onnx runtime",
                format!(
                    "this process already loaded onnxruntime from {}; it cannot also load {}",
                    loaded.display(),
                    path.display()
                ),
            ));
        }
        return Ok(env.clone());
    }
    // `ort` keeps the first library it loaded for the process, even when building the
    // environment then failed: name it rather than silently use it for another path.
    {
        let loaded = LIBRARY.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(first) = loaded.as_ref().filter(|first| **first != path) {
            return Err(Error::invalid(
                "onnx runtime",
                format!(
                    "this process already loaded onnxruntime from {}; it cannot also load {}",
                    first.display(),
                    path.display()
                ),
            ));
        }
    }
    let env = ort::init_from(&path)
        .map_err(|e| e.to_string())
        .and_then(|builder| {
            *LIBRARY.lock().unwrap_or_else(PoisonError::into_inner) = Some(path.clone());
            builder
                .with_name("mlops")
                .with_telemetry(false)
                .build()
                .map_err(|e| e.to_string())
        })
        .map_err(|why| {
            Error::not_supported(
                "onnx runtime",
                path.display().to_string(),
                format!("onnxruntime could not be loaded: {why}"),
            )
        })?;
    *slot = Some((path, env.clone()));
    Ok(env)
}

/// Whether onnxruntime can be loaded (from `library`, else [`LIBRARY_ENV`]).
pub(crate) fn available(library: Option<&Path>) -> Result<()> {
    environment(library).map(|_| ())
}

/// A pool of onnxruntime sessions of one graph (a session runs one prediction at a time).
pub(crate) struct OrtEngine {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for OrtEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtEngine")
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// onnxruntime refusing a model or its session options: `NotSupported`, so that
/// [`Runtime::Auto`](crate::Runtime::Auto) falls back to tract.
fn refused(context: &str) -> impl Fn(ort::Error) -> Error + '_ {
    move |e| {
        Error::not_supported(
            WHAT,
            "on onnxruntime",
            format!("onnxruntime {context}: {e}"),
        )
    }
}

impl OrtEngine {
    /// `sessions` sessions of the graph in `bytes`, each running on `threads` threads.
    pub(crate) fn new(
        bytes: &bytes::Bytes,
        graph: &Graph,
        library: Option<&Path>,
        sessions: usize,
        threads: usize,
    ) -> Result<Self> {
        let env = environment(library)?;
        let bytes = graph.for_onnxruntime(bytes)?;
        let mut pool = Vec::with_capacity(sessions.max(1));
        for _ in 0..sessions.max(1) {
            let session = Session::builder(&env)
                .map_err(refused("refused the session options"))?
                .with_intra_threads(threads.max(1))
                .map_err(|e| refused("refused the thread count")(e.into()))?
                .commit_from_memory(&bytes)
                .map_err(refused("cannot load the model"))?;
            pool.push(Mutex::new(session));
        }
        Ok(Self {
            sessions: pool,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs a free session (waiting for one when all are busy) on inputs already checked
    /// against `inputs`.
    pub(crate) fn run(
        &self,
        inputs: &[&Tensor],
        input_specs: &[TensorSpec],
        outputs: &[TensorSpec],
    ) -> Result<Vec<Tensor>> {
        let mut values: Vec<(String, SessionInputValue<'static>)> =
            Vec::with_capacity(inputs.len());
        for (t, spec) in inputs.iter().zip(input_specs) {
            let name = spec.name.clone().unwrap_or_default();
            values.push((name, to_ort(t)?));
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.sessions.len();
        let mut session = (0..n)
            .find_map(|i| self.sessions[(start + i) % n].try_lock().ok())
            .unwrap_or_else(|| {
                self.sessions[start % n]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            });
        // The inputs were checked against the signature: what onnxruntime calls an invalid
        // argument is still the request's (a value the model cannot take); anything else is
        // the model's or the runtime's.
        let results = session.run(values).map_err(|e| {
            if e.code() == ort::ErrorCode::InvalidArgument {
                Error::invalid("input", format!("the ONNX model refused this input: {e}"))
            } else {
                Error::backend("onnxruntime", crate::tract::RuntimeError(e.to_string()))
            }
        })?;
        outputs
            .iter()
            .map(|spec| {
                let name = spec.name.clone().unwrap_or_default();
                let value = results.get(&name).ok_or_else(|| {
                    Error::backend(
                        "onnxruntime",
                        crate::tract::RuntimeError(format!("no output {name:?}")),
                    )
                })?;
                from_ort(value, name, spec.datatype)
            })
            .collect()
    }
}

fn to_ort(t: &Tensor) -> Result<SessionInputValue<'static>> {
    let shape: Vec<i64> = t
        .shape()
        .iter()
        .map(|d| i64::try_from(*d).unwrap_or(i64::MAX))
        .collect();
    let bad = |e: ort::Error| Error::invalid("input", format!("input {:?}: {e}", t.name()));
    macro_rules! tensor {
        ($v:expr) => {
            OrtTensor::from_array((shape, $v))
                .map_err(bad)?
                .into_dyn()
                .into()
        };
    }
    Ok(match Values::of(t)? {
        Values::Bool(v) => tensor!(v),
        Values::U8(v) => tensor!(v),
        Values::I8(v) => tensor!(v),
        Values::U16(v) => tensor!(v),
        Values::I16(v) => tensor!(v),
        Values::U32(v) => tensor!(v),
        Values::I32(v) => tensor!(v),
        Values::U64(v) => tensor!(v),
        Values::I64(v) => tensor!(v),
        Values::F32(v) => tensor!(v),
        Values::F64(v) => tensor!(v),
        Values::Strings(v) => OrtTensor::from_string_array((shape, v.as_slice()))
            .map_err(bad)?
            .into_dyn()
            .into(),
    })
}

fn dims(shape: &[i64]) -> Vec<usize> {
    shape
        .iter()
        .map(|d| usize::try_from(*d).unwrap_or(0))
        .collect()
}

fn from_ort(value: &ort::value::DynValue, name: String, datatype: DataType) -> Result<Tensor> {
    let fail = |e: ort::Error| Error::invalid(WHAT, format!("output {name:?}: {e}"));
    macro_rules! slice {
        ($variant:ident, $ty:ty) => {{
            let (shape, data) = value.try_extract_tensor::<$ty>().map_err(fail)?;
            (dims(shape), Values::$variant(data.to_vec()))
        }};
    }
    let (shape, values) = match datatype {
        DataType::Bool => slice!(Bool, bool),
        DataType::Uint8 => slice!(U8, u8),
        DataType::Int8 => slice!(I8, i8),
        DataType::Uint16 => slice!(U16, u16),
        DataType::Int16 => slice!(I16, i16),
        DataType::Uint32 => slice!(U32, u32),
        DataType::Int32 => slice!(I32, i32),
        DataType::Uint64 => slice!(U64, u64),
        DataType::Int64 => slice!(I64, i64),
        DataType::Fp32 => slice!(F32, f32),
        DataType::Fp64 => slice!(F64, f64),
        DataType::Bytes => {
            let (shape, data) = value.try_extract_strings().map_err(fail)?;
            (dims(shape), Values::Strings(data))
        }
        other @ (DataType::Fp16 | DataType::Bf16) => {
            return Err(Error::not_supported(
                "onnx value",
                name,
                format!("{other} outputs are not served"),
            ));
        }
    };
    values.into_tensor(name, shape)
}
