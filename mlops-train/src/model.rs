//! Trained models: the `candle` flavor. An artifact holds `model.safetensors` (the weights, in
//! PyTorch's `[out, in]` layout, named `layers.<i>.weight` / `layers.<i>.bias`) and
//! `model_card.json` (the [`ModelCard`]: network, signature, preprocessing, target classes,
//! metrics, training params and lineage). [`CandleLoader`] reads it back with no training code.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use candle_core::{Device, Tensor as CTensor};
use mlops_core::model::{Model, ModelArtifact, ModelLoader};
use mlops_core::signature::{Schema, Signature, TensorSpec};
use mlops_core::{ArtifactPath, DataType, Error, Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::net::{self, LossKind, NetSpec, Task, candle_err, param_name};
use crate::preprocess::{Label, Preprocessor, TargetEncoder};

/// The flavor name.
pub const FLAVOR: &str = "candle";
/// The model card's file name in the artifact.
pub const CARD_FILE: &str = "model_card.json";
/// The weights' file name in the artifact.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The card format this build writes and reads.
pub const CARD_FORMAT: u32 = 1;

/// How a model came to be (filled by the training helper; empty when trained ad hoc).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CardLineage {
    /// The tracked run that trained it.
    pub run_id: Option<String>,
    /// The training datasets, as `name@version` with their digest.
    pub datasets: Vec<String>,
    /// The code's git commit.
    pub git_commit: Option<String>,
}

/// Facts about the training run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingFacts {
    /// Rows in the training split.
    pub train_rows: usize,
    /// Rows in the validation split.
    pub validation_rows: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// The epoch whose weights were kept (early stopping), if not the last.
    pub best_epoch: Option<usize>,
    /// The seed.
    pub seed: u64,
    /// The device it trained on (`cpu`, `cuda:0`).
    pub device: String,
}

/// Everything about a trained model except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Always [`FLAVOR`].
    pub flavor: String,
    /// [`CARD_FORMAT`].
    pub format_version: u32,
    /// The network's shape.
    pub network: NetSpec,
    /// Inputs (one column per feature column) and outputs.
    pub signature: Signature,
    /// Feature encoders, fitted on the training split.
    pub preprocessing: Preprocessor,
    /// Target encoding (regression scaling or the classes).
    pub target: TargetEncoder,
    /// Final metrics (`val_*` on the validation split, else `train_*`).
    pub metrics: BTreeMap<String, f64>,
    /// Training hyper-parameters.
    pub params: BTreeMap<String, String>,
    /// Facts about the run.
    pub training: TrainingFacts,
    /// Lineage.
    #[serde(default)]
    pub lineage: CardLineage,
    /// What the training job's assessor found on the validation rows (`explain`, `fairness`),
    /// by section.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub assessment: BTreeMap<String, serde_json::Value>,
    /// The mlops version that trained it.
    pub mlops_version: String,
}

impl ModelCard {
    /// Reads the card of a `candle` artifact.
    pub fn read(artifact: &ModelArtifact) -> Result<Self> {
        let card: Self = serde_json::from_slice(artifact.file(CARD_FILE)?).map_err(|e| {
            Error::corrupt("model card", CARD_FILE, "not a model card").with_source(e)
        })?;
        if card.flavor != FLAVOR || card.format_version != CARD_FORMAT {
            return Err(Error::corrupt(
                "model card",
                CARD_FILE,
                format!(
                    "flavor {:?} format {} (this build reads {FLAVOR:?} format {CARD_FORMAT})",
                    card.flavor, card.format_version
                ),
            ));
        }
        Ok(card)
    }

    /// Writes this card into `artifact` (replacing its card).
    pub fn write(&self, artifact: &mut ModelArtifact) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::backend("serde_json", e))?;
        artifact
            .files
            .insert(ArtifactPath::new(CARD_FILE)?, json.into());
        Ok(())
    }
}

/// The signature of a trained model: one 1-D input per feature column; outputs `prediction`
/// (regression, FP64 `[-1]`), or `label` (the class, typed as the target was) and
/// `probabilities` (FP64 `[-1, classes]`).
pub(crate) fn signature(pre: &Preprocessor, target: &TargetEncoder) -> Signature {
    let outputs = match target {
        TargetEncoder::Regression { .. } => {
            vec![TensorSpec::new("prediction", DataType::Fp64, vec![-1])]
        }
        TargetEncoder::Classification { classes, .. } => vec![
            TensorSpec::new("label", label_type(classes), vec![-1]),
            TensorSpec::new(
                "probabilities",
                DataType::Fp64,
                vec![-1, i64::try_from(classes.len()).unwrap_or(i64::MAX)],
            ),
        ],
    };
    Signature {
        inputs: Schema::Columns(pre.input_specs()),
        outputs: Some(Schema::Tensors(outputs)),
    }
}

