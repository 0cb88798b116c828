//! The bench report model (`parity.bench/v1`, docs/design.md: fields may be added, never
//! removed or renamed) and its text and CSV renderings. A saved report is also a
//! baseline (`--save-baseline`), read back by [`super::baseline`].

use super::gate::BaselineCheck;
use super::stats::{Distribution, LatencyStats, Stability};
use crate::report::style::table;
use crate::report::Environment;
use serde::{Deserialize, Serialize};

/// Schema identifier of bench reports and baselines.
pub const BENCH_SCHEMA: &str = "parity.bench/v1";

/// A whole `parity bench` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub schema: String,
    pub environment: Environment,
    pub results: Vec<BenchResult>,
    /// The gate against `--baseline`, when one was given.
    pub baseline: Option<BaselineCheck>,
}

/// The scenarios of `--scenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// One query at a time (per worker): latency.
    SingleStream,
    /// Back-to-back batches: throughput per batch size.
    Offline,
    /// Poisson arrivals at a rate: latency under load, including queueing.
    Server,
    /// Greedy generations with a KV cache: time to first token, inter-token latency,
    /// tokens/s.
    Generate,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::SingleStream => "single-stream",
            Scenario::Offline => "offline",
            Scenario::Server => "server",
            Scenario::Generate => "generate",
        }
    }
}

/// One model × backend × scenario × batch size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    /// The model or suite as given on the command line.
    pub model: String,
    /// The name results are matched by against a baseline: the file stem, or the
    /// directory name for `model.onnx` and suites (a new version of `models/mlp` is
    /// still `mlp`).
    pub model_name: String,
    pub model_sha256: String,
    pub backend: String,
    pub backend_version: String,
    pub device: String,
    pub scenario: Scenario,
    /// Intra-op threads asked for (`null`: the engine's default).
    pub threads: Option<usize>,
    pub concurrency: usize,
    /// Sessions the workers share (`worker i` uses session `i % sessions`).
    pub sessions: usize,
    /// Samples per query (the leading dim of the inputs).
    pub batch: usize,
    /// Completed queries measured.
    pub queries: usize,
    pub duration_s: f64,
    /// Queries per second.
    pub throughput_per_s: f64,
    /// Samples per second (`throughput_per_s × batch`).
    pub samples_per_s: f64,
    pub stable: bool,
    pub stability: Stability,
    pub latency_ms: Option<LatencyStats>,
    pub distribution: Option<Distribution>,
    /// The maximum duration ended the run before `--min-queries` were measured.
    pub cut_short: bool,
    /// Peak resident memory of the process while this backend loaded and ran the
    /// model (Linux: VmHWM, reset before loading), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Peak device memory on a GPU backend, bytes (`null` on CPU backends): the peak
    /// rise of the device's memory in use while the backend loaded and ran.
    pub gpu_memory_bytes: Option<u64>,
    /// Why `gpu_memory_bytes` is `null` on a GPU backend.
    #[serde(default)]
    pub gpu_memory_note: Option<String>,
    /// This result's p50 latency (offline: samples/s) relative to the first backend's
    /// on the same model, scenario and batch: 1.8 means 1.8× slower.
    pub slowdown_vs_first: Option<f64>,
    /// Server scenario details.
    pub server: Option<ServerStats>,
    /// `--find-max-qps`: every rate tried, in order.
    pub search: Option<Vec<SearchStep>>,
    /// Why this result has no figures (the backend could not load or run the model).
    pub error: Option<String>,
    /// `--verify`: every response checked against the suite's golden outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::verify::VerifyStats>,
    /// The generate scenario: time to first token, inter-token latency, tokens/s (a
    /// query is one whole generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<GenerateStats>,
}

/// What only the generate scenario measures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateStats {
    /// Tokens in each prompt.
    pub prompt_len: usize,
    /// Tokens generated per query.
    pub new_tokens: usize,
    /// Time to first token (the step that reads the prompt), ms.
    pub ttft_ms: Option<LatencyStats>,
    /// Time of every later step (one token each), ms.
    pub inter_token_ms: Option<LatencyStats>,
    /// Generated tokens per second of wall time, over every worker.
    pub tokens_per_s: f64,
}

/// What only the server scenario measures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerStats {
    /// Offered Poisson rate, queries/s.
    pub target_qps: f64,
    /// Completed queries / time from the first arrival to the last completion.
    pub achieved_qps: f64,
    /// Arrival to start, ms.
    pub queueing_ms: Option<LatencyStats>,
    /// Queries that could not start before the run's deadline.
    pub dropped: usize,
    /// Completed queries over `latency_bound_ms` (`null` without a bound).
    pub late: Option<usize>,
    /// `--p99-ms`, when given.
    pub latency_bound_ms: Option<f64>,
}

