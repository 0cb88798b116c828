//! `bench --scenario generate`: greedy generations with a KV cache, as a language model
//! is served. Each of `--concurrency` workers decodes one stream at a time on its session
//! (worker `i` uses session `i % sessions`): a query is one whole generation of
//! `--max-new-tokens` tokens from a prompt. Measured: time to first token (the step that
//! reads the prompt), inter-token latency (every later step), tokens per second over the
//! run, plus the usual per-query latency, stability and baseline gate (which gates on
//! tokens/s). Prompts are `--prompt-len` ids drawn from the seed in the model's
//! vocabulary, or with `--verify` a generation suite's own prompts, each generation then
//! judged against its golden as `check` judges it.

use super::report::GenerateStats;
use super::scenario::{on_workers, Measured, Settings};
use super::stats::LatencyStats;
use super::verify::VerifyStats;
use crate::backend::{BackendError, Dim, Session};
use crate::compare::{Tolerance, Verdict};
use crate::generate::convention::{Layout, Names};
use crate::generate::decode::{decode, Generation};
use crate::generate::verdict::judge;
use crate::suite::generation::load_golden;
use crate::suite::runner::guarded;
use crate::tensor::random::SplitMix64;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The prompts and, with `--verify`, the goldens and how to judge against them.
pub struct Workload {
    /// Prompts, used in turn.
    pub prompts: Vec<Vec<i64>>,
    /// Tokens per generation.
    pub new_tokens: usize,
    /// Where the model's roles are.
    pub layout: Layout,
    /// `--verify`: the golden of each prompt, the logits' tolerance, the near-tie k.
    pub goldens: Option<(Vec<Generation>, Tolerance, usize)>,
}

impl Workload {
    /// Prompts of `prompt_len` ids drawn from `seed` below the vocabulary size the
    /// model declares (the last dim of its logits), one per worker.
    pub fn random(
        inputs: &[crate::backend::IoSpec],
        outputs: &[crate::backend::IoSpec],
        names: &Names,
        prompt_len: usize,
        new_tokens: usize,
        workers: usize,
        seed: u64,
    ) -> Result<Workload, String> {
        let layout = Layout::detect(inputs, outputs, names)?;
        let vocab = match outputs[layout.logits].dims.as_ref().and_then(|d| d.last()) {
            Some(Dim::Fixed(v)) if *v > 0 => *v as u64,
            _ => {
                return Err(format!(
                    "the logits output `{}` does not declare its vocabulary size (last dim); bench a generation suite with --verify instead",
                    names.logits
                ))
            }
        };
        let mut rng = SplitMix64::new(seed);
        let prompts = (0..workers.max(1))
            .map(|_| {
                (0..prompt_len)
                    .map(|_| (rng.next_u64() % vocab) as i64)
                    .collect()
            })
            .collect();
        Ok(Workload {
            prompts,
            new_tokens,
            layout,
            goldens: None,
        })
    }
}

