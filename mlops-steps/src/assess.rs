//! Assessing a trained model on labelled rows: permutation importance (mlops-explain) and,
//! when sensitive columns are declared, group fairness (mlops-fairness) — the
//! [`Assessor`] training jobs and the `train` and `validate` steps run, with its model report
//! in HTML.
//!
//! Sensitive columns are declared on the call ([`AssessParams::sensitive`]) or on the dataset,
//! as its metadata: `sensitive` (comma-separated column names) and, for AIF360's two-group
//! metrics, `privileged` (`column=value[,column=value]`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType as ArrowType;
use mlops_core::signature::Schema;
use mlops_core::train::{Assessment, Assessor};
use mlops_core::{Error, Model, Result, Tensor};
use mlops_explain::{Importances, MaxSamples, PermutationOptions, Shuffles};
use mlops_fairness::{
    AssessOptions, BinaryOutcomes, Bootstrap, FairnessReport, Groups, Privileged,
};
use serde::{Deserialize, Serialize};

mod report;

pub use report::ModelReport;

/// The dataset metadata key declaring sensitive columns (comma-separated).
pub const SENSITIVE_METADATA: &str = "sensitive";
/// The dataset metadata key declaring AIF360's privileged group (`column=value[,…]`).
pub const PRIVILEGED_METADATA: &str = "privileged";

/// What to assess, as the `train` and `validate` steps take it (`with:` keys) and the CLI's
/// flags set it; absent keys fall back to the dataset's metadata, then to the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssessParams {
    /// Sensitive columns (several: intersectional groups); default: the dataset's
    /// `sensitive` metadata. Without any, no fairness metrics are computed.
    #[serde(default)]
    pub sensitive: Option<Vec<String>>,
    /// AIF360's privileged group, `column=value[,column=value]`; default: the dataset's
    /// `privileged` metadata.
    #[serde(default)]
    pub privileged: Option<String>,
    /// The positive label of a binary target, as text (`true`, `1`, `yes`); default: `true`
    /// for boolean targets, else `1`.
    #[serde(default)]
    pub pos_label: Option<String>,
    /// Bootstrap resamples for an interval on every disparity (default 200; 0: none).
    #[serde(default)]
    pub bootstrap: Option<usize>,
    /// Repeats of permutation importance per column (default 5; 0: no importance).
    #[serde(default)]
    pub importance_repeats: Option<usize>,
    /// Rows each importance repeat scores (default: at most 10 000).
    #[serde(default)]
    pub importance_rows: Option<usize>,
    /// Rows to explain with KernelSHAP (default 0: none), over the model's input columns of
    /// any type; the background is 50 rows sampled from the same data.
    #[serde(default)]
    pub shap_rows: Option<usize>,
    /// The seed of the shuffles, the resamples and the SHAP samples (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
}

impl AssessParams {
    /// A step's `assess` parameter: `false` for none, `true` for the defaults, or a map of
    /// these keys (unknown keys are errors naming them); `absent` when the step omits it.
    pub fn from_step_param(
        step: &str,
        value: Option<&serde_json::Value>,
        absent: Option<Self>,
    ) -> Result<Option<Self>> {
        match value {
            None => Ok(absent),
            Some(serde_json::Value::Bool(true)) => Ok(Some(Self::default())),
            Some(serde_json::Value::Bool(false)) => Ok(None),
            Some(v @ serde_json::Value::Object(_)) => {
                mlops_pipeline::parse_params(&format!("{step}.assess"), v).map(Some)
            }
            Some(other) => Err(Error::invalid(
                "step param",
                format!(
                    "parameters of {step}: assess is false or a map of assessment keys, not {other}"
                ),
            )),
        }
    }

