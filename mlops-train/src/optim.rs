//! SGD with momentum and AdamW, with PyTorch's update rules, on candle `Var`s.
//!
//! candle-nn has an AdamW and a momentum-less SGD whose state is private; checkpoints must carry
//! the optimizer's state for a resumed run to continue bit-identically, so the state lives here,
//! as named tensors.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::config::{OptimizerKind, TrainConfig};

/// One parameter and its optimizer state.
struct Slot {
    name: String,
    var: Var,
    /// Weights get L2 and weight decay; biases do not.
    decay: bool,
    /// SGD: the velocity; AdamW: the first moment.
    first: Tensor,
    /// AdamW: the second moment (unused by SGD).
    second: Tensor,
}

/// An optimizer over a network's parameters.
pub(crate) struct Optimizer {
    kind: OptimizerKind,
    momentum: f64,
    nesterov: bool,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    l2: f64,
    /// Steps taken (AdamW's bias correction).
    pub(crate) steps: u64,
    slots: Vec<Slot>,
}

impl Optimizer {
    /// An optimizer configured by `config` over `(name, var, decay)` parameters, with zero state.
    pub(crate) fn new(
        config: &TrainConfig,
        params: Vec<(String, Var, bool)>,
    ) -> candle_core::Result<Self> {
        let slots = params
            .into_iter()
            .map(|(name, var, decay)| {
                Ok(Slot {
                    first: var.zeros_like()?,
                    second: var.zeros_like()?,
                    name,
                    var,
                    decay,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            kind: config.optimizer,
            momentum: config.momentum,
            nesterov: config.nesterov,
            beta1: config.beta1,
            beta2: config.beta2,
            eps: config.eps,
            weight_decay: config.weight_decay,
            l2: config.l2,
            steps: 0,
            slots,
        })
    }

    /// One update with learning rate `lr`.
    pub(crate) fn step(&mut self, grads: &GradStore, lr: f64) -> candle_core::Result<()> {
        self.steps += 1;
        let t = self.steps as i32;
        for slot in &mut self.slots {
            let Some(grad) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let w = slot.var.as_tensor();
            // L2 regularisation: the gradient of ½·l2·‖w‖².
            let grad = if slot.decay && self.l2 > 0.0 {
                (grad + w.affine(self.l2, 0.0)?)?
            } else {
                grad.clone()
            };
            let next = match self.kind {
                OptimizerKind::Sgd => {
                    let v = if self.momentum > 0.0 {
                        (slot.first.affine(self.momentum, 0.0)? + &grad)?
                    } else {
                        grad.clone()
                    };
                    let update = if self.nesterov {
                        (&grad + v.affine(self.momentum, 0.0)?)?
                    } else {
                        v.clone()
                    };
                    slot.first = v;
                    (w - update.affine(lr, 0.0)?)?
                }
                OptimizerKind::Adamw => {
                    let w = if slot.decay && self.weight_decay > 0.0 {
                        w.affine(1.0 - lr * self.weight_decay, 0.0)?
                    } else {
                        w.clone()
                    };
                    let m = (slot.first.affine(self.beta1, 0.0)?
                        + grad.affine(1.0 - self.beta1, 0.0)?)?;
                    let v = (slot.second.affine(self.beta2, 0.0)?
                        + grad.sqr()?.affine(1.0 - self.beta2, 0.0)?)?;
                    let m_hat = m.affine(1.0 / (1.0 - self.beta1.powi(t)), 0.0)?;
                    let v_hat = v.affine(1.0 / (1.0 - self.beta2.powi(t)), 0.0)?;
                    let update = (m_hat / (v_hat.sqrt()? + self.eps)?)?;
                    slot.first = m;
                    slot.second = v;
                    (w - update.affine(lr, 0.0)?)?
                }
            };
            slot.var.set(&next)?;
        }
        Ok(())
    }

    /// The state as named tensors (`optim.<param>.first`, `optim.<param>.second`), for
    /// checkpoints.
    pub(crate) fn state(&self) -> Vec<(String, Tensor)> {
        self.slots
            .iter()
            .flat_map(|s| {
                [
                    (format!("optim.{}.first", s.name), s.first.clone()),
                    (format!("optim.{}.second", s.name), s.second.clone()),
                ]
            })
            .collect()
    }

    /// Restores the state written by [`state`](Self::state); every slot must be present with
    /// its parameter's shape.
    /// A damaged state is [`mlops_core::Error::Corrupt`] naming the `checkpoint` file.
    pub(crate) fn restore(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        steps: u64,
        checkpoint: &std::path::Path,
    ) -> mlops_core::Result<()> {
        let corrupt = |m: String| mlops_core::Error::corrupt("checkpoint", checkpoint.display(), m);
        for slot in &mut self.slots {
            for (suffix, target) in [("first", &mut slot.first), ("second", &mut slot.second)] {
                let key = format!("optim.{}.{suffix}", slot.name);
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| corrupt(format!("missing tensor {key}")))?;
                if t.dims() != slot.var.dims() {
                    return Err(corrupt(format!(
                        "{key} has shape {:?}, the parameter {:?}",
                        t.dims(),
                        slot.var.dims()
                    )));
                }
                *target = t
                    .to_device(slot.var.device())
                    .map_err(|e| mlops_core::Error::backend("candle", e))?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// One step on f(w) = ½·w² (gradient w) against PyTorch's formulas by hand.
    fn one_step(config: &TrainConfig, w0: f32, steps: usize) -> f32 {
        let var = Var::new(&[w0], &Device::Cpu).unwrap();
        let mut opt = Optimizer::new(config, vec![("w".into(), var.clone(), true)]).unwrap();
        for _ in 0..steps {
            let loss = (var.as_tensor().sqr().unwrap() * 0.5)
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&grads, config.learning_rate).unwrap();
        }
        var.as_tensor().to_vec1::<f32>().unwrap()[0]
    }

    #[test]
    fn sgd_momentum_follows_pytorch() {
        let mut c = TrainConfig {
            optimizer: OptimizerKind::Sgd,
            learning_rate: 0.1,
            momentum: 0.9,
            ..TrainConfig::default()
        };
        // w1 = 1 - 0.1·1 = 0.9; v2 = 0.9·1 + 0.9 = 1.8; w2 = 0.9 - 0.18 = 0.72.
        assert!((one_step(&c, 1.0, 2) - 0.72).abs() < 1e-6);
        c.nesterov = true;
        // step 1: v = 1, update = 1 + 0.9 = 1.9 -> w = 0.81.
        assert!((one_step(&c, 1.0, 1) - 0.81).abs() < 1e-6);
        c.nesterov = false;
        c.l2 = 1.0; // gradient doubles
        assert!((one_step(&c, 1.0, 1) - 0.8).abs() < 1e-6);
    }

    #[test]
    fn adamw_follows_pytorch() {
        let c = TrainConfig {
            optimizer: OptimizerKind::Adamw,
            learning_rate: 0.1,
            weight_decay: 0.5,
            ..TrainConfig::default()
        };
        // Step 1: w = 1·(1 - 0.05) = 0.95; m̂ = g = 1, v̂ = 1 -> w -= 0.1·1/(1+1e-8).
        let w = one_step(&c, 1.0, 1);
        assert!((w - 0.85).abs() < 1e-6, "{w}");
    }
}
