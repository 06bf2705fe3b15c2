//! The distribution of the two-sided one-sample Kolmogorov–Smirnov statistic `D_n` (scipy's
//! `kstwo`), following Simard & L'Ecuyer (2011) as scipy's `_ksstats` does: Ruben–Gambino
//! closed forms at the ends, the Durbin matrix (Marsaglia–Tsang–Wang), Pomeranz's recursion,
//! Pelz–Good's expansion, and `2·smirnov(n, x)` for the upper tail.

const E128: i32 = 128;
/// 2^128 and 2^-128: rescaling steps that keep long products in range.
const EP128: f64 = 3.402_823_669_209_385e38;
const EM128: f64 = 2.938_735_877_055_719e-39;
const MIN_LOG: f64 = -708.0;
const SQRT2PI: f64 = 2.506_628_274_631_000_2;
const LOG_2PI: f64 = 1.837_877_066_409_345_3;
const PI2: f64 = std::f64::consts::PI * std::f64::consts::PI;
/// The largest `x` for which `exp(x)` is a normal double's neighbour (cephes `MINLOG`).
const CEPHES_MINLOG: f64 = -7.083_964_185_322_641e2;

/// Stirling-series coefficients of log(n!/n^n) (highest power first).
const STIRLING: [f64; 8] = [
    -2.955_065_359_477_124e-2,
    6.410_256_410_256_41e-3,
    -1.917_526_917_526_917_6e-3,
    8.417_508_417_508_418e-4,
    -5.952_380_952_380_952e-4,
    7.936_507_936_507_937e-4,
    -2.777_777_777_777_778e-3,
    8.333_333_333_333_333e-2,
];

fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    let x = rn / n;
    let poly = STIRLING.iter().fold(0.0, |acc, c| acc * x + c);
    n.ln() / 2.0 - n + LOG_2PI / 2.0 + rn * poly
}

fn clip(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

/// Pr(D_n > x), the survival function of the two-sided statistic.
pub fn kolmogn_sf(n: u64, x: f64) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    let nf = n as f64;
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let t = nf * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            (1..=n).fold(1.0, |acc, i| {
                acc * (i as f64 * (1.0 / nf) * (2.0 * t - 1.0))
            })
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip(1.0 - cdf);
    }
    if t >= nf - 1.0 {
        return clip(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        return clip(2.0 * smirnov(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754_693 {
            return clip(1.0 - dmtw_cdf(n, x));
        }
        if nxsquared <= 4.0 {
            return clip(1.0 - pomeranz_cdf(n, x));
        }
        return clip(2.0 * smirnov(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip(2.0 * smirnov(n, x));
    }
    let cdf = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        dmtw_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    clip(1.0 - cdf)
}

fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..m {
                out[i * m + j] += aik * b[k * m + j];
            }
        }
    }
    out
}

/// Pr(D_n <= d) by the Durbin matrix, raised to the n-th power with rescaling.
fn dmtw_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut v: Vec<f64> = (1..=m).map(|i| 1.0 - h.powi(i as i32)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0f64;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * fac;
    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let mut pwr = vec![0.0; m * m];
    for i in 0..m {
        pwr[i * m + i] = 1.0;
    }
    let (mut nn, mut expnt, mut hexpnt) = (n, 0i32, 0i32);
    while nn > 0 {
        if nn % 2 == 1 {
            pwr = matmul(&pwr, &hm, m);
            expnt += hexpnt;
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > EP128 {
            for x in &mut hm {
                *x /= EP128;
            }
            hexpnt += E128;
        }
        nn /= 2;
    }
    let mut p = pwr[(k - 1) * m + (k - 1)];
    let nf = n as f64;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= E128;
        }
    }
    if expnt != 0 {
        p *= 2f64.powi(expnt);
    }
    clip(p)
}

fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (d, r) = ((i + 1).div_euclid(2), (i + 1).rem_euclid(2));
        if r == 0 {
            if d == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (d - 1 - ll - roundf - 1, d + ll - 1 + ceilf - 1)
            }
        } else {
            (d - 1 - ll - 1, d + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// numpy's `np.convolve(a, b)` (mode "full").
fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// numpy slice semantics for non-negative bounds: truncated at the end.
fn slice(v: &[f64], from: i64, to: i64) -> &[f64] {
    let len = v.len() as i64;
    let f = from.clamp(0, len) as usize;
    let t = to.clamp(0, len) as usize;
    if f >= t { &[] } else { &v[f..t] }
}

/// Pr(D_n <= x) by Pomeranz's recursion.
fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    let ni = n as i64;
    let nf = n as f64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = usize::try_from(2 * (ll + 1)).unwrap_or(2);
    let mut gpower = vec![1.0; npwrs];
    let mut twogpower = vec![1.0; npwrs];
    let mut onem2gpower = vec![1.0; npwrs];
    let (g_n, two_g_n, one_m2g_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        gpower[m] = gpower[m - 1] * g_n / m as f64;
        twogpower[m] = twogpower[m - 1] * two_g_n / m as f64;
        onem2gpower[m] = onem2gpower[m - 1] * one_m2g_n / m as f64;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0i64, 0i64);
    let mut expnt = 0i32;
    let mut j1 = pomeranz_j1j2(0, ni, ll, ceilf, roundf).0;
    for i in 1..(2 * ni + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.iter_mut().for_each(|x| *x = 0.0);
        let (next_j1, j2) = pomeranz_j1j2(i, ni, ll, ceilf, roundf);
        j1 = next_j1;
        let pwrs = if i == 1 || i == 2 * ni + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let conv = convolve(slice(&v0, k1 - v0s, k1 - v0s + ln2), slice(pwrs, 0, ln2));
            let conv_start = j1 - k1;
            let conv_len = j2 - j1 + 1;
            let src = slice(&conv, conv_start, conv_start + conv_len);
            let take = src.len().min(v1.len());
            v1[..take].copy_from_slice(&src[..take]);
            let max = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < max && max < EM128 {
                v1.iter_mut().for_each(|x| *x *= EP128);
                expnt -= E128;
            }
            v1s = v0s + j1 - k1;
        }
    }
    let idx = usize::try_from(ni - v1s).unwrap_or(0);
    let mut ans = v1.get(idx).copied().unwrap_or(0.0);
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += E128;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans *= 2f64.powi(expnt);
    }
    clip(ans)
}

