//! The two-sample Kolmogorov–Smirnov test, two-sided, with p-values as scipy's
//! `ks_2samp(method="auto")` computes them: exact when both samples have at most 10,000 values,
//! Smirnov's asymptotic distribution of `D` at `n = round(n1·n2 / (n1 + n2))` otherwise.

use super::kolmogorov;

/// Above this size of the larger sample, `auto` switches from the exact p-value to the
/// asymptotic one (scipy's `MAX_AUTO_N`).
pub const MAX_EXACT_N: usize = 10_000;

/// The statistic and p-value of a two-sided two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// `D = sup |F1 - F2|`.
    pub statistic: f64,
    /// The two-sided p-value.
    pub pvalue: f64,
}

/// The KS statistic of two **sorted**, non-empty samples (finite values).
///
/// Walks the merged values once; at each distinct value both ECDFs jump past every equal value
/// (scipy's `searchsorted(side="right")`). The ECDF difference is compared exactly, as
/// `i·n2 − j·n1` in integers, and divided once at the extremes.
pub fn statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    assert_no_overflow(n1, n2);
    let (w1, w2) = (n2 as i64, n1 as i64);
    // Large inputs: split at a value, walk both halves on two threads. The split value is a
    // true boundary (both sides have consumed every copy of it), so each half's walk is exact
    // and the boundary itself is one more candidate.
    let ext = if n1 + n2 >= PARALLEL_MIN {
        let s = a[n1 / 2];
        let (i0, j0) = (
            a.partition_point(|v| *v <= s),
            b.partition_point(|v| *v <= s),
        );
        let at = |i: usize, j: usize| (i as i64 * w1 - j as i64 * w2, (i, j));
        let (lo, hi) = rayon::join(
            || walk(&a[..i0], &b[..j0], (0, 0), (w1, w2)),
            || walk(&a[i0..], &b[j0..], (i0, j0), (w1, w2)),
        );
        let mid = at(i0, j0);
        Extremes {
            max: [lo.max, hi.max, mid]
                .into_iter()
                .max_by_key(|m| m.0)
                .unwrap_or(mid),
            min: [lo.min, hi.min, mid]
                .into_iter()
                .min_by_key(|m| m.0)
                .unwrap_or(mid),
        }
    } else {
        walk(a, b, (0, 0), (w1, w2))
    };
    let value = |(i, j): (usize, usize)| i as f64 / n1 as f64 - j as f64 / n2 as f64;
    let max_s = value(ext.max.1);
    let min_s = (-value(ext.min.1)).clamp(0.0, 1.0);
    if min_s > max_s { min_s } else { max_s }
}

/// Below this many values in total the walk runs on one thread.
const PARALLEL_MIN: usize = 1 << 18;

/// Largest and smallest `i·n2 − j·n1` at value boundaries, with their positions.
#[derive(Debug, Clone, Copy)]
struct Extremes {
    max: (i64, (usize, usize)),
    min: (i64, (usize, usize)),
}

/// Merges sorted `a` and `b` (positions offset by `off` in the full samples) and records the
/// extremes of the ECDF difference at each value boundary inside them.
fn walk(a: &[f64], b: &[f64], off: (usize, usize), (w1, w2): (i64, i64)) -> Extremes {
    let (n1, n2) = (a.len(), b.len());
    let (mut i, mut j) = (0usize, 0usize);
    let num = |i: usize, j: usize| (off.0 + i) as i64 * w1 - (off.1 + j) as i64 * w2;
    let start = num(0, 0);
    let (mut max, mut max_at) = (start, off);
    let (mut min, mut min_at) = (start, off);
    // One element a step without data-dependent branches: the merge direction and the "last
    // copy of this value" test are selects, so random data does not defeat branch prediction.
    while i < n1 && j < n2 {
        let (ai, bj) = (a[i], b[j]);
        let take_a = ai <= bj;
        let x = if take_a { ai } else { bj };
        i += usize::from(take_a);
        j += usize::from(!take_a);
        let na = if i < n1 { a[i] } else { f64::INFINITY };
        let nb = if j < n2 { b[j] } else { f64::INFINITY };
        let boundary = na.min(nb) > x;
        let d = num(i, j);
        let up = boundary & (d > max);
        max = if up { d } else { max };
        max_at = if up { (off.0 + i, off.1 + j) } else { max_at };
        let down = boundary & (d < min);
        min = if down { d } else { min };
        min_at = if down { (off.0 + i, off.1 + j) } else { min_at };
    }
    // One side ran out inside a run of equal values: finish the run on the other side and test
    // that boundary; after it the difference only moves towards the end value.
    if i == n1 && j < n2 && n1 > 0 {
        let x = a[n1 - 1];
        while j < n2 && b[j] <= x {
            j += 1;
        }
        let d = num(i, j);
        if d > max {
            (max, max_at) = (d, (off.0 + i, off.1 + j));
        }
        if d < min {
            (min, min_at) = (d, (off.0 + i, off.1 + j));
        }
    } else if j == n2 && i < n1 && n2 > 0 {
        let x = b[n2 - 1];
        while i < n1 && a[i] <= x {
            i += 1;
        }
        let d = num(i, j);
        if d > max {
            (max, max_at) = (d, (off.0 + i, off.1 + j));
        }
        if d < min {
            (min, min_at) = (d, (off.0 + i, off.1 + j));
        }
    }
    // The end of this stretch (every value consumed) is a boundary too.
    let d = num(n1, n2);
    if d > max {
        (max, max_at) = (d, (off.0 + n1, off.1 + n2));
    }
    if d < min {
        (min, min_at) = (d, (off.0 + n1, off.1 + n2));
    }
    Extremes {
        max: (max, max_at),
        min: (min, min_at),
    }
}

