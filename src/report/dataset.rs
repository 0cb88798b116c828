//! The dataset metrics and gates of a report (docs/gates.md) in Markdown and HTML: per
//! output a metric table with a column per slice and its most frequent top-1
//! confusions, then every gate result with its value, sample size and interval. (Text
//! has them in `text::dataset`; JUnit one testcase per gate in `junit`.)

use super::gates::{GateResult, Scope};
use super::markdown::{code, escape};
use super::metrics::OutputMetrics;
use super::style::num;
use super::Report;
use std::fmt::Write;

/// The outputs whose tables are shown: those with gates and those read as class scores.
fn shown(report: &Report) -> Vec<&OutputMetrics> {
    report
        .metrics
        .iter()
        .filter(|m| super::text::shown(report, m))
        .collect()
}

/// Where a gate result was judged, in words.
pub fn scope(g: &GateResult) -> String {
    match (g.scope, &g.slice) {
        (Scope::Dataset, _) => "dataset".to_string(),
        (Scope::Slice, Some(s)) => format!("slice {s}"),
        (Scope::Disparity, Some(s)) => format!("disparity (worst slice {s})"),
        (_, None) => format!("{:?}", g.scope).to_lowercase(),
    }
}

/// A gate result's value and interval columns.
fn value_cells(g: &GateResult) -> [String; 3] {
    [
        num(g.value),
        g.n.to_string(),
        g.interval.map_or("-".to_string(), |[lo, hi]| {
            format!("[{}, {}]", num(Some(lo)), num(Some(hi)))
        }),
    ]
}

/// Markdown: `### Dataset metrics` and `### Gates`.
pub fn markdown(md: &mut String, report: &Report) {
    let shown = shown(report);
    if !shown.is_empty() {
        let _ = writeln!(md, "### Dataset metrics\n");
        for m in shown {
            let _ = writeln!(md, "{}\n", escape(&m.title()));
            let rows = m.table();
            for (i, row) in rows.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
                let _ = writeln!(md, "| {} |", cells.join(" | "));
                if i == 0 {
                    let _ = writeln!(md, "|{}", " --- |".repeat(row.len()));
                }
            }
            md.push('\n');
            if let Some(line) = m.confusion_line() {
                let _ = writeln!(md, "{}\n", escape(&line));
            }
        }
    }
    if report.gates.is_empty() {
        return;
    }
    let _ = writeln!(md, "### Gates ({})\n", report.gates.len());
    md.push_str("| verdict | suite | backend | gate | on | value | n | 95% interval |\n");
    md.push_str("| --- | --- | --- | --- | --- | ---: | ---: | --- |\n");
    for g in &report.gates {
        let [value, n, interval] = value_cells(g);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {value} | {n} | {interval} |",
            g.verdict.name().to_uppercase(),
            code(&g.suite, true),
            code(&g.backend, true),
            code(&g.gate, true),
            escape(&scope(g)),
        );
    }
    md.push('\n');
}

/// HTML: `<h2>Dataset metrics</h2>` and `<h2>Gates</h2>`.
pub fn html(out: &mut String, report: &Report) {
    use super::html::{cell, header, label};
    let shown = shown(report);
    if !shown.is_empty() {
        out.push_str("<h2>Dataset metrics</h2>\n");
        for m in shown {
            let _ = writeln!(
                out,
                "<h3>{}</h3>\n<table>",
                super::markdown::html(&m.title())
            );
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
                let _ = writeln!(out, "<p>{}</p>", super::markdown::html(&line));
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
        cell(out, &scope(g), false);
        for (i, v) in value_cells(g).iter().enumerate() {
            cell(out, v, i < 2);
        }
        cell(out, &g.message, false);
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}
