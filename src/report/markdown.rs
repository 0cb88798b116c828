//! Markdown rendering (`--format markdown`) for a CI job summary (GitHub's
//! `$GITHUB_STEP_SUMMARY`, GitLab and Azure DevOps markdown reports).
//!
//! Layout, top to bottom: a verdict heading (✅ PASS / ❌ FAIL / ⚠️ ERROR with the case
//! counts); a table with one row per suite × backend (cases, passed, failed, errors,
//! worst max rel err); a `<details>` block per failed case (every failing output with
//! its worst index, expected/actual values and tolerance) and per errored case (the
//! error verbatim); the environment (parity version, host, cpu, os, gpu, backends).
//!
//! Escaping: names and paths go into code spans (a `|` inside becomes `\|` in table
//! cells, as GitHub-flavoured Markdown requires); free text is escaped for Markdown and
//! inline HTML; text inside `<summary>` is HTML-escaped; error messages go into fenced
//! code blocks whose fence is longer than any backtick run they contain. At most
//! [`MAX_DETAILS`] failure and [`MAX_DETAILS`] error blocks are written (a job summary
//! is limited in size); a line says how many more there are.

use super::junit::{failing_outputs, failure_message, groups, tolerance, Group};
use super::style::{index, num, num_pair, share};
use super::{CaseReport, CaseVerdict, Report};
use std::fmt::Write as _;

/// Most `<details>` blocks written for failures, and again for errors.
pub const MAX_DETAILS: usize = 50;

/// The emoji and word of a verdict.
fn verdict_badge(v: CaseVerdict) -> &'static str {
    match v {
        CaseVerdict::Pass => "✅ parity: PASS",
        CaseVerdict::Fail => "❌ parity: FAIL",
        CaseVerdict::Error => "⚠️ parity: ERROR",
    }
}

/// Renders the report as a Markdown document.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let mut md = String::new();
    let gates = s.gates.as_ref().map_or(String::new(), |g| {
        format!(
            "; {} gates, {} passed, {} failed, {} errors",
            g.total, g.passed, g.failed, g.errors
        )
    });
    let _ = writeln!(
        md,
        "## {} — {} cases, {} passed, {} failed, {} errors{gates}\n",
        verdict_badge(report.verdict),
        s.cases,
        s.passed,
        s.failed,
        s.errors
    );
    summary_table(&mut md, &groups(report));
    warnings(&mut md, report);
    let failed: Vec<&CaseReport> = report
        .cases
        .iter()
        .filter(|c| c.verdict == CaseVerdict::Fail)
        .collect();
    let errored: Vec<&CaseReport> = report
        .cases
        .iter()
        .filter(|c| c.verdict == CaseVerdict::Error)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(md, "### Failures ({})\n", failed.len());
        for case in failed.iter().take(MAX_DETAILS) {
            failure_details(&mut md, case);
        }
        more(&mut md, failed.len(), "failed");
    }
    if !errored.is_empty() {
        let _ = writeln!(md, "### Errors ({})\n", errored.len());
        for case in errored.iter().take(MAX_DETAILS) {
            error_details(&mut md, case);
        }
        more(&mut md, errored.len(), "errored");
    }
    let skipped = report.skipped_outputs();
    if !skipped.is_empty() {
        let _ = writeln!(md, "### Not compared ({})\n", skipped.len());
        for s in skipped {
            let _ = writeln!(
                md,
                "- output {} of {} in {} case(s): {}",
                code(&s.output.name, false),
                code(s.suite, false),
                s.cases,
                escape(&s.output.reason)
            );
        }
        md.push('\n');
    }
    dataset(&mut md, report);
    if !report.sequences.is_empty() {
        let _ = writeln!(md, "### Stateful suites ({})\n", report.sequences.len());
        for s in &report.sequences {
            let _ = writeln!(md, "- {}", escape(&s.line()));
        }
        md.push('\n');
    }
    matrix(&mut md, report);
    environment(&mut md, report);
    md
}

/// Markdown: `### Dataset metrics` and `### Gates`.
fn dataset(md: &mut String, report: &Report) {
    let shown = super::dataset::shown(report);
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
        let [value, n, interval] = super::dataset::value_cells(g);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {value} | {n} | {interval} |",
            g.verdict.name().to_uppercase(),
            code(&g.suite, true),
            code(&g.backend, true),
            code(&g.gate, true),
            escape(&super::dataset::scope(g)),
        );
    }
    md.push('\n');
}

