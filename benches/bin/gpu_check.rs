//! `scripts/gpu-check`: training and serving on `cuda:0` against the CPU, on one machine.
//!
//! ```text
//! gpu-check [--device cuda:0] [--rows 100000] [--features 64] [--epochs 3]
//! ```
//!
//! 1. Inference: an MLP trained on the CPU is loaded on the CPU and on the GPU; both predict
//!    the same rows, in process and through a `ModelServer`. Probabilities must agree within
//!    1e-4 and labels exactly (a few rows whose probabilities are within 1e-4 of a tie may
//!    differ; they are counted and shown).
//! 2. Training: the same seed and data trained on each device: validation accuracy within 0.01
//!    (float sums run in another order on a GPU, so weights differ slightly).
//! 3. Speed: seconds per epoch and per 10k-row prediction on each device, and the ratio.
//!
//! Prints one JSON line and exits 0 when every check holds, 1 when one fails, 2 when the GPU
//! cannot be used (a build without `cuda`, no driver, no device).

// A check driver: failing loudly is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use mlops::serve::{InferRequest, ModelServer, Server};
use mlops::train::{CandleLoader, CandleModel, CandleTrainer, DeviceSpec, ModelKind, TrainConfig};
use mlops::{CancelToken, FitOptions, Model, Tensor};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == name)
        .map_or_else(|| default.to_owned(), |w| w[1].clone())
}

/// `rows` rows of `features` uniform features; the class is the sign of a fixed nonlinear score.
fn data(rows: usize, features: usize, seed: u64) -> RecordBatch {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
    };
    let cols: Vec<Vec<f32>> = (0..features)
        .map(|_| (0..rows).map(|_| next()).collect())
        .collect();
    let labels: Vec<i64> = (0..rows)
        .map(|r| {
            let z: f32 = cols
                .iter()
                .enumerate()
                .map(|(j, c)| if j % 2 == 0 { c[r] } else { c[r] * c[r] - 0.33 })
                .sum();
            i64::from(z > 0.0)
        })
        .collect();
    let mut columns: Vec<(String, ArrayRef)> = cols
        .into_iter()
        .enumerate()
        .map(|(j, c)| (format!("f{j}"), Arc::new(Float32Array::from(c)) as ArrayRef))
        .collect();
    columns.push(("y".into(), Arc::new(Int64Array::from(labels))));
    RecordBatch::try_from_iter(columns).unwrap()
}

fn inputs(batch: &RecordBatch, features: usize) -> Vec<Tensor> {
    let names: Vec<String> = (0..features).map(|j| format!("f{j}")).collect();
    mlops::arrow::tensors_by_name(batch, &names).unwrap()
}

fn train(config: &TrainConfig, device: DeviceSpec, data: &RecordBatch) -> (CandleModel, f64, f64) {
    let mut c = config.clone();
    c.device = device;
    let started = Instant::now();
    let t = CandleTrainer::new(c)
        .train(
            std::slice::from_ref(data),
            &FitOptions::new("y"),
            &(),
            &CancelToken::new(),
        )
        .unwrap();
    let seconds = started.elapsed().as_secs_f64() / t.history.len().max(1) as f64;
    let accuracy = t.metrics.get("val_accuracy").copied().unwrap_or(f64::NAN);
    (t.model, seconds, accuracy)
}

/// Seconds per prediction of `x` (median of 5) and the outputs.
fn predict(model: &dyn Model, x: &[Tensor]) -> (f64, Vec<Tensor>) {
    let out = model.predict(x).unwrap();
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            model.predict(x).unwrap();
            started.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[2], out)
}