/// Pelz–Good's approximation of Pr(D_n <= x).
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let qlog = -PI2 / 8.0 / z2;
    if qlog < MIN_LOG {
        return 0.0;
    }
    let q = qlog.exp();
    let pi4 = PI2 * PI2;
    let pi6 = pi4 * PI2;
    let k1a = -z2;
    let k1b = PI2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * PI2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = PI2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut k = [0.0f64; 4];
    let maxk = (16.0 * z / std::f64::consts::PI).ceil() as i64;
    for kk in (1..=maxk).rev() {
        let m = (2 * kk - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf(8.0 * kk as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (v, c) in k.iter_mut().zip(coeffs) {
            *v = *v * qpower + c;
        }
    }
    let div = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (v, d) in k.iter_mut().zip(div) {
        *v = *v * q * SQRT2PI / d;
    }
    let q = (-PI2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let (mut k2extra, mut k3extra) = (0.0f64, 0.0f64);
    for kk in (1..=maxk).rev() {
        let ks = kk as f64;
        let ksq = ks * ks;
        let qp = q.powf(ksq);
        k2extra += ksq * qp;
        let kspi = std::f64::consts::PI * ks;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    k[2] += k2extra * (PI2 * SQRT2PI / (-36.0 * z3));
    k[3] += k3extra * (PI2 * SQRT2PI / (216.0 * z6));
    for (i, v) in k.iter_mut().enumerate() {
        *v /= nf.powf(i as f64 / 2.0);
    }
    k.iter().sum()
}

/// Pr(D_n^+ >= x): the one-sided statistic's survival function (scipy's `smirnov`), by the
/// Birnbaum–Tingey sum (or its upper form when that has at most three terms), summed in log
/// space with early termination.
pub fn smirnov(n: u64, x: f64) -> f64 {
    if n == 0 || !(0.0..=1.0).contains(&x) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let ni = n as i64;
    // floor(n·x) and its remainder, exactly.
    let nx = nf * x;
    let err = nf.mul_add(x, -nx);
    let mut nxfl = nx.floor();
    let mut alpha = (nx - nxfl) + err;
    if alpha < 0.0 {
        nxfl -= 1.0;
        alpha += 1.0;
    }
    if alpha >= 1.0 {
        nxfl += 1.0;
        alpha = 0.0;
    }
    let nxfl = nxfl as i64;
    let mut n1mxfl = ni - nxfl - i64::from(alpha != 0.0);
    let mut n1mxceil = ni - nxfl;
    if alpha == 0.0 {
        n1mxfl -= 1;
        n1mxceil += 1;
    }
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        let t = (1.0 + x).powf(nf - 1.0);
        return clip(1.0 - x * t);
    }
    if -2.0 * nf * x * x < CEPHES_MINLOG {
        return 0.0;
    }
    if nxfl >= ni - 1 {
        return clip((1.0 - x).powf(nf));
    }
    if n > 1_000_000 {
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        return clip(if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 + logp.exp_m1()
        });
    }
    let n_upper_terms = ni - n1mxceil + 1;
    let use_upper =
        (n_upper_terms <= 1 && x < 0.5) || (ni >= 10 && n_upper_terms <= 3 && x <= 0.5 / nf.sqrt());
    let vmid = ni / 2;
    let mut sum = 0.0f64;
    let mut comp = 0.0f64; // Kahan compensation
    let mut add = |v: f64, sum: &mut f64| {
        let y = v - comp;
        let t = *sum + y;
        comp = (t - *sum) - y;
        *sum = t;
    };
    let mut ln_c = 0.0f64; // ln C(n, j)
    if use_upper {
        let n_terms = ni - n1mxceil + 1;
        add((1.0 + x).powf(nf - 1.0), &mut sum);
        for j in 1..n_terms {
            ln_c += ((ni - j + 1) as f64 / j as f64).ln();
            let v = ni - j;
            let t2x = (ni - v) as f64 / nf - x; // may be negative
            let t1x = v as f64 / nf + x;
            let a = ln_c.exp() * t2x.powi((ni - v) as i32) * t1x.powf((v - 1) as f64);
            if a.is_finite() {
                add(a, &mut sum);
            }
        }
        clip(1.0 - x * sum)
    } else {
        let n_terms = n1mxfl + 1;
        let first = (nf * (-x).ln_1p()).exp() / x;
        add(first, &mut sum);
        for j in 1..n_terms {
            ln_c += ((ni - j + 1) as f64 / j as f64).ln();
            let v = j;
            let y = x + v as f64 / nf;
            let log_a = ln_c + (ni - v) as f64 * (-y).ln_1p() + (v - 1) as f64 * y.ln();
            let a = log_a.exp();
            if a.is_finite() && a != 0.0 {
                add(a, &mut sum);
            }
            if a != 0.0 {
                if 4.0 * (n_terms - j) as f64 * a < f64::EPSILON * sum && j != n_terms - 1 {
                    break;
                }
            } else if j > vmid {
                break;
            }
        }
        clip(x * sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms_and_limits() {
        assert_eq!(kolmogn_sf(10, 0.0), 1.0);
        assert_eq!(kolmogn_sf(10, 1.0), 0.0);
        assert_eq!(kolmogn_sf(10, 0.04), 1.0);
        // n = 1: D_1 is uniform on [1/2, 1], so Pr(D_1 > x) = 2(1 - x).
        assert!((kolmogn_sf(1, 0.75) - 0.5).abs() < 1e-15);
        assert!((smirnov(1, 0.3) - 0.7).abs() < 1e-15);
    }
}