    /// The assessor these parameters ask for, with the dataset's `metadata` filling what they
    /// leave out.
    pub fn assessor(&self, metadata: &BTreeMap<String, String>) -> Result<ModelAssessor> {
        let from_metadata = self.sensitive.is_none();
        let sensitive = match &self.sensitive {
            Some(columns) => columns.clone(),
            None => metadata
                .get(SENSITIVE_METADATA)
                .map(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        };
        // The dataset's privileged group goes with the dataset's sensitive columns only.
        let privileged = self
            .privileged
            .as_deref()
            .or_else(|| {
                from_metadata
                    .then(|| metadata.get(PRIVILEGED_METADATA).map(String::as_str))
                    .flatten()
            })
            .map(Privileged::parse)
            .transpose()?;
        if privileged.is_some() && sensitive.is_empty() {
            return Err(Error::invalid(
                "privileged group",
                "a privileged group needs sensitive columns (`sensitive`)",
            ));
        }
        let seed = self.seed.unwrap_or(0);
        let repeats = self.importance_repeats.unwrap_or(5);
        Ok(ModelAssessor {
            sensitive,
            privileged,
            pos_label: self.pos_label.clone(),
            bootstrap: match self.bootstrap.unwrap_or(200) {
                0 => None,
                resamples => Some(Bootstrap {
                    resamples,
                    confidence: 0.95,
                    seed,
                }),
            },
            importance: (repeats > 0).then(|| PermutationOptions {
                n_repeats: repeats,
                max_samples: MaxSamples::Count(self.importance_rows.unwrap_or(10_000)),
                shuffles: Shuffles::Seeded(seed),
            }),
            shap_rows: self.shap_rows.filter(|&n| n > 0),
            seed,
            fairness_optional: from_metadata,
        })
    }
}

/// Permutation importance of every model input, scored by accuracy (classifiers) or R²
/// (regressors), and fairness over the sensitive columns (binary classifiers), as one
/// [`Assessment`]: model-card sections `explain` and `fairness`, tags
/// `explain.importance.<column>` and `fairness.*` ([`FairnessReport::tags`]), and the files
/// `report.html` ([`ModelReport`]) and `assessment.json`.
#[derive(Debug, Clone)]
pub struct ModelAssessor {
    /// The sensitive columns; none: no fairness metrics.
    pub sensitive: Vec<String>,
    /// AIF360's privileged group.
    pub privileged: Option<Privileged>,
    /// The positive label as text (default `true` or `1`).
    pub pos_label: Option<String>,
    /// Bootstrap intervals of the disparities.
    pub bootstrap: Option<Bootstrap>,
    /// Permutation importance; `None`: none.
    pub importance: Option<PermutationOptions>,
    /// Rows to explain with KernelSHAP (inputs of any type); `None`: none.
    pub shap_rows: Option<usize>,
    /// Seed of the SHAP row and background samples.
    pub seed: u64,
    /// Whether the sensitive columns came from the dataset's metadata: then a model fairness
    /// metrics cannot judge (a regressor, a multi-class target) is assessed without them and
    /// [`Findings::fairness_skipped`] says why; declared on the call, that is an error.
    pub fairness_optional: bool,
}

/// Rows the KernelSHAP background summarises the data with.
pub const SHAP_BACKGROUND_ROWS: usize = 50;

/// KernelSHAP over some rows: the global summary and each row's values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShapSummary {
    /// The output explained (`probabilities[1]`, `prediction`).
    pub output: String,
    /// Background rows.
    pub background: usize,
    /// Mean |φ| per feature, largest first.
    pub mean_abs: Vec<(String, f64)>,
    /// The per-row explanation.
    pub explanation: mlops_explain::Explanation,
}

/// Everything a [`ModelAssessor`] found, as its JSON file and the model report hold it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Findings {
    /// The rows assessed.
    pub rows: usize,
    /// The target column.
    pub target: String,
    /// `classification` or `regression`.
    pub task: &'static str,
    /// The score importance drops are measured in (`accuracy`, `r2`).
    pub scorer: &'static str,
    /// Permutation importance of each model input.
    pub importance: Option<Importances>,
    /// Group fairness over the sensitive columns.
    pub fairness: Option<FairnessReport>,
    /// Why fairness was not measured although the dataset declares sensitive columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fairness_skipped: Option<String>,
    /// KernelSHAP, when asked for.
    pub shap: Option<ShapSummary>,
}