/// The workload of `target`: with `--verify`, its generation suite's prompts and
/// goldens; otherwise `--prompt-len` random ids per worker (in a generation suite's IO
/// names when the target is one).
pub fn workload(
    target: &super::inputs::Target,
    verify: bool,
    prompt_len: usize,
    new_tokens: usize,
    workers: usize,
    seed: u64,
    backend: &str,
) -> Result<Workload, String> {
    let dir = target.model_dir();
    let suite = if target.model.ends_with(crate::suite::MODEL_FILE)
        && dir.join(crate::suite::manifest::MANIFEST_FILE).is_file()
    {
        Some(crate::suite::open(&dir).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let settings = suite.as_ref().and_then(|s| s.manifest.generate.clone());
    let names = settings.as_ref().map_or_else(Names::default, |g| g.names());
    if !verify {
        return Workload::random(
            &target.info.inputs,
            &target.info.outputs,
            &names,
            prompt_len,
            new_tokens,
            workers,
            seed,
        );
    }
    let (Some(suite), Some(settings)) = (suite, settings) else {
        return Err(format!(
            "{}: --verify with --scenario generate needs a generation suite (parity record MODEL --generate)",
            target.label
        ));
    };
    let layout = Layout::detect(&target.info.inputs, &target.info.outputs, &names)?;
    let goldens = suite
        .cases
        .iter()
        .map(|c| load_golden(&suite, c, &settings))
        .collect::<crate::error::Result<Vec<_>>>()
        .map_err(|e| e.to_string())?;
    let logits = settings.logits.as_deref().unwrap_or("logits");
    let dtype = goldens[0].logits[0].dtype();
    let tol = suite
        .manifest
        .tolerance_for(logits, Some(backend))
        .resolve(dtype);
    Ok(Workload {
        prompts: goldens.iter().map(|g| g.prompt.clone()).collect(),
        new_tokens: settings.max_new_tokens,
        layout,
        goldens: Some((goldens, tol, settings.top_logprobs)),
    })
}

/// One finished generation: when it ended and its steps' times.
struct Done {
    end: Instant,
    step_ms: Vec<f64>,
}

/// What the scenario measured: the queries (whole generations) as every scenario
/// reports them, the generation figures, and the `--verify` counts.
pub struct Outcome {
    /// Per-generation latency, wall time, whether cut short.
    pub measured: Measured,
    /// Time to first token, inter-token latency, tokens/s.
    pub stats: GenerateStats,
    /// With goldens: every generation judged.
    pub verify: Option<VerifyStats>,
}

/// Runs the scenario on `sessions` under `settings`.
pub fn bench(
    sessions: Vec<Box<dyn Session>>,
    work: &Workload,
    settings: Settings,
) -> Result<Outcome, BackendError> {
    let slots: Vec<Mutex<Box<dyn Session>>> = sessions.into_iter().map(Mutex::new).collect();
    let workers = settings.concurrency.max(1);
    let verify = Mutex::new(VerifyStats::default());
    let completed = AtomicUsize::new(0);
    let generate = |w: usize, n: usize| -> Result<Generation, BackendError> {
        let prompt = &work.prompts[n % work.prompts.len()];
        let mut session = crate::panic_guard::lock(&slots[w % slots.len()]);
        let mut g = guarded(|| {
            decode(
                session.as_mut(),
                &work.layout,
                std::slice::from_ref(prompt),
                work.new_tokens,
            )
        })?;
        let g = g
            .pop()
            .ok_or_else(|| BackendError::new("no generation came back"))?;
        if let Some((goldens, tol, k)) = &work.goldens {
            let j = judge(&goldens[n % goldens.len()], &g, *tol, *k);
            let mut v = crate::panic_guard::lock(&verify);
            v.checked += 1;
            if j.verdict == Verdict::Fail {
                v.mismatched += 1;
                v.first_problem.get_or_insert_with(|| {
                    format!(
                        "prompt {}: generation does not match its golden",
                        n % goldens.len()
                    )
                });
            }
        }
        Ok(g)
    };
    // Warm-up: untimed generations per worker, within the maximum duration.
    let warm_start = Instant::now();
    for w in 0..workers {
        for n in 0..settings.warmup.min(3) {
            if warm_start.elapsed() >= settings.max_duration {
                break;
            }
            generate(w, n)?;
        }
    }
    let start = Instant::now();
    let measured = on_workers(workers, |w, control| {
        let mut mine = Vec::new();
        let mut n = w;
        loop {
            let elapsed = start.elapsed();
            let enough = completed.load(Ordering::Relaxed) >= settings.min_queries
                && elapsed >= settings.min_duration;
            if enough || elapsed >= settings.max_duration || control.stopped() {
                break;
            }
            match generate(w, n) {
                Ok(g) => mine.push(Done {
                    end: Instant::now(),
                    step_ms: g.step_seconds.iter().map(|s| s * 1e3).collect(),
                }),
                Err(e) => {
                    control.fail(e);
                    break;
                }
            }
            completed.fetch_add(1, Ordering::Relaxed);
            n += workers;
        }
        mine
    });
    let wall = start.elapsed();
    let mut done = measured?;
    done.sort_by_key(|d| d.end);
    let tokens: usize = done.iter().map(|d| d.step_ms.len()).sum();
    let ttft: Vec<f64> = done
        .iter()
        .filter_map(|d| d.step_ms.first().copied())
        .collect();
    let inter: Vec<f64> = done
        .iter()
        .flat_map(|d| d.step_ms.iter().skip(1).copied())
        .collect();
    Ok(Outcome {
        measured: Measured {
            latencies_ms: done.iter().map(|d| d.step_ms.iter().sum()).collect(),
            queueing_ms: Vec::new(),
            wall,
            dropped: 0,
            cut_short: done.len() < settings.min_queries,
        },
        stats: GenerateStats {
            prompt_len: work.prompts.first().map_or(0, Vec::len),
            new_tokens: work.new_tokens,
            ttft_ms: LatencyStats::of(&ttft),
            inter_token_ms: LatencyStats::of(&inter),
            tokens_per_s: tokens as f64 / wall.as_secs_f64().max(f64::MIN_POSITIVE),
        },
        verify: work
            .goldens
            .is_some()
            .then(|| verify.into_inner().unwrap_or_else(|p| p.into_inner())),
    })
}
