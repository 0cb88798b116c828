//! The baseline gate of `parity bench --baseline FILE`: flags a slowdown only when it
//! is larger than both a relative threshold and a multiple of the noise measured in
//! the two runs, so reruns on a shared machine do not page anyone.
//!
//! Results are matched by model name, backend, scenario, batch, concurrency and threads.
//! Per match, the headline figure ([`BenchResult::headline`]) gives the slowdown:
//! `now / before − 1` for latencies, `before / now − 1` for rates. The noise is the
//! larger of the two runs' window spreads ([`super::stats::Stability`]). A regression
//! is `slowdown > max(threshold, noise_multiple × noise)`.

use super::gate::{BaselineCheck, GateEntry};
use super::report::{BenchReport, BenchResult, BENCH_SCHEMA};
use crate::error::Result;
use std::path::Path;

/// How strict the gate is.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    /// Smallest slowdown that can be a regression (0.05 = 5%).
    pub threshold: f64,
    /// A slowdown must also exceed this many times the measured noise.
    pub noise_multiple: f64,
    /// `--strict`: a baseline result not re-measured fails the gate.
    pub strict: bool,
}

/// The matching key of a result.
fn key(r: &BenchResult) -> String {
    format!(
        "{} {} {} batch={} concurrency={} threads={}",
        r.model_name,
        r.backend,
        r.scenario.name(),
        r.batch,
        r.concurrency,
        r.threads.map_or("default".to_string(), |t| t.to_string())
    )
}

/// Reads a baseline: a `parity.bench/v1` report written by `--save-baseline` (or
/// `--format json`).
pub fn read(path: &Path) -> Result<BenchReport> {
    crate::formats::read_schema_json(
        path,
        &crate::formats::SchemaWords {
            schema: BENCH_SCHEMA,
            other: &format!("a baseline is a `{BENCH_SCHEMA}` report"),
            missing: &format!("not a `{BENCH_SCHEMA}` baseline (write one with --save-baseline)"),
            thing: "baseline",
        },
    )
}

