//! Models trained here, handed to the world so nothing is locked in: a candle model as an
//! ONNX graph (the `onnx` flavor, which onnxruntime, Triton and KServe run), and an ONNX model
//! as an MLflow model directory that MLflow's own `mlflow.pyfunc.load_model` serves.
//!
//! The ONNX graph of a candle model computes what the model does, preprocessing included: one
//! 1-D input per feature column in the signature's types; numeric columns standardised with the
//! fitted mean and scale, string columns one-hot encoded against the fitted categories (a
//! category not seen in training is all zeros, as here); the layers (`Gemm`, ReLU or exact
//! GELU); then the outputs of the signature — `prediction` (FP64, de-standardised) for a
//! regression, `label` (the class, typed as the target was) and `probabilities` (FP64) for a
//! classifier, the label being the first most probable class as here. Opset 19 (string
//! equality).
//!
//! What a tensor cannot carry is not exported: a missing value (the candle model imputes it;
//! the graph takes no nulls).

use std::collections::BTreeMap;

use bytes::Bytes;
use mlops_core::signature::{Schema, Signature, TensorSpec};
use mlops_core::{ArtifactPath, DataType, Error, ModelArtifact, Result};
use mlops_mlflow::model::{FLAVOR as MLFLOW_FLAVOR, MLMODEL_FILE, MlModel, MlSignature};
use mlops_onnx::builder::{Attr, GraphBuilder};
use mlops_train::net::Activation;
use mlops_train::preprocess::{FeatureEncoder, Label, TargetEncoder};
use mlops_train::{CandleLoader, CandleModel};

/// The opset of exported graphs (19: `Equal` on strings, for one-hot encoding).
pub const OPSET: i64 = 19;

