//! Generation suites (`[generate]` in parity.toml, docs/generate.md): each data set is a
//! prompt with its golden greedy generation (`test_data_set_N.npz` holding `prompt_ids`,
//! `tokens`, `logits` and, for people, `top_tokens`/`top_logprobs`). `check` decodes
//! every prompt on every backend with its own KV cache and judges each generation
//! token by token ([`crate::generate::verdict`]); this module reads the goldens and
//! turns the judgements into case rows.

use super::execution::{
    guarded, inference_turn, tolerance, OutputsObserver, Reference, RunOptions,
};
use super::manifest::GenerateSettings;
use super::{CaseFiles, CaseSource, Suite};
use crate::backend::Selected;
use crate::compare::{self, Mode, OutputComparison, Policy};
use crate::error::{Error, Result};
use crate::generate::convention::Layout;
use crate::generate::decode::{decode, Generation};
use crate::generate::verdict::judge;
use crate::report::generation::GenerationCase;
use crate::report::{CaseId, CaseReport, OutputReport};
use crate::tensor::{DType, Tensor};

/// The keys of a generation data set.
pub const PROMPT_KEY: &str = "prompt_ids";
/// See [`PROMPT_KEY`].
pub const TOKENS_KEY: &str = "tokens";
/// See [`PROMPT_KEY`].
pub const LOGITS_KEY: &str = "logits";
/// Informative: the recording backend's top-k token ids per step.
pub const TOP_TOKENS_KEY: &str = "top_tokens";
/// Informative: their log-probabilities.
pub const TOP_LOGPROBS_KEY: &str = "top_logprobs";

