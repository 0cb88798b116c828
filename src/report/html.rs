//! HTML rendering (`--format html`): one self-contained HTML5 page (inline CSS, no
//! script, nothing loaded from elsewhere) to attach to a CI run or mail to a colleague.
//!
//! Layout, top to bottom: a coloured verdict banner with the summary line
//! (`FAIL · 6 cases: 4 passed, 2 failed, 0 errors`); shard and merge information; a
//! table per suite × backend (cases, passed, failed, errors, worst max rel err, p50
//! latency); the failed and errored cases, each in an open `<details>` (its outputs
//! with dtype, shape, mismatches, error maxima, worst element, tolerance and problem,
//! then one inline `<svg>` error histogram per output that has one); the passing cases
//! in one collapsed `<details>`; the cross-backend matrix (`check --matrix`); the
//! suites' audit (hashes and provenance); the environment.
//!
//! Every piece of report text goes through [`html`], the escaper the Markdown
//! renderer uses for its inline HTML.

use super::junit::{groups, tolerance, Group};
use super::markdown::html;
use super::style::{index, num, num_pair, share};
use super::{CaseReport, CaseVerdict, Environment, Report};
use crate::compare::{ErrorHistogram, Verdict};
use std::fmt::Write as _;

/// The page's style sheet: compact tables, verdict colours, histogram colours.
pub(crate) const CSS: &str = "
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 1.5rem 2rem;color:#1f2328;background:#fff}
h1{font-size:1.6rem;margin:0}h2{font-size:1.2rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #d0d7de}
.banner{padding:.8rem 1rem;margin:1rem 0;border-radius:6px;color:#fff}
.banner p{margin:.3rem 0 0;font-size:1.1rem}
.pass{background:#1a7f37}.fail{background:#cf222e}.error{background:#bc4c00}
table{border-collapse:collapse;margin:.4rem 0}
th,td{border:1px solid #d0d7de;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
pre{background:#f6f8fa;padding:.5rem;white-space:pre-wrap}
.badge{color:#fff;border-radius:3px;padding:0 4px;font-weight:600;font-size:12px}
details{margin:.4rem 0;border:1px solid #d0d7de;border-radius:6px;padding:.2rem .6rem}
summary{cursor:pointer}
.hists{display:flex;flex-wrap:wrap;gap:.8rem}
figure{margin:.3rem 0}figcaption{font-size:12px;color:#59636e}
svg text{font:10px sans-serif;fill:#1f2328}
.bar-ok{fill:#2da44e}.bar-bad{fill:#cf222e}.bar-nf{fill:#8250df}
.bound{stroke:#1f2328;stroke-dasharray:3 2}
.tokens code{white-space:normal;word-break:break-word}.after{color:#8c959f}mark{background:#ffd8b5}
";

/// Renders the report as one HTML document.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let verdict = verdict_word(report.verdict);
    let gates = s.gates.as_ref().map_or(String::new(), |g| {
        format!(
            "; {} gates: {} passed, {} failed, {} errors",
            g.total, g.passed, g.failed, g.errors
        )
    });
    let line = format!(
        "{} cases: {} passed, {} failed, {} errors{gates}",
        s.cases, s.passed, s.failed, s.errors
    );
    let mut out = head(&format!("parity: {verdict} · {line}"), "");
    let _ = write!(
        out,
        "<header class=\"banner {cls}\">\n<h1>parity report: {verdict}</h1>\n\
         <p class=\"summary\"><strong>{verdict}</strong> · {line}</p>\n</header>\n",
        cls = report.verdict.name(),
    );
    run_info(&mut out, report);
    warnings(&mut out, report);
    summary_table(&mut out, &groups(report));
    dataset(&mut out, report);
    cases(&mut out, report);
    matrix(&mut out, report);
    suites(&mut out, report);
    sequences(&mut out, report);
    not_compared(&mut out, report);
    environment(&mut out, &report.environment);
    out.push_str("</body>\n</html>\n");
    out
}

/// The start of a page up to `<body>`: `title` (escaped here) and the style sheet
/// [`CSS`] followed by `extra_css`.
pub(crate) fn head(title: &str, extra_css: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}{extra_css}</style>\n</head>\n<body>\n",
        html(title)
    )
}

/// `PASS`, `FAIL` or `ERROR`.
fn verdict_word(v: CaseVerdict) -> &'static str {
    match v {
        CaseVerdict::Pass => "PASS",
        CaseVerdict::Fail => "FAIL",
        CaseVerdict::Error => "ERROR",
    }
}

/// A small coloured verdict label.
fn badge(v: CaseVerdict) -> String {
    label(v.name(), verdict_word(v))
}

/// A small label coloured by `class` (`pass`, `fail`, `error`) holding `word` escaped.
pub(crate) fn label(class: &str, word: &str) -> String {
    format!("<span class=\"badge {class}\">{}</span>", html(word))
}

/// A table cell holding `text` escaped, right-aligned for numbers when `numeric`.
pub(crate) fn cell(out: &mut String, text: &str, numeric: bool) {
    let class = if numeric { " class=\"n\"" } else { "" };
    let _ = write!(out, "<td{class}>{}</td>", html(text));
}

/// A header row of `names`.
pub(crate) fn header(out: &mut String, names: &[&str]) {
    out.push_str("<tr>");
    for n in names {
        let _ = write!(out, "<th>{}</th>", html(n));
    }
    out.push_str("</tr>\n");
}

/// The shard this report holds, and the reports `parity merge` combined into it.
fn run_info(out: &mut String, report: &Report) {
    if let Some(shard) = &report.shard {
        let _ = writeln!(
            out,
            "<p>Shard <code>{}</code> of a sharded run.</p>",
            html(shard)
        );
    }
    if report.merged.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<h2>Merged reports ({})</h2>\n<table>",
        report.merged.len()
    );
    header(
        out,
        &[
            "file", "shard", "verdict", "cases", "passed", "failed", "errors", "host",
        ],
    );
    for m in &report.merged {
        out.push_str("<tr>");
        cell(out, &m.file, false);
        cell(out, m.shard.as_deref().unwrap_or("-"), false);
        let _ = write!(out, "<td>{}</td>", badge(m.verdict));
        for n in [
            m.summary.cases,
            m.summary.passed,
            m.summary.failed,
            m.summary.errors,
        ] {
            cell(out, &n.to_string(), true);
        }
        cell(out, &m.environment.host, false);
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn summary_table(out: &mut String, groups: &[Group<'_>]) {
    out.push_str("<h2>Summary</h2>\n");
    if groups.is_empty() {
        out.push_str("<p>No cases ran.</p>\n");
        return;
    }
    out.push_str("<table>\n");
    header(
        out,
        &[
            "suite",
            "backend",
            "cases",
            "passed",
            "failed",
            "errors",
            "worst max rel err",
            "tolerance used",
            "p50 latency (ms)",
        ],
    );
    for g in groups {
        out.push_str("<tr>");
        let _ = write!(
            out,
            "<td><code>{}</code></td><td><code>{}</code></td>",
            html(g.suite),
            html(g.backend)
        );
        cell(out, &g.cases.len().to_string(), true);
        for v in [CaseVerdict::Pass, CaseVerdict::Fail, CaseVerdict::Error] {
            cell(out, &g.count(v).to_string(), true);
        }
        cell(out, &num(g.worst_rel_err()), true);
        cell(out, &share(g.worst_tolerance_used()), true);
        let latencies: Vec<f64> = g.cases.iter().filter_map(|c| c.latency_ms).collect();
        let p50 = (!latencies.is_empty()).then(|| crate::quantile::percentile(&latencies, 0.5));
        cell(out, &num(p50), true);
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// Failed and errored cases open, in report order; passing cases collapsed together.
fn cases(out: &mut String, report: &Report) {
    let (passing, problems): (Vec<&CaseReport>, Vec<&CaseReport>) = report
        .cases
        .iter()
        .partition(|c| c.verdict == CaseVerdict::Pass);
    if !problems.is_empty() {
        let _ = writeln!(
            out,
            "<h2>Failed and errored cases ({})</h2>",
            problems.len()
        );
        for case in problems {
            case_block(out, case, true);
        }
    }
    if !passing.is_empty() {
        let _ = writeln!(
            out,
            "<h2>Passing cases ({})</h2>\n<details><summary>{} passing cases</summary>",
            passing.len(),
            passing.len()
        );
        for case in passing {
            case_block(out, case, false);
        }
        out.push_str("</details>\n");
    }
}

/// One case: a `<details>` whose summary names it, holding its outputs and histograms.
fn case_block(out: &mut String, case: &CaseReport, open: bool) {
    let _ = writeln!(
        out,
        "<details class=\"case\"{}><summary>{} <code>{}</code> · <code>{}</code> · <code>{}</code></summary>",
        if open { " open" } else { "" },
        badge(case.verdict),
        html(&case.suite),
        html(&case.case),
        html(&case.backend),
    );
    let mut context = format!("reference <code>{}</code>", html(&case.reference));
    if let Some(d) = &case.device {
        let _ = write!(context, ", device <code>{}</code>", html(d));
    }
    if let Some(ms) = case.latency_ms {
        let _ = write!(context, ", latency {} ms", html(&num(Some(ms))));
    }
    let _ = writeln!(out, "<p>{context}</p>");
    if let Some(error) = &case.error {
        let mut body: Vec<String> = error.lines().map(html).collect();
        if let Some(op) = &case.error_op {
            body.push(format!("unsupported op: {}", html(op)));
        }
        let _ = writeln!(out, "<pre>{}</pre>", body.join("\n"));
    }
    if let Some(g) = &case.generation {
        generation(out, g);
    }
    if !case.outputs.is_empty() {
        outputs_table(out, case);
        histograms(out, case);
    }
    out.push_str("</details>\n");
}

/// A generation suite's case: the verdict line, the tokens side by side (the first
/// differing one marked) and the curve of tolerance used per step.
fn generation(out: &mut String, g: &super::generation::GenerationCase) {
    let _ = writeln!(out, "<p>{}</p>", html(&g.line()));
    let split = g.judgement.divergence.as_ref().map(|d| d.step);
    let tokens = |ts: &[i64]| -> String {
        ts.iter()
            .enumerate()
            .map(|(i, t)| match split {
                Some(s) if i == s => format!("<mark>{t}</mark>"),
                Some(s) if i > s => format!("<span class=\"after\">{t}</span>"),
                _ => t.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(
        out,
        "<table class=\"tokens\">\n<tr><th>prompt</th><td><code>{}</code></td></tr>\n\
         <tr><th>expected</th><td><code>{}</code></td></tr>\n<tr><th>actual</th><td><code>{}</code></td></tr>\n</table>",
        super::generation::token_ids(&g.prompt),
        tokens(&g.expected_tokens),
        tokens(&g.actual_tokens),
    );
    let points: Vec<(usize, Option<f64>)> = g
        .judgement
        .steps
        .iter()
        .map(|s| (s.step, s.tolerance_used))
        .collect();
    let _ = writeln!(
        out,
        "<p>share of the logits' tolerance used per step</p>\n{}",
        super::curve::svg(&points)
    );
}

fn outputs_table(out: &mut String, case: &CaseReport) {
    out.push_str("<table>\n");
    header(
        out,
        &[
            "output",
            "verdict",
            "dtype",
            "shape",
            "mismatched/total",
            "max abs err",
            "max rel err",
            "tolerance used",
            "worst index",
            "expected",
            "actual",
            "tolerance / mode",
            "problem",
        ],
    );
    for o in &case.outputs {
        let c = &o.comparison;
        let verdict = match c.verdict {
            Verdict::Pass => CaseVerdict::Pass,
            Verdict::Fail => CaseVerdict::Fail,
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td>",
            html(&o.name),
            badge(verdict)
        );
        cell(out, c.dtype.name(), false);
        cell(out, &format!("{:?}", c.shape), false);
        cell(
            out,
            &format!(
                "{}/{} ({:.3}%)",
                c.mismatched,
                c.total,
                100.0 * c.mismatch_fraction()
            ),
            true,
        );
        cell(out, &num(Some(c.max_abs_err)), true);
        cell(out, &num(Some(c.max_rel_err)), true);
        cell(out, &share(c.tolerance_used), true);
        cell(out, &index(&c.worst_index), false);
        cell(out, &num_pair(c.expected, c.actual).0, true);
        cell(out, &num_pair(c.expected, c.actual).1, true);
        let _ = write!(
            out,
            "<td>{} <small>({})</small></td>",
            html(&c.criterion(tolerance)),
            html(c.mode.name())
        );
        cell(out, c.problem.as_deref().unwrap_or(""), false);
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// One figure per output that has a histogram.
fn histograms(out: &mut String, case: &CaseReport) {
    let with: Vec<_> = case
        .outputs
        .iter()
        .filter_map(|o| o.error_histogram.as_ref().map(|h| (o, h)))
        .collect();
    if with.is_empty() {
        return;
    }
    out.push_str("<div class=\"hists\">\n");
    for (o, h) in with {
        let _ = writeln!(
            out,
            "<figure>{}<figcaption><code>{}</code>: elements by share of tolerance used, |a−e| / (atol + rtol·|e|); count axis logarithmic</figcaption></figure>",
            svg(h),
            html(&o.name)
        );
    }
    out.push_str("</div>\n");
}

/// Width of one bar slot of a histogram, in pixels.
const BAR: usize = 34;
/// Height of the plotting area.
const PLOT: usize = 80;
/// Room above the plot (counts) and below it (bin labels).
const TOP: usize = 14;
const BOTTOM: usize = 28;

/// An edge as a bin label: `0.01`..`100` plainly, smaller ones as `1e-6`.
fn edge_label(v: f64) -> String {
    if v == 0.0 || (0.01..1000.0).contains(&v) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// The histogram as an inline SVG bar chart: one bar per bin (labelled with its upper
/// edge, `>` the last edge for the open bin) plus one for NaN/Inf pairs, heights
/// `log10(1 + count)`, failing bins red, a dashed line at share 1 (the tolerance).
fn svg(h: &ErrorHistogram) -> String {
    let bins = h.counts.len().min(h.upper_edges.len() + 1);
    let mut bars: Vec<(String, u64, &str)> = (0..bins)
        .map(|i| {
            let label = match h.upper_edges.get(i) {
                Some(&e) if i == 0 => edge_label(e),
                Some(&e) => format!("≤{}", edge_label(e)),
                None => format!(">{}", h.upper_edges.last().map_or(0.0, |&e| e)),
            };
            let failing = i > 0 && h.upper_edges.get(i - 1).is_some_and(|&lower| lower >= 1.0);
            (
                label,
                h.counts[i],
                if failing { "bar-bad" } else { "bar-ok" },
            )
        })
        .collect();
    bars.push(("NaN/Inf".to_string(), h.nonfinite, "bar-nf"));
    let scale = bars
        .iter()
        .map(|b| (1.0 + b.1 as f64).log10())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let width = bars.len() * BAR + 2;
    let height = TOP + PLOT + BOTTOM;
    let mut s = format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\">"
    );
    let base = TOP + PLOT;
    let _ = write!(
        s,
        "<line x1=\"0\" y1=\"{base}\" x2=\"{width}\" y2=\"{base}\" stroke=\"#59636e\"/>"
    );
    for (i, (label, count, class)) in bars.iter().enumerate() {
        let x = 1 + i * BAR;
        let bar_h = ((1.0 + *count as f64).log10() / scale * PLOT as f64).round() as usize;
        let cx = x + BAR / 2;
        let _ = write!(
            s,
            "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{bar_h}\"><title>{}: {count}</title></rect>\
             <text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\">{count}</text>\
             <text x=\"{cx}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x + 3,
            base - bar_h,
            BAR - 6,
            html(label),
            base - bar_h - 2,
            base + 12,
            html(label),
        );
    }
    if let Some(i) = h.upper_edges.iter().position(|&e| e == 1.0) {
        // The boundary between the bin ending at 1 and the first failing bin.
        let x = 1 + (i + 1) * BAR;
        let _ = write!(
            s,
            "<line class=\"bound\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">tolerance</text>",
            TOP / 2,
            base,
            base + 24
        );
    }
    s.push_str("</svg>");
    s
}

/// The run's warnings, above the verdicts they qualify.
fn warnings(out: &mut String, report: &Report) {
    if report.warnings.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h2>Warnings ({})</h2>\n<ul>", report.warnings.len());
    for w in &report.warnings {
        let _ = writeln!(out, "<li>{}</li>", html(&w.message));
    }
    out.push_str("</ul>\n");
}

/// `check --matrix`: one N×N table of max rel error per suite × output.
fn matrix(out: &mut String, report: &Report) {
    let Some(entries) = &report.matrix else {
        return;
    };
    out.push_str("<h2>Cross-backend matrix</h2>\n");
    for e in entries {
        let _ = writeln!(
            out,
            "<p>max rel error (share of tolerance used), <code>{}</code> <code>{}</code> (row: reference, column: candidate)</p>\n<table>",
            html(&e.suite),
            html(&e.output)
        );
        out.push_str("<tr><th>reference \\ candidate</th>");
        for b in &e.backends {
            let _ = write!(out, "<th><code>{}</code></th>", html(b));
        }
        out.push_str("</tr>\n");
        for (i, b) in e.backends.iter().enumerate() {
            let _ = write!(out, "<tr><th><code>{}</code></th>", html(b));
            for j in 0..e.backends.len() {
                cell(out, &e.cell(i, j), true);
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
}

/// The audit trail of `check`: model and manifest hashes, provenance of the goldens.
fn suites(out: &mut String, report: &Report) {
    if report.suites.is_empty() {
        return;
    }
    out.push_str("<h2>Suites</h2>\n<table>\n");
    header(
        out,
        &[
            "suite",
            "model sha256",
            "manifest sha256",
            "provenance",
            "candidate model (check --model)",
        ],
    );
    for s in &report.suites {
        out.push_str("<tr>");
        for v in [
            s.suite.as_str(),
            &s.model_sha256,
            s.manifest_sha256.as_deref().unwrap_or("-"),
        ] {
            let _ = write!(out, "<td><code>{}</code></td>", html(v));
        }
        let provenance = s
            .provenance
            .as_ref()
            .and_then(|p| serde_json::to_value(p).ok())
            .and_then(|v| v.as_object().cloned())
            .filter(|fields| !fields.is_empty());
        match provenance {
            None => out.push_str("<td>-</td>"),
            Some(fields) => {
                out.push_str("<td>");
                let items: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                        format!("{}: {}", html(k), html(&v))
                    })
                    .collect();
                out.push_str(&items.join("<br>"));
                out.push_str("</td>");
            }
        }
        match &s.candidate {
            None => out.push_str("<td>-</td>"),
            Some(c) => {
                let _ = write!(
                    out,
                    "<td><code>{}</code><br>sha256 <code>{}</code></td>",
                    html(&c.path),
                    html(&c.sha256)
                );
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// Stateful suites: one row per stream with its first step out of tolerance and the
/// curve of tolerance used per step.
fn sequences(out: &mut String, report: &Report) {
    if report.sequences.is_empty() {
        return;
    }
    out.push_str("<h2>Stateful suites</h2>\n<table>\n");
    header(
        out,
        &[
            "suite",
            "backend",
            "steps",
            "first step out of tolerance",
            "error growth",
            "tolerance used per step",
        ],
    );
    for s in &report.sequences {
        out.push_str("<tr>");
        cell(out, &s.suite, false);
        cell(out, &s.backend, false);
        cell(out, &s.steps.to_string(), true);
        let first = match (s.first_step_out_of_tolerance, s.first_error_step) {
            (Some(f), _) => f.to_string(),
            (None, Some(e)) => format!("none (step {e} could not run)"),
            (None, None) => "none".to_string(),
        };
        cell(out, &first, false);
        cell(
            out,
            &s.error_growth.map_or("-".into(), |g| format!("x{g:.3}")),
            true,
        );
        let points: Vec<(usize, Option<f64>)> =
            s.curve.iter().map(|p| (p.step, p.tolerance_used)).collect();
        let _ = write!(out, "<td>{}</td>", super::curve::svg(&points));
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// HTML: `<h2>Dataset metrics</h2>` and `<h2>Gates</h2>`.
fn dataset(out: &mut String, report: &Report) {
    let shown = super::dataset::shown(report);
    if !shown.is_empty() {
        out.push_str("<h2>Dataset metrics</h2>\n");
        for m in shown {
            let _ = writeln!(out, "<h3>{}</h3>\n<table>", html(&m.title()));
            let rows = m.table();
            if let Some((head, body)) = rows.split_first() {
                let names: Vec<&str> = head.iter().map(String::as_str).collect();
                header(out, &names);
                for row in body {
                    out.push_str("<tr>");
                    for (i, c) in row.iter().enumerate() {
                        cell(out, c, i > 0);
                    }
                    out.push_str("</tr>\n");
                }
            }
            out.push_str("</table>\n");
            if let Some(line) = m.confusion_line() {
                let _ = writeln!(out, "<p>{}</p>", html(&line));
            }
        }
    }
    if report.gates.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h2>Gates ({})</h2>\n<table>", report.gates.len());
    header(
        out,
        &[
            "verdict",
            "suite",
            "backend",
            "gate",
            "on",
            "value",
            "n",
            "95% interval",
            "message",
        ],
    );
    for g in &report.gates {
        out.push_str("<tr>");
        let _ = write!(
            out,
            "<td>{}</td>",
            label(g.verdict.name(), &g.verdict.name().to_uppercase())
        );
        cell(out, &g.suite, false);
        cell(out, &g.backend, false);
        cell(out, &g.gate, false);
        cell(out, &super::dataset::scope(g), false);
        for (i, v) in super::dataset::value_cells(g).iter().enumerate() {
            cell(out, v, i < 2);
        }
        cell(out, &g.message, false);
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// The outputs some cases skipped (`parity.toml`), so they never read as passed.
fn not_compared(out: &mut String, report: &Report) {
    let skipped = report.skipped_outputs();
    if skipped.is_empty() {
        return;
    }
    out.push_str("<h2>Not compared</h2>\n<ul>\n");
    for s in skipped {
        let _ = writeln!(
            out,
            "<li>output <code>{}</code> of <code>{}</code> in {} case(s): {}</li>",
            html(&s.output.name),
            html(s.suite),
            s.cases,
            html(&s.output.reason)
        );
    }
    out.push_str("</ul>\n");
}

/// The environment table: parity version, host, cpu, os, gpu, backends.
pub(crate) fn environment(out: &mut String, env: &Environment) {
    out.push_str("<h2>Environment</h2>\n<table>\n");
    for (k, v) in [
        ("parity", env.parity.as_str()),
        ("host", &env.host),
        ("cpu", &env.cpu),
        ("os", &env.os),
        ("gpu", env.gpu.as_deref().unwrap_or("none")),
    ] {
        let _ = writeln!(out, "<tr><th>{k}</th><td>{}</td></tr>", html(v));
    }
    let backends: Vec<String> = env
        .backends
        .iter()
        .map(|b| {
            format!(
                "<code>{}</code> {} ({})",
                html(&b.name),
                html(&b.version),
                html(&b.device)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "<tr><th>backends</th><td>{}</td></tr>",
        if backends.is_empty() {
            "none".to_string()
        } else {
            backends.join("<br>")
        }
    );
    let skipped: Vec<String> = env
        .skipped_backends
        .iter()
        .map(|b| format!("<code>{}</code> ({})", html(&b.name), html(&b.reason)))
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(
            out,
            "<tr><th>not run</th><td>{}</td></tr>",
            skipped.join("<br>")
        );
    }
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::junit::tests::{sample, ODD_SUITE};
    use crate::report::Provenance;
    use crate::report::SuiteAudit;

    #[test]
    fn banner_and_summary_line() {
        let page = render(&sample());
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(page.ends_with("</body>\n</html>\n"));
        assert!(page.contains("<header class=\"banner error\">\n<h1>parity report: ERROR</h1>"));
        assert!(
            page.contains("<strong>ERROR</strong> · 4 cases: 2 passed, 1 failed, 1 errors"),
            "{page}"
        );
        assert!(page.contains("<td><code>models/mlp</code></td><td><code>ort-cpu</code></td><td class=\"n\">2</td><td class=\"n\">1</td><td class=\"n\">1</td><td class=\"n\">0</td><td class=\"n\">0.01</td><td class=\"n\">9756%</td><td class=\"n\">1.5</td>"), "{page}");
    }

    #[test]
    fn text_is_escaped() {
        let mut r = sample();
        r.cases[0].suite = "<script>alert(1)</script>".to_string();
        let page = render(&r);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // The odd path of the sample, in the summary table and the error block.
        assert!(!page.contains(ODD_SUITE));
        assert!(page.contains("suites/a&lt;&amp;&quot;&gt;|b"));
        assert!(page.contains(
            "<pre>suites/a&lt;&amp;&quot;&gt;|b/test_data_set_1/input_0.pb: truncated\nat byte 7\nunsupported op: Foo</pre>"
        ), "{page}");
    }

    #[test]
    fn one_svg_per_histogram() {
        let r = sample();
        let histograms = r
            .cases
            .iter()
            .flat_map(|c| &c.outputs)
            .filter(|o| o.error_histogram.is_some())
            .count();
        assert_eq!(histograms, 5);
        let page = render(&r);
        assert_eq!(page.matches("<svg").count(), histograms);
        // The failing logit: 3 elements exactly equal, one far over tolerance.
        assert!(page.contains("<title>0: 3</title>"), "{page}");
        assert!(page.contains("<rect class=\"bar-bad\""), "{page}");
        assert!(page.contains(">&gt;100</text>"), "{page}");
        assert!(page.contains(">tolerance</text>"));
    }

    #[test]
    fn failures_open_passes_collapsed() {
        let page = render(&sample());
        let problems = page.find("Failed and errored cases (2)").unwrap();
        let passing = page.find("Passing cases (2)").unwrap();
        assert!(problems < passing);
        assert_eq!(page.matches("<details class=\"case\" open>").count(), 2);
        assert_eq!(page.matches("<details class=\"case\">").count(), 2);
        assert!(page.contains("<details><summary>2 passing cases</summary>"));
        assert!(
            page.contains("atol 1e-5, rtol 1e-4 <small>(allclose)</small>"),
            "{page}"
        );
    }

    #[test]
    fn nothing_external() {
        let mut r = sample();
        r.suites = vec![SuiteAudit {
            suite: "models/mlp".into(),
            model_sha256: "ab".repeat(32),
            manifest_sha256: None,
            candidate: None,
            provenance: Some(Provenance {
                backend: Some("ort-cpu".into()),
                date: Some("2026-11-25T18:33:07Z".into()),
                ..Provenance::default()
            }),
        }];
        r.matrix = Some(vec![crate::report::matrix::example()]);
        r.shard = Some("1/2".into());
        let page = render(&r);
        assert!(!page.contains("http://"), "{page}");
        assert!(!page.contains("https://"), "{page}");
        assert!(!page.contains("<script"));
        assert!(!page.contains("<link"));
        assert!(!page.contains("<img"));
        assert!(
            page.contains("backend: ort-cpu<br>date: 2026-11-25T18:33:07Z"),
            "{page}"
        );
        assert!(
            page.contains(
                "<th><code>tract-cpu</code></th><td class=\"n\">-</td><td class=\"n\">0</td>"
            ),
            "{page}"
        );
        assert!(page.contains("Shard <code>1/2</code>"));
        assert!(page.contains("<tr><th>gpu</th><td>none</td></tr>"));
    }
}
