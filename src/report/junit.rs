//! JUnit XML rendering (`--format junit`) for CI test-result pages (Jenkins, GitLab,
//! GitHub test reporters, Azure DevOps).
//!
//! Shape, valid against the Jenkins xunit-plugin `junit-10.xsd` (tests/fixtures/):
//! - one `<testsuites name="parity">` carrying the run's tests/failures/errors/time;
//! - one `<testsuite>` per suite directory × backend (`name="models/mlp [ort-cpu]"`) in
//!   the order the pairs first appear in the report, with tests/failures/errors/skipped/
//!   time, `timestamp` (UTC, `YYYY-MM-DDTHH:MM:SS`), `hostname`, `id`, and `<properties>`
//!   holding the audit fields (parity version, host, cpu, os, gpu, every backend's
//!   version and device, this suite's backend, reference and device);
//! - one `<testcase name="CASE" classname="SUITE.BACKEND" time="SECONDS">` per case; a
//!   failed case holds `<failure type="mismatch">` whose message is the first failing
//!   output's one-line summary and whose body details every failing output; a case
//!   that could not be evaluated holds `<error type="error">`;
//! - when the run judged dataset gates (docs/gates.md), one more `<testsuite
//!   name="dataset gates">` with a `<testcase name="GATE [on]" classname="SUITE.BACKEND">`
//!   per gate result: a failed gate holds `<failure type="gate">`, one that could not be
//!   measured `<error type="error">`, the message saying value, sample size and interval.
//!
//! `time` is the backend's wall time for the case (0 when not measured, as in
//! `compare`); suite and run totals are written with three decimals, as the schema's
//! Surefire time pattern requires. Every attribute and text node is XML-escaped; a
//! character XML 1.0 cannot carry at all (most C0 controls) becomes U+FFFD.

use super::style::{index, num, num_pair};
use super::{CaseReport, CaseVerdict, OutputReport, Report};
use crate::compare::Verdict;
use std::fmt::Write as _;
use std::time::SystemTime;

/// The cases of one suite directory run on one backend: a `<testsuite>` in JUnit, a
/// row of the summary table in Markdown.
#[derive(Debug)]
pub struct Group<'a> {
    /// The suite directory as the report names it.
    pub suite: &'a str,
    /// The backend (or, for `compare`, the candidate path).
    pub backend: &'a str,
    /// The group's cases in report order.
    pub cases: Vec<&'a CaseReport>,
}

impl Group<'_> {
    /// Cases with `verdict`.
    pub fn count(&self, verdict: CaseVerdict) -> usize {
        self.cases.iter().filter(|c| c.verdict == verdict).count()
    }

    /// Sum of the cases' latencies, in seconds (unmeasured cases count 0).
    pub fn seconds(&self) -> f64 {
        self.cases.iter().map(|c| case_seconds(c)).sum()
    }

    /// Largest share of tolerance used over the group's cases (NaN wins); `None` when no
    /// case says.
    pub fn worst_tolerance_used(&self) -> Option<f64> {
        self.cases
            .iter()
            .filter_map(|c| c.tolerance_used())
            .reduce(super::matrix::worse)
    }

    /// Largest `max_rel_err` over every compared output of the group (NaN wins, so a
    /// broken statistic is never hidden); `None` when nothing was compared.
    pub fn worst_rel_err(&self) -> Option<f64> {
        self.cases
            .iter()
            .flat_map(|c| &c.outputs)
            .map(|o| o.comparison.max_rel_err)
            .reduce(super::matrix::worse)
    }
}

/// Groups the report's cases by (suite, backend), in order of first appearance.
pub fn groups(report: &Report) -> Vec<Group<'_>> {
    let mut out: Vec<Group<'_>> = Vec::new();
    for case in &report.cases {
        match out
            .iter_mut()
            .find(|g| g.suite == case.suite && g.backend == case.backend)
        {
            Some(g) => g.cases.push(case),
            None => out.push(Group {
                suite: &case.suite,
                backend: &case.backend,
                cases: vec![case],
            }),
        }
    }
    out
}

/// A tolerance as written in messages: `0`, or the shortest scientific form (`1e-5`).
pub fn tolerance(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v:e}")
    }
}