/// Reads one data set's golden generation, checking its digest and shapes.
pub fn load_golden(
    suite: &Suite,
    source: &CaseSource,
    settings: &GenerateSettings,
) -> Result<Generation> {
    super::integrity::verify_case(suite, source)?;
    let CaseFiles::Archive(path) = &source.files else {
        return Err(Error::file(
            suite.dir.join(&source.name),
            "a generation suite's data set is one .npz holding prompt_ids, tokens and logits",
        ));
    };
    let mut named = crate::formats::read_tensor_map(path)?;
    let mut take = |key: &str| {
        named
            .iter()
            .position(|(n, _)| n == key)
            .map(|i| named.swap_remove(i).1)
            .ok_or_else(|| Error::file(path, format!("no `{key}` array")))
    };
    let (prompt, tokens, logits) = (take(PROMPT_KEY)?, take(TOKENS_KEY)?, take(LOGITS_KEY)?);
    let ids = |t: &Tensor, key: &str| -> Result<Vec<i64>> {
        match (t.dtype(), t.shape()) {
            (DType::I64, [n]) if *n > 0 => {
                Ok(t.values::<i64>().map(|v| v.to_vec()).unwrap_or_default())
            }
            _ => Err(Error::file(
                path,
                format!(
                    "`{key}` must be a non-empty 1-D int64 array, found {} {:?}",
                    t.dtype(),
                    t.shape()
                ),
            )),
        }
    };
    let prompt = ids(&prompt, PROMPT_KEY)?;
    let tokens = ids(&tokens, TOKENS_KEY)?;
    if tokens.len() != settings.max_new_tokens {
        return Err(Error::file(
            path,
            format!(
                "`tokens` holds {} tokens, [generate] max_new_tokens = {}",
                tokens.len(),
                settings.max_new_tokens
            ),
        ));
    }
    let (steps, vocab) = match *logits.shape() {
        [s, v] if s == tokens.len() && v > 0 && logits.dtype().is_float() => (s, v),
        _ => {
            return Err(Error::file(
                path,
                format!(
                    "`logits` must be a float array [{} steps, vocab], found {} {:?}",
                    tokens.len(),
                    logits.dtype(),
                    logits.shape()
                ),
            ))
        }
    };
    let width = logits.dtype().size();
    let rows = (0..steps)
        .map(|s| {
            let bytes = logits.bytes()[s * vocab * width..(s + 1) * vocab * width].to_vec();
            Tensor::from_bytes(logits.dtype(), vec![vocab], bytes)
                .map_err(|e| Error::file(path, e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Generation {
        prompt,
        tokens,
        logits: rows,
        step_seconds: Vec::new(),
    })
}

/// Runs a generation suite on the compared backends (`only`: just that one), each row
/// keyed by case and backend index as the runner orders them. A suite without
/// `[generate]` has no generations to run: no rows.
pub(super) fn run_unit(
    suite: &Suite,
    candidates: &[Selected],
    only: Option<usize>,
    reference: &Reference,
    options: &RunOptions,
    on_case: &mut dyn FnMut(&CaseReport),
    on_outputs: OutputsObserver<'_>,
) -> Vec<(usize, usize, CaseReport)> {
    let Some(settings) = &suite.manifest.generate else {
        return Vec::new();
    };
    let logits_name = settings.names().logits;
    // The cross-backend matrix sees each backend's per-step logits of its own
    // generation, stacked `[steps, vocab]`.
    let mut observe = |name: &str, generations: &[std::result::Result<Generation, String>]| {
        for (c, g) in generations.iter().enumerate() {
            if let Some(rows) = g.as_ref().ok().and_then(|g| stack_rows(&g.logits)) {
                on_outputs(suite, c, name, vec![(logits_name.clone(), rows)]);
            }
        }
    };
    let layout = Layout::detect(&suite.info.inputs, &suite.info.outputs, &settings.names())
        .map_err(|e| format!("{}: {e}", suite.model.display()));
    let goldens: Vec<std::result::Result<Generation, String>> = suite
        .cases
        .iter()
        .map(|c| load_golden(suite, c, settings).map_err(|e| e.to_string()))
        .collect();
    let expected: Vec<std::result::Result<Generation, String>> = match reference {
        Reference::Golden => goldens.clone(),
        Reference::Backend(name) => match candidates.iter().find(|s| s.backend.name() == name) {
            Some(r) => {
                let decoded = decode_all(r, suite, settings, &layout, &goldens, options);
                observe(name, &decoded);
                decoded
                    .into_iter()
                    .map(|g| g.map_err(|e| format!("reference {name}: {e}")))
                    .collect()
            }
            None => goldens
                .iter()
                .map(|_| Err(format!("reference backend {name} was not selected")))
                .collect(),
        },
    };
    let mut rows = Vec::new();
    for (b, selected) in candidates.iter().enumerate() {
        let name = selected.backend.name();
        if only.is_some_and(|o| o != b) || Reference::Backend(name.to_string()) == *reference {
            continue;
        }
        let actual = decode_all(selected, suite, settings, &layout, &goldens, options);
        observe(name, &actual);
        for (c, (want, got)) in expected.iter().zip(actual).enumerate() {
            let id = CaseId {
                suite: suite.dir.display().to_string(),
                case: suite.cases[c].name.clone(),
                backend: name.to_string(),
                reference: reference.name().to_string(),
            };
            let row = match (want, got) {
                (Err(e), _) => CaseReport::errored(id, e.clone(), None),
                (_, Err(e)) => CaseReport::errored(id, e, None),
                (Ok(want), Ok(got)) => {
                    let tol = tolerance(
                        suite,
                        &logits_name,
                        (*reference == Reference::Golden).then_some(name),
                        want.logits.first().map_or(DType::F32, Tensor::dtype),
                        options,
                    );
                    let j = judge(want, &got, tol, settings.top_logprobs);
                    let logits = stacked_comparison(want, &got, j.steps_compared, tol);
                    let histogram = options
                        .histograms
                        .then(|| stacked(want, &got, j.steps_compared))
                        .flatten()
                        .and_then(|(e, a)| compare::error_histogram(&e, &a, tol));
                    let latency = got.step_seconds.iter().sum::<f64>() * 1e3;
                    let mut row = CaseReport::compared(
                        id,
                        (!options.overlap_inference).then_some(latency),
                        Some(selected.device.clone()),
                        vec![OutputReport {
                            name: logits_name.clone(),
                            comparison: logits,
                            error_histogram: histogram,
                            stats: None,
                            gated: false,
                        }],
                    );
                    if j.verdict == compare::Verdict::Fail {
                        row.verdict = crate::report::CaseVerdict::Fail;
                    }
                    row.generation = Some(GenerationCase {
                        prompt: want.prompt.clone(),
                        expected_tokens: want.tokens.clone(),
                        actual_tokens: got.tokens.clone(),
                        judgement: j,
                    });
                    row
                }
            };
            on_case(&row);
            rows.push((c, b, row));
        }
    }
    rows
}

/// Every prompt of the suite decoded on `selected`, in case order (a case whose golden
/// could not be read has no prompt: its error stands).
fn decode_all(
    selected: &Selected,
    suite: &Suite,
    settings: &GenerateSettings,
    layout: &std::result::Result<Layout, String>,
    goldens: &[std::result::Result<Generation, String>],
    options: &RunOptions,
) -> Vec<std::result::Result<Generation, String>> {
    let fail_all = |e: String| goldens.iter().map(|_| Err(e.clone())).collect();
    let layout = match layout {
        Ok(l) => l,
        Err(e) => return fail_all(e.clone()),
    };
    let mut session = match selected.backend.load(&suite.model, &options.load) {
        Ok(s) => s,
        Err(e) => return fail_all(e.message),
    };
    let readable: Vec<(usize, Vec<i64>)> = goldens
        .iter()
        .enumerate()
        .filter_map(|(c, g)| g.as_ref().ok().map(|g| (c, g.prompt.clone())))
        .collect();
    // Every readable prompt's entry is replaced by its decoded generation below.
    let mut out: Vec<std::result::Result<Generation, String>> = goldens
        .iter()
        .map(|g| match g {
            Ok(_) => Err("not decoded".to_string()),
            Err(e) => Err(e.clone()),
        })
        .collect();
    for group in readable.chunks(settings.batch) {
        let prompts: Vec<Vec<i64>> = group.iter().map(|(_, p)| p.clone()).collect();
        let _turn = inference_turn(options.overlap_inference);
        let decoded =
            guarded(|| decode(session.as_mut(), layout, &prompts, settings.max_new_tokens));
        match decoded {
            Ok(gens) => {
                for ((c, _), g) in group.iter().zip(gens) {
                    out[*c] = Ok(g);
                }
            }
            Err(e) => {
                for (c, _) in group {
                    out[*c] = Err(e.message.clone());
                }
            }
        }
    }
    out
}

/// The first `steps` logits rows of both sides stacked into `[steps, vocab]` tensors,
/// or `None` when nothing was compared or the rows do not stack.
fn stacked(want: &Generation, got: &Generation, steps: usize) -> Option<(Tensor, Tensor)> {
    Some((
        stack_rows(want.logits.get(..steps)?)?,
        stack_rows(got.logits.get(..steps)?)?,
    ))
}

/// Per-step logits rows as one `[steps, vocab]` tensor; `None` when there are none or
/// they differ in size or dtype.
fn stack_rows(rows: &[Tensor]) -> Option<Tensor> {
    let first = rows.first()?;
    let vocab = first.numel();
    if rows
        .iter()
        .any(|r| r.numel() != vocab || r.dtype() != first.dtype())
    {
        return None;
    }
    let bytes: Vec<u8> = rows
        .iter()
        .flat_map(|r| r.bytes().iter().copied())
        .collect();
    Tensor::from_bytes(first.dtype(), vec![rows.len(), vocab], bytes).ok()
}

/// The logits of every compared step as one comparison: the worst element's index is
/// `[step, token]`.
fn stacked_comparison(
    want: &Generation,
    got: &Generation,
    steps: usize,
    tol: compare::Tolerance,
) -> OutputComparison {
    let policy = Policy {
        tolerance: tol,
        mode: Mode::AllClose,
        outlier_fraction: 0.0,
    };
    // Both generations hold at least one step (max_new_tokens >= 1, checked on reading).
    match (stacked(want, got, steps), got.logits.first()) {
        (Some((e, a)), _) => compare::compare_with(&e, &a, &policy),
        // Rows that do not stack: the first pair says why (vocabulary, dtype).
        (None, Some(a)) => compare::compare_with(&want.logits[0], a, &policy),
        (None, None) => OutputComparison::missing_with(&want.logits[0], &policy),
    }
}
