//! `record --generate`: a generation suite. One backend decodes every prompt greedily
//! with its KV cache; each data set is `test_data_set_N.npz` holding the prompt, the
//! tokens, every step's logits (what `check` compares, and the near-tie rule needs) and,
//! for people, every step's top-k tokens with their log-probabilities. `parity.toml` gets
//! `[generate]` (how to decode and judge), `[outputs.LOGITS]` (the logits' tolerance),
//! provenance and the sha256 of every file. Written atomically like every suite.

use super::write::{manifest_text, write_synced, ManifestTables};
use super::{provenance, GoldenSource, RecordOptions, Recorded};
use crate::backend;
use crate::compare::Tolerance;
use crate::error::{Error, Result};
use crate::formats::{self, npz, onnx_model};
use crate::generate::convention::Layout;
use crate::generate::decode::{decode, Generation};
use crate::generate::verdict::top_logprobs;
use crate::suite::generation::{
    LOGITS_KEY, PROMPT_KEY, TOKENS_KEY, TOP_LOGPROBS_KEY, TOP_TOKENS_KEY,
};
use crate::suite::manifest::{GenerateSettings, MANIFEST_FILE};
use crate::suite::runner::guarded;
use crate::suite::staging::{self, Staging};
use crate::suite::{DATA_SET_PREFIX, MODEL_FILE};
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::path::Path;

/// Records the golden generations of `prompts` under `settings`.
pub fn record_generation(
    model: &Path,
    out: &Path,
    prompts: &[Vec<i64>],
    settings: &GenerateSettings,
    options: &RecordOptions,
) -> Result<Recorded> {
    staging::prepare_destination(out, options.force)?;
    if prompts.is_empty() {
        return Err(Error::Usage(
            "record --generate needs at least one --prompt-ids".into(),
        ));
    }
    let info = onnx_model::inspect(model)?;
    let layout = Layout::detect(&info.inputs, &info.outputs, &settings.names())
        .map_err(|e| Error::file(model, e))?;
    let mut selected =
        crate::interrupt::observe(backend::select(std::slice::from_ref(&options.backend))?);
    let selected = selected
        .pop()
        .ok_or_else(|| Error::Usage(format!("backend {} was not selected", options.backend)))?;
    let name = selected.backend.name().to_string();
    let mut session = selected.backend.load(model, &options.load).map_err(|e| {
        Error::file(
            model,
            format!("{name} cannot load the model: {}", e.message),
        )
    })?;
    let mut generations: Vec<Generation> = Vec::with_capacity(prompts.len());
    for group in prompts.chunks(settings.batch) {
        let decoded = guarded(|| decode(session.as_mut(), &layout, group, settings.max_new_tokens))
            .map_err(|e| Error::file(model, format!("{name} failed to decode: {}", e.message)))?;
        generations.extend(decoded);
    }
    let model_bytes = formats::read_file(model)?;
    let described: Vec<String> = prompts
        .iter()
        .map(|p| {
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let source = GoldenSource {
        backend_version: selected.version.clone(),
        device: selected.device.clone(),
        inputs: format!(
            "greedy generation of {} new tokens from the prompts {}",
            settings.max_new_tokens,
            described.join(" | ")
        ),
        finite_outputs: Vec::new(),
        carry: BTreeMap::new(),
    };
    let provenance = provenance(&options.backend, &source, &model_bytes);
    let staging = Staging::create(out)?;
    write_synced(&staging.path().join(MODEL_FILE), &model_bytes)?;
    let mut files = BTreeMap::new();
    files.insert(MODEL_FILE.to_string(), onnx_model::sha256_hex(&model_bytes));
    for (n, g) in generations.iter().enumerate() {
        let file = format!("{DATA_SET_PREFIX}{n}.npz");
        let bytes = data_set(g, settings.top_logprobs).map_err(|e| Error::file(model, e))?;
        write_synced(&staging.path().join(&file), &bytes)?;
        files.insert(file, onnx_model::sha256_hex(&bytes));
    }
    let dtype = generations[0].logits[0].dtype();
    let default = Tolerance::default_for(dtype);
    let tolerance = Tolerance {
        atol: options.atol.unwrap_or(default.atol),
        rtol: options.rtol.unwrap_or(default.rtol),
    };
    let logits_name = settings.names().logits;
    let tolerances = BTreeMap::from([(logits_name, tolerance)]);
    let manifest = manifest_text(&ManifestTables {
        tolerances: &tolerances,
        per_backend: &BTreeMap::new(),
        finite: &[],
        provenance: &provenance,
        files: &files,
        calibration: None,
        carry: &BTreeMap::new(),
        generate: Some(settings),
    })?;
    write_synced(&staging.path().join(MANIFEST_FILE), manifest.as_bytes())?;
    let warnings = staging.commit(out, options.force)?;
    Ok(Recorded {
        dir: out.to_path_buf(),
        data_sets: generations.len(),
        provenance,
        warnings,
        tolerances,
        per_backend: BTreeMap::new(),
        calibration: None,
        carry: BTreeMap::new(),
    })
}

/// One data set's `.npz`: the prompt, the tokens, every step's logits `[steps, vocab]`,
/// and every step's top-k token ids and log-probabilities `[steps, k]`.
fn data_set(g: &Generation, k: usize) -> std::result::Result<Vec<u8>, String> {
    let steps = g.tokens.len();
    let vocab = g.logits.first().map_or(0, Tensor::numel);
    let dtype = g
        .logits
        .first()
        .map(Tensor::dtype)
        .ok_or("no step was decoded")?;
    let logits: Vec<u8> = g
        .logits
        .iter()
        .flat_map(|r| r.bytes().iter().copied())
        .collect();
    let k = k.min(vocab);
    let top: Vec<_> = g.logits.iter().map(|r| top_logprobs(r, k)).collect();
    let ids: Vec<i64> = top.iter().flat_map(|t| t.iter().map(|r| r.token)).collect();
    let lps: Vec<f64> = top
        .iter()
        .flat_map(|t| t.iter().map(|r| r.logprob))
        .collect();
    let e = |e: crate::tensor::TensorError| e.to_string();
    let rows = ids.len() / k.max(1);
    npz::encode(&[
        (
            PROMPT_KEY.to_string(),
            Tensor::from_vec(vec![g.prompt.len()], g.prompt.clone()).map_err(e)?,
        ),
        (
            TOKENS_KEY.to_string(),
            Tensor::from_vec(vec![steps], g.tokens.clone()).map_err(e)?,
        ),
        (
            LOGITS_KEY.to_string(),
            Tensor::from_bytes(dtype, vec![steps, vocab], logits).map_err(e)?,
        ),
        (
            TOP_TOKENS_KEY.to_string(),
            Tensor::from_vec(vec![rows, k], ids).map_err(e)?,
        ),
        (
            TOP_LOGPROBS_KEY.to_string(),
            Tensor::from_vec(vec![rows, k], lps).map_err(e)?,
        ),
    ])
}