/// One rate tried by `--find-max-qps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchStep {
    pub target_qps: f64,
    pub achieved_qps: f64,
    pub p99_ms: f64,
    pub dropped: usize,
    /// p99 within the bound and nothing dropped.
    pub ok: bool,
}

impl BenchResult {
    /// The figure a baseline gates on and the ratio between backends uses, with
    /// whether larger is better: p50 latency for single-stream and fixed-rate server,
    /// samples/s for offline, the maximum rate for `--find-max-qps`.
    pub fn headline(&self) -> Option<(&'static str, f64, bool)> {
        if self.search.is_some() {
            return self
                .server
                .as_ref()
                .map(|s| ("max_qps", s.target_qps, true));
        }
        if let Some(g) = &self.generate {
            return Some(("tokens_per_s", g.tokens_per_s, true));
        }
        match self.scenario {
            Scenario::Offline => Some(("samples_per_s", self.samples_per_s, true)),
            _ => self.latency_ms.map(|l| ("p50_ms", l.p50, false)),
        }
    }
}

impl BenchResult {
    /// The STABLE column: `yes (1.2%)` or `NO (15.0%)` with the window spread, or
    /// `cut short`.
    pub fn stability_label(&self) -> String {
        let spread = self.stability.spread * 100.0;
        match (self.stable, self.cut_short) {
            (_, true) => "cut short".to_string(),
            (true, _) => format!("yes ({spread:.1}%)"),
            (false, _) => format!("NO ({spread:.1}%)"),
        }
    }
}

/// A byte count as whole MiB (`64 MiB`), `-` when unknown.
pub(crate) fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
}

/// Renders the text table: one row per result, then server and search details, the
/// baseline verdict and any warnings.
pub fn render_text(report: &BenchReport) -> String {
    let mut rows = vec![[
        "MODEL",
        "BACKEND",
        "SCENARIO",
        "BATCH",
        "CONC",
        "QUERIES",
        "P50 MS",
        "P90 MS",
        "P99 MS",
        "P99.9 MS",
        "MEAN±SD MS",
        "INF/S",
        "SAMPLES/S",
        "VS FIRST",
        "STABLE",
        "PEAK RSS",
    ]
    .map(String::from)
    .to_vec()];
    let ms = |v: f64| {
        // Three significant digits at least, for microsecond-scale models too.
        let decimals = (2 - v.abs().max(1e-9).log10().floor() as i32).clamp(3, 6) as usize;
        format!("{v:.decimals$}")
    };
    for r in &report.results {
        let mut row = vec![
            r.model_name.clone(),
            r.backend.clone(),
            r.scenario.name().to_string(),
            r.batch.to_string(),
            r.concurrency.to_string(),
            r.queries.to_string(),
        ];
        match (&r.error, r.latency_ms) {
            (None, Some(l)) => row.extend([
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p999),
                format!("{:.3}±{:.3}", l.mean, l.stddev),
                format!("{:.1}", r.throughput_per_s),
                format!("{:.1}", r.samples_per_s),
                r.slowdown_vs_first
                    .map_or("-".into(), |s| format!("{s:.2}x")),
                r.stability_label(),
                mib(r.peak_rss_bytes),
            ]),
            _ => row.extend(std::iter::repeat_n("-".to_string(), 10)),
        }
        rows.push(row);
    }
    let mut out = table(&rows);
    for r in &report.results {
        if let Some(e) = &r.error {
            out += &format!("error: {} on {}: {e}\n", r.model_name, r.backend);
        }
        match (r.gpu_memory_bytes, &r.gpu_memory_note) {
            (Some(_), _) => {
                out += &format!(
                    "gpu memory {} on {} ({}): peak {} above the device's use before loading\n",
                    r.model_name,
                    r.backend,
                    r.device,
                    mib(r.gpu_memory_bytes)
                )
            }
            (None, Some(why)) => {
                out += &format!(
                    "gpu memory {} on {}: not measured: {why}\n",
                    r.model_name, r.backend
                )
            }
            (None, None) => {}
        }
        if let Some(v) = &r.verify {
            out += &format!(
                "verify {} on {}: {} responses checked, {} mismatched, {} errors ({} timeouts){}\n",
                r.model_name,
                r.backend,
                v.checked,
                v.mismatched,
                v.errors,
                v.timeouts,
                v.first_problem
                    .as_ref()
                    .map_or(String::new(), |p| format!("; first: {p}"))
            );
        }
        if let Some(s) = &r.server {
            out += &format!(
                "server {} on {}: offered {:.1} q/s, achieved {:.1} q/s; queueing p50 {} p99 {} ms; dropped {}; late {}\n",
                r.model_name,
                r.backend,
                s.target_qps,
                s.achieved_qps,
                s.queueing_ms.map_or("-".into(), |q| ms(q.p50)),
                s.queueing_ms.map_or("-".into(), |q| ms(q.p99)),
                s.dropped,
                match (s.late, s.latency_bound_ms) {
                    (Some(n), Some(b)) => format!("{n} (over {b} ms)"),
                    _ => "- (no --p99-ms)".to_string(),
                }
            );
        }
        if let Some(g) = &r.generate {
            let p = |l: Option<LatencyStats>, f: fn(&LatencyStats) -> f64| {
                l.map_or("-".into(), |l| ms(f(&l)))
            };
            out += &format!(
                "generate {} on {}: prompt {} tokens, {} new; time to first token p50 {} p99 {} ms; inter-token p50 {} p99 {} ms; {:.1} tokens/s\n",
                r.model_name,
                r.backend,
                g.prompt_len,
                g.new_tokens,
                p(g.ttft_ms, |l| l.p50),
                p(g.ttft_ms, |l| l.p99),
                p(g.inter_token_ms, |l| l.p50),
                p(g.inter_token_ms, |l| l.p99),
                g.tokens_per_s
            );
        }
        if let Some(steps) = &r.search {
            out += &format!(
                "find-max-qps {} on {}: {} steps\n",
                r.model_name,
                r.backend,
                steps.len()
            );
            for s in steps {
                out += &format!(
                    "  offered {:>10.1} q/s  achieved {:>10.1}  p99 {:>9.3} ms  dropped {:>5}  {}\n",
                    s.target_qps,
                    s.achieved_qps,
                    s.p99_ms,
                    s.dropped,
                    if s.ok { "ok" } else { "over" }
                );
            }
        }
    }
    if let Some(b) = &report.baseline {
        out += &super::gate::render_text(b);
    }
    out
}