/// One line on a compared output, as in the text report: its problem (shape, dtype,
/// NaN/Inf, missing) if any, the mismatch count, the worst element with its expected
/// and actual values, and what decided the verdict (the tolerance in allclose mode) — e.g. `logits: 1/40 mismatched, worst [2, 3]:
/// expected -0.4072, actual -0.4031 (atol 1e-5, rtol 1e-4)`.
pub fn output_line(o: &OutputReport) -> String {
    let c = &o.comparison;
    let mut parts = Vec::new();
    if let Some(p) = &c.problem {
        parts.push(p.clone());
    }
    if c.worst_index.is_some() {
        parts.push(format!(
            "{}/{} mismatched, worst {}: expected {}, actual {}",
            c.mismatched,
            c.total,
            index(&c.worst_index),
            num_pair(c.expected, c.actual).0,
            num_pair(c.expected, c.actual).1,
        ));
    } else if c.problem.is_none() {
        parts.push(format!("{}/{} mismatched", c.mismatched, c.total));
    }
    format!(
        "{}: {} ({})",
        o.name,
        parts.join("; "),
        c.criterion(tolerance)
    )
}

/// The outputs of a case that failed, in output order.
pub fn failing_outputs(case: &CaseReport) -> impl Iterator<Item = &OutputReport> {
    case.outputs
        .iter()
        .filter(|o| o.comparison.verdict == Verdict::Fail)
}