/// `i·n2 − j·n1` must fit an `i64`: samples of up to 3·10^9 values each.
fn assert_no_overflow(n1: usize, n2: usize) {
    debug_assert!((n1 as u128) * (n2 as u128) < i64::MAX as u128);
}

/// The two-sided test on two unsorted samples: sorts both (in parallel) and tests.
pub fn ks_2samp(mut a: Vec<f64>, mut b: Vec<f64>) -> KsResult {
    rayon::join(
        || voracious_radix_sort::RadixSort::voracious_sort(&mut a),
        || voracious_radix_sort::RadixSort::voracious_sort(&mut b),
    );
    ks_2samp_sorted(&a, &b)
}

/// The two-sided test on two **sorted**, non-empty samples, p-value chosen as scipy's `auto`.
pub fn ks_2samp_sorted(a: &[f64], b: &[f64]) -> KsResult {
    let d = statistic_sorted(a, b);
    let (n1, n2) = (a.len(), b.len());
    if n1.max(n2) <= MAX_EXACT_N
        && let Some((d, p)) = exact(n1, n2, d)
    {
        return KsResult {
            statistic: d,
            pvalue: p.clamp(0.0, 1.0),
        };
    }
    KsResult {
        statistic: d,
        pvalue: asymptotic(n1, n2, d).clamp(0.0, 1.0),
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The exact two-sided p-value; `None` when it cannot be computed in floating point (then the
/// asymptotic one is used, as scipy does). `d` is snapped to the lattice `h / lcm`.
fn exact(n1: usize, n2: usize, d: f64) -> Option<(f64, f64)> {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) as f64 * n2 as f64;
    let h = (d * lcm).round_ties_even();
    let d = h / lcm;
    if h == 0.0 {
        return Some((d, 1.0));
    }
    let h = h as u64;
    let p = if n1 == n2 {
        prob_outside_square(n1 as u64, h)
    } else {
        outer_prob_inside(n1 as u64, n2 as u64, g as u64, h)
    };
    (p.is_finite() && (0.0..=1.0).contains(&p)).then_some((d, p))
}

/// Pr(D_{n,n} >= h/n): 2·(A0·(1 − A1·(1 − A2·(…)))) with each A_k a ratio of h simple factors
/// (Horner form of the alternating binomial sum, avoiding its cancellation).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as f64, h as f64);
    let mut p = 0.0f64;
    let mut k = (n / h).floor();
    while k >= 0.0 {
        let mut p1 = 1.0f64;
        let mut j = 0.0;
        while j < h {
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1.0);
            j += 1.0;
        }
        p = p1 * (1.0 - p);
        k -= 1.0;
    }
    2.0 * p
}

