//! [`CandleTrainer`]: the [`Trainer`] for every model of this crate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use candle_core::{Device, Tensor as CTensor, Var};
use mlops_core::train::{EpochReport, FitObserver, FitOptions, FitOutcome, Trainer};
use mlops_core::{CancelToken, Error, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, CHECKPOINT_FORMAT, CheckpointMeta};
use crate::config::TrainConfig;
use crate::device::device_name;
use crate::eval::{self, Average};
use crate::model::{self, CandleModel, Decoded, ModelCard, TrainingFacts, argmax};
use crate::net::{self, Dropout, LossKind, NetSpec, candle_err, param_name};
use crate::preprocess::{Preprocessor, TargetData, TargetEncoder, feature_columns};

/// Random streams of one seed: the split, the initial weights, and one per epoch (shuffle, then
/// dropout masks).
const STREAM_SPLIT: u64 = 1;
const STREAM_INIT: u64 = 2;
const STREAM_EPOCH: u64 = 1 << 32;

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Where and how often to checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoints {
    /// The directory (created when missing).
    pub dir: PathBuf,
    /// Every this many epochs (and when training ends or is cancelled).
    pub every: usize,
}

/// Trains the models of this crate on candle: linear, logistic and softmax regression and MLPs.
///
/// ```no_run
/// # fn demo(batches: &[arrow::array::RecordBatch]) -> mlops_core::Result<()> {
/// use mlops_core::{CancelToken, FitOptions};
/// use mlops_train::{CandleTrainer, ModelKind, TrainConfig};
///
/// let mut config = TrainConfig::new(ModelKind::Logistic);
/// config.set("epochs", "10")?;
/// let trained = CandleTrainer::new(config).train(
///     batches,
///     &FitOptions::new("churned"),
///     &|r: &mlops_core::train::EpochReport| println!("epoch {} loss {}", r.epoch, r.train_loss),
///     &CancelToken::new(),
/// )?;
/// println!("{:?}", trained.metrics);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CandleTrainer {
    config: TrainConfig,
    checkpoints: Option<Checkpoints>,
    resume: Option<PathBuf>,
}

/// The result of [`CandleTrainer::train`].
#[derive(Debug, Clone)]
pub struct Training {
    /// The model (on the CPU), with its card.
    pub model: CandleModel,
    /// Final metrics (also in the card).
    pub metrics: BTreeMap<String, f64>,
    /// One report per epoch (including those before a resume).
    pub history: Vec<EpochReport>,
    /// Whether early stopping ended training before the last epoch.
    pub stopped_early: bool,
    /// The rows held out for validation (indices into the data), ascending.
    pub validation_rows: Vec<usize>,
    /// The last checkpoint written, if checkpointing.
    pub last_checkpoint: Option<PathBuf>,
}

/// The data of one split on the device.
struct Split {
    rows: Vec<usize>,
    x: CTensor,
    y: CTensor,
}

