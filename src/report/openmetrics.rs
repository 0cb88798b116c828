//! OpenMetrics text exposition (`--format openmetrics`), for a Prometheus textfile
//! collector or a pushgateway: a small writer that keeps each metric family's
//! `# TYPE`/`# UNIT`/`# HELP` and samples together, escapes label values and ends the
//! text with `# EOF`; and the rendering of a `check`/`compare`/`merge` report.
//! `bench` and `data drift` render their reports with the same writer
//! (docs/reports.md lists every metric).

use super::{CaseVerdict, Report};

/// Builds OpenMetrics text, one metric family at a time.
#[derive(Default)]
pub struct Writer {
    out: String,
}

/// A label set: (name, value) pairs, values escaped when written.
pub type Labels<'a> = [(&'a str, &'a str)];

impl Writer {
    /// Starts a family: `kind` is `gauge`, `info` or `summary`; `unit`, when given, must
    /// be the last part of `name` (`_seconds`). Its samples must follow at once.
    pub fn family(&mut self, name: &str, kind: &str, unit: Option<&str>, help: &str) {
        self.out += &format!("# TYPE {name} {kind}\n");
        if let Some(unit) = unit {
            self.out += &format!("# UNIT {name} {unit}\n");
        }
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        self.out += &format!("# HELP {name} {help}\n");
    }

    /// One sample `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &Labels, value: f64) {
        self.out += name;
        if !labels.is_empty() {
            let parts: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            self.out += &format!("{{{}}}", parts.join(","));
        }
        self.out += " ";
        self.out += &number(value);
        self.out += "\n";
    }

    /// The text, closed by `# EOF`.
    pub fn finish(mut self) -> String {
        self.out += "# EOF\n";
        self.out
    }
}

/// A label value with `\`, `"` and newlines escaped.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: shortest round-trip decimal, `NaN`, `+Inf`, `-Inf`.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v:?}")
    }
}

/// A verdict as a number: the exit code it maps to (0 pass, 1 fail, 2 error).
pub fn verdict_value(v: CaseVerdict) -> f64 {
    f64::from(v.exit_code())
}