/// 1 − (paths from (0,0) to (m,n) staying strictly inside |x/m − y/n| < h/lcm) / C(m+n, n),
/// computed directly as a probability column by column (Hodges' inside method with
/// Viehmann's recursion for 1 − p).
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as f64, (n / g) as f64);
    let hf = h as f64;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((hf / mg).ceil() as i64).min(n as i64 + 1);
    let mut curlen = maxj - minj;
    let len = usize::try_from((2 * maxj + 2).min(n as i64 + 1)).unwrap_or(0);
    let mut a = vec![1.0f64; len.max(1)];
    for v in a.iter_mut().take(usize::try_from(maxj).unwrap_or(0)) {
        *v = 0.0;
    }
    for i in 1..=m {
        let fi = i as f64;
        let (lastminj, lastlen) = (minj, curlen);
        minj = (((ng * fi - hf) / mg).floor() as i64 + 1)
            .max(0)
            .min(n as i64);
        maxj = (((ng * fi + hf) / mg).ceil() as i64).min(n as i64 + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = (jj + minj) as f64;
            let idx = usize::try_from(jj + minj - lastminj).unwrap_or(0);
            let prev = a.get(idx).copied().unwrap_or(1.0);
            val = (prev * fi + val * j) / (fi + j);
            if let Some(slot) = a.get_mut(usize::try_from(jj).unwrap_or(0)) {
                *slot = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let from = usize::try_from(maxj - minj).unwrap_or(0);
            let to = usize::try_from(maxj - minj + (lastlen - curlen)).unwrap_or(0);
            for v in a.iter_mut().take(to).skip(from) {
                *v = 1.0;
            }
        }
    }
    a.get(usize::try_from(maxj - minj - 1).unwrap_or(0))
        .copied()
        .unwrap_or(f64::NAN)
}

/// Smirnov's asymptotic two-sided p-value: the Kolmogorov distribution of `D_n` at
/// `n = round(n1·n2/(n1+n2))`.
fn asymptotic(n1: usize, n2: usize, d: f64) -> f64 {
    let (m, n) = if n1 >= n2 {
        (n1 as f64, n2 as f64)
    } else {
        (n2 as f64, n1 as f64)
    };
    let en = m * n / (m + n);
    kolmogorov::kolmogn_sf(en.round_ties_even() as u64, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statistic straight from the definition: max |F1(x) - F2(x)| over every value.
    fn naive(a: &[f64], b: &[f64]) -> f64 {
        let mut d = 0.0f64;
        for &x in a.iter().chain(b) {
            let f1 = a.iter().filter(|v| **v <= x).count() as f64 / a.len() as f64;
            let f2 = b.iter().filter(|v| **v <= x).count() as f64 / b.len() as f64;
            d = d.max((f1 - f2).abs());
        }
        d
    }

    #[test]
    fn the_parallel_walk_equals_the_serial_one() {
        let mut s = 11u64;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s >> 33
        };
        for (n1, n2, levels) in [
            (200_000, 150_000, 50),
            (300_000, 300_000, 1_000_000),
            (150_000, 200_001, 3),
        ] {
            let mut a: Vec<f64> = (0..n1).map(|_| (next() % levels) as f64).collect();
            let mut b: Vec<f64> = (0..n2).map(|_| ((next() + 7) % levels) as f64).collect();
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            assert!(n1 + n2 >= PARALLEL_MIN);
            let serial = walk(&a, &b, (0, 0), (n2 as i64, n1 as i64));
            let value = |(i, j): (usize, usize)| i as f64 / n1 as f64 - j as f64 / n2 as f64;
            let expected = value(serial.max.1).max((-value(serial.min.1)).clamp(0.0, 1.0));
            assert_eq!(statistic_sorted(&a, &b), expected, "{n1} {n2} {levels}");
        }
    }

    #[test]
    fn statistic_matches_the_definition_with_ties_and_tails() {
        let cases: Vec<(Vec<f64>, Vec<f64>)> = vec![
            (vec![1.0], vec![1.0, 2.0]),
            (vec![1.0, 2.0], vec![1.0]),
            (vec![0.0, 5.0], vec![5.0]),
            (vec![1.0, 1.0], vec![1.0]),
            (vec![1.0, 2.0, 2.0, 3.0], vec![2.0, 2.0, 2.0]),
            (vec![3.0, 3.0, 3.0], vec![1.0, 2.0, 3.0]),
            (vec![0.0, 1.0, 2.0], vec![3.0, 4.0]),
            (vec![5.0, 6.0], vec![0.0, 1.0, 5.0]),
        ];
        for (a, b) in cases {
            let got = statistic_sorted(&a, &b);
            assert!((got - naive(&a, &b)).abs() < 1e-15, "{a:?} {b:?}: {got}");
        }
        // Random small samples with many ties.
        let mut s = 7u64;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s >> 33
        };
        for _ in 0..500 {
            let (n1, n2) = (1 + (next() % 9) as usize, 1 + (next() % 9) as usize);
            let mut draw = |n: usize| {
                let mut v: Vec<f64> = (0..n).map(|_| (next() % 7) as f64).collect();
                v.sort_by(f64::total_cmp);
                v
            };
            let (a, b) = (draw(n1), draw(n2));
            assert!(
                (statistic_sorted(&a, &b) - naive(&a, &b)).abs() < 1e-15,
                "{a:?} {b:?}"
            );
        }
    }
}