/// The run's warnings, right under the summary: they qualify every verdict below.
fn warnings(md: &mut String, report: &Report) {
    if report.warnings.is_empty() {
        return;
    }
    let _ = writeln!(md, "### Warnings ({})\n", report.warnings.len());
    for w in &report.warnings {
        let _ = writeln!(md, "- ⚠️ {}", escape(&w.message));
    }
    md.push('\n');
}

/// `check --matrix`: per suite × output, the N×N table of max rel error (row:
/// reference, column: candidate), as the text and HTML reports show it.
fn matrix(md: &mut String, report: &Report) {
    let Some(entries) = &report.matrix else {
        return;
    };
    md.push_str("### Cross-backend matrix\n\n");
    for e in entries {
        let _ = writeln!(
            md,
            "max rel error (share of tolerance used), {} {} (row: reference, column: candidate)\n",
            code(&e.suite, false),
            code(&e.output, false)
        );
        md.push_str("| reference \\ candidate |");
        for b in &e.backends {
            let _ = write!(md, " {} |", code(b, true));
        }
        md.push_str("\n| --- |");
        md.push_str(&" ---: |".repeat(e.backends.len()));
        md.push('\n');
        for (i, b) in e.backends.iter().enumerate() {
            let _ = write!(md, "| {} |", code(b, true));
            for j in 0..e.backends.len() {
                let _ = write!(md, " {} |", e.cell(i, j));
            }
            md.push('\n');
        }
        md.push('\n');
    }
}

fn summary_table(md: &mut String, groups: &[Group<'_>]) {
    if groups.is_empty() {
        md.push_str("No cases ran.\n\n");
        return;
    }
    md.push_str(
        "| suite | backend | cases | passed | failed | errors | worst max rel err | tolerance used |\n",
    );
    md.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for g in groups {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            code(g.suite, true),
            code(g.backend, true),
            g.cases.len(),
            g.count(CaseVerdict::Pass),
            g.count(CaseVerdict::Fail),
            g.count(CaseVerdict::Error),
            num(g.worst_rel_err()),
            share(g.worst_tolerance_used()),
        );
    }
    md.push('\n');
}

/// `suite · case · backend`, HTML-escaped for `<summary>`.
fn case_title(case: &CaseReport) -> String {
    format!(
        "<code>{}</code> · <code>{}</code> · <code>{}</code>",
        html(&case.suite),
        html(&case.case),
        html(&case.backend)
    )
}

fn failure_details(md: &mut String, case: &CaseReport) {
    let _ = writeln!(
        md,
        "<details><summary>❌ {}: {}</summary>\n",
        case_title(case),
        html(&failure_message(case))
    );
    let _ = writeln!(md, "{}\n", context(case));
    if let Some(g) = &case.generation {
        let ids = super::generation::token_ids;
        let _ = writeln!(md, "{}\n", escape(&g.line()));
        let _ = writeln!(
            md,
            "| prompt | expected tokens | actual tokens |\n| --- | --- | --- |\n| {} | {} | {} |\n",
            code(&ids(&g.prompt), true),
            code(&ids(&g.expected_tokens), true),
            code(&ids(&g.actual_tokens), true)
        );
        let _ = writeln!(md, "{}\n", escape(&g.judgement.curve_line()));
    }
    md.push_str("| output | mismatched | worst index | expected | actual | max abs err | max rel err | tolerance used | atol | rtol | problem |\n");
    md.push_str("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for o in failing_outputs(case) {
        let c = &o.comparison;
        let _ = writeln!(
            md,
            "| {} | {}/{} ({:.3}%) | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            code(&o.name, true),
            c.mismatched,
            c.total,
            100.0 * c.mismatch_fraction(),
            code(&index(&c.worst_index), true),
            num_pair(c.expected, c.actual).0,
            num_pair(c.expected, c.actual).1,
            num(Some(c.max_abs_err)),
            num(Some(c.max_rel_err)),
            share(c.tolerance_used),
            tolerance(c.atol),
            tolerance(c.rtol),
            c.problem.as_deref().map_or_else(String::new, escape),
        );
    }
    md.push_str("\n</details>\n\n");
}

