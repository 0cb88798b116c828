//! `parity invariance` as JUnit XML, Markdown and HTML, in the shapes `check`'s reports
//! have (docs/reports.md): one JUnit test suite per suite × backend, a test case per
//! data set × check (`out` a failure, `within` one too under `--bitwise`, a check that
//! could not run an error, a check that does not apply skipped with its reason).

use super::report::{CheckResult, InvarianceReport, NotApplicable, Outcome};
use crate::report::html::{cell, environment, head, header, label};
use crate::report::junit::{attr, text};
use crate::report::markdown::{code, escape, html};
use crate::report::style::{index, num, num_pair, share};
use std::fmt::Write as _;

impl InvarianceReport {
    /// Whether a result fails the run (what its test case reports).
    fn fails(&self, r: &CheckResult) -> bool {
        match r.outcome {
            Some(Outcome::Out) => true,
            Some(Outcome::Within) => self.bitwise_required,
            _ => false,
        }
    }

    /// The (suite, backend) pairs in report order, with their results and the checks
    /// that do not apply to them.
    fn groups(&self) -> Vec<Group<'_>> {
        let mut groups: Vec<Group<'_>> = Vec::new();
        for r in &self.results {
            match groups
                .iter_mut()
                .find(|g| g.suite == r.suite && g.backend == r.backend)
            {
                Some(g) => g.results.push(r),
                None => groups.push(Group {
                    suite: &r.suite,
                    backend: &r.backend,
                    results: vec![r],
                    not_applicable: Vec::new(),
                }),
            }
        }
        for n in &self.not_applicable {
            let mine = |g: &Group<'_>| {
                g.backend == n.backend && n.suite.as_deref().is_none_or(|s| s == g.suite)
            };
            let mut placed = false;
            for g in groups.iter_mut().filter(|g| mine(g)) {
                g.not_applicable.push(n);
                placed = true;
            }
            if !placed {
                groups.push(Group {
                    suite: n.suite.as_deref().unwrap_or("every suite"),
                    backend: &n.backend,
                    results: Vec::new(),
                    not_applicable: vec![n],
                });
            }
        }
        groups
    }

    /// JUnit XML (valid against the junit-10.xsd `check`'s JUnit is validated with).
    pub fn to_junit(&self) -> String {
        let groups = self.groups();
        let mut x = String::new();
        let (mut tests, mut failures, mut errors) = (0, 0, 0);
        for (id, g) in groups.iter().enumerate() {
            let f = g.results.iter().filter(|r| self.fails(r)).count();
            let e = g.results.iter().filter(|r| r.outcome.is_none()).count();
            let n = g.results.len() + g.not_applicable.len();
            tests += n;
            failures += f;
            errors += e;
            let _ = writeln!(
                x,
                "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{}\" time=\"0.000\" id=\"{id}\">",
                attr(&format!("invariance {} [{}]", g.suite, g.backend)),
                g.not_applicable.len()
            );
            let class = attr(&format!("{}.{}", g.suite, g.backend));
            for r in &g.results {
                let _ = write!(
                    x,
                    "    <testcase name=\"{}\" classname=\"{class}\" time=\"0\">",
                    attr(&format!("{} {}", r.case, r.check))
                );
                if let Some(e) = &r.error {
                    let _ = write!(
                        x,
                        "\n      <error message=\"{}\" type=\"error\"/>\n    ",
                        attr(e)
                    );
                } else if self.fails(r) {
                    let lines: Vec<String> =
                        r.outputs.iter().map(|o| r.deviation_line(o)).collect();
                    let _ = write!(
                        x,
                        "\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    ",
                        attr(lines.first().map_or("", String::as_str)),
                        r.outcome.map_or("error", Outcome::name),
                        text(&lines.join("\n"))
                    );
                }
                x += "</testcase>\n";
            }
            for n in &g.not_applicable {
                let _ = writeln!(
                    x,
                    "    <testcase name=\"{}\" classname=\"{class}\" time=\"0\">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    attr(&format!("{} (not applicable)", n.check)),
                    attr(&n.reason)
                );
            }
            x += "  </testsuite>\n";
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"parity invariance\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"0.000\">\n{x}</testsuites>\n"
        )
    }

    /// Markdown for a CI job summary: the verdict, a table per outcome count, every
    /// result that is not bitwise, and what did not apply.
    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "## parity invariance: {}\n\n{}\n\n",
            self.verdict.name().to_uppercase(),
            self.summary_line()
        );
        md += "| suite | backend | check | bitwise | within | out | errors | largest deviation |\n| --- | --- | --- | ---: | ---: | ---: | ---: | --- |\n";
        for row in self.by_check() {
            let [b, w, o, e] = row.counts;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {b} | {w} | {o} | {e} | {} |",
                code(row.suite, true),
                code(row.backend, true),
                row.check,
                escape(&row.largest)
            );
        }
        let notable = self.not_bitwise();
        if !notable.is_empty() {
            md += "\n### Not bitwise\n\n";
            for r in notable {
                match &r.error {
                    Some(e) => {
                        let _ = writeln!(
                            md,
                            "- `{}` {} {} {}: error: {}",
                            r.suite,
                            r.case,
                            r.backend,
                            r.check,
                            escape(e)
                        );
                    }
                    None => {
                        for o in &r.outputs {
                            let _ = writeln!(md, "- {}", escape(&r.deviation_line(o)));
                        }
                    }
                }
            }
        }
        if !self.not_applicable.is_empty() {
            md += "\n### Not applicable\n\n";
            for n in &self.not_applicable {
                let _ = writeln!(md, "- {}", escape(&na_line(n)));
            }
        }
        md
    }

    /// One self-contained HTML page: the verdict, the per-check table, every deviation
    /// that is not bitwise with its figures, what did not apply, the environment.
    pub fn to_html(&self) -> String {
        let summary = self.summary_line();
        let verdict = self.verdict.name().to_uppercase();
        let mut out = head(&format!("parity invariance: {verdict} · {summary}"), "");
        let _ = write!(
            out,
            "<header class=\"banner {}\">\n<h1>parity invariance: {verdict}</h1>\n<p class=\"summary\">{}</p>\n</header>\n",
            self.verdict.name(),
            html(&summary)
        );
        out += "<h2>Checks</h2>\n<table>\n";
        header(
            &mut out,
            &[
                "suite",
                "backend",
                "check",
                "bitwise",
                "within",
                "out",
                "errors",
                "largest deviation",
            ],
        );
        for row in self.by_check() {
            out += "<tr>";
            cell(&mut out, row.suite, false);
            cell(&mut out, row.backend, false);
            cell(&mut out, row.check, false);
            for n in row.counts {
                cell(&mut out, &n.to_string(), true);
            }
            cell(&mut out, &row.largest, false);
            out += "</tr>\n";
        }
        out += "</table>\n";
        let notable = self.not_bitwise();
        if !notable.is_empty() {
            out += "<h2>Not bitwise</h2>\n<table>\n";
            header(
                &mut out,
                &[
                    "suite",
                    "case",
                    "backend",
                    "check",
                    "output",
                    "outcome",
                    "variant",
                    "max abs",
                    "max rel",
                    "tolerance used",
                    "worst",
                    "reference",
                    "variant value",
                ],
            );
            for r in notable {
                if let Some(e) = &r.error {
                    out += "<tr>";
                    for v in [r.suite.as_str(), &r.case, &r.backend, r.check] {
                        cell(&mut out, v, false);
                    }
                    let _ = writeln!(
                        out,
                        "<td colspan=\"9\">{} {}</td></tr>",
                        label("error", "error"),
                        html(e)
                    );
                    continue;
                }
                for o in &r.outputs {
                    let c = &o.comparison;
                    let (e, a) = num_pair(c.expected, c.actual);
                    out += "<tr>";
                    for v in [r.suite.as_str(), &r.case, &r.backend, r.check, &o.name] {
                        cell(&mut out, v, false);
                    }
                    let class = match o.outcome {
                        Outcome::Out => "fail",
                        _ => "pass",
                    };
                    let _ = write!(out, "<td>{}</td>", label(class, o.outcome.name()));
                    cell(
                        &mut out,
                        &format!("{} vs {}", o.variant, r.reference),
                        false,
                    );
                    cell(&mut out, &num(Some(c.max_abs_err)), true);
                    cell(&mut out, &num(Some(c.max_rel_err)), true);
                    cell(&mut out, &share(c.tolerance_used), true);
                    cell(&mut out, &index(&c.worst_index), false);
                    cell(&mut out, &e, true);
                    cell(&mut out, &a, true);
                    out += "</tr>\n";
                }
            }
            out += "</table>\n";
        }
        if !self.not_applicable.is_empty() {
            out += "<h2>Not applicable</h2>\n<ul>\n";
            for n in &self.not_applicable {
                let _ = writeln!(out, "<li>{}</li>", html(&na_line(n)));
            }
            out += "</ul>\n";
        }
        environment(&mut out, &self.environment);
        out += "</body>\n</html>\n";
        out
    }

    /// One row per suite, backend and check, in report order.
    fn by_check(&self) -> Vec<CheckRow<'_>> {
        let mut groups: Vec<(&str, &str, &str, Vec<&CheckResult>)> = Vec::new();
        for r in &self.results {
            match groups
                .iter_mut()
                .find(|(s, b, c, _)| *s == r.suite && *b == r.backend && *c == r.check)
            {
                Some(g) => g.3.push(r),
                None => groups.push((&r.suite, &r.backend, r.check, vec![r])),
            }
        }
        groups
            .into_iter()
            .map(|(suite, backend, check, rs)| {
                let count = |o: Option<Outcome>| rs.iter().filter(|r| r.outcome == o).count();
                CheckRow {
                    suite,
                    backend,
                    check,
                    counts: [
                        count(Some(Outcome::Bitwise)),
                        count(Some(Outcome::Within)),
                        count(Some(Outcome::Out)),
                        count(None),
                    ],
                    largest: largest(&rs),
                }
            })
            .collect()
    }

    /// The results that are not bitwise (within, out or errors), in report order.
    fn not_bitwise(&self) -> Vec<&CheckResult> {
        self.results
            .iter()
            .filter(|r| r.outcome != Some(Outcome::Bitwise))
            .collect()
    }
}

