//! `parity data drift`: per-feature drift scores between a reference and a current
//! sample, the decision whether each feature drifted, and the `parity.drift/v1` report
//! (docs/data.md, docs/drift.schema.json).
//!
//! A feature drifts when any score passes its threshold: PSI above its threshold, the
//! KS p-value below its α, or the JS distance above its threshold. With the default
//! (`auto`) PSI threshold both PSI and KS are significance tests, each run at α/2 so
//! that the feature's false-positive rate stays at most α (Bonferroni).

use super::features::{Feature, Skipped};
use super::stats::{self, KsMethod};
use serde::Serialize;

/// Schema identifier of the JSON report.
pub const DRIFT_SCHEMA: &str = "parity.drift/v1";

/// Default number of reference-quantile bins for PSI and JS.
pub const DEFAULT_BINS: usize = 10;
/// Default family-wise significance level of one feature's decision.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Default JS-distance threshold (base 2): a magnitude, not a significance test.
pub const DEFAULT_JS: f64 = 0.1;

/// The decision rule of a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    /// Family-wise significance level of the whole run (its exit code).
    pub alpha: f64,
    /// Features scored in the run: each is tested at `alpha / features` (Bonferroni),
    /// so that same-distribution data fails a run with probability at most `alpha`.
    pub features: usize,
    /// A fixed PSI threshold (e.g. the conventional 0.1 or 0.2); `None`: sample-size
    /// aware, the χ² critical value at α/2 scaled by `1/n + 1/m`.
    pub psi: Option<f64>,
    /// JS-distance threshold (a magnitude; raised to the noise level of small samples).
    pub js: f64,
    /// Reference-quantile bins.
    pub bins: usize,
}

impl Thresholds {
    /// One feature's share of α.
    pub fn feature_alpha(&self) -> f64 {
        self.alpha / self.features.max(1) as f64
    }

    /// KS's α: the feature's whole share when PSI is a fixed magnitude, half of it when
    /// PSI is a test too.
    pub fn ks_alpha(&self) -> f64 {
        match self.psi {
            Some(_) => self.feature_alpha(),
            None => self.feature_alpha() / 2.0,
        }
    }

    /// JS's threshold for samples of `n` and `m` over `occupied` bins: the magnitude
    /// `js`, raised to the distance that sampling noise alone exceeds with probability
    /// α/2 (JS divergence ≈ χ² · (1/n + 1/m) / 8 in nats), so that small samples do not
    /// drift by noise.
    pub fn js_threshold(&self, n: usize, m: usize, occupied: usize) -> f64 {
        let df = occupied.saturating_sub(1).max(1) as f64;
        let noise = stats::chi2_upper_quantile(df, self.feature_alpha() / 2.0)
            * (1.0 / n as f64 + 1.0 / m as f64)
            / (8.0 * std::f64::consts::LN_2);
        self.js.max(noise.sqrt())
    }

    /// PSI's threshold for samples of `n` and `m` over `occupied` bins.
    pub fn psi_threshold(&self, n: usize, m: usize, occupied: usize) -> f64 {
        match self.psi {
            Some(t) => t,
            None => {
                let df = occupied.saturating_sub(1).max(1) as f64;
                stats::chi2_upper_quantile(df, self.feature_alpha() / 2.0)
                    * (1.0 / n as f64 + 1.0 / m as f64)
            }
        }
    }
}

/// Count, missing, mean, standard deviation, min and max of one side of a feature.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SideStats {
    pub n: usize,
    pub missing: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl SideStats {
    fn of(sorted: &[f64], missing: usize) -> SideStats {
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let var = sorted.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
            / (n.saturating_sub(1).max(1)) as f64;
        SideStats {
            n,
            missing,
            mean,
            std: var.sqrt(),
            min: sorted[0],
            max: sorted[n - 1],
        }
    }
}

/// One feature's scores and verdict.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureDrift {
    /// Column name or `TENSOR[c]`.
    pub name: String,
    /// `input` (the data given) or `output` (the model's predictions on it).
    pub kind: &'static str,
    pub reference: SideStats,
    pub current: SideStats,
    pub psi: f64,
    pub psi_threshold: f64,
    pub ks_statistic: f64,
    pub ks_p_value: f64,
    pub ks_method: KsMethod,
    pub ks_alpha: f64,
    pub js_distance: f64,
    pub js_threshold: f64,
    /// Bins both sides were counted in (ties merge quantile bins).
    pub bins: usize,
    /// Which scores passed their threshold: `psi`, `ks`, `js`.
    pub exceeded: Vec<&'static str>,
    pub drifted: bool,
}