fn label_type(classes: &[Label]) -> DataType {
    match classes.first() {
        Some(Label::Bool(_)) => DataType::Bool,
        Some(Label::Int(_)) => DataType::Int64,
        _ => DataType::Bytes,
    }
}

/// A trained network with its preprocessing: predicts from raw feature columns.
#[derive(Debug, Clone)]
pub struct CandleModel {
    card: ModelCard,
    layers: Vec<(CTensor, CTensor)>,
    device: Device,
}

impl CandleModel {
    /// A model from its card and weights (`(weight, bias)` per layer, checked against the card).
    pub(crate) fn new(
        card: ModelCard,
        layers: Vec<(CTensor, CTensor)>,
        device: Device,
    ) -> Result<Self> {
        let shapes = card.network.layer_shapes();
        if shapes.len() != layers.len() {
            return Err(Error::corrupt(
                "model",
                WEIGHTS_FILE,
                format!("{} layers, the card says {}", layers.len(), shapes.len()),
            ));
        }
        for (i, ((out, inp), (w, b))) in shapes.iter().zip(&layers).enumerate() {
            if w.dims() != [*out, *inp] || b.dims() != [*out] {
                return Err(Error::corrupt(
                    "model",
                    WEIGHTS_FILE,
                    format!(
                        "layer {i} has weight {:?} and bias {:?}, the card says [{out}, {inp}] and [{out}]",
                        w.dims(),
                        b.dims()
                    ),
                ));
            }
        }
        if card.preprocessing.width() != card.network.inputs {
            return Err(Error::corrupt(
                "model card",
                CARD_FILE,
                format!(
                    "preprocessing writes {} features, the network takes {}",
                    card.preprocessing.width(),
                    card.network.inputs
                ),
            ));
        }
        Ok(Self {
            card,
            layers,
            device,
        })
    }

    /// The model card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The card, to add metrics or lineage before saving.
    pub fn card_mut(&mut self) -> &mut ModelCard {
        &mut self.card
    }

    /// The weights as `(name, tensor)` pairs.
    pub(crate) fn named_weights(&self) -> Vec<(String, CTensor)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, (w, b))| {
                [
                    (param_name(i, false), w.clone()),
                    (param_name(i, true), b.clone()),
                ]
            })
            .collect()
    }

    /// The weights flattened, layer by layer (weight then bias) — for comparing models.
    pub fn weights(&self) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for (_, t) in self.named_weights() {
            out.extend(
                t.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(candle_err)?,
            );
        }
        Ok(out)
    }

    /// Every layer's weight (`[out, in]`, row-major) and bias, first to last — what an exporter
    /// to another format needs (the layout is PyTorch's, as in the safetensors file).
    pub fn layer_weights(&self) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        self.layers
            .iter()
            .map(|(w, b)| {
                let w = w
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(candle_err)?;
                let b = b.to_vec1::<f32>().map_err(candle_err)?;
                Ok((w, b))
            })
            .collect()
    }

    /// Logits of an encoded feature matrix (`rows × inputs`, row-major).
    pub(crate) fn logits(&self, x: Vec<f32>, rows: usize) -> Result<Vec<Vec<f32>>> {
        if rows == 0 {
            return Ok(Vec::new());
        }
        let x = CTensor::from_vec(x, (rows, self.card.network.inputs), &self.device)
            .map_err(candle_err)?;
        let refs: Vec<_> = self.layers.iter().map(|(w, b)| (w, b)).collect();
        net::forward(&self.card.network, &refs, &x, None)
            .and_then(|y| y.to_vec2::<f32>())
            .map_err(candle_err)
    }

    /// Probabilities (classification) or de-standardised predictions (regression) per row.
    pub(crate) fn decode(&self, logits: &[Vec<f32>]) -> Decoded {
        match (&self.card.target, self.card.network.loss_kind()) {
            (TargetEncoder::Regression { mean, scale, .. }, _) => Decoded::Values(
                logits
                    .iter()
                    .map(|z| f64::from(z[0]) * scale + mean)
                    .collect(),
            ),
            (_, LossKind::Binary) => Decoded::Probabilities(
                logits
                    .iter()
                    .map(|z| {
                        let p = 1.0 / (1.0 + (-f64::from(z[0])).exp());
                        vec![1.0 - p, p]
                    })
                    .collect(),
            ),
            (_, _) => Decoded::Probabilities(
                logits
                    .iter()
                    .map(|z| {
                        let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let e: Vec<f64> = z.iter().map(|v| f64::from(v - m).exp()).collect();
                        let s: f64 = e.iter().sum();
                        e.into_iter().map(|v| v / s).collect()
                    })
                    .collect(),
            ),
        }
    }
}