impl Findings {
    /// The tags: `explain.scorer`, `explain.baseline`, `explain.importance.<column>` and the
    /// fairness report's `fairness.*`.
    pub fn tags(&self) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        if let Some(imp) = &self.importance {
            tags.insert("explain.scorer".to_owned(), self.scorer.to_owned());
            tags.insert("explain.baseline".to_owned(), imp.baseline.to_string());
            for f in &imp.features {
                tags.insert(
                    format!("explain.importance.{}", f.feature),
                    f.mean.to_string(),
                );
            }
        }
        if let Some(shap) = &self.shap {
            for (feature, v) in &shap.mean_abs {
                tags.insert(format!("explain.shap.{feature}"), v.to_string());
            }
        }
        if let Some(report) = &self.fairness {
            tags.extend(report.tags());
        }
        if let Some(why) = &self.fairness_skipped {
            tags.insert("fairness.skipped".to_owned(), why.clone());
        }
        // Column names become part of keys: anything a tag key cannot hold becomes `_`, and a
        // key that is still not one (too long) is left out (its value stays in the card).
        tags.into_iter()
            .filter_map(|(k, v)| {
                let key: String = k
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ') {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                mlops_core::TagKey::new(key.clone()).ok().map(|_| (key, v))
            })
            .collect()
    }
}

/// How a model's answers are compared with the truth.
enum Task {
    /// The `label` output, compared as text with the target's values.
    Classification,
    /// The named numeric output.
    Regression(String),
}

fn task_of(model: &dyn Model) -> Result<Task> {
    let Some(Schema::Tensors(outputs)) = &model.signature().outputs else {
        return Err(Error::not_supported(
            "model signature",
            model.flavor(),
            "no named tensor outputs to assess",
        ));
    };
    let names: Vec<&str> = outputs.iter().filter_map(|o| o.name.as_deref()).collect();
    if names.contains(&"label") {
        return Ok(Task::Classification);
    }
    names
        .first()
        .map(|n| Task::Regression((*n).to_owned()))
        .ok_or_else(|| {
            Error::not_supported(
                "model signature",
                model.flavor(),
                "no named tensor outputs to assess",
            )
        })
}

/// The values of `array` as text (labels compared across types: `true`, `1`, `churn`).
fn texts(what: &'static str, array: &dyn Array) -> Result<Vec<String>> {
    if let Some(row) = (0..array.len()).find(|&i| array.is_null(i)) {
        return Err(Error::invalid(what, format!("null at row {row}")));
    }
    let text = arrow::compute::cast(array, &ArrowType::Utf8).map_err(|e| {
        Error::invalid(
            what,
            format!("{} values cannot be labels", array.data_type()),
        )
        .with_source(e)
    })?;
    Ok(text
        .as_string::<i32>()
        .iter()
        .map(|v| canonical(v.unwrap_or_default()))
        .collect())
}

/// A label as text that compares equal across types: a whole number is written as an integer
/// (a float target's `1.0` is the `1` an integer-labelled model answers), anything else as it
/// is.
fn canonical(label: &str) -> String {
    match label.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 => format!("{}", v as i64),
        _ => label.to_owned(),
    }
}

fn label_texts(outputs: &[Tensor]) -> Result<Vec<String>> {
    let label = outputs
        .iter()
        .find(|t| t.name() == "label")
        .ok_or_else(|| Error::invalid("model output", "the model answered no label"))?;
    texts(
        "model output label",
        &mlops_core::arrow::array_from_tensor(label)?,
    )
}

fn model_inputs(model: &dyn Model) -> Vec<String> {
    match &model.signature().inputs {
        Schema::Columns(specs) => specs.iter().filter_map(|s| s.name.clone()).collect(),
        Schema::Tensors(specs) => specs.iter().filter_map(|s| s.name.clone()).collect(),
    }
}

fn predict_rows(model: &dyn Model, inputs: &[String], batch: &RecordBatch) -> Result<Vec<Tensor>> {
    model.predict(&mlops_core::arrow::tensors_by_name(batch, inputs)?)
}