fn error_details(md: &mut String, case: &CaseReport) {
    let message = case.error.as_deref().unwrap_or("could not be evaluated");
    let first = message.lines().next().unwrap_or(message);
    let _ = writeln!(
        md,
        "<details><summary>⚠️ {}: {}</summary>\n",
        case_title(case),
        html(first)
    );
    let _ = writeln!(md, "{}\n", context(case));
    let mut body = message.to_string();
    if let Some(op) = &case.error_op {
        let _ = write!(body, "\nunsupported op: {op}");
    }
    md.push_str(&fenced(&body));
    md.push_str("\n</details>\n\n");
}

/// Reference, device and latency of a case, as one Markdown line.
fn context(case: &CaseReport) -> String {
    let mut s = format!("reference {}", code(&case.reference, false));
    if let Some(d) = &case.device {
        let _ = write!(s, ", device {}", code(d, false));
    }
    if let Some(ms) = case.latency_ms {
        let _ = write!(s, ", latency {} ms", num(Some(ms)));
    }
    s
}

fn more(md: &mut String, total: usize, what: &str) {
    if total > MAX_DETAILS {
        let _ = writeln!(
            md,
            "… and {} more {what} cases (the JSON or JUnit report lists every case).\n",
            total - MAX_DETAILS
        );
    }
}

fn environment(md: &mut String, report: &Report) {
    let env = &report.environment;
    md.push_str("### Environment\n\n");
    let _ = writeln!(md, "- parity {}", escape(&env.parity));
    let _ = writeln!(md, "- host: {}", escape(&env.host));
    let _ = writeln!(md, "- cpu: {}", escape(&env.cpu));
    let _ = writeln!(md, "- os: {}", escape(&env.os));
    let _ = writeln!(
        md,
        "- gpu: {}",
        escape(env.gpu.as_deref().unwrap_or("none"))
    );
    if env.backends.is_empty() {
        md.push_str("- backends: none\n");
    } else {
        let list: Vec<String> = env
            .backends
            .iter()
            .map(|b| {
                format!(
                    "{} {} ({})",
                    code(&b.name, false),
                    escape(&b.version),
                    escape(&b.device)
                )
            })
            .collect();
        let _ = writeln!(md, "- backends: {}", list.join(", "));
    }
    if !env.skipped_backends.is_empty() {
        let list: Vec<String> = env
            .skipped_backends
            .iter()
            .map(|b| format!("{} ({})", code(&b.name, false), escape(&b.reason)))
            .collect();
        let _ = writeln!(md, "- not run: {}", list.join(", "));
    }
}

