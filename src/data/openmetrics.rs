//! `parity data drift --format openmetrics`: every feature's drift scores, thresholds
//! and verdict, and the run's count of drifted features, as OpenMetrics text.

use super::drift::{DriftReport, FeatureDrift};
use crate::report::openmetrics::Writer;

/// Renders a drift report.
pub fn render(report: &DriftReport) -> String {
    let mut w = Writer::default();
    w.family(
        "parity_drift_features_drifted",
        "gauge",
        None,
        "Features whose drift passed a threshold (the run exits 1 when above 0).",
    );
    let run = [
        ("reference", report.reference.as_str()),
        ("current", report.current.as_str()),
    ];
    w.sample(
        "parity_drift_features_drifted",
        &run,
        report.summary.drifted as f64,
    );
    type Stat = fn(&FeatureDrift) -> f64;
    let gauges: [(&str, &str, Stat); 8] = [
        (
            "parity_drift_psi",
            "Population Stability Index over reference-quantile bins.",
            |f| f.psi,
        ),
        (
            "parity_drift_psi_threshold",
            "PSI above this is drift.",
            |f| f.psi_threshold,
        ),
        (
            "parity_drift_ks_statistic",
            "Two-sample Kolmogorov-Smirnov statistic.",
            |f| f.ks_statistic,
        ),
        (
            "parity_drift_ks_p_value",
            "Two-sided p-value of the KS statistic.",
            |f| f.ks_p_value,
        ),
        (
            "parity_drift_ks_alpha",
            "A KS p-value below this is drift.",
            |f| f.ks_alpha,
        ),
        (
            "parity_drift_js_distance",
            "Jensen-Shannon distance (base 2) over the same bins.",
            |f| f.js_distance,
        ),
        (
            "parity_drift_js_threshold",
            "A JS distance above this is drift.",
            |f| f.js_threshold,
        ),
        (
            "parity_drift_drifted",
            "1 when the feature drifted, else 0.",
            |f| f64::from(u8::from(f.drifted)),
        ),
    ];
    for (name, help, stat) in gauges {
        w.family(name, "gauge", None, help);
        for f in &report.features {
            let labels = [
                ("reference", report.reference.as_str()),
                ("current", report.current.as_str()),
                ("feature", f.name.as_str()),
                ("kind", f.kind),
            ];
            w.sample(name, &labels, stat(f));
        }
    }
    w.finish()
}