/// Scores one feature; `None` when either side has no values (reported as skipped).
pub fn score(
    name: &str,
    kind: &'static str,
    reference: &Feature,
    current: &Feature,
    t: &Thresholds,
) -> Option<FeatureDrift> {
    if reference.values.is_empty() || current.values.is_empty() {
        return None;
    }
    let mut r = reference.values.clone();
    let mut c = current.values.clone();
    r.sort_by(f64::total_cmp);
    c.sort_by(f64::total_cmp);
    let edges = stats::quantile_edges(&r, t.bins);
    let (pr, pc) = (
        stats::proportions(&r, &edges),
        stats::proportions(&c, &edges),
    );
    let psi = stats::psi(&pr, &pc);
    let occupied = stats::occupied_bins(&pr, &pc);
    let psi_threshold = t.psi_threshold(r.len(), c.len(), occupied);
    let js_threshold = t.js_threshold(r.len(), c.len(), occupied);
    let js_distance = stats::js_distance(&pr, &pc);
    let ks = stats::ks_2samp(&r, &c);
    let mut exceeded = Vec::new();
    if psi > psi_threshold {
        exceeded.push("psi");
    }
    if ks.p_value < t.ks_alpha() {
        exceeded.push("ks");
    }
    if js_distance > js_threshold {
        exceeded.push("js");
    }
    Some(FeatureDrift {
        name: name.to_string(),
        kind,
        reference: SideStats::of(&r, reference.missing),
        current: SideStats::of(&c, current.missing),
        psi,
        psi_threshold,
        ks_statistic: ks.statistic,
        ks_p_value: ks.p_value,
        ks_method: ks.method,
        ks_alpha: t.ks_alpha(),
        js_distance,
        js_threshold,
        bins: pr.len(),
        drifted: !exceeded.is_empty(),
        exceeded,
    })
}

/// Counts of a run.
#[derive(Debug, Clone, Serialize)]
pub struct DriftSummary {
    pub features: usize,
    pub drifted: usize,
    pub skipped: usize,
}

/// The whole `data drift` run.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub schema: &'static str,
    /// `pass` (no feature drifted) or `fail`.
    pub verdict: &'static str,
    pub reference: String,
    pub current: String,
    /// Output drift: the model and backend that made the predictions.
    pub model: Option<String>,
    pub backend: Option<String>,
    /// Channel axis of tensor features.
    pub axis: i64,
    pub thresholds: Thresholds,
    pub summary: DriftSummary,
    pub features: Vec<FeatureDrift>,
    pub skipped: Vec<Skipped>,
}

impl DriftReport {
    /// Builds the report; the verdict fails when any feature drifted.
    pub fn new(
        (reference, current): (String, String),
        model: Option<(String, String)>,
        axis: i64,
        thresholds: Thresholds,
        features: Vec<FeatureDrift>,
        skipped: Vec<Skipped>,
    ) -> DriftReport {
        let drifted = features.iter().filter(|f| f.drifted).count();
        DriftReport {
            schema: DRIFT_SCHEMA,
            verdict: if drifted > 0 { "fail" } else { "pass" },
            reference,
            current,
            backend: model.as_ref().map(|m| m.1.clone()),
            model: model.map(|m| m.0),
            axis,
            thresholds,
            summary: DriftSummary {
                features: features.len(),
                drifted,
                skipped: skipped.len(),
            },
            features,
            skipped,
        }
    }

    /// Exit code: 1 when any feature drifted.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.summary.drifted > 0)
    }

    /// `--format json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
            + "\n"
    }

    /// `--format text`: one row per feature, drifted ones marked, then a summary line.
    pub fn to_text(&self, quiet: bool) -> String {
        let mut out = String::new();
        if !quiet {
            out += &format!(
                "{:<24} {:<6} {:>10} {:>10} {:>9} {:>9} {:>11} {:>8}  {}\n",
                "FEATURE", "KIND", "MEAN REF", "MEAN CUR", "PSI", "PSI MAX", "KS P", "JS", "DRIFT"
            );
            for f in &self.features {
                out += &format!(
                    "{:<24} {:<6} {:>10.4} {:>10.4} {:>9.5} {:>9.5} {:>11.3e} {:>8.4}  {}\n",
                    f.name,
                    f.kind,
                    f.reference.mean,
                    f.current.mean,
                    f.psi,
                    f.psi_threshold,
                    f.ks_p_value,
                    f.js_distance,
                    if f.drifted {
                        format!("YES ({})", f.exceeded.join(", "))
                    } else {
                        "no".to_string()
                    }
                );
            }
            for s in &self.skipped {
                out += &format!("skipped {}: {}\n", s.name, s.reason);
            }
        }
        let t = &self.thresholds;
        let psi = match t.psi {
            Some(v) => format!("PSI > {v}"),
            None => format!(
                "PSI above its chi-square critical value at {:.3e}",
                t.feature_alpha() / 2.0
            ),
        };
        out += &format!(
            "{} of {} features drifted (alpha {} for the run, {:.3e} per feature: {psi}, KS p < {:.3e}, JS > {} or its noise level)\n",
            self.summary.drifted,
            self.summary.features,
            t.alpha,
            t.feature_alpha(),
            t.ks_alpha(),
            t.js
        );
        out
    }
}

#[cfg(test)]
#[path = "drift_tests.rs"]
mod tests;
