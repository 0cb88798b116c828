//! One `parity bench` run: every model × backend × batch size through the chosen
//! scenario, each backend's sessions loaded fresh (peak memory measured from the load),
//! results assembled into the `parity.bench/v1` model with each backend's slowdown
//! relative to the first.

use super::gpu_memory::GpuMemorySampler;
use super::inputs::{batch_of, tile, Target};
use super::memory;
use super::report::{BenchResult, Scenario, SearchStep, ServerStats};
use super::scenario::{self, Measured, Pool, Settings};
use super::stats::{Distribution, LatencyStats, Stability};
use super::verify::Verifier;
use crate::backend::{LoadOptions, Selected};
use std::sync::Arc;
use std::time::Duration;

/// Everything the command line decides about a run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub settings: Settings,
    /// Batch sizes to tile the inputs to; empty: the inputs as they are.
    pub batches: Vec<usize>,
    /// Sessions per backend shared by the workers (≤ concurrency).
    pub sessions: usize,
    pub threads: Option<usize>,
    /// Server: the offered rate.
    pub qps: Option<f64>,
    /// Server: search the highest rate whose p99 stays within `p99_ms`.
    pub find_max_qps: bool,
    /// Server: the latency bound (late queries; the search's criterion).
    pub p99_ms: Option<f64>,
    /// Seeds the arrival process.
    pub seed: u64,
    /// Stability windows and the spread above which a run is unstable.
    pub windows: usize,
    pub stability_limit: f64,
    /// `--verify`: check every response against the suite's golden outputs.
    pub verify: bool,
    /// The generate scenario: tokens per random prompt.
    pub prompt_len: usize,
    /// The generate scenario: tokens generated per query.
    pub max_new_tokens: usize,
}

/// Benches one target on one backend: a result per batch size (one with an `error`
/// when the backend cannot load or run the model). `step` is told what starts.
pub fn bench(
    target: &Target,
    selected: &Selected,
    plan: &Plan,
    step: &mut dyn FnMut(&str),
) -> Vec<BenchResult> {
    let name = selected.backend.name();
    let batches: Vec<Option<usize>> = if plan.batches.is_empty() {
        vec![None]
    } else {
        plan.batches.iter().copied().map(Some).collect()
    };
    memory::reset_peak_rss();
    let gpu_sampler = GpuMemorySampler::start(&selected.device);
    let load = LoadOptions {
        threads: plan.threads,
        ..Default::default()
    };
    let sessions = (0..plan.sessions.max(1))
        .map(|_| selected.backend.load(&target.model, &load))
        .collect::<Result<Vec<_>, _>>();
    let base = |batch: usize| BenchResult {
        model: target.label.clone(),
        model_name: target.name.clone(),
        model_sha256: target.info.sha256.clone(),
        backend: name.to_string(),
        backend_version: selected.version.clone(),
        device: selected.device.clone(),
        scenario: plan.scenario,
        threads: plan.threads,
        concurrency: plan.settings.concurrency,
        sessions: plan.sessions,
        batch,
        queries: 0,
        duration_s: 0.0,
        throughput_per_s: 0.0,
        samples_per_s: 0.0,
        stable: false,
        stability: Stability::of(&[], plan.windows, plan.stability_limit),
        latency_ms: None,
        distribution: None,
        cut_short: false,
        peak_rss_bytes: None,
        gpu_memory_bytes: None,
        gpu_memory_note: None,
        slowdown_vs_first: None,
        server: None,
        search: None,
        error: None,
        verify: None,
        generate: None,
    };
    if plan.scenario == Scenario::Generate {
        step(&format!("{} {name} generate", target.name));
        let work = super::generation::workload(
            target,
            plan.verify,
            plan.prompt_len,
            plan.max_new_tokens,
            plan.settings.concurrency,
            plan.seed,
            name,
        );
        let error = |e: String| BenchResult {
            error: Some(e),
            ..base(1)
        };
        let mut result = match (sessions, work) {
            (Err(e), _) => error(format!("cannot load the model: {}", e.message)),
            (_, Err(e)) => error(e),
            (Ok(s), Ok(work)) => match super::generation::bench(s, &work, plan.settings) {
                Ok(o) => BenchResult {
                    generate: Some(o.stats),
                    verify: o.verify,
                    ..assemble(base(1), &o.measured, None, None, plan)
                },
                Err(e) => error(e.message),
            },
        };
        record_memory(std::slice::from_mut(&mut result), gpu_sampler, None);
        return vec![result];
    }
    let verifier = match plan
        .verify
        .then(|| Verifier::open(&target.model_dir(), name))
    {
        Some(Ok(v)) => Some(Arc::new(v)),
        Some(Err(e)) => {
            return vec![BenchResult {
                error: Some(e.to_string()),
                ..base(batch_of(&target.inputs))
            }]
        }
        None => None,
    };
    let pool = match sessions {
        Ok(s) => match &verifier {
            Some(v) => Pool::new(s).verifying(Arc::clone(v)),
            None => Pool::new(s),
        },
        Err(e) => {
            if let Some(sampler) = gpu_sampler {
                let _ = sampler.finish();
            }
            return batches
                .iter()
                .map(|b| BenchResult {
                    error: Some(format!("cannot load the model: {}", e.message)),
                    ..base(b.unwrap_or_else(|| batch_of(&target.inputs)))
                })
                .collect();
        }
    };
    let mut results = Vec::new();
    for batch in batches {
        let size = batch.unwrap_or_else(|| batch_of(&target.inputs));
        step(&format!(
            "{} {name} {} batch {size}",
            target.name,
            plan.scenario.name()
        ));
        let outcome = match batch {
            Some(b) => tile(&target.info.inputs, &target.inputs, b),
            None => Ok(target.inputs.clone()),
        }
        .and_then(|inputs| {
            pool.prepare(&inputs).map_err(|e| e.message)?;
            run_scenario(&pool, &inputs, plan)
        });
        results.push(match outcome {
            Ok((measured, server, search)) => assemble(base(size), &measured, server, search, plan),
            Err(e) => BenchResult {
                error: Some(e),
                ..base(size)
            },
        });
    }
    record_memory(&mut results, gpu_sampler, verifier.as_deref());
    results
}