/// Decoded network outputs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decoded {
    /// Regression predictions.
    Values(Vec<f64>),
    /// Class probabilities per row.
    Probabilities(Vec<Vec<f64>>),
}

/// The index of the predicted class: the highest probability, the first on ties (for two
/// classes, the positive class when its probability is above ½ — scikit-learn's rule).
pub(crate) fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = i;
        }
    }
    best
}

impl Model for CandleModel {
    fn flavor(&self) -> &str {
        FLAVOR
    }

    fn signature(&self) -> &Signature {
        &self.card.signature
    }

    fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (x, rows) = self.card.preprocessing.transform_tensors(inputs)?;
        let logits = self.logits(x, rows)?;
        match self.decode(&logits) {
            Decoded::Values(v) => Ok(vec![Tensor::from_f64("prediction", vec![rows], &v)?]),
            Decoded::Probabilities(p) => {
                let classes = self.card.target.classes();
                let picks: Vec<&Label> = p.iter().map(|row| &classes[argmax(row)]).collect();
                let label = match label_type(classes) {
                    DataType::Bool => Tensor::from_bool(
                        "label",
                        vec![rows],
                        &picks
                            .iter()
                            .map(|l| matches!(l, Label::Bool(true)))
                            .collect::<Vec<_>>(),
                    )?,
                    DataType::Int64 => Tensor::from_i64(
                        "label",
                        vec![rows],
                        &picks
                            .iter()
                            .map(|l| if let Label::Int(i) = l { *i } else { 0 })
                            .collect::<Vec<_>>(),
                    )?,
                    _ => Tensor::from_byte_strings(
                        "label",
                        vec![rows],
                        &picks.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
                    )?,
                };
                let flat: Vec<f64> = p.into_iter().flatten().collect();
                Ok(vec![
                    label,
                    Tensor::from_f64("probabilities", vec![rows, classes.len()], &flat)?,
                ])
            }
        }
    }

    fn to_artifact(&self) -> Result<ModelArtifact> {
        let weights: HashMap<String, CTensor> = self.named_weights().into_iter().collect();
        let bytes =
            safetensors::serialize(&weights, None).map_err(|e| Error::backend("safetensors", e))?;
        let mut artifact =
            ModelArtifact::new(FLAVOR).with_file(ArtifactPath::new(WEIGHTS_FILE)?, bytes);
        self.card.write(&mut artifact)?;
        Ok(artifact)
    }
}

/// Loads `candle` artifacts (on the CPU unless told otherwise).
#[derive(Debug, Clone, Default)]
pub struct CandleLoader {
    device: Option<Device>,
}

impl CandleLoader {
    /// Loads onto the CPU.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads onto `device` (e.g. from [`crate::DeviceSpec::resolve`]).
    pub fn on(device: Device) -> Self {
        Self {
            device: Some(device),
        }
    }

    /// Loads the concrete model (with its card).
    pub fn load_model(&self, artifact: &ModelArtifact) -> Result<CandleModel> {
        let card = ModelCard::read(artifact)?;
        let device = self.device.clone().unwrap_or(Device::Cpu);
        let mut tensors =
            candle_core::safetensors::load_buffer(artifact.file(WEIGHTS_FILE)?, &device).map_err(
                |e| Error::corrupt("model", WEIGHTS_FILE, "the weights do not load").with_source(e),
            )?;
        let mut layers = Vec::new();
        for i in 0..card.network.layer_shapes().len() {
            let mut take = |bias| {
                let name = param_name(i, bias);
                tensors
                    .remove(&name)
                    .ok_or_else(|| {
                        Error::corrupt("model", WEIGHTS_FILE, format!("missing tensor {name}"))
                    })
                    .and_then(|t| {
                        t.to_dtype(candle_core::DType::F32).map_err(|e| {
                            Error::corrupt(
                                "model",
                                WEIGHTS_FILE,
                                format!("tensor {name} does not convert to f32"),
                            )
                            .with_source(e)
                        })
                    })
            };
            layers.push((take(false)?, take(true)?));
        }
        if card.network.task == Task::Classification && card.target.classes().len() < 2 {
            return Err(Error::corrupt(
                "model card",
                CARD_FILE,
                "a classifier with fewer than 2 classes",
            ));
        }
        CandleModel::new(card, layers, device)
    }
}

impl ModelLoader for CandleLoader {
    fn flavor(&self) -> &str {
        FLAVOR
    }

    fn load(&self, artifact: &ModelArtifact) -> Result<Arc<dyn Model>> {
        Ok(Arc::new(self.load_model(artifact)?))
    }
}