impl ModelAssessor {
    /// Assesses `model` on `rows` (its inputs and the `target` column): the findings.
    pub fn findings(
        &self,
        model: &Arc<dyn Model>,
        rows: &RecordBatch,
        target: &str,
    ) -> Result<Findings> {
        let truth_column = rows.column_by_name(target).ok_or_else(|| {
            Error::invalid("target column", format!("{target:?} is not in the data"))
        })?;
        if rows.num_rows() == 0 {
            return Err(Error::invalid("data", "no rows to assess"));
        }
        // Declared columns are checked before any work.
        for c in &self.sensitive {
            if rows.column_by_name(c).is_none() {
                return Err(Error::invalid(
                    "sensitive column",
                    format!("{c:?} is not in the data"),
                ));
            }
        }
        let task = task_of(model.as_ref())?;
        let inputs = model_inputs(model.as_ref());
        let (task_name, scorer_name) = match task {
            Task::Classification => ("classification", "accuracy"),
            Task::Regression(_) => ("regression", "r2"),
        };
        let importance = match &self.importance {
            None => None,
            Some(options) => {
                let mut options = options.clone();
                if let MaxSamples::Count(c) = options.max_samples {
                    options.max_samples = MaxSamples::Count(c.clamp(1, rows.num_rows()));
                }
                let columns: Vec<&str> = inputs.iter().map(String::as_str).collect();
                Some(match &task {
                    Task::Classification => {
                        // Labels become indices into the truth's distinct values; a predicted
                        // label the truth never holds is -1, which matches nothing.
                        let truth = texts("target column", truth_column.as_ref())?;
                        let mut classes: Vec<&str> = truth.iter().map(String::as_str).collect();
                        classes.sort_unstable();
                        classes.dedup();
                        let index = |s: &str| classes.binary_search(&s).map_or(-1.0, |i| i as f64);
                        let y: Vec<f64> = truth.iter().map(|s| index(s)).collect();
                        let predict = |batch: &RecordBatch| -> Result<Vec<f64>> {
                            let labels =
                                label_texts(&predict_rows(model.as_ref(), &inputs, batch)?)?;
                            Ok(labels.iter().map(|s| index(s)).collect())
                        };
                        let accuracy = |y: &[f64], p: &[f64]| -> Result<f64> {
                            let hits = y.iter().zip(p).filter(|(a, b)| a == b).count();
                            Ok(hits as f64 / y.len().max(1) as f64)
                        };
                        mlops_explain::permutation_importance_columns(
                            &predict, rows, &columns, &y, &accuracy, &options,
                        )?
                    }
                    Task::Regression(output) => {
                        let y = mlops_core::arrow::tensor_from_array(target, truth_column.as_ref())
                            .and_then(|t| t.to_f64_lossy())
                            .map_err(|e| e.context("regression target"))?;
                        let f = mlops_explain::ModelColumns::new(model.clone(), output.clone(), 0)?;
                        let r2 = |y: &[f64], p: &[f64]| -> Result<f64> { Ok(r2(y, p)) };
                        mlops_explain::permutation_importance_columns(
                            &f, rows, &columns, &y, &r2, &options,
                        )?
                    }
                })
            }
        };
        let (fairness, fairness_skipped) = if self.sensitive.is_empty() {
            (None, None)
        } else {
            match self.fairness(model, &task, &inputs, rows, target, truth_column.as_ref())? {
                Ok(report) => (Some(report), None),
                // Declared on the dataset, the columns apply to every model trained on it; a
                // model fairness metrics cannot judge is assessed without them.
                Err(why) if self.fairness_optional => (None, Some(why)),
                Err(why) => return Err(Error::invalid("sensitive column", why)),
            }
        };
        let shap = self
            .shap_rows
            .map(|n| self.shap(model, &task, &inputs, rows, n))
            .transpose()?;
        Ok(Findings {
            rows: rows.num_rows(),
            target: target.to_owned(),
            task: task_name,
            scorer: scorer_name,
            importance,
            fairness,
            fairness_skipped,
            shap,
        })
    }