/// Sets every result's peak memory (and `--verify` counts) once its runs are over.
fn record_memory(
    results: &mut [BenchResult],
    gpu_sampler: Option<GpuMemorySampler>,
    verifier: Option<&Verifier>,
) {
    let peak = memory::peak_rss_bytes();
    let gpu = gpu_sampler.map(GpuMemorySampler::finish);
    for r in results {
        r.peak_rss_bytes = peak;
        if let Some(v) = verifier {
            r.verify = Some(v.stats());
        }
        match &gpu {
            Some(Ok(bytes)) => r.gpu_memory_bytes = Some(*bytes),
            Some(Err(why)) => r.gpu_memory_note = Some(why.clone()),
            None => {}
        }
    }
}

type Outcome = (Measured, Option<ServerStats>, Option<Vec<SearchStep>>);

/// Runs the plan's scenario on prepared inputs.
fn run_scenario(
    pool: &Pool,
    inputs: &[crate::tensor::Tensor],
    plan: &Plan,
) -> Result<Outcome, String> {
    match plan.scenario {
        Scenario::SingleStream | Scenario::Offline => {
            scenario::closed_loop(pool, inputs, plan.settings)
                .map(|m| (m, None, None))
                .map_err(|e| e.message)
        }
        Scenario::Generate => Err("the generate scenario decodes; it has no fixed query".into()),
        Scenario::Server if plan.find_max_qps => find_max_qps(pool, inputs, plan),
        Scenario::Server => {
            let qps = plan
                .qps
                .ok_or("the server scenario needs --qps or --find-max-qps")?;
            let m = scenario::server(pool, inputs, plan.settings, qps, plan.seed)
                .map_err(|e| e.message)?;
            let stats = server_stats(&m, qps, plan.p99_ms);
            Ok((m, Some(stats), None))
        }
    }
}

fn server_stats(m: &Measured, qps: f64, bound: Option<f64>) -> ServerStats {
    ServerStats {
        target_qps: qps,
        achieved_qps: m.throughput_per_s(),
        queueing_ms: LatencyStats::of(&m.queueing_ms),
        dropped: m.dropped,
        late: bound.map(|b| m.latencies_ms.iter().filter(|&&l| l > b).count()),
        latency_bound_ms: bound,
    }
}

