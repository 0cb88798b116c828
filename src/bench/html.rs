//! `parity bench --format html`: the bench report as one self-contained HTML5 page
//! (inline CSS and SVG, no script, nothing loaded from elsewhere), in the style of the
//! check report's page ([`crate::report::html`], whose style sheet, table and
//! environment helpers it uses).
//!
//! Top to bottom: a banner with the summary line (coloured by the baseline verdict
//! when there is one); the summary table, one row per result; per model × scenario, the
//! latency histogram (log-spaced bins, share of queries) and the percentile curve (one
//! line per result), the throughput per batch size when the offline scenario ran
//! several, and for `--find-max-qps` the p99 latency of every rate tried against the
//! bound; the server statistics; the baseline gate; the environment.
//!
//! Every piece of report text goes through [`html`].

use super::gate::BaselineCheck;
use super::report::{mib, BenchReport, BenchResult, Scenario};
use crate::report::html::{cell, environment, head, header, label};
use crate::report::markdown::html;
use crate::report::text::num;
use std::fmt::Write as _;

/// What the bench page adds to the check report's style sheet.
const CSS: &str = ".info{background:#0969da}
.wide{overflow-x:auto}.wide table{font-size:12px}.wide td{white-space:nowrap}
.wide td:last-child{white-space:normal;min-width:12em}
.charts{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
figure{max-width:460px}
svg .grid{stroke:#eaeef2}svg .axis{stroke:#59636e}svg .step{stroke:#8c959f;fill:none}
";

/// Series colours, one per result in a chart, in order.
const COLOURS: [&str; 8] = [
    "#0969da", "#d1242f", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#6e7781",
];

/// Renders the report as one HTML document.
pub fn render(report: &BenchReport) -> String {
    let results = &report.results;
    let models = distinct(results.iter().map(|r| r.model_name.as_str()));
    let backends = distinct(results.iter().map(|r| r.backend.as_str()));
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    let mut line = format!(
        "{} result{} · {} on {} · {errors} error{}",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        models.join(", "),
        backends.join(", "),
        if errors == 1 { "" } else { "s" },
    );
    let class = match &report.baseline {
        _ if errors > 0 => "error",
        Some(b) if b.fails() => "fail",
        Some(_) => "pass",
        None => "info",
    };
    if let Some(b) = &report.baseline {
        let verdict = if b.regression {
            "REGRESSION"
        } else if b.fails() {
            "FAIL (not re-measured)"
        } else {
            "no regression"
        };
        let _ = write!(line, " · {verdict} against {}", b.file);
    }
    let mut out = head(&format!("parity bench: {line}"), CSS);
    let _ = write!(
        out,
        "<header class=\"banner {class}\">\n<h1>parity bench</h1>\n<p class=\"summary\">{}</p>\n</header>\n",
        html(&line)
    );
    summary_table(&mut out, results);
    for (model, scenario, group) in groups(results) {
        charts(&mut out, model, scenario, &group);
    }
    server_table(&mut out, results);
    generate_table(&mut out, results);
    if let Some(b) = &report.baseline {
        gate(&mut out, b);
    }
    environment(&mut out, &report.environment);
    out.push_str("</body>\n</html>\n");
    out
}

/// The distinct values of `items`, in order of first appearance.
fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// The results by model name × scenario, in order of first appearance.
fn groups(results: &[BenchResult]) -> Vec<(&str, Scenario, Vec<&BenchResult>)> {
    let mut groups: Vec<(&str, Scenario, Vec<&BenchResult>)> = Vec::new();
    for r in results {
        match groups
            .iter_mut()
            .find(|(m, s, _)| *m == r.model_name && *s == r.scenario)
        {
            Some(g) => g.2.push(r),
            None => groups.push((&r.model_name, r.scenario, vec![r])),
        }
    }
    groups
}

/// A rate (queries or samples per second) with one decimal.
fn rate(v: f64) -> String {
    format!("{v:.1}")
}

fn summary_table(out: &mut String, results: &[BenchResult]) {
    out.push_str("<h2>Summary</h2>\n");
    if results.is_empty() {
        out.push_str("<p>No results.</p>\n");
        return;
    }
    out.push_str("<div class=\"wide\"><table>\n");
    header(
        out,
        &[
            "model",
            "backend",
            "scenario",
            "batch",
            "concurrency",
            "queries",
            "p50 (ms)",
            "p90 (ms)",
            "p99 (ms)",
            "p99.9 (ms)",
            "mean ± sd (ms)",
            "inferences/s",
            "samples/s",
            "slowdown vs first",
            "stable",
            "peak RSS",
            "error",
        ],
    );
    for r in results {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td>",
            html(&r.model_name),
            html(&r.backend)
        );
        cell(out, r.scenario.name(), false);
        for n in [r.batch, r.concurrency, r.queries] {
            cell(out, &n.to_string(), true);
        }
        match (&r.error, r.latency_ms) {
            (None, Some(l)) => {
                for v in [l.p50, l.p90, l.p99, l.p999] {
                    cell(out, &num(Some(v)), true);
                }
                let spread = format!("{} ± {}", num(Some(l.mean)), num(Some(l.stddev)));
                cell(out, &spread, true);
                cell(out, &rate(r.throughput_per_s), true);
                cell(out, &rate(r.samples_per_s), true);
                let slowdown = r
                    .slowdown_vs_first
                    .map_or("-".into(), |s| format!("{s:.2}×"));
                cell(out, &slowdown, true);
                cell(out, &r.stability_label(), false);
                cell(out, &mib(r.peak_rss_bytes), true);
            }
            _ => {
                for _ in 0..10 {
                    cell(out, "-", true);
                }
            }
        }
        cell(out, r.error.as_deref().unwrap_or("-"), false);
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
}

/// The charts of one model × scenario.
fn charts(out: &mut String, model: &str, scenario: Scenario, group: &[&BenchResult]) {
    let _ = writeln!(
        out,
        "<h2><code>{}</code> · {}</h2>\n<div class=\"charts\">",
        html(model),
        scenario.name()
    );
    let batches = distinct_batches(group);
    let series: Vec<(String, &BenchResult)> = group
        .iter()
        .filter(|r| r.error.is_none() && r.distribution.is_some())
        .map(|r| {
            let name = if batches.len() > 1 {
                format!("{} batch {}", r.backend, r.batch)
            } else {
                r.backend.clone()
            };
            (name, *r)
        })
        .collect();
    if series.is_empty() {
        out.push_str("<p>No latency was measured.</p>\n");
    } else {
        figure(
            out,
            &histogram(&series),
            "Latency histogram: share of each run's queries per log-spaced bin.",
        );
        figure(
            out,
            &percentile_curve(&series),
            "Latency by percentile (per query, batch included).",
        );
    }
    if scenario == Scenario::Offline && batches.len() > 1 {
        figure(
            out,
            &throughput(group, &batches),
            "Offline throughput per batch size.",
        );
    }
    for r in group {
        let (Some(steps), Some(server)) = (&r.search, &r.server) else {
            continue;
        };
        if steps.is_empty() {
            continue;
        }
        let caption = format!(
            "--find-max-qps on {}: p99 latency of each offered rate; highest rate within the bound: {} queries/s.",
            r.backend,
            rate(server.target_qps)
        );
        figure(out, &search_chart(r), &caption);
    }
    out.push_str("</div>\n");
}

/// The batch sizes of `group`'s results, ascending.
fn distinct_batches(group: &[&BenchResult]) -> Vec<usize> {
    let mut batches: Vec<usize> = group.iter().map(|r| r.batch).collect();
    batches.sort_unstable();
    batches.dedup();
    batches
}

/// `svg` with `caption` (escaped).
fn figure(out: &mut String, svg: &str, caption: &str) {
    let _ = writeln!(
        out,
        "<figure>{svg}<figcaption>{}</figcaption></figure>",
        html(caption)
    );
}

/// Width and height of every chart, px.
const W: f64 = 440.0;
const H: f64 = 250.0;
/// Room left of the plot (tick labels, y label), right of it, and below it.
const LEFT: f64 = 58.0;
const RIGHT: f64 = 14.0;
const BOTTOM: f64 = 40.0;

/// The data range an axis shows, linear or logarithmic.
#[derive(Debug, Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    /// `lo..hi`, widened when empty, and `0..1` when not finite.
    fn linear(lo: f64, hi: f64) -> Axis {
        let (lo, hi) = match (lo.is_finite() && hi.is_finite(), hi - lo) {
            (false, _) => (0.0, 1.0),
            (true, span) if span > 1e-12 * hi.abs().max(lo.abs()) => (lo, hi),
            (true, _) => {
                let pad = (hi.abs() * 0.1).max(1e-3);
                (if lo == 0.0 { 0.0 } else { lo - pad }, hi + pad)
            }
        };
        Axis { lo, hi, log: false }
    }

    /// `lo..hi` on a log scale (positive; widened when empty).
    fn log(lo: f64, hi: f64) -> Axis {
        if !(lo.is_finite() && hi.is_finite() && hi > 0.0) {
            return Axis::linear(lo, hi);
        }
        let lo = lo.max(hi * 1e-9);
        let (lo, hi) = if hi > lo * 1.0001 {
            (lo, hi)
        } else {
            (lo / 1.5, hi * 1.5)
        };
        Axis { lo, hi, log: true }
    }

    /// For latencies from `lo` to `hi`: logarithmic when they span more than a factor of
    /// 20, else linear from 0.
    fn latency(lo: f64, hi: f64) -> Axis {
        if lo > 0.0 && hi / lo > 20.0 {
            Axis::log(lo / 1.2, hi * 1.2)
        } else {
            Axis::linear(0.0, hi * 1.08)
        }
    }

    /// Where `v` lies, 0 at `lo` and 1 at `hi`, clamped.
    fn frac(&self, v: f64) -> f64 {
        let f = if self.log {
            (v.max(self.lo).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        if f.is_nan() {
            0.0
        } else {
            f.clamp(0.0, 1.0)
        }
    }

    /// Tick values: 1-2-5 steps (per decade on a log axis), labelled.
    fn ticks(&self) -> Vec<(f64, String)> {
        let mut values = Vec::new();
        if self.log {
            let (d0, d1) = (
                self.lo.log10().floor() as i32,
                self.hi.log10().ceil() as i32,
            );
            for d in d0..=d1 {
                for m in [1.0, 2.0, 5.0] {
                    let v = m * 10f64.powi(d);
                    if v >= self.lo && v <= self.hi {
                        values.push(v);
                    }
                }
            }
            if values.len() > 8 {
                values.retain(|v| (v.log10().fract()).abs() < 1e-9);
            }
        }
        if values.len() < 3 {
            // The smallest 1-2-5 step that gives at most 6 intervals.
            let span = self.hi - self.lo;
            let mag = 10f64.powf((span / 6.0).log10().floor());
            let step = [1.0, 2.0, 5.0, 10.0]
                .into_iter()
                .map(|m| m * mag)
                .find(|&s| span / s <= 6.0)
                .unwrap_or(10.0 * mag);
            let (first, last) = (
                (self.lo / step).ceil() as i64,
                (self.hi / step).floor() as i64,
            );
            values = (first..=last).map(|i| i as f64 * step).collect();
        }
        values.into_iter().map(|v| (v, tick_label(v))).collect()
    }
}

/// A tick's label: whole numbers from 10 000 up in full, others as in the tables.
fn tick_label(v: f64) -> String {
    if v.abs() >= 1e4 {
        format!("{v:.0}")
    } else {
        num(Some(v))
    }
}

/// How a legend entry is drawn.
enum Swatch {
    /// A square of this fill colour.
    Colour(&'static str),
    /// A dot of this CSS class.
    Dot(&'static str),
    /// A dashed line (class `bound`).
    Dashed,
}

/// The legend at the top of a chart, wrapped to its width; returns the SVG and the
/// height it takes.
fn legend(entries: &[(Swatch, String)]) -> (String, f64) {
    let mut s = String::new();
    let (mut x, mut y) = (LEFT, 12.0);
    for (swatch, text) in entries {
        let width = 20.0 + 6.2 * text.chars().count() as f64 + 12.0;
        if x > LEFT && x + width > W - RIGHT {
            (x, y) = (LEFT, y + 14.0);
        }
        let _ = match swatch {
            Swatch::Colour(c) => write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"10\" fill=\"{c}\"/>",
                y - 9.0
            ),
            Swatch::Dot(class) => write!(
                s,
                "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"/>",
                x + 6.0,
                y - 4.0
            ),
            Swatch::Dashed => write!(
                s,
                "<line class=\"bound\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
                y - 4.0,
                x + 14.0,
                y - 4.0
            ),
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{y:.1}\">{}</text>",
            x + 18.0,
            html(text)
        );
        x += width;
    }
    (s, y + 10.0)
}

/// A chart's frame: two axes, the plot area below the legend.
struct Plot {
    x: Axis,
    y: Axis,
    top: f64,
}

impl Plot {
    /// The x pixel of `v`.
    fn px(&self, v: f64) -> f64 {
        LEFT + self.x.frac(v) * (W - LEFT - RIGHT)
    }

    /// The y pixel of `v`.
    fn py(&self, v: f64) -> f64 {
        H - BOTTOM - self.y.frac(v) * (H - BOTTOM - self.top)
    }

    /// Opens the `<svg>` of class `chart kind` with the legend, grid, axes, tick labels
    /// at `x_ticks` and the y axis's own, and the axis labels (escaped).
    fn open(
        &self,
        kind: &str,
        legend: &str,
        x_ticks: &[(f64, String)],
        x_label: &str,
        y_label: &str,
    ) -> String {
        let mut s = format!(
            "<svg class=\"chart {kind}\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">{legend}"
        );
        let (left, right, bottom) = (LEFT, W - RIGHT, H - BOTTOM);
        for (v, text) in self.y.ticks() {
            let y = self.py(v);
            let _ = write!(
                s,
                "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                left - 4.0,
                y + 3.5,
                html(&text)
            );
        }
        for (v, text) in x_ticks {
            let x = self.px(*v);
            let _ = write!(
                s,
                "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{bottom}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                bottom + 4.0,
                bottom + 14.0,
                html(text)
            );
        }
        let _ = write!(
            s,
            "<line class=\"axis\" x1=\"{left}\" y1=\"{:.1}\" x2=\"{left}\" y2=\"{bottom}\"/>\
             <line class=\"axis\" x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text transform=\"rotate(-90)\" x=\"{:.1}\" y=\"12\" text-anchor=\"middle\">{}</text>",
            self.top,
            (left + right) / 2.0,
            H - 6.0,
            html(x_label),
            -(self.top + bottom) / 2.0,
            html(y_label),
        );
        s
    }
}

/// The legend of `series`, one colour each.
fn series_legend(series: &[(String, &BenchResult)]) -> (String, f64) {
    let entries: Vec<(Swatch, String)> = series
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (Swatch::Colour(COLOURS[i % COLOURS.len()]), name.clone()))
        .collect();
    legend(&entries)
}

/// The histograms of `series` overlaid as filled step outlines on one log-latency axis,
/// heights the share of each run's queries, so runs of different lengths compare.
fn histogram(series: &[(String, &BenchResult)]) -> String {
    let dists: Vec<_> = series
        .iter()
        .filter_map(|(name, r)| r.distribution.as_ref().map(|d| (name, d)))
        .collect();
    let edges = dists.iter().flat_map(|(_, d)| d.edges_ms.iter().copied());
    let (lo, hi) = edges
        .filter(|e| e.is_finite())
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), e| {
            (lo.min(e), hi.max(e))
        });
    let share = |d: &super::stats::Distribution, c: u64| {
        100.0 * c as f64 / d.counts.iter().sum::<u64>().max(1) as f64
    };
    let top_share = dists
        .iter()
        .flat_map(|(_, d)| d.counts.iter().map(|&c| share(d, c)))
        .fold(0.0f64, f64::max);
    let (legend, top) = series_legend(series);
    let plot = Plot {
        x: Axis::log(lo, hi),
        y: Axis::linear(0.0, (top_share * 1.1).max(1.0)),
        top: top + 6.0,
    };
    let mut s = plot.open(
        "hist",
        &legend,
        &plot.x.ticks(),
        "latency (ms, log scale)",
        "share of queries (%)",
    );
    for (i, (name, d)) in dists.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let base = plot.py(0.0);
        let mut path = String::new();
        for (j, &c) in d.counts.iter().enumerate() {
            let (Some(&a), Some(&b)) = (d.edges_ms.get(j), d.edges_ms.get(j + 1)) else {
                break;
            };
            let y = plot.py(share(d, c));
            if j == 0 {
                let _ = write!(path, "M{:.1},{base:.1}", plot.px(a));
            }
            let _ = write!(path, "L{:.1},{y:.1}H{:.1}", plot.px(a), plot.px(b));
            if j + 1 == d.counts.len() {
                let _ = write!(path, "L{:.1},{base:.1}Z", plot.px(b));
            }
        }
        let _ = write!(
            s,
            "<path d=\"{path}\" fill=\"{colour}\" fill-opacity=\"0.18\" stroke=\"{colour}\" stroke-width=\"1.5\"><title>{}</title></path>",
            html(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// Position on the percentile axis: the number of nines, −log10(1 − q), so the tail
/// gets room; the maximum (q = 1) is drawn half a nine after 99.9.
fn nines(q: f64) -> f64 {
    if q >= 1.0 {
        3.5
    } else {
        (-(1.0 - q.max(0.0)).log10()).min(3.5)
    }
}

/// Latency against percentile, one line per series.
fn percentile_curve(series: &[(String, &BenchResult)]) -> String {
    let curves: Vec<(&String, &[[f64; 2]])> = series
        .iter()
        .filter_map(|(name, r)| {
            r.distribution
                .as_ref()
                .map(|d| (name, d.percentiles.as_slice()))
        })
        .collect();
    let values = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p[1]))
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (legend, top) = series_legend(series);
    let plot = Plot {
        x: Axis::linear(0.0, 3.5),
        y: Axis::latency(lo, hi),
        top: top + 6.0,
    };
    let x_ticks: Vec<(f64, String)> = [(0.0, "0"), (0.5, "50"), (0.9, "90")]
        .into_iter()
        .chain([(0.99, "99"), (0.999, "99.9"), (1.0, "max")])
        .map(|(q, text)| (nines(q), text.to_string()))
        .collect();
    let y_label = if plot.y.log {
        "latency (ms, log scale)"
    } else {
        "latency (ms)"
    };
    let mut s = plot.open("pct", &legend, &x_ticks, "percentile (%)", y_label);
    for (i, (name, curve)) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = curve
            .iter()
            .filter(|p| p[1].is_finite())
            .map(|p| format!("{:.1},{:.1}", plot.px(nines(p[0])), plot.py(p[1])))
            .collect();
        let _ = write!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\"><title>{}</title></polyline>",
            points.join(" "),
            html(name)
        );
        for p in curve.iter().filter(|p| p[1].is_finite()) {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{colour}\"><title>{} p{}: {} ms</title></circle>",
                plot.px(nines(p[0])),
                plot.py(p[1]),
                html(name),
                num(Some(p[0] * 100.0)),
                num(Some(p[1]))
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Offline: samples/s per batch size, one bar per backend.
fn throughput(group: &[&BenchResult], batches: &[usize]) -> String {
    let ok: Vec<&BenchResult> = group
        .iter()
        .copied()
        .filter(|r| r.error.is_none())
        .collect();
    let backends = distinct(ok.iter().map(|r| r.backend.as_str()));
    let entries: Vec<(Swatch, String)> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| (Swatch::Colour(COLOURS[i % COLOURS.len()]), b.to_string()))
        .collect();
    let (legend, top) = legend(&entries);
    let best = ok
        .iter()
        .map(|r| r.samples_per_s)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let plot = Plot {
        x: Axis::linear(0.0, batches.len() as f64),
        y: Axis::linear(0.0, best * 1.1),
        top: top + 6.0,
    };
    let x_ticks: Vec<(f64, String)> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| (i as f64 + 0.5, b.to_string()))
        .collect();
    let mut s = plot.open(
        "batch",
        &legend,
        &x_ticks,
        "batch size",
        "throughput (samples/s)",
    );
    let slot = plot.px(1.0) - plot.px(0.0);
    let bar = slot * 0.8 / backends.len().max(1) as f64;
    for r in &ok {
        let (Some(i), Some(j)) = (
            batches.iter().position(|&b| b == r.batch),
            backends.iter().position(|&b| b == r.backend),
        ) else {
            continue;
        };
        let x = plot.px(i as f64) + slot * 0.1 + j as f64 * bar;
        let y = plot.py(r.samples_per_s);
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} batch {}: {} samples/s</title></rect>",
            plot.py(0.0) - y,
            COLOURS[j % COLOURS.len()],
            html(&r.backend),
            r.batch,
            rate(r.samples_per_s)
        );
    }
    s.push_str("</svg>");
    s
}