/// Renders a `check` (or `compare`/`merge`) report: run verdict and counts, each case's
/// verdict and latency, each compared output's error statistics.
pub fn render(report: &Report) -> String {
    let mut w = Writer::default();
    w.family(
        "parity_check_verdict",
        "gauge",
        None,
        "Verdict of the whole run: 0 pass, 1 fail (a mismatch), 2 error (could not evaluate).",
    );
    w.sample("parity_check_verdict", &[], verdict_value(report.verdict));
    w.family(
        "parity_check_cases",
        "gauge",
        None,
        "Cases of the run by verdict.",
    );
    let s = &report.summary;
    for (verdict, n) in [("pass", s.passed), ("fail", s.failed), ("error", s.errors)] {
        w.sample("parity_check_cases", &[("verdict", verdict)], n as f64);
    }
    w.family(
        "parity_check_warnings",
        "gauge",
        None,
        "Warnings of the run (a model changed since recording, an unlisted data file, ...); the messages are in the other formats.",
    );
    w.sample("parity_check_warnings", &[], report.warnings.len() as f64);
    w.family(
        "parity_check_case_verdict",
        "gauge",
        None,
        "Verdict of one suite x data set x backend: 0 pass, 1 fail, 2 error.",
    );
    for c in &report.cases {
        w.sample(
            "parity_check_case_verdict",
            &case_labels(c),
            verdict_value(c.verdict),
        );
    }
    w.family(
        "parity_check_case_latency_seconds",
        "gauge",
        Some("seconds"),
        "Wall time of the backend's run of the case.",
    );
    for c in &report.cases {
        if let Some(ms) = c.latency_ms {
            w.sample(
                "parity_check_case_latency_seconds",
                &case_labels(c),
                ms / 1000.0,
            );
        }
    }
    type Stat = fn(&crate::compare::OutputComparison) -> f64;
    let stats: [(&str, &str, Stat); 4] = [
        (
            "parity_check_output_max_abs_error",
            "Largest |actual - expected| of the output (+Inf on a non-finite mismatch).",
            |o| o.max_abs_err,
        ),
        (
            "parity_check_output_max_rel_error",
            "Largest |actual - expected| / |expected| of the output.",
            |o| o.max_rel_err,
        ),
        (
            "parity_check_output_mismatched",
            "Units (elements, rows or slices) of the output out of tolerance.",
            |o| o.mismatched as f64,
        ),
        (
            "parity_check_output_units",
            "Units (elements, rows or slices) of the output compared.",
            |o| o.total as f64,
        ),
    ];
    for (name, help, stat) in stats {
        w.family(name, "gauge", None, help);
        for c in &report.cases {
            for o in &c.outputs {
                let mut labels = case_labels(c).to_vec();
                labels.push(("output", &o.name));
                w.sample(name, &labels, stat(&o.comparison));
            }
        }
    }
    w.family(
        "parity_check_output_tolerance_used",
        "gauge",
        None,
        "Share of its tolerance the output's worst unit used (above 1: out of tolerance; +Inf on a non-finite mismatch).",
    );
    for c in &report.cases {
        for o in &c.outputs {
            if let Some(v) = o.comparison.tolerance_used {
                let mut labels = case_labels(c).to_vec();
                labels.push(("output", &o.name));
                w.sample("parity_check_output_tolerance_used", &labels, v);
            }
        }
    }
    if let Some(entries) = &report.matrix {
        w.family(
            "parity_check_matrix_max_rel_error",
            "gauge",
            None,
            "check --matrix: largest relative error of the output over the suite's cases, candidate against reference.",
        );
        for e in entries {
            for (reference, row) in e.backends.iter().zip(&e.max_rel_err) {
                for (candidate, v) in e.backends.iter().zip(row) {
                    if let Some(v) = v {
                        let labels = [
                            ("suite", e.suite.as_str()),
                            ("output", e.output.as_str()),
                            ("reference", reference.as_str()),
                            ("candidate", candidate.as_str()),
                        ];
                        w.sample("parity_check_matrix_max_rel_error", &labels, *v);
                    }
                }
            }
        }
    }
    w.finish()
}

fn case_labels(c: &super::CaseReport) -> [(&str, &str); 4] {
    [
        ("suite", &c.suite),
        ("case", &c.case),
        ("backend", &c.backend),
        ("reference", &c.reference),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_cells_that_were_compared_are_samples() {
        let mut r = crate::report::junit::tests::sample();
        r.matrix = Some(vec![crate::report::matrix::example()]);
        let text = render(&r);
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("parity_check_matrix_max_rel_error{"))
            .collect();
        let labels = |r: &str, c: &str| {
            format!(
                "{{suite=\"models/mlp\",output=\"logits\",reference=\"{r}\",candidate=\"{c}\"}}"
            )
        };
        assert_eq!(
            samples,
            [
                format!(
                    "parity_check_matrix_max_rel_error{} 0.0",
                    labels("ort-cpu", "ort-cpu")
                ),
                format!(
                    "parity_check_matrix_max_rel_error{} 1.5e-7",
                    labels("ort-cpu", "tract-cpu")
                ),
                format!(
                    "parity_check_matrix_max_rel_error{} 0.0",
                    labels("tract-cpu", "tract-cpu")
                ),
            ]
        );
    }

    #[test]
    fn labels_and_values_are_escaped() {
        let mut w = Writer::default();
        w.family("x_seconds", "gauge", Some("seconds"), "a \\ help\nline");
        w.sample("x_seconds", &[("p", "a\"b\\c\nd")], f64::INFINITY);
        w.sample("x_seconds", &[], 0.1);
        let text = w.finish();
        assert_eq!(
            text,
            "# TYPE x_seconds gauge\n# UNIT x_seconds seconds\n# HELP x_seconds a \\\\ help\\nline\n\
             x_seconds{p=\"a\\\"b\\\\c\\nd\"} +Inf\nx_seconds 0.1\n# EOF\n"
        );
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(-f64::INFINITY), "-Inf");
        assert_eq!(number(3.0), "3.0");
    }
}