/// Header of `--format csv`, one column per field of a result row.
const CSV_HEADER: &str = "model,model_name,backend,backend_version,device,scenario,threads,concurrency,sessions,batch,queries,duration_s,throughput_per_s,samples_per_s,min_ms,mean_ms,stddev_ms,p50_ms,p90_ms,p95_ms,p99_ms,p999_ms,max_ms,stable,spread,slowdown_vs_first,peak_rss_bytes,target_qps,achieved_qps,queueing_p99_ms,dropped,late,error,gpu_memory_bytes,ttft_p50_ms,ttft_p99_ms,inter_token_p50_ms,inter_token_p99_ms,tokens_per_s";

/// Renders `--format csv`: the header, then one line per result (RFC 4180 quoting).
pub fn render_csv(report: &BenchReport) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for r in &report.results {
        let l = r.latency_ms;
        let get = |f: fn(&LatencyStats) -> f64| opt(l.as_ref().map(f));
        let s = r.server.as_ref();
        let g = r.generate.as_ref();
        let fields = [
            csv(&r.model),
            csv(&r.model_name),
            csv(&r.backend),
            csv(&r.backend_version),
            csv(&r.device),
            r.scenario.name().to_string(),
            r.threads.map_or(String::new(), |t| t.to_string()),
            r.concurrency.to_string(),
            r.sessions.to_string(),
            r.batch.to_string(),
            r.queries.to_string(),
            r.duration_s.to_string(),
            r.throughput_per_s.to_string(),
            r.samples_per_s.to_string(),
            get(|l| l.min),
            get(|l| l.mean),
            get(|l| l.stddev),
            get(|l| l.p50),
            get(|l| l.p90),
            get(|l| l.p95),
            get(|l| l.p99),
            get(|l| l.p999),
            get(|l| l.max),
            r.stable.to_string(),
            r.stability.spread.to_string(),
            opt(r.slowdown_vs_first),
            r.peak_rss_bytes.map_or(String::new(), |b| b.to_string()),
            opt(s.map(|s| s.target_qps)),
            opt(s.map(|s| s.achieved_qps)),
            opt(s.and_then(|s| s.queueing_ms).map(|q| q.p99)),
            s.map_or(String::new(), |s| s.dropped.to_string()),
            s.and_then(|s| s.late)
                .map_or(String::new(), |n| n.to_string()),
            csv(r.error.as_deref().unwrap_or("")),
            r.gpu_memory_bytes.map_or(String::new(), |b| b.to_string()),
            opt(g.and_then(|g| g.ttft_ms).map(|l| l.p50)),
            opt(g.and_then(|g| g.ttft_ms).map(|l| l.p99)),
            opt(g.and_then(|g| g.inter_token_ms).map(|l| l.p50)),
            opt(g.and_then(|g| g.inter_token_ms).map(|l| l.p99)),
            opt(g.map(|g| g.tokens_per_s)),
        ];
        out += &fields.join(",");
        out.push('\n');
    }
    out
}

