//! Two-sample drift statistics on f64 samples: Population Stability Index over
//! reference-quantile bins, the two-sample Kolmogorov–Smirnov test (exact p-value for
//! small samples, the Kolmogorov limiting distribution otherwise) and the Jensen–Shannon
//! distance over the same bins. docs/data.md gives the definitions and the choices.

/// Floor of a bin's proportion in PSI and JS, so that an empty bin gives a large but
/// finite term instead of ln(0).
pub const EMPTY_BIN_FLOOR: f64 = 1e-4;

/// Exact KS p-values are computed when `n · m` is at most this (an O(n·m) lattice walk);
/// larger samples use the asymptotic distribution.
pub const KS_EXACT_MAX_CELLS: u64 = 1_000_000;

/// How a KS p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KsMethod {
    /// Probability over every interleaving of the two samples (no ties assumed).
    Exact,
    /// Kolmogorov's limiting distribution at `sqrt(n·m/(n+m)) · D`.
    Asymptotic,
}

/// The two-sample KS statistic and its two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ks {
    /// `sup |F_ref(x) - F_cur(x)|`.
    pub statistic: f64,
    /// Probability of a statistic at least as large when both samples share one distribution.
    pub p_value: f64,
    /// Which distribution gave `p_value`.
    pub method: KsMethod,
}

/// Interior bin edges at the reference's quantiles `k/bins`, duplicates removed (a
/// discrete feature gets fewer bins). `sorted` must be sorted and non-empty.
pub fn quantile_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    let n = sorted.len();
    let mut edges: Vec<f64> = (1..bins)
        .map(|k| sorted[((k * n) / bins).saturating_sub(1).min(n - 1)])
        .collect();
    edges.dedup();
    edges
}

/// Proportions of `sorted` in the bins `(-inf, e0], (e0, e1], ..., (e_last, inf)`.
pub fn proportions(sorted: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut counts = vec![0usize; edges.len() + 1];
    let mut start = 0;
    for (i, &edge) in edges.iter().enumerate() {
        let end = start + sorted[start..].partition_point(|&v| v <= edge);
        counts[i] = end - start;
        start = end;
    }
    counts[edges.len()] = sorted.len() - start;
    let n = sorted.len().max(1) as f64;
    counts.iter().map(|&c| c as f64 / n).collect()
}

/// Bins where either sample has data: the degrees of freedom of PSI's χ² approximation
/// are this minus one.
pub fn occupied_bins(reference: &[f64], current: &[f64]) -> usize {
    reference
        .iter()
        .zip(current)
        .filter(|(r, c)| **r > 0.0 || **c > 0.0)
        .count()
}

/// `PSI = Σ (c - r) · ln(c / r)` over bins, proportions floored at [`EMPTY_BIN_FLOOR`].
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let (r, c) = (r.max(EMPTY_BIN_FLOOR), c.max(EMPTY_BIN_FLOOR));
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// Jensen–Shannon distance in base 2 (in [0, 1]): the square root of the divergence
/// between the two binned distributions and their mixture, as
/// `scipy.spatial.distance.jensenshannon(p, q, base=2)`.
pub fn js_distance(reference: &[f64], current: &[f64]) -> f64 {
    let kl = |p: f64, m: f64| if p > 0.0 { p * (p / m).log2() } else { 0.0 };
    let divergence: f64 = reference
        .iter()
        .zip(current)
        .map(|(&p, &q)| {
            let m = (p + q) / 2.0;
            (kl(p, m) + kl(q, m)) / 2.0
        })
        .sum();
    divergence.max(0.0).sqrt()
}

