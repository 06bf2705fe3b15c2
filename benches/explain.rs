//! Explanations and fairness: KernelSHAP of 10 rows × 12 features against 50 background rows,
//! permutation importance on 20k rows × 8 features (5 repeats), and every fairness disparity on
//! 200k rows of 6 groups. `benches/scripts/explain_vs_references.py` runs the same work against
//! shap, scikit-learn and fairlearn at full size and prints the ratios.

use criterion::{Criterion, Throughput, criterion_group};
use mlops::explain::{
    Features, KernelExplainer, KernelOptions, PermutationOptions, permutation_importance,
};
use mlops::fairness::{AssessOptions, BinaryOutcomes, Groups, assess};

fn uniform(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

fn features(seed: u64, rows: usize, width: usize) -> Features {
    Features::new(
        (0..width).map(|j| format!("f{j}")).collect(),
        uniform(seed, rows * width),
    )
    .unwrap()
}

fn explain(c: &mut Criterion) {
    let mut group = c.benchmark_group("explain");
    group.sample_size(10);
    let w: Vec<f64> = uniform(9, 12);
    let logistic = |f: &Features| -> mlops::Result<Vec<f64>> {
        Ok((0..f.rows())
            .map(|i| {
                let z: f64 = f.row(i).iter().zip(&w).map(|(x, w)| x * w).sum();
                1.0 / (1.0 + (-z).exp())
            })
            .collect())
    };
    let (x, bg) = (features(1, 10, 12), features(2, 50, 12));
    group.throughput(Throughput::Elements(10));
    group.bench_function("kernel_shap_10x12_bg50", |b| {
        b.iter(|| {
            KernelExplainer::new(logistic, bg.clone(), KernelOptions::default())
                .unwrap()
                .explain(&x)
                .unwrap()
        });
    });

    let x = features(3, 20_000, 8);
    let label = |f: &Features| -> mlops::Result<Vec<f64>> {
        Ok((0..f.rows())
            .map(|i| {
                let z: f64 = f.row(i).iter().zip(&w).map(|(x, w)| x * w).sum();
                f64::from(u8::from(z > 0.0))
            })
            .collect())
    };
    let y = label(&x).unwrap();
    let accuracy = |y: &[f64], p: &[f64]| -> mlops::Result<f64> {
        Ok(y.iter().zip(p).filter(|(a, b)| a == b).count() as f64 / y.len() as f64)
    };
    group.throughput(Throughput::Elements(20_000));
    group.bench_function("permutation_importance_20k_x8", |b| {
        b.iter(|| {
            permutation_importance(&label, &x, &y, &accuracy, &PermutationOptions::default())
                .unwrap()
        });
    });

    let n = 200_000;
    let u = uniform(4, 3 * n);
    let y_true: Vec<bool> = u[..n].iter().map(|v| *v > 0.0).collect();
    let y_pred: Vec<bool> = u[n..2 * n].iter().map(|v| *v > 0.1).collect();
    let group_of: Vec<String> = u[2 * n..]
        .iter()
        .map(|v| format!("g{}", ((v + 1.0) * 3.0) as usize))
        .collect();
    let outcomes = BinaryOutcomes::from_bools(y_true, y_pred).unwrap();
    let groups = Groups::from_values(&[("group", group_of)]).unwrap();
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("fairness_disparities_200k", |b| {
        b.iter(|| assess(&outcomes, &groups, &AssessOptions::default()).unwrap());
    });
    group.finish();
}

criterion_group!(benches, explain);
