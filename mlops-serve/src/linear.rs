//! The `linear` flavor: `y = link(x·W + b)` for a batch of feature rows — linear and logistic
//! regression as scikit-learn fits them (export `coef_` and `intercept_`), servable without
//! any training code.

use std::sync::Arc;

use mlops_core::model::{Model, ModelArtifact, ModelLoader};
use mlops_core::signature::{Signature, TensorSpec};
use mlops_core::{ArtifactPath, DataType, Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// The flavor name.
pub const FLAVOR: &str = "linear";
const FILE: &str = "linear.json";

/// The output transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// Regression: the scores as they are.
    #[default]
    Identity,
    /// Binary classification: probability of the positive class per output.
    Sigmoid,
    /// Multi-class: probabilities over the outputs.
    Softmax,
}

/// The parameters: `coef[o][f]` (scikit-learn's `coef_`: one row per output) and `intercept[o]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearParams {
    /// One row of feature weights per output.
    pub coef: Vec<Vec<f64>>,
    /// One intercept per output.
    pub intercept: Vec<f64>,
    /// Output transform.
    #[serde(default)]
    pub link: Link,
}

/// A linear model over an FP32 input `x` of shape `[-1, features]`, answering `y` of shape
/// `[-1, outputs]`.
#[derive(Debug, Clone)]
pub struct LinearModel {
    params: LinearParams,
    features: usize,
    signature: Signature,
}

impl LinearModel {
    /// A model with these parameters (checked: every row the same width, one intercept each).
    pub fn new(params: LinearParams) -> Result<Self> {
        let features = params.coef.first().map(Vec::len).unwrap_or(0);
        if params.coef.is_empty()
            || features == 0
            || params.coef.iter().any(|r| r.len() != features)
            || params.intercept.len() != params.coef.len()
            || params
                .coef
                .iter()
                .flatten()
                .chain(&params.intercept)
                .any(|v| !v.is_finite())
        {
            return Err(Error::invalid(
                "linear model",
                "coef must be a non-empty rectangle of finite numbers with one intercept per row",
            ));
        }
        let outputs = i64::try_from(params.coef.len()).unwrap_or(i64::MAX);
        let width = i64::try_from(features).unwrap_or(i64::MAX);
        let signature = Signature::tensors(
            vec![TensorSpec::new("x", DataType::Fp32, vec![-1, width])],
            vec![TensorSpec::new("y", DataType::Fp32, vec![-1, outputs])],
        );
        Ok(Self {
            params,
            features,
            signature,
        })
    }
}

impl Model for LinearModel {
    fn flavor(&self) -> &str {
        FLAVOR
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn predict(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs
            .first()
            .ok_or_else(|| Error::invalid("input", "missing input \"x\""))?;
        let values = x.to_f32()?;
        let rows = x.shape().first().copied().unwrap_or(0);
        if values.len() != rows * self.features {
            return Err(Error::invalid(
                "input",
                format!("\"x\" must have {} features per row", self.features),
            ));
        }
        let outs = self.params.coef.len();
        let mut y = Vec::with_capacity(rows * outs);
        for row in values.chunks_exact(self.features) {
            let start = y.len();
            for (w, b) in self.params.coef.iter().zip(&self.params.intercept) {
                let z: f64 = row
                    .iter()
                    .zip(w)
                    .map(|(a, c)| f64::from(*a) * c)
                    .sum::<f64>()
                    + b;
                y.push(z);
            }
            match self.params.link {
                Link::Identity => {}
                Link::Sigmoid => y[start..]
                    .iter_mut()
                    .for_each(|z| *z = 1.0 / (1.0 + (-*z).exp())),
                Link::Softmax => {
                    let m = y[start..].iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = y[start..].iter().map(|z| (z - m).exp()).sum();
                    y[start..]
                        .iter_mut()
                        .for_each(|z| *z = (*z - m).exp() / sum);
                }
            }
        }
        let y: Vec<f32> = y.into_iter().map(|v| v as f32).collect();
        Ok(vec![Tensor::from_f32("y", vec![rows, outs], &y)?])
    }

    fn to_artifact(&self) -> Result<ModelArtifact> {
        let json = serde_json::to_vec(&self.params).map_err(|e| Error::backend("serde_json", e))?;
        Ok(ModelArtifact::new(FLAVOR).with_file(ArtifactPath::new(FILE)?, json))
    }
}

/// Loads `linear` artifacts.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinearLoader;

impl ModelLoader for LinearLoader {
    fn flavor(&self) -> &str {
        FLAVOR
    }

    fn load(&self, artifact: &ModelArtifact) -> Result<Arc<dyn Model>> {
        let params: LinearParams = serde_json::from_slice(artifact.file(FILE)?)
            .map_err(|e| Error::invalid("linear model", FILE).with_source(e))?;
        Ok(Arc::new(LinearModel::new(params)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_regression_predicts_and_round_trips() {
        let m = LinearModel::new(LinearParams {
            coef: vec![vec![1.0, -2.0]],
            intercept: vec![0.5],
            link: Link::Sigmoid,
        })
        .unwrap();
        let x = Tensor::from_f32("x", vec![2, 2], &[1.0, 1.0, 0.0, 0.0]).unwrap();
        let y = m.predict(std::slice::from_ref(&x)).unwrap()[0]
            .to_f32()
            .unwrap();
        let expect = |z: f64| (1.0 / (1.0 + (-z).exp())) as f32;
        assert_eq!(y, vec![expect(-0.5), expect(0.5)]);
        let back = LinearLoader.load(&m.to_artifact().unwrap()).unwrap();
        assert_eq!(back.predict(&[x]).unwrap()[0].to_f32().unwrap(), y);
        assert!(
            LinearModel::new(LinearParams {
                coef: vec![vec![1.0], vec![1.0, 2.0]],
                intercept: vec![0.0, 0.0],
                link: Link::Identity
            })
            .is_err()
        );
    }
}
