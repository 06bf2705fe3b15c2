//! The networks: linear, logistic and softmax regression (one linear layer) and the MLP, their
//! forward pass, losses and initialisation, on candle tensors.

use candle_core::{DType, Device, Tensor};
use mlops_core::{Error, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which model to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Linear regression (mean squared error).
    #[default]
    Linear,
    /// Binary logistic regression (log loss).
    Logistic,
    /// Multi-class softmax regression (cross-entropy).
    Softmax,
    /// A multi-layer perceptron, for regression or classification.
    Mlp,
}

impl ModelKind {
    /// Its name (`linear`, `logistic`, `softmax`, `mlp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Logistic => "logistic",
            Self::Softmax => "softmax",
            Self::Mlp => "mlp",
        }
    }
}

impl std::str::FromStr for ModelKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "linear" => Self::Linear,
            "logistic" => Self::Logistic,
            "softmax" => Self::Softmax,
            "mlp" => Self::Mlp,
            other => {
                return Err(Error::invalid(
                    "model",
                    format!("{other:?} (expected linear, logistic, softmax or mlp)"),
                ));
            }
        })
    }
}

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// A number.
    Regression,
    /// A class label.
    #[default]
    Classification,
}

/// The MLP's hidden activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(0, x).
    #[default]
    Relu,
    /// The Gaussian error linear unit (erf form, as PyTorch's default).
    Gelu,
}

/// A network's shape: what the loader needs to rebuild it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetSpec {
    /// The model.
    pub kind: ModelKind,
    /// What it predicts.
    pub task: Task,
    /// Input features (after preprocessing).
    pub inputs: usize,
    /// Hidden layer widths (empty for the one-layer models).
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Outputs: 1 for regression and binary logistic regression, else one per class.
    pub outputs: usize,
}

impl NetSpec {
    /// `[out, in]` of every layer, first to last.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut widths = vec![self.inputs];
        widths.extend(&self.hidden);
        widths.push(self.outputs);
        widths.windows(2).map(|w| (w[1], w[0])).collect()
    }

    /// The loss this network trains with.
    pub(crate) fn loss_kind(&self) -> LossKind {
        match (self.task, self.outputs) {
            (Task::Regression, _) => LossKind::Mse,
            (Task::Classification, 1) => LossKind::Binary,
            (Task::Classification, _) => LossKind::CrossEntropy,
        }
    }
}

/// The name of layer `i`'s weight (`[out, in]`, PyTorch's layout) or bias in safetensors files.
pub fn param_name(layer: usize, bias: bool) -> String {
    format!("layers.{layer}.{}", if bias { "bias" } else { "weight" })
}

pub(crate) fn candle_err(e: candle_core::Error) -> Error {
    Error::backend("candle", e)
}

/// The loss of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LossKind {
    /// Mean squared error against `[n, 1]` F32 targets.
    Mse,
    /// Log loss of one logit against `[n, 1]` F32 0/1 targets.
    Binary,
    /// Cross-entropy of logits against `[n]` U32 class indices.
    CrossEntropy,
}

impl LossKind {
    /// The mean loss of `logits` against `targets`.
    pub(crate) fn loss(self, logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Mse => (logits - targets)?.sqr()?.mean_all(),
            Self::Binary => {
                // log(1 + e^z) - y·z, written stably: max(z, 0) + log(1 + e^-|z|) - y·z.
                let softplus = (logits.relu()? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
                (softplus - (logits * targets)?)?.mean_all()
            }
            Self::CrossEntropy => candle_nn::loss::cross_entropy(logits, targets),
        }
    }
}

/// Dropout masks drawn from a seeded generator, so training is reproducible.
pub(crate) struct Dropout<'a> {
    /// Probability of zeroing an activation.
    pub p: f64,
    /// The generator.
    pub rng: &'a mut ChaCha8Rng,
}