/// A suite × backend × check in the Markdown and HTML tables.
struct CheckRow<'a> {
    suite: &'a str,
    backend: &'a str,
    check: &'a str,
    /// Results bitwise, within, out, errors.
    counts: [usize; 4],
    /// The largest deviation, described.
    largest: String,
}

/// A suite × backend in JUnit.
struct Group<'a> {
    suite: &'a str,
    backend: &'a str,
    results: Vec<&'a CheckResult>,
    not_applicable: Vec<&'a NotApplicable>,
}

/// The largest deviation among results, `-` when all are bitwise or none compared.
fn largest(rs: &[&CheckResult]) -> String {
    rs.iter()
        .flat_map(|r| r.outputs.iter().map(move |o| (r, o)))
        .filter(|(_, o)| o.outcome != Outcome::Bitwise)
        .max_by(|(_, a), (_, b)| {
            let u = |o: &super::report::OutputDeviation| {
                o.comparison.tolerance_used.unwrap_or(f64::INFINITY)
            };
            a.outcome.cmp(&b.outcome).then(u(a).total_cmp(&u(b)))
        })
        .map_or("-".to_string(), |(r, o)| {
            format!(
                "{} {} at {} ({}): max abs {}, {} of tolerance",
                r.case,
                o.name,
                o.variant,
                o.outcome.name(),
                num(Some(o.comparison.max_abs_err)),
                share(o.comparison.tolerance_used)
            )
        })
}

/// A check that did not apply, in one line.
fn na_line(n: &NotApplicable) -> String {
    format!(
        "{} on {}{}: {}",
        n.check,
        n.backend,
        n.suite
            .as_deref()
            .map_or(String::new(), |s| format!(" ({s})")),
        n.reason
    )
}
