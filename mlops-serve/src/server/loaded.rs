//! A loaded model version: the model, its input and output specs from the signature, the
//! validation every request passes before the model sees it, its batching worker and its metric
//! series.

use std::sync::Arc;

use mlops_core::serve::{ModelMetadata, TensorMetadata};
use mlops_core::signature::{Schema, Signature};
use mlops_core::{DataType, Error, Model, ModelName, Result, Tensor, Version};

use crate::batch::{BatchConfig, Batcher};
use crate::metrics::ServeMetrics;

/// One input or output as the protocol describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    name: String,
    datatype: DataType,
    shape: Vec<i64>,
}

impl Spec {
    fn accepts(&self, shape: &[usize]) -> bool {
        self.shape.len() == shape.len()
            && self
                .shape
                .iter()
                .zip(shape)
                .all(|(w, g)| *w < 0 || u64::try_from(*w).ok() == u64::try_from(*g).ok())
    }
}

fn specs(schema: &Schema, side: &str) -> Vec<Spec> {
    match schema {
        // A tabular model takes one 1-D tensor per column, as KServe's and MLServer's pandas
        // codecs send them.
        Schema::Columns(cols) => cols
            .iter()
            .enumerate()
            .map(|(i, c)| Spec {
                name: c.name.clone().unwrap_or_else(|| format!("{side}{i}")),
                datatype: c.col_type.tensor_type(),
                shape: vec![-1],
            })
            .collect(),
        Schema::Tensors(ts) => ts
            .iter()
            .enumerate()
            .map(|(i, t)| Spec {
                name: t.name.clone().unwrap_or_else(|| format!("{side}{i}")),
                datatype: t.datatype,
                shape: t.shape.clone(),
            })
            .collect(),
    }
}

/// A loaded, warmed-up model version.
#[derive(Debug)]
pub struct LoadedModel {
    name: ModelName,
    version: Version,
    model: Arc<dyn Model>,
    inputs: Vec<Spec>,
    outputs: Vec<Spec>,
    /// The queue to the version's batching worker, when it batches.
    pub(super) batcher: Option<Batcher>,
    /// This version's metric series, looked up once.
    pub(super) series: Series,
}

/// Metric handles of one model version (label lookups happen at load, not per request).
#[derive(Debug)]
pub(super) struct Series {
    pub(super) ok: prometheus::IntCounter,
    pub(super) duration: prometheus::Histogram,
    batch: prometheus::Histogram,
}

impl LoadedModel {
    /// Warms `model` up on zero inputs (a model that cannot answer them is refused, naming the
    /// version), starts its batching worker when `batching` is on and its inputs allow, and looks
    /// its metric series up.
    pub(super) fn warm_up(
        name: &ModelName,
        version: Version,
        model: Arc<dyn Model>,
        batching: BatchConfig,
        metrics: &ServeMetrics,
    ) -> Result<Self> {
        let signature: &Signature = model.signature();
        let inputs = specs(&signature.inputs, "input");
        let outputs = signature
            .outputs
            .as_ref()
            .map(|o| specs(o, "output"))
            .unwrap_or_default();
        let warm: Vec<Tensor> = inputs.iter().map(warmup_input).collect::<Result<_>>()?;
        // A model that cannot answer zero inputs is a bad model (invalid); an outage while warming
        // up keeps its own category.
        model.predict(&warm).map_err(|e| {
            let context = format!("{name} v{version} failed its warm-up prediction");
            if e.is_transient() || e.is_not_supported() {
                e.context(context)
            } else {
                Error::invalid("model", context).with_source(e)
            }
        })?;
        let shapes: Vec<Vec<i64>> = inputs.iter().map(|s| s.shape.clone()).collect();
        let label = name.as_str();
        let batcher = if batching.enabled() && crate::batch::batchable(&shapes) {
            let histogram = metrics.batch.with_label_values(&[label]);
            let on_batch: crate::batch::OnBatch =
                Arc::new(move |rows| histogram.observe(rows as f64));
            Some(Batcher::start(
                label,
                Arc::clone(&model),
                batching,
                on_batch,
            )?)
        } else {
            None
        };
        let shown = version.to_string();
        let series = Series {
            ok: metrics.requests.with_label_values(&[label, &shown, "ok"]),
            duration: metrics.duration.with_label_values(&[label, &shown]),
            batch: metrics.batch.with_label_values(&[label]),
        };
        Ok(Self {
            name: name.clone(),
            version,
            model,
            inputs,
            outputs,
            batcher,
            series,
        })
    }