/// The ONNX graph (`model.onnx` bytes) of a candle model.
pub fn candle_to_onnx(model: &CandleModel) -> Result<Bytes> {
    let card = model.card();
    let mut g = GraphBuilder::new("mlops_candle", OPSET);
    g.metadata("mlops.flavor", mlops_train::model::FLAVOR);
    if let Some(run) = &card.lineage.run_id {
        g.metadata("mlops.run_id", run);
    }
    let Schema::Columns(columns) = &card.signature.inputs else {
        return Err(Error::invalid(
            "candle model",
            "its signature is not one column per feature",
        ));
    };
    if columns.len() != card.preprocessing.features.len()
        || columns
            .iter()
            .zip(&card.preprocessing.features)
            .any(|(c, f)| c.name.as_deref() != Some(f.column()))
    {
        return Err(Error::corrupt(
            "model card",
            mlops_train::model::CARD_FILE,
            "its signature's columns are not its encoders' columns, in order",
        ));
    }
    g.constant_i64("mlops_column", &[2], &[-1, 1]);
    let mut features = Vec::with_capacity(card.preprocessing.features.len());
    for (i, (encoder, spec)) in card.preprocessing.features.iter().zip(columns).enumerate() {
        let input = encoder.column();
        g.input(input, spec.col_type.tensor_type(), &[-1]);
        let feature = format!("mlops_feature_{i}");
        match encoder {
            FeatureEncoder::Numeric { mean, scale, .. } => {
                let (d, centred, scaled, narrow) = (
                    format!("{feature}_double"),
                    format!("{feature}_centred"),
                    format!("{feature}_scaled"),
                    format!("{feature}_float"),
                );
                let (mean_name, scale_name) =
                    (format!("{feature}_mean"), format!("{feature}_scale"));
                g.constant_f64(&mean_name, &[], &[*mean]);
                g.constant_f64(&scale_name, &[], &[*scale]);
                g.node(
                    "Cast",
                    &[input],
                    &[&d],
                    vec![Attr::int("to", cast_to(DataType::Fp64))],
                );
                g.node("Sub", &[&d, &mean_name], &[&centred], Vec::new());
                g.node("Div", &[&centred, &scale_name], &[&scaled], Vec::new());
                g.node(
                    "Cast",
                    &[&scaled],
                    &[&narrow],
                    vec![Attr::int("to", cast_to(DataType::Fp32))],
                );
                g.node(
                    "Reshape",
                    &[&narrow, "mlops_column"],
                    &[&feature],
                    Vec::new(),
                );
            }
            FeatureEncoder::Categorical { categories, .. } => {
                let (column, hits, cats) = (
                    format!("{feature}_column"),
                    format!("{feature}_hits"),
                    format!("{feature}_categories"),
                );
                g.constant_strings(&cats, &[categories.len()], categories);
                g.node("Reshape", &[input, "mlops_column"], &[&column], Vec::new());
                g.node("Equal", &[&column, &cats], &[&hits], Vec::new());
                g.node(
                    "Cast",
                    &[&hits],
                    &[&feature],
                    vec![Attr::int("to", cast_to(DataType::Fp32))],
                );
            }
        }
        features.push(feature);
    }
    let feature_refs: Vec<&str> = features.iter().map(String::as_str).collect();
    g.node(
        "Concat",
        &feature_refs,
        &["mlops_features"],
        vec![Attr::int("axis", 1)],
    );

    let layers = model.layer_weights()?;
    let shapes = card.network.layer_shapes();
    if card.network.activation == Activation::Gelu && layers.len() > 1 {
        g.constant_f32("mlops_sqrt2", &[], &[std::f32::consts::SQRT_2]);
        g.constant_f32("mlops_gelu_one", &[], &[1.0]);
        g.constant_f32("mlops_gelu_half", &[], &[0.5]);
    }
    let mut h = "mlops_features".to_owned();
    for (l, ((w, b), (out, inp))) in layers.iter().zip(&shapes).enumerate() {
        let (wn, bn, z) = (
            format!("layers.{l}.weight"),
            format!("layers.{l}.bias"),
            format!("mlops_layer_{l}"),
        );
        g.constant_f32(&wn, &[*out, *inp], w);
        g.constant_f32(&bn, &[*out], b);
        g.node("Gemm", &[&h, &wn, &bn], &[&z], vec![Attr::int("transB", 1)]);
        h = if l + 1 < layers.len() {
            activation(&mut g, &z, card.network.activation, l)
        } else {
            z
        };
    }

    match &card.target {
        TargetEncoder::Regression { mean, scale, .. } => {
            g.constant_f64("mlops_target_mean", &[], &[*mean]);
            g.constant_f64("mlops_target_scale", &[], &[*scale]);
            g.constant_i64("mlops_flat", &[1], &[-1]);
            g.node(
                "Cast",
                &[&h],
                &["mlops_out_double"],
                vec![Attr::int("to", cast_to(DataType::Fp64))],
            );
            g.node(
                "Mul",
                &["mlops_out_double", "mlops_target_scale"],
                &["mlops_out_scaled"],
                Vec::new(),
            );
            g.node(
                "Add",
                &["mlops_out_scaled", "mlops_target_mean"],
                &["mlops_out_shifted"],
                Vec::new(),
            );
            g.node(
                "Reshape",
                &["mlops_out_shifted", "mlops_flat"],
                &["prediction"],
                Vec::new(),
            );
            g.output("prediction", DataType::Fp64, &[-1]);
        }
        TargetEncoder::Classification { classes, .. } => {
            g.node(
                "Cast",
                &[&h],
                &["mlops_logits"],
                vec![Attr::int("to", cast_to(DataType::Fp64))],
            );
            if card.network.outputs == 1 {
                // One logit: the positive (second) class's probability, as scikit-learn, in
                // double as here: 1 / (1 + exp(-z)) (tract has no double Sigmoid).
                g.constant_f64("mlops_one", &[], &[1.0]);
                g.node(
                    "Neg",
                    &["mlops_logits"],
                    &["mlops_minus_logits"],
                    Vec::new(),
                );
                g.node(
                    "Exp",
                    &["mlops_minus_logits"],
                    &["mlops_odds_against"],
                    Vec::new(),
                );
                g.node(
                    "Add",
                    &["mlops_one", "mlops_odds_against"],
                    &["mlops_denominator"],
                    Vec::new(),
                );
                g.node(
                    "Div",
                    &["mlops_one", "mlops_denominator"],
                    &["mlops_positive"],
                    Vec::new(),
                );
                g.node(
                    "Sub",
                    &["mlops_one", "mlops_positive"],
                    &["mlops_negative"],
                    Vec::new(),
                );
                g.node(
                    "Concat",
                    &["mlops_negative", "mlops_positive"],
                    &["probabilities"],
                    vec![Attr::int("axis", 1)],
                );
            } else {
                g.node(
                    "Softmax",
                    &["mlops_logits"],
                    &["probabilities"],
                    vec![Attr::int("axis", 1)],
                );
            }
            g.node(
                "ArgMax",
                &["probabilities"],
                &["mlops_class"],
                vec![
                    Attr::int("axis", 1),
                    Attr::int("keepdims", 0),
                    Attr::int("select_last_index", 0),
                ],
            );
            let label_type = class_constant(&mut g, classes)?;
            g.node(
                "Gather",
                &["mlops_classes", "mlops_class"],
                &["label"],
                vec![Attr::int("axis", 0)],
            );
            g.output("label", label_type, &[-1]);
            g.output(
                "probabilities",
                DataType::Fp64,
                &[-1, i64::try_from(classes.len()).unwrap_or(i64::MAX)],
            );
        }
    }
    g.build()
}