/// Gates `current` against `baseline` (read from `file`).
pub fn check(
    file: &Path,
    baseline: &BenchReport,
    current: &BenchReport,
    gate: Gate,
) -> BaselineCheck {
    let mut warnings = Vec::new();
    let (b, c) = (&baseline.environment, &current.environment);
    for (what, before, now) in [
        ("CPU", &b.cpu, &c.cpu),
        ("host", &b.host, &c.host),
        ("OS", &b.os, &c.os),
        ("parity", &b.parity, &c.parity),
    ] {
        if before != now {
            warnings.push(format!(
                "{what} differs from the baseline's: {before} then, {now} now"
            ));
        }
    }
    if b.gpu != c.gpu {
        warnings.push(format!(
            "GPU differs from the baseline's: {} then, {} now",
            b.gpu.as_deref().unwrap_or("none"),
            c.gpu.as_deref().unwrap_or("none")
        ));
    }
    let mut comparisons = Vec::new();
    let mut unmatched = Vec::new();
    for now in current.results.iter().filter(|r| r.error.is_none()) {
        let k = key(now);
        let Some(before) = baseline
            .results
            .iter()
            .find(|r| r.error.is_none() && key(r) == k)
        else {
            unmatched.push(k);
            continue;
        };
        if before.backend_version != now.backend_version {
            warnings.push(format!(
                "{k}: backend version {} then, {} now",
                before.backend_version, now.backend_version
            ));
        }
        if before.model_sha256 != now.model_sha256 {
            warnings.push(format!(
                "{k}: the model changed since the baseline (sha256 {}… then, {}… now)",
                &before.model_sha256.get(..12).unwrap_or(""),
                &now.model_sha256.get(..12).unwrap_or("")
            ));
        }
        let (Some((metric, was, larger_is_better)), Some((_, is, _))) =
            (before.headline(), now.headline())
        else {
            unmatched.push(k);
            continue;
        };
        let slowdown = if larger_is_better {
            was / is - 1.0
        } else {
            is / was - 1.0
        };
        let noise = before.stability.spread.max(now.stability.spread);
        let limit = gate.threshold.max(gate.noise_multiple * noise);
        comparisons.push(GateEntry {
            key: k,
            metric: metric.to_string(),
            baseline: was,
            current: is,
            slowdown,
            noise,
            limit,
            regression: slowdown > limit,
        });
    }
    let measured: Vec<String> = current
        .results
        .iter()
        .filter(|r| r.error.is_none())
        .map(key)
        .collect();
    let not_measured = baseline
        .results
        .iter()
        .filter(|r| r.error.is_none())
        .map(key)
        .filter(|k| !measured.contains(k))
        .collect();
    BaselineCheck {
        file: file.display().to_string(),
        regression: comparisons.iter().any(|c| c.regression),
        threshold: gate.threshold,
        noise_multiple: gate.noise_multiple,
        comparisons,
        unmatched,
        not_measured,
        strict: gate.strict,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::gate::render_text;
    use crate::bench::report::tests::result;
    use crate::report::Environment;

    fn report(results: Vec<BenchResult>) -> BenchReport {
        BenchReport {
            schema: BENCH_SCHEMA.into(),
            environment: Environment::detect(Vec::new()),
            results,
            baseline: None,
        }
    }

    const GATE: Gate = Gate {
        threshold: 0.05,
        noise_multiple: 3.0,
        strict: false,
    };

    #[test]
    fn baseline_results_not_re_measured_are_named_and_fail_with_strict() {
        let mut mel_a = result("ort-cpu", 1.0);
        mel_a.model_name = "a/mel".into();
        let mut mel_b = result("ort-cpu", 1.0);
        mel_b.model_name = "b/mel".into();
        let before = report(vec![mel_a.clone(), mel_b, result("tract-cpu", 1.0)]);
        let now = report(vec![mel_a]);
        let path = Path::new("base.json");
        let c = check(path, &before, &now, GATE);
        assert_eq!(
            c.not_measured,
            [
                "b/mel ort-cpu single-stream batch=4 concurrency=1 threads=1",
                "mlp tract-cpu single-stream batch=4 concurrency=1 threads=1"
            ]
        );
        assert!(!c.regression && !c.fails(), "a warning without --strict");
        assert!(render_text(&c).contains("  warning: in the baseline, not re-measured: b/mel"));
        let strict = Gate {
            strict: true,
            ..GATE
        };
        let c = check(path, &before, &now, strict);
        assert!(!c.regression && c.fails());
        let text = render_text(&c);
        assert!(
            text.contains("  FAIL: in the baseline, not re-measured: b/mel"),
            "{text}"
        );
        assert!(text.ends_with("-> FAIL: baseline results not re-measured (--strict)\n"));
    }

    #[test]
    fn a_slowdown_must_beat_both_the_threshold_and_the_noise() {
        let before = report(vec![result("ort-cpu", 1.0)]);
        let path = Path::new("base.json");
        // 3% slower: under the 5% threshold.
        let c = check(path, &before, &report(vec![result("ort-cpu", 1.03)]), GATE);
        assert!(!c.regression, "{c:?}");
        assert!((c.comparisons[0].slowdown - 0.03).abs() < 1e-3);
        // 40% slower on a quiet run: a regression.
        let c = check(path, &before, &report(vec![result("ort-cpu", 1.4)]), GATE);
        assert!(c.regression && c.comparisons[0].metric == "p50_ms");
        // 40% slower on a run whose windows differ by 20%: within 3 x noise.
        let mut noisy = result("ort-cpu", 1.4);
        noisy.stability.spread = 0.2;
        let c = check(path, &before, &report(vec![noisy]), GATE);
        assert!(!c.regression);
        assert!((c.comparisons[0].limit - 0.6).abs() < 1e-12);
        // Faster is never a regression.
        let c = check(path, &before, &report(vec![result("ort-cpu", 0.5)]), GATE);
        assert!(!c.regression && c.comparisons[0].slowdown < 0.0);
    }

    #[test]
    fn unmatched_results_and_changed_versions_are_reported() {
        let before = report(vec![result("ort-cpu", 1.0)]);
        let mut now = result("ort-cpu", 1.0);
        now.backend_version = "2.0".into();
        now.model_sha256 = "cd".repeat(32);
        let c = check(
            Path::new("b.json"),
            &before,
            &report(vec![now, result("tract-cpu", 1.0)]),
            GATE,
        );
        assert_eq!(c.unmatched.len(), 1);
        assert!(c.unmatched[0].starts_with("mlp tract-cpu single-stream batch=4"));
        assert!(c
            .warnings
            .iter()
            .any(|w| w.contains("backend version 1.0 then, 2.0 now")));
        assert!(c.warnings.iter().any(|w| w.contains("the model changed")));
    }

    #[test]
    fn offline_throughput_regresses_when_it_drops() {
        let mut was = result("ort-cpu", 1.0);
        was.scenario = crate::bench::report::Scenario::Offline;
        let mut is = was.clone();
        is.samples_per_s = was.samples_per_s / 1.5;
        let c = check(Path::new("b"), &report(vec![was]), &report(vec![is]), GATE);
        assert_eq!(c.comparisons[0].metric, "samples_per_s");
        assert!((c.comparisons[0].slowdown - 0.5).abs() < 1e-9);
        assert!(c.regression);
    }
}