/// One CSV field, quoted when it holds a comma, quote or line break.
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl BenchReport {
    /// JSON text (`--format json`, and the baseline file). Non-finite numbers are `null`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn result(backend: &str, p50: f64) -> BenchResult {
        let sample: Vec<f64> = (0..100).map(|i| p50 + (i as f64 - 50.0) * 1e-4).collect();
        BenchResult {
            model: "models/mlp".into(),
            model_name: "mlp".into(),
            model_sha256: "ab".repeat(32),
            backend: backend.into(),
            backend_version: "1.0".into(),
            device: "cpu".into(),
            scenario: Scenario::SingleStream,
            threads: Some(1),
            concurrency: 1,
            sessions: 1,
            batch: 4,
            queries: 100,
            duration_s: 1.0,
            throughput_per_s: 1000.0 / p50,
            samples_per_s: 4000.0 / p50,
            stable: true,
            stability: Stability::of(&sample, 5, 0.1),
            latency_ms: LatencyStats::of(&sample),
            distribution: Distribution::of(&sample),
            cut_short: false,
            peak_rss_bytes: Some(64 << 20),
            gpu_memory_bytes: None,
            gpu_memory_note: None,
            slowdown_vs_first: None,
            server: None,
            search: None,
            error: None,
            verify: None,
            generate: None,
        }
    }

    #[test]
    fn csv_has_one_line_per_result_and_quotes_commas() {
        let mut r = result("ort-cpu", 1.0);
        r.error = Some("bad, \"very\"".into());
        let report = BenchReport {
            schema: BENCH_SCHEMA.into(),
            environment: Environment::detect(Vec::new()),
            results: vec![r, result("tract-cpu", 2.0)],
            baseline: None,
        };
        let text = render_csv(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let columns = CSV_HEADER.split(',').count();
        assert_eq!(lines[2].split(',').count(), columns);
        // The five generate-scenario columns close the line, empty here.
        assert!(
            lines[1].ends_with(",\"bad, \"\"very\"\"\",,,,,,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains(",single-stream,1,1,1,4,100,"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn text_table_lists_every_result() {
        let mut second = result("tract-cpu", 2.0);
        second.slowdown_vs_first = Some(2.0);
        let report = BenchReport {
            schema: BENCH_SCHEMA.into(),
            environment: Environment::detect(Vec::new()),
            results: vec![result("ort-cpu", 1.0), second],
            baseline: None,
        };
        let text = render_text(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("MODEL  BACKEND"));
        assert!(
            lines[2].contains("tract-cpu") && lines[2].contains("2.00x"),
            "{text}"
        );
        assert!(lines[1].contains("64 MiB"), "{text}");
    }

    #[test]
    fn gpu_memory_is_reported_or_explained() {
        let mut gpu = result("ort-cuda", 1.0);
        gpu.device = "cuda:0 (NVIDIA H100)".into();
        gpu.gpu_memory_bytes = Some(300 << 20);
        let mut missing = result("candle-cuda", 1.0);
        missing.gpu_memory_note = Some("libcuda.so.1 not found: no NVIDIA driver".into());
        let report = BenchReport {
            schema: BENCH_SCHEMA.into(),
            environment: Environment::detect(Vec::new()),
            results: vec![gpu, missing],
            baseline: None,
        };
        let text = render_text(&report);
        assert!(
            text.contains("gpu memory mlp on ort-cuda (cuda:0 (NVIDIA H100)): peak 300 MiB"),
            "{text}"
        );
        assert!(
            text.contains("gpu memory mlp on candle-cuda: not measured: libcuda.so.1 not found"),
            "{text}"
        );
        let csv = render_csv(&report);
        let lines: Vec<&str> = csv.lines().collect();
        // GPU memory, then the five (empty) generate-scenario columns.
        assert!(
            lines[1].ends_with(&format!(",{},,,,,", 300u64 << 20)),
            "{csv}"
        );
        assert!(lines[2].ends_with(",,,,,,"), "{csv}");
    }
}