/// ONNX's code for a `Cast` to `datatype`.
fn cast_to(datatype: DataType) -> i64 {
    i64::from(mlops_onnx::builder::elem_type(datatype))
}

/// The hidden activation of layer `l` applied to `z`; returns its output.
/// (GELU's constants are added once, before the layers.)
fn activation(g: &mut GraphBuilder, z: &str, activation: Activation, l: usize) -> String {
    let out = format!("mlops_hidden_{l}");
    match activation {
        Activation::Relu => {
            g.node("Relu", &[z], &[&out], Vec::new());
        }
        Activation::Gelu => {
            // The exact (erf) form: x * (1 + erf(x / sqrt 2)) / 2, as candle's gelu_erf.
            let (a, e, s, m) = (
                format!("{out}_scaled"),
                format!("{out}_erf"),
                format!("{out}_shifted"),
                format!("{out}_product"),
            );
            g.node("Div", &[z, "mlops_sqrt2"], &[&a], Vec::new());
            g.node("Erf", &[&a], &[&e], Vec::new());
            g.node("Add", &[&e, "mlops_gelu_one"], &[&s], Vec::new());
            g.node("Mul", &[z, &s], &[&m], Vec::new());
            g.node("Mul", &[&m, "mlops_gelu_half"], &[&out], Vec::new());
        }
    }
    out
}

/// The classes as the constant `mlops_classes`; returns the label's datatype.
fn class_constant(g: &mut GraphBuilder, classes: &[Label]) -> Result<DataType> {
    let n = classes.len();
    match classes.first() {
        Some(Label::Bool(_)) => {
            let v: Vec<bool> = classes
                .iter()
                .map(|c| matches!(c, Label::Bool(true)))
                .collect();
            g.constant_bool("mlops_classes", &[n], &v);
            Ok(DataType::Bool)
        }
        Some(Label::Int(_)) => {
            let v = classes
                .iter()
                .map(|c| match c {
                    Label::Int(i) => Ok(*i),
                    other => Err(Error::invalid(
                        "candle model",
                        format!("class {other} among integer classes"),
                    )),
                })
                .collect::<Result<Vec<i64>>>()?;
            g.constant_i64("mlops_classes", &[n], &v);
            Ok(DataType::Int64)
        }
        _ => {
            let v: Vec<String> = classes.iter().map(ToString::to_string).collect();
            g.constant_strings("mlops_classes", &[n], &v);
            Ok(DataType::Bytes)
        }
    }
}

/// An `onnx` artifact of a model: a candle model converted, an `onnx` one as it is, an MLflow
/// model directory with an `onnx` flavor by its ONNX file. Other flavors are not supported.
pub fn onnx_artifact(artifact: &ModelArtifact) -> Result<ModelArtifact> {
    let file = ArtifactPath::new(mlops_onnx::MODEL_FILE)?;
    match artifact.flavor.as_str() {
        mlops_onnx::FLAVOR => Ok(artifact.clone()),
        mlops_train::model::FLAVOR => {
            let model = CandleLoader::new().load_model(artifact)?;
            Ok(ModelArtifact::new(mlops_onnx::FLAVOR).with_file(file, candle_to_onnx(&model)?))
        }
        MLFLOW_FLAVOR => {
            let mlmodel = MlModel::parse(artifact.file(MLMODEL_FILE)?)?;
            let onnx = mlmodel.onnx_file().ok_or_else(|| {
                Error::not_supported(
                    "MLflow model",
                    "without an onnx flavor",
                    "only MLflow models with an onnx flavor convert to ONNX",
                )
            })?;
            Ok(
                ModelArtifact::new(mlops_onnx::FLAVOR)
                    .with_file(file, artifact.file(onnx)?.clone()),
            )
        }
        other => Err(Error::not_supported(
            "model flavor",
            other,
            "no ONNX export for it (candle, onnx and MLflow onnx models export)",
        )),
    }
}