impl CandleTrainer {
    /// A trainer with these hyper-parameters.
    pub fn new(config: TrainConfig) -> Self {
        Self {
            config,
            checkpoints: None,
            resume: None,
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Writes a checkpoint into `dir` every `every` epochs, at the end, and when cancelled.
    pub fn with_checkpoints(mut self, dir: impl Into<PathBuf>, every: usize) -> Self {
        self.checkpoints = Some(Checkpoints {
            dir: dir.into(),
            every: every.max(1),
        });
        self
    }

    /// Continues from a checkpoint (see [`crate::latest_checkpoint`]): the same data, seed and
    /// hyper-parameters (the epoch count may grow) give the same weights as an uninterrupted run.
    pub fn resume_from(mut self, checkpoint: impl Into<PathBuf>) -> Self {
        self.resume = Some(checkpoint.into());
        self
    }

    /// Trains on `data`, predicting `options.target`.
    pub fn train(
        &self,
        data: &[RecordBatch],
        options: &FitOptions,
        observer: &dyn FitObserver,
        cancel: &CancelToken,
    ) -> Result<Training> {
        let config = &self.config;
        config.validate()?;
        let fraction = options.validation_fraction;
        if !(fraction.is_finite() && (0.0..1.0).contains(&fraction)) {
            return Err(Error::invalid(
                "validation_fraction",
                format!("{fraction} is not in [0, 1)"),
            ));
        }
        let batch = concat(data)?;
        let n = batch.num_rows();
        if n < 2 {
            return Err(Error::invalid(
                "data",
                format!("{n} rows: training needs at least 2"),
            ));
        }
        let target_name = options.target.as_str();
        let target_array = batch.column_by_name(target_name).ok_or_else(|| {
            Error::invalid(
                "target column",
                format!(
                    "{target_name:?} is not in the data (columns: {})",
                    batch
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let classify = config.task() == net::Task::Classification;
        let target = TargetData::from_arrow(target_name, target_array, classify)?;
        let features = feature_columns(&batch, target_name, config.features.as_deref())?;

        // The split: a seeded permutation, the first `val_n` rows held out.
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng(options.seed, STREAM_SPLIT));
        let val_n = ((n as f64 * fraction).round() as usize).min(n - 1);
        let mut val_rows = order[..val_n].to_vec();
        let mut train_rows = order[val_n..].to_vec();
        val_rows.sort_unstable();
        train_rows.sort_unstable();
        if config.early_stopping.is_some() && val_rows.is_empty() {
            return Err(Error::invalid(
                "early_stopping",
                "needs a validation split (validation_fraction > 0)",
            ));
        }

        let pre = Preprocessor::fit(&features, &train_rows, config.max_categories);
        // Classes come from every row, so a class seen only in validation is still a class.
        let all: Vec<usize> = (0..n).collect();
        let encoder = match &target {
            TargetData::Labels(_) => target.fit(target_name, &all),
            TargetData::Numeric(_) => target.fit(target_name, &train_rows),
        };
        let spec = config.net_spec(pre.width(), encoder.classes().len())?;
        let device = config.device.resolve()?;
        let x_all = pre.transform_columns(&features)?;
        let width = pre.width();
        let loss_kind = spec.loss_kind();
        let train = split(
            &x_all, width, &target, &encoder, loss_kind, train_rows, &device,
        )?;
        let val = split(
            &x_all, width, &target, &encoder, loss_kind, val_rows, &device,
        )?;

        // Parameters and optimizer, fresh or from a checkpoint.
        let init =
            net::init(&spec, &mut rng(options.seed, STREAM_INIT), &device).map_err(candle_err)?;
        let vars: Vec<(Var, Var)> = init
            .iter()
            .map(|(w, b)| Ok((Var::from_tensor(w)?, Var::from_tensor(b)?)))
            .collect::<candle_core::Result<_>>()
            .map_err(candle_err)?;
        let named: Vec<(String, Var, bool)> = vars
            .iter()
            .enumerate()
            .flat_map(|(i, (w, b))| {
                [
                    (param_name(i, false), w.clone(), true),
                    (param_name(i, true), b.clone(), false),
                ]
            })
            .collect();
        let mut optimizer =
            crate::optim::Optimizer::new(config, named.clone()).map_err(candle_err)?;
        let mut meta = CheckpointMeta {
            format: CHECKPOINT_FORMAT,
            epochs_done: 0,
            optimizer_steps: 0,
            config: config.clone(),
            seed: options.seed,
            validation_fraction: fraction,
            target: target_name.to_owned(),
            rows: n,
            preprocessing: pre.clone(),
            target_encoder: encoder.clone(),
            best: None,
            bad_epochs: 0,
            history: Vec::new(),
        };
        let mut best_weights: Option<Vec<CTensor>> = None;
        if let Some(path) = &self.resume {
            let (saved, tensors) = checkpoint::read(path, &device)?;
            check_resumable(&saved, &meta, path)?;
            for (name, var, _) in &named {
                let t = tensors
                    .get(&format!("model.{name}"))
                    .filter(|t| t.dims() == var.dims())
                    .ok_or_else(|| {
                        Error::corrupt(
                            "checkpoint",
                            path.display(),
                            format!("no tensor model.{name} of the right shape"),
                        )
                    })?;
                var.set(t).map_err(candle_err)?;
            }
            optimizer.restore(&tensors, saved.optimizer_steps, path)?;
            if saved.best.is_some() && config.early_stopping.is_some() {
                best_weights = Some(
                    named
                        .iter()
                        .map(|(name, _, _)| {
                            tensors
                                .get(&format!("best.{name}"))
                                .cloned()
                                .ok_or_else(|| {
                                    Error::corrupt(
                                        "checkpoint",
                                        path.display(),
                                        format!("no tensor best.{name}"),
                                    )
                                })
                        })
                        .collect::<Result<_>>()?,
                );
            }
            meta.epochs_done = saved.epochs_done;
            meta.best = saved.best;
            meta.bad_epochs = saved.bad_epochs;
            meta.history = saved.history;
        }

        let save = |meta: &CheckpointMeta,
                    optimizer: &crate::optim::Optimizer,
                    best: &Option<Vec<CTensor>>|
         -> Result<Option<PathBuf>> {
            let Some(cp) = &self.checkpoints else {
                return Ok(None);
            };
            let mut meta = meta.clone();
            meta.optimizer_steps = optimizer.steps;
            let mut tensors: Vec<(String, CTensor)> = named
                .iter()
                .map(|(name, var, _)| (format!("model.{name}"), var.as_tensor().clone()))
                .collect();
            tensors.extend(optimizer.state());
            if let Some(best) = best {
                tensors.extend(
                    named
                        .iter()
                        .zip(best)
                        .map(|((name, _, _), t)| (format!("best.{name}"), t.clone())),
                );
            }
            checkpoint::write(&cp.dir, &meta, tensors).map(Some)
        };

        let layers = |vars: &[(Var, Var)]| -> Vec<(CTensor, CTensor)> {
            vars.iter()
                .map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone()))
                .collect()
        };
        let mut stopped_early = false;
        let mut last_checkpoint = None;
        let train_n = train.rows.len();
        while meta.epochs_done < config.epochs {
            let epoch = meta.epochs_done;
            if cancel.is_cancelled() {
                save(&meta, &optimizer, &best_weights)?;
                return Err(Error::unavailable(format!(
                    "training cancelled after {epoch} epochs"
                )));
            }
            let lr = config.learning_rate_at(epoch);
            let mut epoch_rng = rng(options.seed, STREAM_EPOCH + epoch as u64);
            let mut perm: Vec<u32> = (0..train_n as u32).collect();
            perm.shuffle(&mut epoch_rng);
            let perm = CTensor::from_vec(perm, train_n, &device).map_err(candle_err)?;
            let xp = train.x.index_select(&perm, 0).map_err(candle_err)?;
            let yp = train.y.index_select(&perm, 0).map_err(candle_err)?;
            let mut total = 0.0f64;
            let refs_layers = layers(&vars);
            let refs: Vec<(&CTensor, &CTensor)> = refs_layers.iter().map(|(w, b)| (w, b)).collect();
            let mut start = 0;
            while start < train_n {
                let len = config.batch_size.min(train_n - start);
                let mut step = || -> candle_core::Result<f32> {
                    let xb = xp.narrow(0, start, len)?;
                    let yb = yp.narrow(0, start, len)?;
                    let dropout = Some(Dropout {
                        p: if spec.hidden.is_empty() {
                            0.0
                        } else {
                            config.dropout
                        },
                        rng: &mut epoch_rng,
                    });
                    let logits = net::forward(&spec, &refs, &xb, dropout)?;
                    let loss = loss_kind.loss(&logits, &yb)?;
                    let grads = loss.backward()?;
                    optimizer.step(&grads, lr)?;
                    loss.to_scalar::<f32>()
                };
                total += f64::from(step().map_err(candle_err)?) * len as f64;
                start += len;
            }
            let train_loss = total / train_n as f64;
            if !train_loss.is_finite() {
                return Err(Error::invalid(
                    "training",
                    format!(
                        "diverged in epoch {} (training loss {train_loss}): lower the learning rate",
                        epoch + 1
                    ),
                ));
            }
            let mut report = EpochReport {
                epoch: epoch + 1,
                train_loss,
                val_loss: None,
                metrics: BTreeMap::from([("learning_rate".to_owned(), lr)]),
            };
            if !val.rows.is_empty() {
                let (loss, metric) =
                    quick_eval(&spec, &refs, &val, loss_kind, &encoder).map_err(candle_err)?;
                report.val_loss = Some(loss);
                report.metrics.insert(metric.0.to_owned(), metric.1);
            }
            meta.epochs_done = epoch + 1;
            if let (Some(patience), Some(loss)) = (config.early_stopping, report.val_loss) {
                let improved = meta
                    .best
                    .is_none_or(|(_, best)| loss < best - config.min_delta);
                if improved {
                    meta.best = Some((epoch + 1, loss));
                    meta.bad_epochs = 0;
                    best_weights = Some(
                        named
                            .iter()
                            .map(|(_, v, _)| v.as_tensor().copy())
                            .collect::<candle_core::Result<_>>()
                            .map_err(candle_err)?,
                    );
                } else {
                    meta.bad_epochs += 1;
                    stopped_early = meta.bad_epochs >= patience;
                }
            }
            observer.on_epoch(&report);
            meta.history.push(report);
            let last = stopped_early || meta.epochs_done == config.epochs;
            if let Some(cp) = &self.checkpoints
                && (last || meta.epochs_done.is_multiple_of(cp.every))
            {
                last_checkpoint = save(&meta, &optimizer, &best_weights)?;
            }
            if stopped_early {
                break;
            }
        }

        // The model: the best weights under early stopping, else the last; on the CPU.
        let final_tensors: Vec<CTensor> = match &best_weights {
            Some(best) => best.clone(),
            None => named
                .iter()
                .map(|(_, v, _)| v.as_tensor().clone())
                .collect(),
        };
        let cpu = final_tensors
            .iter()
            .map(|t| {
                t.to_device(&Device::Cpu)
                    .and_then(|t| t.copy())
                    .map(|t| t.detach())
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(candle_err)?;
        let model_layers: Vec<(CTensor, CTensor)> = cpu
            .chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect();
        let card = ModelCard {
            flavor: model::FLAVOR.to_owned(),
            format_version: model::CARD_FORMAT,
            network: spec.clone(),
            signature: model::signature(&pre, &encoder),
            preprocessing: pre,
            target: encoder,
            metrics: BTreeMap::new(),
            params: config.params(),
            training: TrainingFacts {
                train_rows: train.rows.len(),
                validation_rows: val.rows.len(),
                epochs: meta.epochs_done,
                best_epoch: best_weights.as_ref().and(meta.best.map(|b| b.0)),
                seed: options.seed,
                device: device_name(&device),
            },
            lineage: Default::default(),
            assessment: BTreeMap::new(),
            mlops_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let mut model = CandleModel::new(card, model_layers, Device::Cpu)?;
        let (rows, prefix) = if val.rows.is_empty() {
            (&train.rows, "train")
        } else {
            (&val.rows, "val")
        };
        let metrics = evaluate(&model, &x_all, width, rows, &target, prefix)?;
        model.card_mut().metrics = metrics.clone();
        Ok(Training {
            model,
            metrics,
            history: meta.history,
            stopped_early,
            validation_rows: val.rows,
            last_checkpoint,
        })
    }
}

impl Trainer for CandleTrainer {
    fn flavor(&self) -> &str {
        model::FLAVOR
    }

    fn params(&self) -> BTreeMap<String, String> {
        self.config.params()
    }

    fn fit(
        &self,
        data: &[RecordBatch],
        options: &FitOptions,
        observer: &dyn FitObserver,
        cancel: &CancelToken,
    ) -> Result<FitOutcome> {
        let t = self.train(data, options, observer, cancel)?;
        Ok(FitOutcome::new(Arc::new(t.model), t.metrics, t.history)
            .with_validation_rows(t.validation_rows))
    }
}

fn concat(data: &[RecordBatch]) -> Result<RecordBatch> {
    let first = data
        .first()
        .ok_or_else(|| Error::invalid("data", "no record batches"))?;
    arrow::compute::concat_batches(&first.schema(), data).map_err(|e| {
        Error::invalid("data", "the record batches do not share one schema").with_source(e)
    })
}

/// The rows `rows` of a row-major matrix `width` wide.
fn gather(x_all: &[f32], width: usize, rows: &[usize]) -> Vec<f32> {
    let mut x = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        x.extend_from_slice(&x_all[r * width..(r + 1) * width]);
    }
    x
}

/// The rows `rows` of the feature matrix and their encoded targets, on `device`.
fn split(
    x_all: &[f32],
    width: usize,
    target: &TargetData,
    encoder: &TargetEncoder,
    loss: LossKind,
    rows: Vec<usize>,
    device: &Device,
) -> Result<Split> {
    let x = gather(x_all, width, &rows);
    let n = rows.len();
    let y = match (target, encoder, loss) {
        (TargetData::Numeric(v), TargetEncoder::Regression { mean, scale, .. }, _) => {
            let y: Vec<f32> = rows
                .iter()
                .map(|&r| ((v[r] - mean) / scale) as f32)
                .collect();
            CTensor::from_vec(y, (n, 1), device)
        }
        (TargetData::Labels(_), TargetEncoder::Classification { .. }, LossKind::Binary) => {
            let y: Vec<f32> = class_indices(target, encoder, &rows)
                .into_iter()
                .map(|c| c as f32)
                .collect();
            CTensor::from_vec(y, (n, 1), device)
        }
        (TargetData::Labels(_), TargetEncoder::Classification { .. }, _) => {
            let y: Vec<u32> = class_indices(target, encoder, &rows)
                .into_iter()
                .map(|c| c as u32)
                .collect();
            CTensor::from_vec(y, n, device)
        }
        _ => {
            return Err(Error::invalid(
                "target column",
                "the target does not match the model's task",
            ));
        }
    }
    .map_err(candle_err)?;
    let x = CTensor::from_vec(x, (n, width), device).map_err(candle_err)?;
    Ok(Split { rows, x, y })
}

/// The class index of each row in `rows`.
fn class_indices(target: &TargetData, encoder: &TargetEncoder, rows: &[usize]) -> Vec<usize> {
    let (TargetData::Labels(labels), classes) = (target, encoder.classes()) else {
        return Vec::new();
    };
    rows.iter()
        .map(|&r| classes.binary_search(&labels[r]).unwrap_or(0))
        .collect()
}

/// Validation loss and the epoch's headline metric (accuracy or RMSE in target units).
fn quick_eval(
    spec: &NetSpec,
    layers: &[(&CTensor, &CTensor)],
    val: &Split,
    loss_kind: LossKind,
    encoder: &TargetEncoder,
) -> candle_core::Result<(f64, (&'static str, f64))> {
    let logits = net::forward(spec, layers, &val.x, None)?;
    let loss = f64::from(loss_kind.loss(&logits, &val.y)?.to_scalar::<f32>()?);
    let n = val.rows.len() as f64;
    let metric = match loss_kind {
        LossKind::Mse => {
            let scale = match encoder {
                TargetEncoder::Regression { scale, .. } => *scale,
                TargetEncoder::Classification { .. } => 1.0,
            };
            ("val_rmse", loss.sqrt() * scale)
        }
        LossKind::Binary => {
            let z = logits.flatten_all()?.to_vec1::<f32>()?;
            let y = val.y.flatten_all()?.to_vec1::<f32>()?;
            let hits = z
                .iter()
                .zip(&y)
                .filter(|(z, y)| (**z > 0.0) == (**y > 0.5))
                .count();
            ("val_accuracy", hits as f64 / n)
        }
        LossKind::CrossEntropy => {
            let pred = logits.argmax(1)?.to_vec1::<u32>()?;
            let y = val.y.to_vec1::<u32>()?;
            let hits = pred.iter().zip(&y).filter(|(p, y)| p == y).count();
            ("val_accuracy", hits as f64 / n)
        }
    };
    Ok((loss, metric))
}

/// The final metrics of `model` on the rows `rows`, named `<prefix>_<metric>`. A metric that is
/// undefined on these rows (ROC-AUC with one class present) is left out.
fn evaluate(
    model: &CandleModel,
    x_all: &[f32],
    width: usize,
    rows: &[usize],
    target: &TargetData,
    prefix: &str,
) -> Result<BTreeMap<String, f64>> {
    let logits = model.logits(gather(x_all, width, rows), rows.len())?;
    let mut out = BTreeMap::new();
    let mut put = |name: &str, v: Result<f64>| {
        if let Ok(v) = v {
            out.insert(format!("{prefix}_{name}"), v);
        }
    };
    match (model.decode(&logits), target) {
        (Decoded::Values(pred), TargetData::Numeric(values)) => {
            let truth: Vec<f64> = rows.iter().map(|&r| values[r]).collect();
            let rmse = eval::rmse(&truth, &pred);
            if let Ok(r) = &rmse {
                put("mse", Ok(r * r));
            }
            put("rmse", rmse);
            put("mae", eval::mae(&truth, &pred));
            put("r2", eval::r2(&truth, &pred));
        }
        (Decoded::Probabilities(probs), TargetData::Labels(_)) => {
            let truth = class_indices(target, &model.card().target, rows);
            let pred: Vec<i64> = probs.iter().map(|p| argmax(p) as i64).collect();
            let truth_i: Vec<i64> = truth.iter().map(|&c| c as i64).collect();
            put("accuracy", eval::accuracy(&truth_i, &pred));
            put("log_loss", eval::log_loss(&truth, &probs));
            if probs.first().is_some_and(|p| p.len() == 2) {
                let binary = Average::Binary { pos_label: 1 };
                put("precision", eval::precision(&truth_i, &pred, binary));
                put("recall", eval::recall(&truth_i, &pred, binary));
                put("f1", eval::f1(&truth_i, &pred, binary));
                let positive: Vec<bool> = truth.iter().map(|&c| c == 1).collect();
                let scores: Vec<f64> = probs.iter().map(|p| p[1]).collect();
                put("roc_auc", eval::roc_auc(&positive, &scores));
            } else {
                put(
                    "precision_macro",
                    eval::precision(&truth_i, &pred, Average::Macro),
                );
                put(
                    "recall_macro",
                    eval::recall(&truth_i, &pred, Average::Macro),
                );
                put("f1_macro", eval::f1(&truth_i, &pred, Average::Macro));
                put("f1_weighted", eval::f1(&truth_i, &pred, Average::Weighted));
                put("roc_auc_ovr", eval::roc_auc_ovr(&truth, &probs));
            }
        }
        _ => {
            return Err(Error::invalid(
                "target column",
                "the target does not match the model's task",
            ));
        }
    }
    Ok(out)
}

/// A checkpoint may resume a run with the same data, seed, split and hyper-parameters (the
/// epoch count and device may differ).
fn check_resumable(
    saved: &CheckpointMeta,
    now: &CheckpointMeta,
    path: &std::path::Path,
) -> Result<()> {
    let differs = |what: &str| {
        Err(Error::invalid(
            "checkpoint",
            format!(
                "{} was trained with a different {what}; it cannot resume this run",
                path.display()
            ),
        ))
    };
    let strip = |c: &TrainConfig| {
        let mut p = c.params();
        p.remove("epochs");
        p.remove("device");
        p
    };
    if strip(&saved.config) != strip(&now.config) {
        return differs("configuration");
    }
    if saved.seed != now.seed {
        return differs("seed");
    }
    if saved.validation_fraction != now.validation_fraction || saved.target != now.target {
        return differs("target or validation split");
    }
    if saved.rows != now.rows
        || saved.preprocessing != now.preprocessing
        || saved.target_encoder != now.target_encoder
    {
        return differs("dataset");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use candle_core::DType;

    use super::*;

    #[test]
    fn streams_are_independent_and_repeatable() {
        use rand::Rng;
        let a: u64 = rng(7, STREAM_SPLIT).random();
        let b: u64 = rng(7, STREAM_SPLIT).random();
        let c: u64 = rng(7, STREAM_INIT).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn loss_kinds_need_matching_dtypes() {
        let d = Device::Cpu;
        let z = CTensor::zeros((2, 3), DType::F32, &d).unwrap();
        let y = CTensor::from_vec(vec![0u32, 2], 2, &d).unwrap();
        let l = LossKind::CrossEntropy
            .loss(&z, &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((f64::from(l) - 3f64.ln()).abs() < 1e-6);
    }
}