/// The logits of `x` (`[n, inputs]`): `layers` are `(weight [out, in], bias [out])`.
pub(crate) fn forward(
    spec: &NetSpec,
    layers: &[(&Tensor, &Tensor)],
    x: &Tensor,
    mut dropout: Option<Dropout<'_>>,
) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    let last = layers.len().saturating_sub(1);
    for (i, (w, b)) in layers.iter().enumerate() {
        h = h.matmul(&w.t()?)?.broadcast_add(b)?;
        if i < last {
            h = match spec.activation {
                Activation::Relu => h.relu()?,
                Activation::Gelu => h.gelu_erf()?,
            };
            if let Some(d) = dropout.as_mut().filter(|d| d.p > 0.0) {
                let keep = 1.0 / (1.0 - d.p);
                let mask: Vec<f32> = (0..h.elem_count())
                    .map(|_| {
                        if d.rng.random::<f64>() < d.p {
                            0.0
                        } else {
                            keep as f32
                        }
                    })
                    .collect();
                let mask = Tensor::from_vec(mask, h.shape(), h.device())?;
                h = (h * mask)?;
            }
        }
    }
    Ok(h)
}

/// Initial parameters: zeros for the one-layer (convex) models, PyTorch's `nn.Linear` default
/// (uniform in ±1/√fan_in) for the MLP.
pub(crate) fn init(
    spec: &NetSpec,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> candle_core::Result<Vec<(Tensor, Tensor)>> {
    spec.layer_shapes()
        .into_iter()
        .map(|(out, inp)| {
            if spec.hidden.is_empty() {
                Ok((
                    Tensor::zeros((out, inp), DType::F32, device)?,
                    Tensor::zeros(out, DType::F32, device)?,
                ))
            } else {
                let bound = 1.0 / (inp as f64).sqrt();
                let mut draw = |n: usize| -> Vec<f32> {
                    (0..n)
                        .map(|_| rng.random_range(-bound..bound) as f32)
                        .collect()
                };
                let w = draw(out * inp);
                let b = draw(out);
                Ok((
                    Tensor::from_vec(w, (out, inp), device)?,
                    Tensor::from_vec(b, out, device)?,
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn binary_loss_is_stable_and_matches_the_formula() {
        let z = Tensor::new(&[[0.0f32], [2.0], [-3.0], [80.0], [-80.0]], &Device::Cpu).unwrap();
        let y = Tensor::new(&[[1.0f32], [0.0], [0.0], [1.0], [1.0]], &Device::Cpu).unwrap();
        let got = LossKind::Binary
            .loss(&z, &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let zs = [0.0f64, 2.0, -3.0, 80.0, -80.0];
        let ys = [1.0f64, 0.0, 0.0, 1.0, 1.0];
        let want = zs
            .iter()
            .zip(ys)
            .map(|(z, y)| (1.0 + z.exp()).ln() - y * z)
            .sum::<f64>()
            / 5.0;
        assert!(got.is_finite());
        assert!((f64::from(got) - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn mlp_shapes_and_init_are_seeded() {
        let spec = NetSpec {
            kind: ModelKind::Mlp,
            task: Task::Classification,
            inputs: 4,
            hidden: vec![8, 3],
            activation: Activation::Gelu,
            outputs: 2,
        };
        assert_eq!(spec.layer_shapes(), [(8, 4), (3, 8), (2, 3)]);
        let a = init(&spec, &mut ChaCha8Rng::seed_from_u64(1), &Device::Cpu).unwrap();
        let b = init(&spec, &mut ChaCha8Rng::seed_from_u64(1), &Device::Cpu).unwrap();
        for ((wa, _), (wb, _)) in a.iter().zip(&b) {
            assert_eq!(
                wa.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                wb.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            );
        }
        let x = Tensor::ones((5, 4), DType::F32, &Device::Cpu).unwrap();
        let refs: Vec<_> = a.iter().map(|(w, b)| (w, b)).collect();
        let y = forward(&spec, &refs, &x, None).unwrap();
        assert_eq!(y.dims(), [5, 2]);
    }
}