/// (largest probability difference, rows whose labels differ, of those how many are ties
/// within `tol`).
fn compare(a: &[Tensor], b: &[Tensor], tol: f64) -> (f64, usize, usize) {
    let (pa, pb) = (a[1].to_f64().unwrap(), b[1].to_f64().unwrap());
    let diff = pa
        .iter()
        .zip(&pb)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let (la, lb) = (a[0].to_i64().unwrap(), b[0].to_i64().unwrap());
    let classes = pa.len() / la.len().max(1);
    let mut differ = 0;
    let mut ties = 0;
    for (r, (x, y)) in la.iter().zip(&lb).enumerate() {
        if x != y {
            differ += 1;
            let row = &pa[r * classes..(r + 1) * classes];
            let mut sorted = row.to_vec();
            sorted.sort_by(|p, q| q.total_cmp(p));
            if sorted.len() > 1 && sorted[0] - sorted[1] <= 2.0 * tol {
                ties += 1;
            }
        }
    }
    (diff, differ, ties)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let device: DeviceSpec = arg("--device", "cuda:0").parse().unwrap();
    let rows: usize = arg("--rows", "100000").parse().unwrap();
    let features: usize = arg("--features", "64").parse().unwrap();
    let epochs = arg("--epochs", "3");
    let gpu = match device.resolve() {
        Ok(d) if !d.is_cpu() => d,
        Ok(_) => {
            eprintln!("gpu-check: {device} resolved to the CPU; name a CUDA device");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("gpu-check: {device} cannot be used: {e}");
            std::process::exit(2);
        }
    };
    let train_data = data(rows, features, 1);
    let test = data(10_000, features, 2);
    let x = inputs(&test, features);
    let mut config = TrainConfig::new(ModelKind::Mlp);
    config
        .apply([
            ("hidden", "256,128"),
            ("epochs", epochs.as_str()),
            ("batch_size", "512"),
            ("seed", "7"),
        ])
        .unwrap();

    // 1. Inference of one model on both devices.
    let (cpu_model, cpu_epoch, cpu_accuracy) = train(&config, DeviceSpec::Cpu, &train_data);
    let artifact = cpu_model.to_artifact().unwrap();
    let on_gpu = CandleLoader::on(gpu.clone()).load_model(&artifact).unwrap();
    let (cpu_predict, cpu_out) = predict(&cpu_model, &x);
    let (gpu_predict, gpu_out) = predict(&on_gpu, &x);
    let tol = 1e-4;
    let (diff, differ, ties) = compare(&cpu_out, &gpu_out, tol);
    let inference_ok = diff <= tol && differ == ties;

    // … and through a server that loads the artifact on the GPU.
    let server = ModelServer::builder("gpu-check")
        .loader(Arc::new(CandleLoader::on(gpu.clone())))
        .build();
    let name: mlops::ModelName = "mlp".parse().unwrap();
    server
        .load_artifact(&name, mlops::Version::FIRST, &artifact)
        .unwrap();
    let served = server
        .infer(InferRequest::new(name, x.clone()))
        .await
        .unwrap();
    let (served_diff, served_differ, served_ties) = compare(&cpu_out, &served.outputs, tol);
    let serving_ok = served_diff <= tol && served_differ == served_ties;

    // 2. Training on the GPU.
    let (_, gpu_epoch, gpu_accuracy) = train(&config, device, &train_data);
    let training_ok = (gpu_accuracy - cpu_accuracy).abs() <= 0.01;

    let report = serde_json::json!({
        "device": device.to_string(),
        "rows": rows,
        "features": features,
        "inference": {"max_probability_diff": diff, "labels_differ": differ, "of_which_ties": ties, "ok": inference_ok},
        "serving": {"max_probability_diff": served_diff, "labels_differ": served_differ, "of_which_ties": served_ties, "ok": serving_ok},
        "training": {"cpu_val_accuracy": cpu_accuracy, "gpu_val_accuracy": gpu_accuracy, "ok": training_ok},
        "seconds_per_epoch": {"cpu": cpu_epoch, "gpu": gpu_epoch, "speedup": cpu_epoch / gpu_epoch},
        "seconds_per_10k_predictions": {"cpu": cpu_predict, "gpu": gpu_predict, "speedup": cpu_predict / gpu_predict},
    });
    println!("{report}");
    if !(inference_ok && serving_ok && training_ok) {
        std::process::exit(1);
    }
}
