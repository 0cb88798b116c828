//! `parity bench --format openmetrics`: each result's latency percentiles (a summary in
//! seconds), throughput, stability and errors, and the baseline gate's verdict, as
//! OpenMetrics text (docs/reports.md lists the metrics).

use super::report::{BenchReport, BenchResult};
use crate::report::openmetrics::Writer;

/// Renders a bench report.
pub fn render(report: &BenchReport) -> String {
    let mut w = Writer::default();
    w.family(
        "parity_bench_latency_seconds",
        "summary",
        Some("seconds"),
        "Latency of one query: quantiles 0.5 to 0.999, the count of measured queries and their sum.",
    );
    for r in &report.results {
        let Some(l) = r.latency_ms else { continue };
        let owned = labels(r);
        let plain = as_refs(&owned);
        for (q, v) in [
            ("0.5", l.p50),
            ("0.9", l.p90),
            ("0.95", l.p95),
            ("0.99", l.p99),
            ("0.999", l.p999),
        ] {
            let mut with_q = plain.clone();
            with_q.push(("quantile", q));
            w.sample("parity_bench_latency_seconds", &with_q, v / 1000.0);
        }
        w.sample(
            "parity_bench_latency_seconds_count",
            &plain,
            r.queries as f64,
        );
        w.sample(
            "parity_bench_latency_seconds_sum",
            &plain,
            l.mean * r.queries as f64 / 1000.0,
        );
    }
    type Stat = fn(&BenchResult) -> Option<f64>;
    let gauges: [(&str, &str, Stat); 7] = [
        (
            "parity_bench_throughput_queries_per_second",
            "Completed queries per second.",
            |r| r.error.is_none().then_some(r.throughput_per_s),
        ),
        (
            "parity_bench_throughput_samples_per_second",
            "Completed samples (queries x batch) per second.",
            |r| r.error.is_none().then_some(r.samples_per_s),
        ),
        (
            "parity_bench_tokens_per_second",
            "Generate scenario: generated tokens per second.",
            |r| r.generate.as_ref().map(|g| g.tokens_per_s),
        ),
        (
            "parity_bench_time_to_first_token_p50_seconds",
            "Generate scenario: median time to first token.",
            |r| {
                r.generate
                    .as_ref()
                    .and_then(|g| g.ttft_ms)
                    .map(|l| l.p50 / 1000.0)
            },
        ),
        (
            "parity_bench_inter_token_p50_seconds",
            "Generate scenario: median time of one later decoding step.",
            |r| {
                r.generate
                    .as_ref()
                    .and_then(|g| g.inter_token_ms)
                    .map(|l| l.p50 / 1000.0)
            },
        ),
        (
            "parity_bench_stable",
            "1 when the windows' median latencies agree within --stability-pct, else 0.",
            |r| r.error.is_none().then_some(f64::from(u8::from(r.stable))),
        ),
        (
            "parity_bench_error",
            "1 when the model could not be benchmarked on the backend, else 0.",
            |r| Some(f64::from(u8::from(r.error.is_some()))),
        ),
    ];
    for (name, help, stat) in gauges {
        w.family(name, "gauge", None, help);
        for r in &report.results {
            if let Some(v) = stat(r) {
                let owned = labels(r);
                w.sample(name, &as_refs(&owned), v);
            }
        }
    }
    if let Some(b) = &report.baseline {
        w.family(
            "parity_bench_regression",
            "gauge",
            None,
            "1 when the run is slower than the --baseline beyond the noise-aware threshold, else 0.",
        );
        w.sample(
            "parity_bench_regression",
            &[("baseline", &b.file)],
            f64::from(u8::from(b.regression)),
        );
        w.family(
            "parity_bench_baseline_not_measured",
            "gauge",
            None,
            "Results of the --baseline this run did not re-measure (a failure with --strict).",
        );
        w.sample(
            "parity_bench_baseline_not_measured",
            &[("baseline", &b.file)],
            b.not_measured.len() as f64,
        );
    }
    w.finish()
}

/// The labels that identify a result.
fn labels(r: &BenchResult) -> [(&'static str, String); 5] {
    [
        ("model", r.model.clone()),
        ("backend", r.backend.clone()),
        ("scenario", r.scenario.name().to_string()),
        ("batch", r.batch.to_string()),
        ("concurrency", r.concurrency.to_string()),
    ]
}

fn as_refs<'a>(owned: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    owned.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
