//! Latency statistics of a bench run, the stability check that tells a trustworthy run
//! from a noisy one, and the shape of the latency distribution for reports.
//!
//! Percentiles are nearest-rank on the sorted sample ([`crate::quantile::percentile`]), the
//! definition MLPerf LoadGen uses: every reported value is a latency that was measured.

use serde::{Deserialize, Serialize};

/// Summary of a latency sample, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub min: f64,
    pub mean: f64,
    /// Sample standard deviation (n − 1).
    pub stddev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LatencyStats {
    /// Statistics of `sample_ms`; `None` for an empty sample.
    pub fn of(sample_ms: &[f64]) -> Option<LatencyStats> {
        if sample_ms.is_empty() {
            return None;
        }
        let mut sorted = sample_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let var = if sorted.len() > 1 {
            sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        let q = |q: f64| nearest_rank(&sorted, q);
        Some(LatencyStats {
            min: sorted[0],
            mean,
            stddev: var.sqrt(),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Nearest-rank percentile of an already sorted, non-empty sample.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Whether the run measured one steady state: the run is cut into `windows` equal
/// consecutive parts (in completion order) and each part's median latency compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stability {
    /// Median latency of each window, in order, ms.
    pub window_p50_ms: Vec<f64>,
    /// (largest − smallest window median) / median of all: the run's own noise, which
    /// the baseline gate multiplies into its threshold.
    pub spread: f64,
    /// The spread above which the run is marked unstable.
    pub limit: f64,
    /// `spread <= limit`.
    pub stable: bool,
}

impl Stability {
    /// Splits `sample_ms` (completion order) into `windows` parts. With fewer than
    /// 2 × `windows` queries there is nothing to compare: spread 0, stable.
    pub fn of(sample_ms: &[f64], windows: usize, limit: f64) -> Stability {
        let windows = windows.max(1);
        let per = sample_ms.len() / windows;
        if per < 2 {
            return Stability {
                window_p50_ms: Vec::new(),
                spread: 0.0,
                limit,
                stable: true,
            };
        }
        let medians: Vec<f64> = sample_ms
            .chunks(per)
            .take(windows)
            .map(|w| {
                let mut w = w.to_vec();
                w.sort_by(f64::total_cmp);
                nearest_rank(&w, 0.5)
            })
            .collect();
        let mut all = sample_ms.to_vec();
        all.sort_by(f64::total_cmp);
        let median = nearest_rank(&all, 0.5);
        let (lo, hi) = medians
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), &m| {
                (lo.min(m), hi.max(m))
            });
        let spread = if median > 0.0 {
            (hi - lo) / median
        } else {
            0.0
        };
        Stability {
            window_p50_ms: medians,
            spread,
            limit,
            stable: spread <= limit,
        }
    }
}

/// The latency distribution for plots: a histogram over log-spaced bins and the
/// percentile curve, both small enough to keep in every JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Bin edges in ms, ascending, one more than `counts`.
    pub edges_ms: Vec<f64>,
    /// Queries per bin.
    pub counts: Vec<u64>,
    /// `[q, latency_ms]` at fixed quantiles from 0 to 1.
    pub percentiles: Vec<[f64; 2]>,
}

/// Quantiles of the percentile curve.
const CURVE: [f64; 17] = [
    0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0,
];

/// Number of histogram bins.
const BINS: usize = 30;

impl Distribution {
    /// The distribution of a non-empty sample; `None` when empty.
    pub fn of(sample_ms: &[f64]) -> Option<Distribution> {
        if sample_ms.is_empty() {
            return None;
        }
        let mut sorted = sample_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (lo, hi) = (sorted[0].max(1e-6), sorted[sorted.len() - 1].max(1e-6));
        let (llo, lhi) = (lo.ln(), (hi * (1.0 + 1e-9)).ln().max(lo.ln() + 1e-9));
        let edges_ms: Vec<f64> = (0..=BINS)
            .map(|i| (llo + (lhi - llo) * i as f64 / BINS as f64).exp())
            .collect();
        let mut counts = vec![0u64; BINS];
        for &x in &sorted {
            let f = (x.max(1e-6).ln() - llo) / (lhi - llo);
            let bin = ((f * BINS as f64) as usize).min(BINS - 1);
            counts[bin] += 1;
        }
        let percentiles = CURVE
            .iter()
            .map(|&q| [q, nearest_rank(&sorted, q)])
            .collect();
        Some(Distribution {
            edges_ms,
            counts,
            percentiles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_a_known_sample() {
        let s: Vec<f64> = (1..=1000).map(f64::from).collect();
        let st = LatencyStats::of(&s).unwrap();
        assert_eq!((st.min, st.max, st.mean), (1.0, 1000.0, 500.5));
        assert_eq!((st.p50, st.p90, st.p95), (500.0, 900.0, 950.0));
        assert_eq!((st.p99, st.p999), (990.0, 999.0));
        // Sample stddev of 1..=n is sqrt(n(n+1)/12).
        assert!((st.stddev - (1000.0f64 * 1001.0 / 12.0).sqrt()).abs() < 1e-9);
        assert_eq!(LatencyStats::of(&[]), None);
        assert_eq!(LatencyStats::of(&[2.0]).unwrap().stddev, 0.0);
    }

    #[test]
    fn a_slower_second_half_is_unstable() {
        let steady: Vec<f64> = (0..1000).map(|i| 1.0 + (i % 7) as f64 * 0.001).collect();
        let st = Stability::of(&steady, 5, 0.1);
        assert!(st.stable && st.spread < 0.01, "{st:?}");
        assert_eq!(st.window_p50_ms.len(), 5);
        let mut drifting = steady.clone();
        drifting[600..].iter_mut().for_each(|x| *x *= 1.5);
        let st = Stability::of(&drifting, 5, 0.1);
        assert!(!st.stable, "{st:?}");
        assert!((st.spread - 0.5).abs() < 0.02, "{}", st.spread);
        assert!(Stability::of(&[1.0, 2.0, 3.0], 5, 0.1).stable);
    }

    #[test]
    fn distribution_counts_every_query() {
        let s: Vec<f64> = (1..=500).map(|i| f64::from(i) * 0.01).collect();
        let d = Distribution::of(&s).unwrap();
        assert_eq!(d.counts.iter().sum::<u64>(), 500);
        assert_eq!(d.edges_ms.len(), d.counts.len() + 1);
        assert!(d.edges_ms[0] <= 0.01 * (1.0 + 1e-12) && *d.edges_ms.last().unwrap() >= 5.0);
        assert_eq!(d.percentiles[0], [0.0, 0.01]);
        assert_eq!(*d.percentiles.last().unwrap(), [1.0, 5.0]);
        assert!(Distribution::of(&[0.5, 0.5]).is_some());
    }
}