/// `--find-max-qps`: p99 latency against offered rate, each step a dot (green within
/// the bound with nothing dropped, red otherwise), the bound dashed.
fn search_chart(r: &BenchResult) -> String {
    let mut steps: Vec<_> = r
        .search
        .iter()
        .flatten()
        .filter(|s| s.target_qps.is_finite() && s.p99_ms.is_finite())
        .collect();
    steps.sort_by(|a, b| a.target_qps.total_cmp(&b.target_qps));
    let bound = r.server.as_ref().and_then(|s| s.latency_bound_ms);
    let latencies = steps.iter().map(|s| s.p99_ms).chain(bound);
    let (lo, hi) = latencies.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let fastest = steps.iter().map(|s| s.target_qps).fold(0.0f64, f64::max);
    let mut entries = vec![
        (Swatch::Dot("bar-ok"), "within bound".to_string()),
        (Swatch::Dot("bar-bad"), "over bound or dropped".to_string()),
    ];
    if let Some(b) = bound {
        entries.push((Swatch::Dashed, format!("p99 bound {} ms", num(Some(b)))));
    }
    let (legend, top) = legend(&entries);
    let plot = Plot {
        x: Axis::linear(0.0, fastest * 1.05),
        y: Axis::latency(lo, hi),
        top: top + 6.0,
    };
    let y_label = if plot.y.log {
        "p99 latency (ms, log scale)"
    } else {
        "p99 latency (ms)"
    };
    let mut s = plot.open(
        "search",
        &legend,
        &plot.x.ticks(),
        "offered load (queries/s)",
        y_label,
    );
    if let Some(b) = bound {
        let y = plot.py(b);
        let _ = write!(
            s,
            "<line class=\"bound\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\"/>",
            W - RIGHT
        );
    }
    let points: Vec<String> = steps
        .iter()
        .map(|st| format!("{:.1},{:.1}", plot.px(st.target_qps), plot.py(st.p99_ms)))
        .collect();
    let _ = write!(
        s,
        "<polyline class=\"step\" points=\"{}\"/>",
        points.join(" ")
    );
    for st in &steps {
        let _ = write!(
            s,
            "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>offered {} q/s, achieved {} q/s: p99 {} ms, dropped {}</title></circle>",
            if st.ok { "bar-ok" } else { "bar-bad" },
            plot.px(st.target_qps),
            plot.py(st.p99_ms),
            rate(st.target_qps),
            rate(st.achieved_qps),
            num(Some(st.p99_ms)),
            st.dropped
        );
    }
    s.push_str("</svg>");
    s
}