/// Where an exported model came from, written into its `MLmodel`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MlflowExport {
    /// The run that produced it.
    pub run_id: Option<String>,
    /// Free-form metadata (`MLmodel`'s `metadata:`), e.g. the registered name and version.
    pub metadata: BTreeMap<String, String>,
}

impl MlflowExport {
    /// Records the producing run.
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// Adds a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// An MLflow model directory (our flavor `mlflow`: `MLmodel`, `model.onnx`,
/// `requirements.txt`) of a model that exports to ONNX ([`onnx_artifact`]), which
/// `mlflow.pyfunc.load_model` serves through MLflow's `onnx` flavor. A scikit-learn ZipMap is
/// unwrapped into the `[N, classes]` tensor we serve. The signature is the
/// graph's, as named tensors, so pyfunc hands a DataFrame's columns to the inputs of the same
/// names and answers a dict of arrays.
pub fn mlflow_model(artifact: &ModelArtifact, export: &MlflowExport) -> Result<ModelArtifact> {
    let onnx = onnx_artifact(artifact)?;
    // scikit-learn's ZipMap unwrapped, as we serve it: MLflow's ONNX wrapper hands outputs to
    // pandas and numpy, which take tensors, not sequences of maps.
    let bytes = mlops_onnx::without_zipmap(onnx.file(mlops_onnx::MODEL_FILE)?)?;
    // The graph's signature, read without a runtime (exporting runs nothing).
    let signature = &mlops_onnx::inspect(&bytes)?.signature;
    let mut mlmodel = MlModel::default();
    mlmodel.flavors.insert(
        "onnx".into(),
        yaml(serde_json::json!({
            "data": mlops_onnx::MODEL_FILE,
            "providers": ["CPUExecutionProvider"],
            "code": null,
            "onnx_session_options": null,
        }))?,
    );
    mlmodel.flavors.insert(
        "python_function".into(),
        yaml(serde_json::json!({
            "loader_module": "mlflow.onnx",
            "data": mlops_onnx::MODEL_FILE,
        }))?,
    );
    mlmodel.signature = Some(mlflow_signature(signature));
    mlmodel.run_id.clone_from(&export.run_id);
    mlmodel.model_uuid = Some(uuid_hex(&bytes));
    mlmodel.utc_time_created = Some(utc_now());
    let mut metadata = export.metadata.clone();
    metadata.insert("mlops_version".into(), env!("CARGO_PKG_VERSION").into());
    metadata.insert("mlops_flavor".into(), artifact.flavor.clone());
    mlmodel.other.insert(
        "metadata".into(),
        yaml(serde_json::to_value(metadata).map_err(|e| Error::backend("serde_json", e))?)?,
    );
    Ok(ModelArtifact::new(MLFLOW_FLAVOR)
        .with_file(ArtifactPath::new(MLMODEL_FILE)?, mlmodel.to_yaml()?)
        .with_file(ArtifactPath::new(mlops_onnx::MODEL_FILE)?, bytes)
        .with_file(
            ArtifactPath::new("requirements.txt")?,
            "mlflow\nonnxruntime\nnumpy\npandas\n",
        ))
}

fn yaml(value: serde_json::Value) -> Result<serde_yaml_ng::Value> {
    serde_yaml_ng::to_value(value).map_err(|e| Error::backend("serde_yaml", e))
}

/// The graph's signature in MLflow's encoding, as named tensors.
fn mlflow_signature(signature: &Signature) -> MlSignature {
    let named = |schema: &Schema| match schema {
        Schema::Tensors(t) => Schema::Tensors(t.clone()),
        Schema::Columns(c) => Schema::Tensors(
            c.iter()
                .map(|c| {
                    TensorSpec::new(
                        c.name.clone().unwrap_or_default(),
                        c.col_type.tensor_type(),
                        vec![-1],
                    )
                })
                .collect(),
        ),
    };
    let mut sig = MlSignature::default();
    sig.inputs = Some(named(&signature.inputs).to_mlflow_json());
    sig.outputs = signature
        .outputs
        .as_ref()
        .map(|o| named(o).to_mlflow_json());
    sig
}

/// A stable 32-hex id for an exported model (the blake3 of its graph: the same model exports
/// with the same id).
fn uuid_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_owned()
}

/// `2026-12-07 14:16:14.846075`, MLflow's format, in UTC.
fn utc_now() -> String {
    let ms = mlops_core::time::now_ms();
    humantime::format_rfc3339_micros(
        std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or_default()),
    )
    .to_string()
    .replace('T', " ")
    .trim_end_matches('Z')
    .to_owned()
}