    /// The model.
    pub fn model(&self) -> &Arc<dyn Model> {
        &self.model
    }

    /// The model's name.
    pub fn name(&self) -> &ModelName {
        &self.name
    }

    /// The version.
    pub fn version(&self) -> Version {
        self.version
    }

    pub(super) fn metadata(&self, versions: Vec<String>) -> ModelMetadata {
        let meta = |s: &Spec| TensorMetadata {
            name: s.name.clone(),
            datatype: s.datatype,
            shape: s.shape.clone(),
        };
        ModelMetadata {
            name: self.name.to_string(),
            versions,
            platform: format!("mlops-{}", self.model.flavor()),
            inputs: self.inputs.iter().map(meta).collect(),
            outputs: self.outputs.iter().map(meta).collect(),
        }
    }

    /// Validates `inputs` and predicts, through the batching worker when the version batches
    /// (which records the batch size itself). Returns the inputs in signature order too.
    pub(super) async fn run<'a>(
        &self,
        inputs: &'a [Tensor],
    ) -> Result<(Vec<&'a Tensor>, Vec<Tensor>)> {
        let ordered = self.validate(inputs)?;
        let owned: Vec<Tensor> = ordered.iter().map(|t| (*t).clone()).collect();
        let outputs = match &self.batcher {
            Some(b) => b.submit(owned).await?,
            None => {
                let rows = owned
                    .first()
                    .and_then(|t| t.shape().first().copied())
                    .unwrap_or(1);
                self.series.batch.observe(rows as f64);
                self.model.predict(&owned)?
            }
        };
        Ok((ordered, outputs))
    }

    /// Checks a request's inputs against the signature and returns them in signature order.
    fn validate<'a>(&self, inputs: &'a [Tensor]) -> Result<Vec<&'a Tensor>> {
        for t in inputs {
            if !self.inputs.iter().any(|s| s.name == t.name()) {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "unexpected input {:?}; {} takes {}",
                        t.name(),
                        self.name,
                        self.inputs
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let mut ordered = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let mut matching = inputs.iter().filter(|t| t.name() == spec.name);
            let t = matching
                .next()
                .ok_or_else(|| Error::invalid("input", format!("missing input {:?}", spec.name)))?;
            if matching.next().is_some() {
                return Err(Error::invalid(
                    "input",
                    format!("input {:?} given twice", spec.name),
                ));
            }
            if t.datatype() != spec.datatype {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "input {:?} must be {}, got {}",
                        spec.name,
                        spec.datatype,
                        t.datatype()
                    ),
                ));
            }
            if !spec.accepts(t.shape()) {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "input {:?} must have shape {:?} (-1 = any), got {:?}",
                        spec.name,
                        spec.shape,
                        t.shape()
                    ),
                ));
            }
            check_finite(t)?;
            ordered.push(t);
        }
        Ok(ordered)
    }
}

/// Floating-point inputs must be finite: NaN or ±inf in a request is a client error. Reads the
/// little-endian words in place (no copy of the tensor).
fn check_finite(t: &Tensor) -> Result<()> {
    let data = t.data();
    let bad = match t.datatype() {
        DataType::Fp32 => data
            .chunks_exact(4)
            .position(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite()),
        DataType::Fp64 => data.chunks_exact(8).position(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            !f64::from_le_bytes(w).is_finite()
        }),
        // Exponent all ones: infinity or NaN, in both 16-bit formats.
        DataType::Fp16 => data
            .chunks_exact(2)
            .position(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7c00 == 0x7c00),
        DataType::Bf16 => data
            .chunks_exact(2)
            .position(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7f80 == 0x7f80),
        _ => None,
    };
    match bad {
        Some(i) => Err(Error::invalid(
            "input",
            format!("input {:?} element {i} is not finite", t.name()),
        )),
        None => Ok(()),
    }
}

/// A zero-valued input for a spec (variable dimensions 1), to warm a model up.
fn warmup_input(spec: &Spec) -> Result<Tensor> {
    let shape: Vec<usize> = spec
        .shape
        .iter()
        .map(|d| usize::try_from(*d).ok().filter(|d| *d > 0).unwrap_or(1))
        .collect();
    let n: usize = shape.iter().product();
    let data = match spec.datatype.size() {
        Some(size) => vec![0u8; n * size],
        // BYTES: n empty elements, each a 4-byte zero length.
        None => vec![0u8; n * 4],
    };
    Tensor::new(spec.name.clone(), spec.datatype, shape, data)
}