/// The server scenario's own figures, one row per result that has them.
fn server_table(out: &mut String, results: &[BenchResult]) {
    let with: Vec<_> = results
        .iter()
        .filter_map(|r| r.server.as_ref().map(|s| (r, s)))
        .collect();
    if with.is_empty() {
        return;
    }
    out.push_str("<h2>Server</h2>\n<table>\n");
    header(
        out,
        &[
            "model",
            "backend",
            "offered (queries/s)",
            "achieved (queries/s)",
            "queueing p50 (ms)",
            "queueing p99 (ms)",
            "dropped",
            "late",
            "p99 bound (ms)",
        ],
    );
    for (r, s) in with {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td>",
            html(&r.model_name),
            html(&r.backend)
        );
        cell(out, &rate(s.target_qps), true);
        cell(out, &rate(s.achieved_qps), true);
        cell(out, &num(s.queueing_ms.map(|q| q.p50)), true);
        cell(out, &num(s.queueing_ms.map(|q| q.p99)), true);
        cell(out, &s.dropped.to_string(), true);
        cell(out, &s.late.map_or("-".into(), |n| n.to_string()), true);
        cell(out, &num(s.latency_bound_ms), true);
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// The generate scenario's own figures: time to first token, inter-token latency,
/// tokens/s.
fn generate_table(out: &mut String, results: &[BenchResult]) {
    let with: Vec<_> = results
        .iter()
        .filter_map(|r| r.generate.as_ref().map(|g| (r, g)))
        .collect();
    if with.is_empty() {
        return;
    }
    out.push_str("<h2>Generation</h2>\n<table>\n");
    header(
        out,
        &[
            "model",
            "backend",
            "prompt tokens",
            "new tokens",
            "first token p50 (ms)",
            "first token p99 (ms)",
            "inter-token p50 (ms)",
            "inter-token p99 (ms)",
            "tokens/s",
        ],
    );
    for (r, g) in with {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td>",
            html(&r.model_name),
            html(&r.backend)
        );
        cell(out, &g.prompt_len.to_string(), true);
        cell(out, &g.new_tokens.to_string(), true);
        cell(out, &num(g.ttft_ms.map(|l| l.p50)), true);
        cell(out, &num(g.ttft_ms.map(|l| l.p99)), true);
        cell(out, &num(g.inter_token_ms.map(|l| l.p50)), true);
        cell(out, &num(g.inter_token_ms.map(|l| l.p99)), true);
        cell(out, &rate(g.tokens_per_s), true);
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// The gate against `--baseline`: the rule, each comparison, unmatched results and
/// warnings.
fn gate(out: &mut String, b: &BaselineCheck) {
    let (class, word) = if b.regression {
        ("fail", "REGRESSION")
    } else if b.fails() {
        ("fail", "FAIL: not re-measured")
    } else {
        ("pass", "no regression")
    };
    let _ = writeln!(
        out,
        "<h2>Baseline gate {}</h2>\n<p>Against <code>{}</code>: a regression is a slowdown above max({}%, {} × noise).</p>",
        label(class, word),
        html(&b.file),
        num(Some(b.threshold * 100.0)),
        num(Some(b.noise_multiple))
    );
    if !b.comparisons.is_empty() {
        out.push_str("<table>\n");
        header(
            out,
            &[
                "result", "metric", "baseline", "current", "slowdown", "noise", "limit", "verdict",
            ],
        );
        let pct = |v: f64| format!("{:+.1}%", v * 100.0);
        for c in &b.comparisons {
            let value = |v: f64| {
                if c.metric.ends_with("_ms") {
                    num(Some(v))
                } else {
                    rate(v)
                }
            };
            out.push_str("<tr>");
            let _ = write!(out, "<td><code>{}</code></td>", html(&c.key));
            cell(out, &c.metric, false);
            cell(out, &value(c.baseline), true);
            cell(out, &value(c.current), true);
            cell(out, &pct(c.slowdown), true);
            cell(out, &format!("{:.1}%", c.noise * 100.0), true);
            cell(out, &format!("{:.1}%", c.limit * 100.0), true);
            let verdict = if c.regression {
                label("fail", "REGRESSION")
            } else {
                label("pass", "ok")
            };
            let _ = writeln!(out, "<td>{verdict}</td></tr>");
        }
        out.push_str("</table>\n");
    }
    for (title, items) in [
        ("Not in the baseline", &b.unmatched),
        (
            if b.strict {
                "In the baseline, not re-measured (a failure: --strict)"
            } else {
                "In the baseline, not re-measured"
            },
            &b.not_measured,
        ),
        ("Warnings", &b.warnings),
    ] {
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "<p>{title}:</p>\n<ul>");
        for item in items {
            let _ = writeln!(out, "<li>{}</li>", html(item));
        }
        out.push_str("</ul>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::gate::GateEntry;
    use crate::bench::report::tests::result;
    use crate::bench::report::{SearchStep, ServerStats, BENCH_SCHEMA};
    use crate::report::Environment;

    fn report(results: Vec<BenchResult>) -> BenchReport {
        BenchReport {
            schema: BENCH_SCHEMA.into(),
            environment: Environment::detect(Vec::new()),
            results,
            baseline: None,
        }
    }

    /// Two models, two backends each, single-stream.
    fn two_models() -> Vec<BenchResult> {
        let mut cnn = vec![result("ort-cpu", 3.0), result("tract-cpu", 4.5)];
        for r in &mut cnn {
            r.model_name = "cnn".into();
        }
        cnn[1].slowdown_vs_first = Some(1.5);
        let mut all = vec![result("ort-cpu", 1.0), result("tract-cpu", 2.0)];
        all.extend(cnn);
        all
    }

    #[test]
    fn one_histogram_and_one_curve_per_model_and_scenario() {
        let page = render(&report(two_models()));
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(page.ends_with("</body>\n</html>\n"));
        assert_eq!(page.matches("<svg").count(), 4, "{page}");
        assert_eq!(page.matches("<svg class=\"chart hist\"").count(), 2);
        assert_eq!(page.matches("<svg class=\"chart pct\"").count(), 2);
        assert!(page.contains("<h2><code>cnn</code> · single-stream</h2>"));
        assert!(
            page.contains("<title>tract-cpu</title></polyline>"),
            "{page}"
        );
        assert!(page.contains("<td class=\"n\">1.50×</td>"), "{page}");
        assert!(page.contains("<td>yes (0.8%)</td>"), "{page}");
        assert!(page.contains("<td class=\"n\">64 MiB</td>"), "{page}");
        assert!(page.contains(">latency (ms, log scale)</text>"));
        assert!(page.contains(">percentile (%)</text>"));
        assert!(page.contains("<header class=\"banner info\">"));
    }

    #[test]
    fn text_is_escaped() {
        let mut results = two_models();
        results[0].model_name = "<script>alert(1)</script>".into();
        results[1].error = Some("bad <op> & \"more\"".into());
        let page = render(&report(results));
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>"));
        assert!(page.contains("<td>bad &lt;op&gt; &amp; &quot;more&quot;</td>"));
        assert!(page.contains("<header class=\"banner error\">"));
    }

    #[test]
    fn batch_chart_only_with_several_batch_sizes() {
        let offline = |backend: &str, batch: usize, p50: f64| {
            let mut r = result(backend, p50);
            r.scenario = Scenario::Offline;
            r.batch = batch;
            r
        };
        let one = render(&report(vec![offline("ort-cpu", 4, 1.0)]));
        assert!(!one.contains("chart batch"), "{one}");
        let page = render(&report(vec![
            offline("ort-cpu", 1, 1.0),
            offline("ort-cpu", 4, 2.0),
            offline("tract-cpu", 1, 1.5),
            offline("tract-cpu", 4, 3.0),
        ]));
        assert_eq!(page.matches("<svg class=\"chart batch\"").count(), 1);
        assert_eq!(page.matches("<svg class=\"chart hist\"").count(), 1);
        assert!(page.contains("<title>tract-cpu batch 4: 1333.3 samples/s</title>"));
        assert!(page.contains(">ort-cpu batch 1</text>"), "{page}");
        assert!(page.contains(">throughput (samples/s)</text>"));
    }

    #[test]
    fn search_chart_only_with_search_steps() {
        let server = |search: Option<Vec<SearchStep>>| {
            let mut r = result("ort-cpu", 1.0);
            r.scenario = Scenario::Server;
            r.server = Some(ServerStats {
                target_qps: 400.0,
                achieved_qps: 398.5,
                queueing_ms: r.latency_ms,
                dropped: 0,
                late: Some(3),
                latency_bound_ms: Some(5.0),
            });
            r.search = search;
            r
        };
        let fixed = render(&report(vec![server(None)]));
        assert!(!fixed.contains("chart search"));
        assert!(fixed.contains("<h2>Server</h2>"));
        assert!(fixed.contains("<td class=\"n\">398.5</td>"), "{fixed}");
        let step = |q: f64, p99: f64, ok: bool| SearchStep {
            target_qps: q,
            achieved_qps: q * 0.99,
            p99_ms: p99,
            dropped: 0,
            ok,
        };
        let steps = vec![step(100.0, 1.0, true), step(800.0, 40.0, false)];
        let page = render(&report(vec![server(Some(steps))]));
        assert_eq!(page.matches("<svg class=\"chart search\"").count(), 1);
        assert_eq!(page.matches("<circle class=\"bar-bad\" cx").count(), 2);
        assert!(page.contains("<line class=\"bound\" x1=\"58\""), "{page}");
        assert!(page.contains(">p99 bound 5 ms</text>"));
        assert!(page.contains(">offered load (queries/s)</text>"));
        assert!(page.contains("highest rate within the bound: 400.0 queries/s"));
    }

    #[test]
    fn baseline_gate_and_nothing_external() {
        let mut r = report(two_models());
        r.baseline = Some(BaselineCheck {
            file: "base<1>.json".into(),
            regression: true,
            threshold: 0.05,
            noise_multiple: 3.0,
            comparisons: vec![GateEntry {
                key: "mlp ort-cpu single-stream batch=4 concurrency=1 threads=1".into(),
                metric: "p50_ms".into(),
                baseline: 1.0,
                current: 1.4,
                slowdown: 0.4,
                noise: 0.01,
                limit: 0.05,
                regression: true,
            }],
            unmatched: vec!["cnn tract-cpu".into()],
            not_measured: Vec::new(),
            strict: false,
            warnings: vec!["CPU differs".into()],
        });
        let page = render(&r);
        assert!(page.contains("<header class=\"banner fail\">"));
        assert!(page.contains("REGRESSION against base&lt;1&gt;.json"));
        assert!(page.contains("<td class=\"n\">+40.0%</td>"), "{page}");
        assert!(page.contains("<span class=\"badge fail\">REGRESSION</span></td></tr>"));
        assert!(page.contains("<li>CPU differs</li>"));
        assert!(page.contains("<li>cnn tract-cpu</li>"));
        assert!(page.contains("<tr><th>gpu</th><td>none</td></tr>"));
        for banned in ["http://", "https://", "<script", "<link", "<img"] {
            assert!(!page.contains(banned), "{banned} in {page}");
        }
    }

    #[test]
    fn axes_tick_in_round_steps() {
        let lin: Vec<f64> = Axis::linear(0.0, 1.08)
            .ticks()
            .iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(lin, [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        let log: Vec<String> = Axis::log(0.03, 12.0)
            .ticks()
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(log, ["0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10"]);
        // A degenerate range still has ticks and finite positions.
        let flat = Axis::log(1.0, 1.0);
        assert!(flat.ticks().len() >= 2 && flat.frac(1.0).is_finite());
        assert_eq!(Axis::linear(f64::NAN, 1.0).frac(0.5), 0.5);
    }
}