/// Two-sided two-sample KS test of two sorted, non-empty samples.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Ks {
    let (n, m) = (a.len() as u64, b.len() as u64);
    // Walk the merged order; the statistic in lattice units |i·m - j·n| is an integer.
    let (mut i, mut j) = (0usize, 0usize);
    let mut widest: u64 = 0;
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        widest = widest.max((i as u64 * m).abs_diff(j as u64 * n));
    }
    let statistic = widest as f64 / (n * m) as f64;
    if n * m <= KS_EXACT_MAX_CELLS {
        Ks {
            statistic,
            p_value: exact_p(n as usize, m as usize, widest),
            method: KsMethod::Exact,
        }
    } else {
        let en = (n * m) as f64 / (n + m) as f64;
        Ks {
            statistic,
            p_value: kolmogorov_sf(en.sqrt() * statistic),
            method: KsMethod::Asymptotic,
        }
    }
}

/// `P(D >= widest / (n·m))` under the null: one minus the probability that a uniformly
/// random interleaving of the samples keeps `|i·m - j·n| < widest` at every step. The
/// walk carries probabilities, not path counts, so nothing overflows.
fn exact_p(n: usize, m: usize, widest: u64) -> f64 {
    if widest == 0 {
        return 1.0;
    }
    let inside = |i: usize, j: usize| ((i * m) as u64).abs_diff((j * n) as u64) < widest;
    // row[j] = probability of reaching (i, j) without leaving the band.
    let mut row = vec![0.0f64; m + 1];
    for i in 0..=n {
        for j in 0..=m {
            let value = if i == 0 && j == 0 {
                1.0
            } else if !inside(i, j) {
                0.0
            } else {
                // From (i-1, j): the next element was from the first sample, which had
                // n-i+1 of the n+m-i-j+1 remaining; likewise from (i, j-1).
                let remaining = (n + m + 1 - i - j) as f64;
                let from_up = if i > 0 {
                    row[j] * (n + 1 - i) as f64 / remaining
                } else {
                    0.0
                };
                let from_left = if j > 0 {
                    row[j - 1] * (m + 1 - j) as f64 / remaining
                } else {
                    0.0
                };
                from_up + from_left
            };
            row[j] = value;
        }
    }
    (1.0 - row[m]).clamp(0.0, 1.0)
}

/// Kolmogorov's survival function `Q(z) = 2 Σ_{k≥1} (-1)^(k-1) exp(-2 k² z²)`, the
/// limiting distribution of `sqrt(en) · D` (`scipy.special.kolmogorov`). For small z
/// the equivalent Jacobi-theta form converges where the alternating series does not.
pub fn kolmogorov_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z <= 0.0 {
        return 1.0;
    }
    if z < 1.18 {
        let c = std::f64::consts::PI * std::f64::consts::PI / (8.0 * z * z);
        let sum: f64 = (1..=20)
            .map(|k| {
                let odd = (2 * k - 1) as f64;
                (-odd * odd * c).exp()
            })
            .sum();
        (1.0 - (2.0 * std::f64::consts::PI).sqrt() / z * sum).clamp(0.0, 1.0)
    } else {
        let sum: f64 = (1..=100)
            .map(|k| {
                let k = k as f64;
                let sign = if k as u64 % 2 == 1 { 1.0 } else { -1.0 };
                sign * (-2.0 * k * k * z * z).exp()
            })
            .sum();
        (2.0 * sum).clamp(0.0, 1.0)
    }
}

/// Upper quantile of the χ² distribution with `df` degrees of freedom: the x with
/// `P(X > x) = upper`, by the Wilson–Hilferty cube approximation (within about 1% for
/// df ≥ 2, which is what PSI's significance threshold needs).
pub fn chi2_upper_quantile(df: f64, upper: f64) -> f64 {
    let z = normal_quantile(1.0 - upper);
    let a = 2.0 / (9.0 * df);
    (df * (1.0 - a + z * a.sqrt()).powi(3)).max(0.0)
}

/// Standard normal quantile by Acklam's rational approximation (relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p <= 0.0 {
        f64::NEG_INFINITY
    } else if p >= 1.0 {
        f64::INFINITY
    } else if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