/// A Markdown code span holding `s` literally; in a table cell `|` becomes `\|`.
/// Line breaks become spaces (a span is one line).
pub fn code(s: &str, in_table: bool) -> String {
    let s: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let s = if in_table { s.replace('|', "\\|") } else { s };
    let fence = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// `s` as literal Markdown text: HTML-significant characters as entities, Markdown
/// punctuation backslash-escaped (`|` too, so it is safe in tables), line breaks as spaces.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `s` escaped for HTML text (inside `<summary>`), on one line.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `s` in a fenced code block whose fence no line of `s` can close.
fn fenced(s: &str) -> String {
    let fence = "`".repeat(longest_run(s, '`').max(2) + 1);
    format!("{fence}\n{}\n{fence}\n", s.trim_end_matches('\n'))
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::junit::tests::{sample, ODD_SUITE};

    #[test]
    fn the_matrix_is_a_table_per_suite_and_output() {
        let mut r = sample();
        assert!(!render(&r).contains("Cross-backend matrix"));
        r.matrix = Some(vec![crate::report::matrix::example()]);
        let md = render(&r);
        assert!(
            md.contains(
                "### Cross-backend matrix\n\n\
                 max rel error (share of tolerance used), `models/mlp` `logits` (row: reference, column: candidate)\n\n\
                 | reference \\ candidate | `ort-cpu` | `tract-cpu` |\n\
                 | --- | ---: | ---: |\n\
                 | `ort-cpu` | 0 | 1.50e-7 (3%) |\n\
                 | `tract-cpu` | - | 0 |\n"
            ),
            "{md}"
        );
        // Before the environment, which comes last.
        assert!(md.find("Cross-backend").unwrap() < md.find("### Environment").unwrap());
    }

    #[test]
    fn verdict_line_and_summary_table() {
        let md = render(&sample());
        assert!(
            md.starts_with("## ⚠️ parity: ERROR — 4 cases, 2 passed, 1 failed, 1 errors\n"),
            "{md}"
        );
        assert!(
            md.contains("| `models/mlp` | `ort-cpu` | 2 | 1 | 1 | 0 | 0.01 | 9756% |\n"),
            "{md}"
        );
        // The odd path: `|` escaped inside the code span, markup left literal there.
        assert!(
            md.contains("| `suites/a<&\">\\|b` | `ort-cpu` | 2 | 1 | 0 | 1 | 0 | 0% |\n"),
            "{md}"
        );
        // Every table row has exactly its 9 (summary) or 12 (details) unescaped pipes.
        for row in md.lines().filter(|l| l.starts_with("| `")) {
            let cells = row.replace("\\|", "").matches('|').count();
            assert!(cells == 9 || cells == 12, "{cells} pipes in {row}");
        }
    }

    #[test]
    fn failure_and_error_details() {
        let md = render(&sample());
        assert!(md.contains("### Failures (1)\n"));
        assert!(md.contains(
            "<details><summary>❌ <code>models/mlp</code> · <code>test_data_set_1</code> · <code>ort-cpu</code>: logits: 1/4 mismatched, worst [1, 1]: expected 4, actual 4.04 (atol 1e-5, rtol 1e-4)</summary>\n"
        ), "{md}");
        assert!(
            md.contains("| `logits` | 1/4 (25.000%) | `[1, 1]` | 4 | 4.04 | 0.04 | 0.01 | 9756% | 1e-5 | 1e-4 |  |\n"),
            "{md}"
        );
        assert!(md.contains("### Errors (1)\n"));
        assert!(md.contains(
            "<details><summary>⚠️ <code>suites/a&lt;&amp;&quot;&gt;|b</code> · <code>test_data_set_1</code> · <code>ort-cpu</code>: suites/a&lt;&amp;&quot;&gt;|b/test_data_set_1/input_0.pb: truncated</summary>\n"
        ), "{md}");
        assert!(md.contains(&format!(
            "```\n{ODD_SUITE}/test_data_set_1/input_0.pb: truncated\nat byte 7\nunsupported op: Foo\n```\n"
        )), "{md}");
        assert_eq!(md.matches("<details>").count(), 2);
        assert_eq!(md.matches("</details>").count(), 2);
    }

    #[test]
    fn environment_comes_last() {
        let md = render(&sample());
        let env = md.split("### Environment\n").nth(1).unwrap();
        assert_eq!(
            env,
            "\n- parity 0.1.0\n- host: ci-runner-1\n- cpu: AMD EPYC (2 cores)\n- os: Debian 12 (x86\\_64)\n- gpu: none\n- backends: `ort-cpu` 1.31.1 (cpu)\n- not run: `tract-cpu` (not requested (--backend))\n"
        );
    }

    #[test]
    fn passing_run_has_no_details() {
        let mut r = sample();
        r.cases.retain(|c| c.verdict == CaseVerdict::Pass);
        let r = Report::new(r.environment, r.cases);
        let md = render(&r);
        assert!(md.starts_with("## ✅ parity: PASS — 2 cases, 2 passed, 0 failed, 0 errors\n"));
        assert!(!md.contains("<details>"));
    }

    #[test]
    fn escapers() {
        assert_eq!(code("a|b", true), "`a\\|b`");
        assert_eq!(code("a|b", false), "`a|b`");
        assert_eq!(code("a`b", false), "``a`b``");
        assert_eq!(code("`x", false), "`` `x ``");
        assert_eq!(
            escape("<a & b> | *c*_d"),
            "&lt;a &amp; b&gt; \\| \\*c\\*\\_d"
        );
        assert_eq!(html("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
        assert_eq!(fenced("a ``` b"), "````\na ``` b\n````\n");
    }

    #[test]
    fn details_are_capped() {
        let r = sample();
        let failed = r
            .cases
            .iter()
            .find(|c| c.verdict == CaseVerdict::Fail)
            .unwrap()
            .clone();
        let cases = vec![failed; MAX_DETAILS + 3];
        let md = render(&Report::new(r.environment, cases));
        assert_eq!(md.matches("<details>").count(), MAX_DETAILS);
        assert!(md.contains("… and 3 more failed cases"), "{md}");
    }
}
