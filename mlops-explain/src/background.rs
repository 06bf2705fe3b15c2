//! Summarising a background for KernelSHAP by k-means, as `shap.kmeans` does: `k` weighted
//! rows instead of hundreds, so each coalition costs `k` model calls.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::features::Features;
use mlops_core::{Error, Result};

/// Lloyd iterations per start at most.
const MAX_ITERATIONS: usize = 300;
/// Starts (k-means++ initialisations); the lowest inertia wins, as scikit-learn's `n_init=10`.
const STARTS: usize = 10;

/// `k` background rows summarising `data`, with their weights (the number of rows each
/// stands for), for [`KernelExplainer::with_weights`](crate::KernelExplainer::with_weights).
///
/// Follows `shap.kmeans`: k-means (k-means++ starts, Lloyd iterations, the best of 10 starts by
/// inertia), then each centre's value of every feature is replaced by the nearest value that
/// feature takes in the data (so a 0/1 feature stays 0 or 1), and the weights are the cluster
/// sizes. The clustering is seeded but its random stream is not scikit-learn's, so the rows may
/// differ from shap's where the data has no clear clusters. Data of no more than `k` rows is
/// returned as it is, every row with weight 1.
pub fn kmeans_background(data: &Features, k: usize, seed: u64) -> Result<(Features, Vec<f64>)> {
    if k == 0 {
        return Err(Error::invalid("background", "k-means with k = 0 clusters"));
    }
    let (n, width) = (data.rows(), data.width());
    if n == 0 {
        return Err(Error::invalid("background", "no rows to summarise"));
    }
    if n <= k {
        return Ok((data.clone(), vec![1.0; n]));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut best: Option<(f64, Vec<f64>, Vec<usize>)> = None;
    for _ in 0..STARTS {
        let (inertia, centres, labels) = lloyd(data, init(data, k, &mut rng), k);
        if best.as_ref().is_none_or(|(b, _, _)| inertia < *b) {
            best = Some((inertia, centres, labels));
        }
    }
    let Some((_, mut centres, labels)) = best else {
        return Err(Error::invalid("background", "k-means found no clustering"));
    };
    // Snap each coordinate to the nearest value of that feature in the data.
    for j in 0..width {
        let mut column: Vec<f64> = (0..n).map(|i| data.row(i)[j]).collect();
        column.sort_by(f64::total_cmp);
        for c in 0..k {
            let v = centres[c * width + j];
            let at = column.partition_point(|x| *x < v);
            let below = at.checked_sub(1).map(|i| column[i]);
            let above = column.get(at).copied();
            centres[c * width + j] = match (below, above) {
                (Some(b), Some(a)) => {
                    if (v - b).abs() <= (a - v).abs() {
                        b
                    } else {
                        a
                    }
                }
                (Some(b), None) => b,
                (None, Some(a)) => a,
                (None, None) => v,
            };
        }
    }
    let mut weights = vec![0.0; k];
    for &l in &labels {
        weights[l] += 1.0;
    }
    // A cluster no row joined (duplicated starts) would carry no weight: drop it.
    let keep: Vec<usize> = (0..k).filter(|&c| weights[c] > 0.0).collect();
    let values = keep
        .iter()
        .flat_map(|&c| centres[c * width..(c + 1) * width].to_vec())
        .collect();
    let weights = keep.iter().map(|&c| weights[c]).collect();
    Ok((Features::new(data.names().to_vec(), values)?, weights))
}

fn distance2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means++: the first centre uniformly, each next one with probability proportional to
/// the squared distance to the nearest chosen centre.
fn init(data: &Features, k: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let (n, width) = (data.rows(), data.width());
    let mut centres = Vec::with_capacity(k * width);
    centres.extend_from_slice(data.row(rng.random_range(0..n)));
    let mut nearest: Vec<f64> = (0..n)
        .map(|i| distance2(data.row(i), &centres[..width]))
        .collect();
    for _ in 1..k {
        let total: f64 = nearest.iter().sum();
        let pick = if total > 0.0 {
            let mut target = rng.random::<f64>() * total;
            let mut chosen = n - 1;
            for (i, d) in nearest.iter().enumerate() {
                if target < *d {
                    chosen = i;
                    break;
                }
                target -= d;
            }
            chosen
        } else {
            rng.random_range(0..n)
        };
        let start = centres.len();
        centres.extend_from_slice(data.row(pick));
        for (i, d) in nearest.iter_mut().enumerate() {
            *d = d.min(distance2(data.row(i), &centres[start..]));
        }
    }
    centres
}

/// Lloyd's iterations from `centres`: the inertia, the centres and each row's cluster.
fn lloyd(data: &Features, mut centres: Vec<f64>, k: usize) -> (f64, Vec<f64>, Vec<usize>) {
    let (n, width) = (data.rows(), data.width());
    let mut labels = vec![usize::MAX; n];
    let mut inertia = f64::INFINITY;
    for _ in 0..MAX_ITERATIONS {
        let mut changed = false;
        inertia = 0.0;
        for (i, label) in labels.iter_mut().enumerate() {
            let row = data.row(i);
            let (c, d) = (0..k)
                .map(|c| (c, distance2(row, &centres[c * width..(c + 1) * width])))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, 0.0));
            inertia += d;
            if *label != c {
                *label = c;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let mut sums = vec![0.0; k * width];
        let mut counts = vec![0usize; k];
        for (i, &l) in labels.iter().enumerate() {
            counts[l] += 1;
            for (s, v) in sums[l * width..(l + 1) * width].iter_mut().zip(data.row(i)) {
                *s += v;
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                for j in 0..width {
                    centres[c * width + j] = sums[c * width + j] / counts[c] as f64;
                }
            }
        }
    }
    (inertia, centres, labels)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn separated_clusters_are_found_with_their_sizes() {
        // Three clumps of 30, 20 and 10 rows around (0, 0), (10, 10) and (-10, 5); a 0/1
        // feature stays 0/1.
        let mut values = Vec::new();
        for (cx, cy, count, flag) in [
            (0.0, 0.0, 30, 0.0),
            (10.0, 10.0, 20, 1.0),
            (-10.0, 5.0, 10, 1.0),
        ] {
            for i in 0..count {
                let d = f64::from(i % 5) * 0.1 - 0.2;
                values.extend([cx + d, cy - d, flag]);
            }
        }
        let names = vec!["x".to_owned(), "y".to_owned(), "flag".to_owned()];
        let data = Features::new(names, values).unwrap();
        let (bg, weights) = kmeans_background(&data, 3, 7).unwrap();
        let mut found: Vec<(i64, i64, f64, f64)> = (0..bg.rows())
            .map(|r| {
                let row = bg.row(r);
                (
                    row[0].round() as i64,
                    row[1].round() as i64,
                    row[2],
                    weights[r],
                )
            })
            .collect();
        found.sort_by_key(|f| f.0);
        assert_eq!(
            found,
            vec![(-10, 5, 1.0, 10.0), (0, 0, 0.0, 30.0), (10, 10, 1.0, 20.0)]
        );
        // Every coordinate is a value of the data.
        for r in 0..bg.rows() {
            for (j, v) in bg.row(r).iter().enumerate() {
                assert!((0..data.rows()).any(|i| data.row(i)[j] == *v));
            }
        }
        // Seeded: the same summary again.
        assert_eq!(kmeans_background(&data, 3, 7).unwrap(), (bg, weights));
    }

    #[test]
    fn small_data_and_bad_k() {
        let data = Features::new(vec!["a".into()], vec![1.0, 2.0]).unwrap();
        assert_eq!(kmeans_background(&data, 5, 0).unwrap().1, vec![1.0, 1.0]);
        assert!(kmeans_background(&data, 0, 0).is_err());
    }
}