    /// Fairness over the sensitive columns: `Ok(Err(why))` when the model is not a binary
    /// classifier of this target.
    fn fairness(
        &self,
        model: &Arc<dyn Model>,
        task: &Task,
        inputs: &[String],
        rows: &RecordBatch,
        target: &str,
        truth_column: &dyn Array,
    ) -> Result<std::result::Result<FairnessReport, String>> {
        if !matches!(task, Task::Classification) {
            return Ok(Err(format!(
                "group fairness needs a binary classifier; the model regresses {target:?}"
            )));
        }
        let truth = texts("target column", truth_column)?;
        let predicted = label_texts(&predict_rows(model.as_ref(), inputs, rows)?)?;
        let pos = self.pos_label.as_deref().map(canonical).unwrap_or_else(|| {
            if *truth_column.data_type() == ArrowType::Boolean {
                "true".into()
            } else {
                "1".into()
            }
        });
        let mut distinct: Vec<&str> = truth.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() > 2 || !distinct.contains(&pos.as_str()) {
            return Ok(Err(format!(
                "group fairness needs a binary target with the positive label {pos:?}; {target:?} holds {}",
                distinct
                    .iter()
                    .take(10)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let outcomes = BinaryOutcomes::from_bools(
            truth.iter().map(|s| *s == pos).collect(),
            predicted.iter().map(|s| *s == pos).collect(),
        )?;
        let sensitive: Vec<&str> = self.sensitive.iter().map(String::as_str).collect();
        let groups = Groups::from_batch(rows, &sensitive)?;
        Ok(Ok(mlops_fairness::assess(
            &outcomes,
            &groups,
            &AssessOptions {
                privileged: self.privileged.clone(),
                bootstrap: self.bootstrap,
            },
        )?))
    }

    /// KernelSHAP of `n` sampled rows against a background of [`SHAP_BACKGROUND_ROWS`]:
    /// a classifier's last probability column (the positive class of a binary one), a
    /// regressor's output.
    fn shap(
        &self,
        model: &Arc<dyn Model>,
        task: &Task,
        inputs: &[String],
        rows: &RecordBatch,
        n: usize,
    ) -> Result<ShapSummary> {
        let (output, column) = match task {
            Task::Classification => {
                let width = model
                    .signature()
                    .outputs
                    .as_ref()
                    .and_then(|o| match o {
                        Schema::Tensors(t) => t
                            .iter()
                            .find(|t| t.name.as_deref() == Some("probabilities"))
                            .and_then(|t| t.shape.get(1).copied()),
                        Schema::Columns(_) => None,
                    })
                    .filter(|&w| w > 0)
                    .ok_or_else(|| {
                        Error::not_supported(
                            "model signature",
                            model.flavor(),
                            "SHAP of a classifier explains its `probabilities` output, which it lacks",
                        )
                    })?;
                (
                    "probabilities".to_owned(),
                    usize::try_from(width - 1).unwrap_or(0),
                )
            }
            Task::Regression(output) => (output.clone(), 0),
        };
        let f = mlops_explain::ModelColumns::new(model.clone(), output.clone(), column)?;
        let columns: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let background = mlops_explain::sample_rows(rows, SHAP_BACKGROUND_ROWS, self.seed)?;
        let explained = mlops_explain::sample_rows(rows, n, self.seed.wrapping_add(1))?;
        let explainer = mlops_explain::ColumnKernelExplainer::new(
            f,
            &background,
            &columns,
            mlops_explain::KernelOptions {
                seed: self.seed,
                ..Default::default()
            },
        )?;
        let explanation = explainer.explain(&explained)?;
        Ok(ShapSummary {
            output: if column > 0 {
                format!("{output}[{column}]")
            } else {
                output
            },
            background: background.num_rows(),
            mean_abs: explanation.mean_abs(),
            explanation,
        })
    }
}

/// The coefficient of determination, scikit-learn's `r2_score` (1 for a perfect fit of a
/// constant target, 0 otherwise when the target is constant).
fn r2(y: &[f64], p: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
    let ss_res: f64 = y.iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum();
    let ss_tot: f64 = y.iter().map(|a| (a - mean).powi(2)).sum();
    if ss_tot == 0.0 {
        if ss_res == 0.0 { 1.0 } else { 0.0 }
    } else {
        1.0 - ss_res / ss_tot
    }
}

impl Assessor for ModelAssessor {
    fn assess(
        &self,
        model: &Arc<dyn Model>,
        rows: &RecordBatch,
        target: &str,
    ) -> Result<Assessment> {
        let findings = self.findings(model, rows, target)?;
        let mut assessment = Assessment::new().with_tags(findings.tags());
        if let Some(imp) = &findings.importance {
            assessment = assessment.with_card_section(
                "explain",
                serde_json::json!({
                    "method": "permutation_importance",
                    "scorer": findings.scorer,
                    "rows": findings.rows,
                    "importance": to_json(imp)?,
                }),
            );
        }
        if let Some(fair) = &findings.fairness {
            assessment = assessment.with_card_section("fairness", to_json(fair)?);
        }
        let body =
            serde_json::to_vec_pretty(&findings).map_err(|e| Error::backend("serde_json", e))?;
        Ok(assessment.with_file("assessment.json", body).with_file(
            "report.html",
            ModelReport::new(&findings, "the rows the training job assessed it on").to_html(),
        ))
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::backend("serde_json", e))
}