/// One-line message of a failed case: its first failing output's [`output_line`], plus
/// how many other outputs failed.
pub fn failure_message(case: &CaseReport) -> String {
    if let Some(g) = &case.generation {
        return g.line();
    }
    let failing: Vec<_> = failing_outputs(case).collect();
    match failing.split_first() {
        None => "failed (no failing output recorded)".to_string(),
        Some((first, [])) => output_line(first),
        Some((first, rest)) => format!(
            "{} (+{} more failing output{})",
            output_line(first),
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    }
}

/// Renders the report as a JUnit XML document. `timestamp` goes into every
/// `<testsuite timestamp=...>` (see [`timestamp`]).
pub fn render(report: &Report, timestamp: &str) -> String {
    let groups = groups(report);
    let gates = report.summary.gates.clone().unwrap_or_default();
    let total_seconds: f64 = groups.iter().map(Group::seconds).sum();
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"parity\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
        report.summary.cases + gates.total,
        report.summary.failed + gates.failed,
        report.summary.errors + gates.errors,
        seconds3(total_seconds)
    );
    let host = if report.environment.host.is_empty() {
        "localhost"
    } else {
        report.environment.host.as_str()
    };
    for (id, g) in groups.iter().enumerate() {
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{}\" timestamp=\"{}\" hostname=\"{}\" id=\"{id}\">",
            attr(&format!("{} [{}]", g.suite, g.backend)),
            g.cases.len(),
            g.count(CaseVerdict::Fail),
            g.count(CaseVerdict::Error),
            seconds3(g.seconds()),
            attr(timestamp),
            attr(host),
        );
        properties(&mut x, report, g);
        for case in &g.cases {
            testcase(&mut x, g, case);
        }
        x.push_str("  </testsuite>\n");
    }
    if !report.gates.is_empty() {
        let _ = writeln!(
            x,
            "  <testsuite name=\"dataset gates\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"0.000\" timestamp=\"{}\" hostname=\"{}\" id=\"{}\">",
            gates.total,
            gates.failed,
            gates.errors,
            attr(timestamp),
            attr(host),
            groups.len()
        );
        for g in &report.gates {
            gate_testcase(&mut x, g);
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// One gate result as a testcase of the `dataset gates` testsuite.
fn gate_testcase(x: &mut String, g: &super::gates::GateResult) {
    let _ = write!(
        x,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
        attr(&format!("{} [{}]", g.gate, super::dataset::scope(g))),
        attr(&format!("{}.{}", g.suite, g.backend)),
    );
    let (tag, kind) = match g.verdict {
        CaseVerdict::Pass => {
            x.push_str("/>\n");
            return;
        }
        CaseVerdict::Fail => ("failure", "gate"),
        CaseVerdict::Error => ("error", "error"),
    };
    let _ = writeln!(
        x,
        ">\n      <{tag} message=\"{}\" type=\"{kind}\">{}</{tag}>\n    </testcase>",
        attr(&g.message),
        text(&format!(
            "suite {}, backend {}, reference {}\n{}",
            g.suite, g.backend, g.reference, g.message
        )),
    );
}

fn properties(x: &mut String, report: &Report, g: &Group<'_>) {
    let env = &report.environment;
    let mut props: Vec<(String, String)> = vec![
        ("parity.version".into(), env.parity.clone()),
        ("parity.schema".into(), report.schema.to_string()),
        ("host".into(), env.host.clone()),
        ("cpu".into(), env.cpu.clone()),
        ("os".into(), env.os.clone()),
        (
            "gpu".into(),
            env.gpu.clone().unwrap_or_else(|| "none".to_string()),
        ),
    ];
    for b in &env.backends {
        props.push((format!("backend.{}.version", b.name), b.version.clone()));
        props.push((format!("backend.{}.device", b.name), b.device.clone()));
    }
    for b in &env.skipped_backends {
        props.push((format!("skipped_backend.{}", b.name), b.reason.clone()));
    }
    for (i, w) in report.warnings.iter().enumerate() {
        props.push((format!("warning.{}", i + 1), w.message.clone()));
    }
    for c in &g.cases {
        for o in &c.skipped_outputs {
            let name = format!("skipped_output.{}", o.name);
            if !props.iter().any(|(n, _)| *n == name) {
                props.push((name, o.reason.clone()));
            }
        }
    }
    props.push(("suite".into(), g.suite.to_string()));
    props.push(("backend".into(), g.backend.to_string()));
    let stream = report
        .sequences
        .iter()
        .find(|s| s.suite == g.suite && s.backend == g.backend);
    if let Some(s) = stream {
        props.push(("sequence.steps".into(), s.steps.to_string()));
        let first = s.first_step_out_of_tolerance;
        props.push((
            "sequence.first_step_out_of_tolerance".into(),
            first.map_or("none".into(), |f| f.to_string()),
        ));
        if let Some(g) = s.error_growth {
            props.push(("sequence.error_growth".into(), format!("{g}")));
        }
    }
    let mut references: Vec<&str> = Vec::new();
    let mut devices: Vec<&str> = Vec::new();
    for c in &g.cases {
        if !references.contains(&c.reference.as_str()) {
            references.push(&c.reference);
        }
        if let Some(d) = c.device.as_deref() {
            if !devices.contains(&d) {
                devices.push(d);
            }
        }
    }
    props.push(("reference".into(), references.join(", ")));
    if !devices.is_empty() {
        props.push(("device".into(), devices.join(", ")));
    }
    x.push_str("    <properties>\n");
    for (name, value) in props {
        let _ = writeln!(
            x,
            "      <property name=\"{}\" value=\"{}\"/>",
            attr(&name),
            attr(&value)
        );
    }
    x.push_str("    </properties>\n");
}

fn testcase(x: &mut String, g: &Group<'_>, case: &CaseReport) {
    let open = format!(
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        attr(&case.case),
        attr(&format!("{}.{}", g.suite, g.backend)),
        seconds6(case_seconds(case))
    );
    match case.verdict {
        CaseVerdict::Pass => {
            x.push_str(&open);
            x.push_str("/>\n");
        }
        CaseVerdict::Fail => {
            let _ = writeln!(
                x,
                "{open}>\n      <failure message=\"{}\" type=\"mismatch\">{}</failure>\n    </testcase>",
                attr(&failure_message(case)),
                text(&failure_body(case)),
            );
        }
        CaseVerdict::Error => {
            let message = case.error.as_deref().unwrap_or("could not be evaluated");
            let _ = writeln!(
                x,
                "{open}>\n      <error message=\"{}\" type=\"error\">{}</error>\n    </testcase>",
                attr(message),
                text(&error_body(case, message)),
            );
        }
    }
}

/// Who ran the case against what: the first line of failure and error bodies.
fn case_line(case: &CaseReport) -> String {
    let mut s = format!(
        "suite {}, case {}, backend {}",
        case.suite, case.case, case.backend
    );
    if let Some(d) = &case.device {
        let _ = write!(s, " ({d})");
    }
    let _ = write!(s, ", reference {}", case.reference);
    s
}

/// Every failing output of a case, several lines each.
pub fn failure_body(case: &CaseReport) -> String {
    let mut s = case_line(case);
    s.push('\n');
    if let Some(g) = &case.generation {
        let ids = super::generation::token_ids;
        let _ = writeln!(s, "\n{}", g.line());
        let _ = writeln!(s, "{}", g.judgement.curve_line());
        let _ = writeln!(s, "  prompt   {}", ids(&g.prompt));
        let _ = writeln!(s, "  expected {}", ids(&g.expected_tokens));
        let _ = writeln!(s, "  actual   {}", ids(&g.actual_tokens));
    }
    for o in failing_outputs(case) {
        let c = &o.comparison;
        let _ = writeln!(s, "\n{}", output_line(o));
        let _ = writeln!(
            s,
            "  dtype {}, shape {:?} (actual {}, {:?})",
            c.dtype, c.shape, c.actual_dtype, c.actual_shape
        );
        let _ = writeln!(
            s,
            "  mismatched {}/{} ({:.3}%)",
            c.mismatched,
            c.total,
            100.0 * c.mismatch_fraction()
        );
        if c.worst_index.is_some() {
            let _ = writeln!(
                s,
                "  worst index {}: expected {}, actual {}",
                index(&c.worst_index),
                num_pair(c.expected, c.actual).0,
                num_pair(c.expected, c.actual).1
            );
        }
        let _ = writeln!(
            s,
            "  max abs err {}, max rel err {}, mean abs err {}, cosine {}",
            num(Some(c.max_abs_err)),
            num(Some(c.max_rel_err)),
            num(c.mean_abs_err),
            num(c.cosine)
        );
        let _ = writeln!(s, "  {}", c.criterion(tolerance));
        if let Some(p) = &c.problem {
            let _ = writeln!(s, "  problem: {p}");
        }
    }
    s
}

fn error_body(case: &CaseReport, message: &str) -> String {
    let mut s = format!("{}\n{message}\n", case_line(case));
    if let Some(op) = &case.error_op {
        let _ = writeln!(s, "unsupported op: {op}");
    }
    s
}

fn case_seconds(case: &CaseReport) -> f64 {
    match case.latency_ms {
        Some(ms) if ms.is_finite() && ms > 0.0 => ms / 1000.0,
        _ => 0.0,
    }
}

/// Seconds with three decimals: the Surefire time pattern of testsuite(s) `time`.
fn seconds3(s: f64) -> String {
    format!("{:.3}", if s.is_finite() && s > 0.0 { s } else { 0.0 })
}

/// Seconds with six decimals (microseconds), for one case.
fn seconds6(s: f64) -> String {
    format!("{:.6}", if s.is_finite() && s > 0.0 { s } else { 0.0 })
}

/// `t` in UTC as `YYYY-MM-DDTHH:MM:SS`, the JUnit `timestamp` form (ISO 8601 without a
/// zone, as the Ant schema asks). Times before 1970 are written as the epoch.
pub fn timestamp(t: SystemTime) -> String {
    crate::time::utc_seconds(t)
}

/// Whether XML 1.0 can carry `c` at all (escaped or not).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes `s` for an attribute value in double quotes: markup characters, quotes, and
/// whitespace that attribute normalisation would otherwise turn into spaces.
pub fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// Escapes `s` for a text node.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::compare::{compare, error_histogram, Tolerance};
    use crate::report::{BackendInfo, CaseId, Environment};
    use crate::tensor::Tensor;
    use std::time::UNIX_EPOCH;

    /// The awkward suite path of the escaping tests.
    pub(crate) const ODD_SUITE: &str = "suites/a<&\">|b";

    fn id(suite: &str, case: &str, backend: &str) -> CaseId {
        CaseId {
            suite: suite.to_string(),
            case: case.to_string(),
            backend: backend.to_string(),
            reference: "golden".to_string(),
        }
    }

    fn output(name: &str, expected: &[f32], actual: &[f32]) -> OutputReport {
        let shape = vec![2, expected.len() / 2];
        let e = Tensor::from_vec(shape.clone(), expected.to_vec()).unwrap();
        let a = Tensor::from_vec(shape, actual.to_vec()).unwrap();
        let tol = Tolerance {
            atol: 1e-5,
            rtol: 1e-4,
        };
        OutputReport {
            name: name.to_string(),
            comparison: compare(&e, &a, tol),
            error_histogram: error_histogram(&e, &a, tol),
            stats: None,
            gated: false,
        }
    }

    /// Two suites × one backend: mlp with a pass and a fail (one failing output of two),
    /// the odd path with a pass and an error.
    pub(crate) fn sample() -> Report {
        let good = [1.0, 2.0, 3.0, 4.0];
        let cases = vec![
            CaseReport::compared(
                id("models/mlp", "test_data_set_0", "ort-cpu"),
                Some(1.5),
                Some("cpu".into()),
                vec![
                    output("logits", &good, &good),
                    output("probs", &good, &good),
                ],
            ),
            CaseReport::compared(
                id("models/mlp", "test_data_set_1", "ort-cpu"),
                Some(2.5),
                Some("cpu".into()),
                vec![
                    output("logits", &good, &[1.0, 2.0, 3.0, 4.04]),
                    output("probs", &good, &good),
                ],
            ),
            CaseReport::compared(
                id(ODD_SUITE, "test_data_set_0", "ort-cpu"),
                Some(0.004),
                Some("cpu".into()),
                vec![output("y", &good, &good)],
            ),
            CaseReport::errored(
                id(ODD_SUITE, "test_data_set_1", "ort-cpu"),
                "suites/a<&\">|b/test_data_set_1/input_0.pb: truncated\nat byte 7".to_string(),
                Some("Foo".to_string()),
            ),
        ];
        let env = Environment {
            parity: "0.1.0".into(),
            host: "ci-runner-1".into(),
            cpu: "AMD EPYC (2 cores)".into(),
            gpu: None,
            os: "Debian 12 (x86_64)".into(),
            backends: vec![BackendInfo {
                name: "ort-cpu".into(),
                version: "1.31.1".into(),
                device: "cpu".into(),
            }],
            skipped_backends: vec![crate::report::SkippedBackend {
                name: "tract-cpu".into(),
                reason: "not requested (--backend)".into(),
            }],
        };
        Report::new(env, cases)
    }

    const TS: &str = "2024-02-29T23:59:58";

    #[test]
    fn counts_and_attributes() {
        let x = render(&sample(), TS);
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        assert!(
            x.contains(
                "<testsuites name=\"parity\" tests=\"4\" failures=\"1\" errors=\"1\" time=\"0.004\">"
            ),
            "{x}"
        );
        assert!(x.contains(
            "<testsuite name=\"models/mlp [ort-cpu]\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"0.004\" timestamp=\"2024-02-29T23:59:58\" hostname=\"ci-runner-1\" id=\"0\">"
        ), "{x}");
        assert!(x.contains(
            "<testsuite name=\"suites/a&lt;&amp;&quot;&gt;|b [ort-cpu]\" tests=\"2\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\" timestamp=\"2024-02-29T23:59:58\" hostname=\"ci-runner-1\" id=\"1\">"
        ), "{x}");
        assert_eq!(x.matches("<testsuite ").count(), 2);
        assert_eq!(x.matches("<testcase ").count(), 4);
        assert!(x.contains(
            "<testcase name=\"test_data_set_0\" classname=\"models/mlp.ort-cpu\" time=\"0.001500\"/>"
        ));
        assert!(x.contains(
            "<testcase name=\"test_data_set_1\" classname=\"suites/a&lt;&amp;&quot;&gt;|b.ort-cpu\" time=\"0.000000\">"
        ), "{x}");
        assert!(x.trim_end().ends_with("</testsuites>"));
    }

    #[test]
    fn failure_names_output_index_values_and_tolerance() {
        let x = render(&sample(), TS);
        assert_eq!(x.matches("<failure ").count(), 1);
        assert!(x.contains(
            "<failure message=\"logits: 1/4 mismatched, worst [1, 1]: expected 4, actual 4.04 (atol 1e-5, rtol 1e-4)\" type=\"mismatch\">"
        ), "{x}");
        // The body details the failing output only.
        let body = x
            .split("type=\"mismatch\">")
            .nth(1)
            .and_then(|b| b.split("</failure>").next())
            .unwrap();
        assert!(
            body.contains(
                "suite models/mlp, case test_data_set_1, backend ort-cpu (cpu), reference golden"
            ),
            "{body}"
        );
        assert!(body.contains("mismatched 1/4 (25.000%)"), "{body}");
        assert!(
            body.contains("worst index [1, 1]: expected 4, actual 4.04"),
            "{body}"
        );
        assert!(body.contains("atol 1e-5, rtol 1e-4"), "{body}");
        assert!(!body.contains("probs"), "{body}");
    }

    #[test]
    fn error_is_escaped_in_message_and_body() {
        let x = render(&sample(), TS);
        assert_eq!(x.matches("<error ").count(), 1);
        assert!(x.contains(
            "<error message=\"suites/a&lt;&amp;&quot;&gt;|b/test_data_set_1/input_0.pb: truncated&#10;at byte 7\" type=\"error\">"
        ), "{x}");
        assert!(x.contains("suites/a&lt;&amp;\"&gt;|b/test_data_set_1/input_0.pb: truncated\nat byte 7\nunsupported op: Foo\n</error>"), "{x}");
        // Nothing unescaped leaks: every `<` opens a known element.
        for tag in x.split('<').skip(1) {
            let name: String = tag
                .trim_start_matches(['/', '?'])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            assert!(
                [
                    "xml",
                    "testsuites",
                    "testsuite",
                    "properties",
                    "property",
                    "testcase",
                    "failure",
                    "error"
                ]
                .contains(&name.as_str()),
                "unexpected markup `<{tag}`"
            );
        }
    }

    #[test]
    fn properties_carry_the_audit_fields() {
        let x = render(&sample(), TS);
        for p in [
            "<property name=\"parity.version\" value=\"0.1.0\"/>",
            "<property name=\"host\" value=\"ci-runner-1\"/>",
            "<property name=\"cpu\" value=\"AMD EPYC (2 cores)\"/>",
            "<property name=\"os\" value=\"Debian 12 (x86_64)\"/>",
            "<property name=\"gpu\" value=\"none\"/>",
            "<property name=\"backend.ort-cpu.version\" value=\"1.31.1\"/>",
            "<property name=\"backend.ort-cpu.device\" value=\"cpu\"/>",
            "<property name=\"skipped_backend.tract-cpu\" value=\"not requested (--backend)\"/>",
            "<property name=\"reference\" value=\"golden\"/>",
            "<property name=\"suite\" value=\"suites/a&lt;&amp;&quot;&gt;|b\"/>",
        ] {
            assert!(x.contains(p), "{p} not in {x}");
        }
        assert_eq!(x.matches("<properties>").count(), 2);
    }

    #[test]
    fn escaping_and_invalid_characters() {
        assert_eq!(
            attr("a<&\"'>\n\t\r\u{1}b"),
            "a&lt;&amp;&quot;&apos;&gt;&#10;&#9;&#13;\u{FFFD}b"
        );
        assert_eq!(text("a<&\"'>\n\u{0}"), "a&lt;&amp;\"'&gt;\n\u{FFFD}");
        assert_eq!(text("]]>"), "]]&gt;");
        assert_eq!(text("μ😀"), "μ😀");
    }

    #[test]
    fn timestamps_are_utc_civil_dates() {
        let at = |s| timestamp(UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(at(1_709_251_198), "2024-02-29T23:59:58");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00");
    }

    #[test]
    fn tolerances_print_short() {
        assert_eq!(tolerance(1e-5), "1e-5");
        assert_eq!(tolerance(2.5e-3), "2.5e-3");
        assert_eq!(tolerance(0.0), "0");
        assert_eq!(tolerance(1.0), "1e0");
    }

    #[test]
    fn empty_report_is_a_valid_document() {
        let r = Report::new(sample().environment, Vec::new());
        let x = render(&r, TS);
        assert_eq!(
            x,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"parity\" tests=\"0\" failures=\"0\" errors=\"0\" time=\"0.000\">\n</testsuites>\n"
        );
    }
}