/// Searches the highest offered rate whose p99 latency stays within `--p99-ms` with
/// nothing dropped: from a capacity estimate (a short closed loop, whose p99 is the
/// unloaded latency: above the bound, no rate can meet it), doubling or halving until
/// the rate is bracketed, then bisecting geometrically until the bracket is within 5%.
/// At most 16 runs, none below 1/64 of the capacity, each of at least
/// `min(--min-queries, 100)` queries and `--min-duration`, so a search on a noisy
/// machine ends in bounded time. The result is the run at the highest passing rate.
fn find_max_qps(
    pool: &Pool,
    inputs: &[crate::tensor::Tensor],
    plan: &Plan,
) -> Result<Outcome, String> {
    let bound = plan.p99_ms.ok_or("--find-max-qps needs --p99-ms")?;
    let probe = Settings {
        warmup: 0,
        min_queries: 50,
        min_duration: Duration::from_millis(300),
        ..plan.settings
    };
    let unloaded = scenario::closed_loop(pool, inputs, probe).map_err(|e| e.message)?;
    let capacity = unloaded.throughput_per_s();
    let unloaded_p99 = LatencyStats::of(&unloaded.latencies_ms).map_or(f64::INFINITY, |l| l.p99);
    if unloaded_p99 > bound {
        return Err(format!(
            "unloaded p99 is already {unloaded_p99:.4} ms, above --p99-ms {bound}: no offered rate can meet it"
        ));
    }
    let floor = capacity / 64.0;
    let step_settings = Settings {
        min_queries: plan.settings.min_queries.min(100),
        ..plan.settings
    };
    let mut rate = (capacity * 0.5).max(1.0);
    let (mut lo, mut hi): (Option<(f64, Measured)>, Option<f64>) = (None, None);
    let mut steps = Vec::new();
    for _ in 0..16 {
        let m = scenario::server(pool, inputs, step_settings, rate, plan.seed)
            .map_err(|e| e.message)?;
        let p99 = LatencyStats::of(&m.latencies_ms).map_or(f64::INFINITY, |l| l.p99);
        let ok = p99 <= bound && m.dropped == 0;
        steps.push(SearchStep {
            target_qps: rate,
            achieved_qps: m.throughput_per_s(),
            p99_ms: p99,
            dropped: m.dropped,
            ok,
        });
        if ok {
            lo = Some((rate, m));
        } else {
            hi = Some(rate);
        }
        rate = match (&lo, hi) {
            (Some((l, _)), Some(h)) if h / l <= 1.05 => break,
            (Some((l, _)), Some(h)) => (l * h).sqrt(),
            (Some((l, _)), None) => l * 2.0,
            (None, Some(h)) if h / 2.0 < floor => break,
            (None, Some(h)) => h / 2.0,
            (None, None) => rate,
        };
    }
    match lo {
        Some((rate, m)) => {
            let stats = server_stats(&m, rate, Some(bound));
            Ok((m, Some(stats), Some(steps)))
        }
        None => {
            let tried: Vec<String> = steps
                .iter()
                .map(|s| format!("{:.0} q/s p99 {:.3} ms", s.target_qps, s.p99_ms))
                .collect();
            Err(format!(
                "no offered rate kept p99 within {bound} ms although the unloaded p99 is {unloaded_p99:.4} ms \
                 (a noisy machine?); tried {}",
                tried.join(", ")
            ))
        }
    }
}

/// Fills a result's figures from a measurement.
fn assemble(
    base: BenchResult,
    m: &Measured,
    server: Option<ServerStats>,
    search: Option<Vec<SearchStep>>,
    plan: &Plan,
) -> BenchResult {
    let stability = Stability::of(&m.latencies_ms, plan.windows, plan.stability_limit);
    let throughput = m.throughput_per_s();
    BenchResult {
        queries: m.latencies_ms.len(),
        duration_s: m.wall.as_secs_f64(),
        throughput_per_s: throughput,
        samples_per_s: throughput * base.batch as f64,
        stable: stability.stable && !m.cut_short,
        stability,
        latency_ms: LatencyStats::of(&m.latencies_ms),
        distribution: Distribution::of(&m.latencies_ms),
        cut_short: m.cut_short,
        server,
        search,
        ..base
    }
}

/// Sets every result's slowdown relative to the first backend's result on the same
/// model, scenario, batch and concurrency (1.0 for the first backend itself).
pub fn relate_to_first(results: &mut [BenchResult], first_backend: &str) {
    let firsts: Vec<BenchResult> = results
        .iter()
        .filter(|r| r.backend == first_backend && r.error.is_none())
        .cloned()
        .collect();
    for r in results.iter_mut() {
        let first = firsts.iter().find(|f| {
            f.model == r.model
                && f.scenario == r.scenario
                && f.batch == r.batch
                && f.concurrency == r.concurrency
        });
        r.slowdown_vs_first = match (first.and_then(BenchResult::headline), r.headline()) {
            (Some((_, f, larger_is_better)), Some((_, v, _))) if r.error.is_none() => {
                Some(if larger_is_better { f / v } else { v / f })
            }
            _ => None,
        };
    }
}
