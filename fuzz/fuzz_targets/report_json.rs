//! JSON documents parity reads back: a `parity.report/v1` report (what `merge` reads,
//! merged with itself and alone, then rendered in every format; the merged JSON must
//! read back) and a `parity.bench/v1` baseline (what `bench --baseline` reads, gated
//! against itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use parity::bench::baseline::{self, Gate};
use parity::bench::report::BenchReport;
use parity::formats::{parse_schema_json, SchemaWords};
use parity::report::{html, junit, markdown, openmetrics, text};
use std::path::{Path, PathBuf};

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else {
        return;
    };
    let path = PathBuf::from("report.json");
    if let Ok(report) = parity::cli::parse_report(doc, &path) {
        let other = PathBuf::from("other.json");
        let twice = parity::cli::parse_report(doc, &other).map(|r| vec![(&other, r)]);
        let _ = twice.map(|mut inputs| {
            inputs.insert(0, (&path, report));
            let _ = parity::cli::merge(&inputs);
            inputs.truncate(1);
            if let Ok(merged) = parity::cli::merge(&inputs) {
                let json = merged.to_json();
                let back = parity::cli::parse_report(&json, &path);
                let back = back.unwrap_or_else(|e| panic!("merge cannot read its output: {e}"));
                assert_eq!(back.cases.len(), merged.cases.len());
                let _ = junit::render(&merged, "2024-01-01T00:00:00");
                let _ = (markdown::render(&merged), html::render(&merged));
                let _ = openmetrics::render(&merged);
                let style = text::Style { color: true };
                let _ = (
                    text::render(&merged, style, true),
                    text::summary(&merged, style),
                );
            }
        });
    }
    let words = SchemaWords {
        schema: "parity.bench/v1",
        other: "a baseline is a `parity.bench/v1` report",
        missing: "not a `parity.bench/v1` baseline",
        thing: "baseline",
    };
    if let Ok(b) = parse_schema_json::<BenchReport>(doc, Path::new("baseline.json"), &words) {
        let gate = Gate {
            threshold: 0.05,
            noise_multiple: 3.0,
            strict: true,
        };
        let c = baseline::check(Path::new("baseline.json"), &b, &b, gate);
        let _ = (c.fails(), parity::bench::gate::render_text(&c));
    }
});
