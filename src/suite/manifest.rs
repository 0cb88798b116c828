//! `parity.toml`: a suite's own comparison settings. Unknown keys are refused, so a typo
//! never silently falls back to a default tolerance; a key that belongs to another
//! comparison mode than the output's is refused too (docs/suites.md has the full rules).
//!
//! ```toml
//! [tolerance]          # suite-wide, replaces the per-dtype defaults
//! atol = 1e-5
//! rtol = 1e-4
//!
//! [outputs.probs]      # one output, mode allclose (the default)
//! rtol = 1e-3
//!
//! [outputs.probs.backends.ort-cpu]   # ort-cpu against the goldens (record --calibrate)
//! rtol = 1e-6
//!
//! [outputs.hidden]
//! mode = "ulp"
//! max_ulp = 4
//!
//! [outputs.embedding]
//! mode = "cosine"
//! min_cosine = 0.999
//! axis = -1            # one similarity per row; the whole tensor without it
//!
//! [outputs.logits]
//! mode = "topk"
//! k = 1                # default 1
//! axis = -1            # default -1
//! ordered = false      # default false: compare the top-k as sets
//! outlier_fraction = 0.01
//!
//! [outputs.debug_dump]
//! mode = "skip"        # or: skip = true
//!
//! [sequence.carry]     # the data sets are consecutive steps of one stream: each
//! stateN = "state"     # step's output `stateN` is the next step's input `state`
//!
//! [provenance]         # written by `parity record`: where the goldens came from
//! backend = "ort-cpu"
//! model_sha256 = "9f86d0…"
//!
//! [files]              # written by `parity record`: sha256 of every data file
//! "test_data_set_0/input_0.pb" = "2c26b4…"
//! ```

use crate::compare::Mode;
// The `[provenance]` table is carried into reports (`suites[].provenance`), so its type
// lives in `report`, below this module.
use crate::error::{Error, Result};
pub use crate::report::Provenance;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// File name of the manifest inside a suite directory.
pub const MANIFEST_FILE: &str = "parity.toml";

/// A suite's comparison settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Suite-wide tolerance, applied to every output unless the output sets its own.
    #[serde(default)]
    pub tolerance: ToleranceOverride,
    /// Per-output settings keyed by output name.
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputSettings>,
    /// Where the goldens came from (`parity record` writes it; informative, except
    /// `model_sha256`, which `check` compares with the suite's model).
    #[serde(default)]
    pub provenance: Option<Provenance>,
    /// Suite-relative path (`/`-separated) → hex sha256 of that file, for every data file
    /// and `model.onnx`. `check` refuses a data file whose bytes no longer match.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// How `parity record --calibrate` derived the tolerances in `[outputs]`
    /// (informative: `check` applies only `[outputs]`).
    #[serde(default)]
    pub calibration: Option<Calibration>,
    /// Per-input value ranges that `parity data validate` checks (docs/data.md):
    /// `[inputs.NAME] min/max/allow_nan/allow_inf`.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputRange>,
    /// `[sequence]`: the data sets are consecutive steps of one stream, each backend
    /// feeding its own outputs forward (docs/suites.md, "Stateful suites").
    #[serde(default)]
    pub sequence: Option<Sequence>,
    /// `[generate]`: a generation suite, whose data sets are prompts with their golden
    /// greedy generations (docs/generate.md).
    #[serde(default)]
    pub generate: Option<GenerateSettings>,
    /// `[gates]`: output → its dataset gates (`"top1_agreement>=0.98"`, docs/gates.md).
    #[serde(default)]
    pub gates: BTreeMap<String, Vec<String>>,
    /// `[metrics.NAME]`: read the output as class scores (axis, top-k).
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricsSettings>,
    /// `[labels]`: ground-truth classes of the data sets.
    #[serde(default)]
    pub labels: Option<LabelsTable>,
    /// `[slices]`: data set → the group it belongs to.
    #[serde(default)]
    pub slices: BTreeMap<String, String>,
    /// `[candidate.inputs]`/`[candidate.outputs]`: a `check --model` candidate's names
    /// for the suite model's inputs and outputs (suite name = "candidate name").
    #[serde(default)]
    pub candidate: super::candidate::NameMap,
    /// How each output in `outputs` is compared, resolved and validated on reading.
    #[serde(skip)]
    rules: BTreeMap<String, OutputRule>,
}

/// The `[calibration]` table written by `parity record --calibrate`: the evidence behind
/// the calibrated `[outputs]` tolerances, so a reviewer can see what they rest on.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Each observed error was multiplied by this before fitting.
    pub margin: f64,
    /// The backend whose outputs are the goldens.
    pub golden: String,
    /// Every backend available when recording (each one's run is a source).
    pub backends: Vec<String>,
    /// Backends that ran the model promoted to f64; the first is the oracle.
    pub oracle: Vec<String>,
    /// Runs that could not be used, with the reason.
    pub excluded: Vec<String>,
    /// Data sets every source ran.
    pub data_sets: usize,
    /// The fitting rule, in words.
    pub rule: String,
    /// Per output: its magnitudes, floors and each source's errors.
    pub outputs: BTreeMap<String, OutputEvidence>,
}

/// The evidence behind one output's calibrated tolerance.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputEvidence {
    /// The output's dtype (`f32`).
    pub dtype: String,
    /// Median `|e|` of the goldens: relative errors are fitted above it.
    pub median_abs: f64,
    /// Largest `|e|` of the goldens, which scales the atol floor.
    pub max_abs: f64,
    /// The least rtol allowed (float outputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtol_floor: Option<f64>,
    /// The least atol allowed (float outputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atol_floor: Option<f64>,
    /// Source (a backend, or `f64-oracle`) → its observed errors.
    pub sources: BTreeMap<String, ErrorEvidence>,
    /// Dataset gates the same runs support (`METRIC>=VALUE`, docs/gates.md): the noise
    /// floor of correct implementations, for `[gates]` if the suite wants them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proposed_gates: Vec<String>,
}

/// One source's observed errors on one output, over all data sets.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ErrorEvidence {
    /// Largest `|a - e|` against the goldens.
    pub max_abs_err: f64,
    /// Largest `|a - e| / |e|` against the goldens (`e != 0`).
    pub max_rel_err: f64,
    /// Largest `|a - o|` against the f64 oracle, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_oracle_max_abs_err: Option<f64>,
    /// Largest `|a - o| / |o|` against the f64 oracle, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_oracle_max_rel_err: Option<f64>,
    /// Elements that are NaN/Inf where the golden is finite (not fitted).
    pub nonfinite_mismatches: u64,
    /// Integer or bool elements that differ, or elements of a differing shape.
    pub exact_mismatches: u64,
}

/// How one output is compared: not at all, or under a mode with an outlier fraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutputRule {
    /// `mode = "skip"` or `skip = true`: not compared, absent from the report.
    Skip,
    /// Compared under `mode`; up to `outlier_fraction` of the units may miss.
    Compare {
        /// The comparison mode with its settings.
        mode: Mode,
        /// Share of units (elements, rows, slices) allowed to miss, in [0, 1].
        outlier_fraction: f64,
    },
}

impl Default for OutputRule {
    /// allclose, nothing forgiven.
    fn default() -> Self {
        OutputRule::Compare {
            mode: Mode::AllClose,
            outlier_fraction: 0.0,
        }
    }
}

/// The `mode` key of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeKey {
    /// `|a - e| <= atol + rtol * |e|` per element (the default).
    Allclose,
    /// ULP distance per element at most `max_ulp`.
    Ulp,
    /// Cosine similarity at least `min_cosine`, whole tensor or per row along `axis`.
    Cosine,
    /// Top-k positions along `axis` agree.
    Topk,
    /// Not compared.
    Skip,
}

impl ModeKey {
    fn name(self) -> &'static str {
        match self {
            ModeKey::Allclose => "allclose",
            ModeKey::Ulp => "ulp",
            ModeKey::Cosine => "cosine",
            ModeKey::Topk => "topk",
            ModeKey::Skip => "skip",
        }
    }
}

/// The `[inputs.NAME]` table: the values an input may hold. Without one, any finite value
/// passes and NaN/Inf are problems.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputRange {
    /// Smallest allowed value (inclusive).
    pub min: Option<f64>,
    /// Largest allowed value (inclusive).
    pub max: Option<f64>,
    /// NaN is an allowed value (default false).
    pub allow_nan: Option<bool>,
    /// ±Inf are allowed values (default false); `min`/`max` still apply to them.
    pub allow_inf: Option<bool>,
}

/// atol and/or rtol; a missing one keeps the value from the level below.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToleranceOverride {
    /// Absolute tolerance.
    pub atol: Option<f64>,
    /// Relative tolerance.
    pub rtol: Option<f64>,
}

impl ToleranceOverride {
    /// The tolerance for an output of `dtype`: what this sets, the dtype's default for
    /// what it leaves open.
    pub fn resolve(self, dtype: crate::tensor::DType) -> crate::compare::Tolerance {
        let default = crate::compare::Tolerance::default_for(dtype);
        crate::compare::Tolerance {
            atol: self.atol.unwrap_or(default.atol),
            rtol: self.rtol.unwrap_or(default.rtol),
        }
    }
}

/// Settings for one output, as written; [`Manifest::rule_for`] has them resolved.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    /// Comparison mode; `allclose` when absent.
    pub mode: Option<ModeKey>,
    /// allclose: absolute tolerance.
    pub atol: Option<f64>,
    /// allclose: relative tolerance.
    pub rtol: Option<f64>,
    /// `true` is the same as `mode = "skip"`: not compared, absent from the report.
    pub skip: Option<bool>,
    /// ulp: the largest distance that passes (an integer ≥ 0).
    pub max_ulp: Option<i64>,
    /// cosine: the lowest similarity that passes, in [0, 1].
    pub min_cosine: Option<f64>,
    /// topk: how many top positions to compare (an integer ≥ 1; default 1).
    pub k: Option<i64>,
    /// cosine: compare each row along this axis; topk: the slices' axis (default -1).
    pub axis: Option<i64>,
    /// topk: compare the top-k in rank order rather than as sets (default false).
    pub ordered: Option<bool>,
    /// Any mode: share of units allowed to miss, in [0, 1] (default 0).
    pub outlier_fraction: Option<f64>,
    /// Any mode: `true` makes NaN/±Inf in this output a failure even where the expected
    /// value holds the same NaN/Inf (`parity fuzz --save` writes it for outputs that went
    /// non-finite from finite inputs, so `check` replays that finding).
    pub finite: Option<bool>,
    /// allclose: atol/rtol for one backend's comparison with the goldens, keyed by
    /// backend name (`[outputs.NAME.backends.ort-cpu]`); `record --calibrate` writes one
    /// per backend it measured. A backend not listed gets the output's own tolerance.
    #[serde(default)]
    pub backends: BTreeMap<String, ToleranceOverride>,
}

/// `[metrics.NAME]`: read the output as class scores.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// The class axis (default -1).
    pub axis: Option<i64>,
    /// k of top-k agreement (default 5).
    pub k: Option<i64>,
}

/// `[labels]` in `parity.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelsTable {
    /// The output the labels score; may be left out for a one-output model.
    pub output: Option<String>,
    /// Data set → its class, or one class per row.
    #[serde(default)]
    pub cases: BTreeMap<String, LabelValue>,
}

/// One data set's label(s) as written in `parity.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum LabelValue {
    One(u64),
    Rows(Vec<u64>),
}

/// `[sequence]`: how the steps of a stateful suite are chained.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Sequence {
    /// Output name → the input it becomes at the next step. Step 0 reads every input
    /// from its data set; later steps read the carried inputs from the backend's own
    /// previous outputs (the data set's value of a carried input is what the recording
    /// backend fed, kept for reference).
    pub carry: BTreeMap<String, String>,
}

/// `[generate]`: how a generation suite's prompts are decoded and judged.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GenerateSettings {
    /// Tokens generated per prompt.
    pub max_new_tokens: usize,
    /// k of the near-tie rule.
    pub top_logprobs: usize,
    /// Prompts decoded together (left-padded).
    #[serde(default = "one")]
    pub batch: usize,
    /// The token ids input, when not `input_ids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ids: Option<String>,
    /// The attention mask input, when not `attention_mask`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_mask: Option<String>,
    /// The position ids input, when not `position_ids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_ids: Option<String>,
    /// The logits output, when not `logits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logits: Option<String>,
    /// Cache pairs output → input, when not the `present.X` → `past_key_values.X`
    /// convention.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kv: BTreeMap<String, String>,
}

fn one() -> usize {
    1
}

impl GenerateSettings {
    /// The IO names to look for in the model.
    pub fn names(&self) -> crate::generate::convention::Names {
        let d = crate::generate::convention::Names::default();
        crate::generate::convention::Names {
            input_ids: self.input_ids.clone().unwrap_or(d.input_ids),
            attention_mask: self.attention_mask.clone().unwrap_or(d.attention_mask),
            position_ids: self.position_ids.clone().unwrap_or(d.position_ids),
            logits: self.logits.clone().unwrap_or(d.logits),
            cache: self
                .kv
                .iter()
                .map(|(o, i)| (o.clone(), i.clone()))
                .collect(),
            explicit_mask: self.attention_mask.is_some(),
            explicit_positions: self.position_ids.is_some(),
        }
    }

    /// The settings as a `parity generate` run names them (`None` stays the convention).
    pub fn from_names(
        names: &crate::generate::convention::Names,
        max_new_tokens: usize,
        top_logprobs: usize,
        batch: usize,
    ) -> GenerateSettings {
        let d = crate::generate::convention::Names::default();
        let given = |v: &String, default: &String| (v != default).then(|| v.clone());
        GenerateSettings {
            max_new_tokens,
            top_logprobs,
            batch,
            input_ids: given(&names.input_ids, &d.input_ids),
            attention_mask: given(&names.attention_mask, &d.attention_mask),
            position_ids: given(&names.position_ids, &d.position_ids),
            logits: given(&names.logits, &d.logits),
            kv: names.cache.iter().cloned().collect(),
        }
    }
}

impl Manifest {
    /// Reads `dir/parity.toml` when it exists; defaults otherwise.
    pub fn read_or_default(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        // A dangling symlink is not "no manifest": reading it names the problem.
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(Manifest::default());
        }
        let text = crate::formats::read_text(&path)?;
        Manifest::parse(&text, &path)
    }

    /// Parses and validates the text of a `parity.toml`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let mut manifest: Manifest = toml::from_str(text).map_err(|e| {
            let msg = e.message();
            let line = e.span().map_or(String::new(), |span| {
                let before = text.get(..span.start).unwrap_or_default();
                let line = before.matches('\n').count() + 1;
                format!("line {line}: ")
            });
            Error::file(path, format!("invalid parity.toml: {line}{msg}"))
        })?;
        manifest.validate(path)?;
        for (name, settings) in &manifest.outputs {
            let rule = resolve(settings)
                .map_err(|msg| Error::file(path, format!("[outputs.{name}] {msg}")))?;
            manifest.rules.insert(name.clone(), rule);
        }
        Ok(manifest)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let per_backend = self.outputs.iter().flat_map(|(n, o)| {
            o.backends
                .iter()
                .map(move |(b, t)| (format!("[outputs.{n}.backends.{b}]"), *t))
        });
        let all = std::iter::once(("[tolerance]".to_string(), self.tolerance))
            .chain(self.outputs.iter().map(|(n, o)| {
                (
                    format!("[outputs.{n}]"),
                    ToleranceOverride {
                        atol: o.atol,
                        rtol: o.rtol,
                    },
                )
            }))
            .chain(per_backend);
        for (table, t) in all {
            for (key, v) in [("atol", t.atol), ("rtol", t.rtol)] {
                if let Some(v) = v {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(Error::file(
                            path,
                            format!("{table} {key} = {v}: must be a finite number ≥ 0"),
                        ));
                    }
                }
            }
        }
        if let Some(g) = &self.generate {
            let max = crate::generate::MAX_TOKENS;
            for (key, v, lo, hi) in [
                ("max_new_tokens", g.max_new_tokens, 1, max),
                ("top_logprobs", g.top_logprobs, 1, 1000),
                ("batch", g.batch, 1, 1024),
            ] {
                if !(lo..=hi).contains(&v) {
                    return Err(Error::file(
                        path,
                        format!("[generate] {key} = {v}: must be between {lo} and {hi}"),
                    ));
                }
            }
            if self.sequence.is_some() {
                return Err(Error::file(
                    path,
                    "[generate] and [sequence] exclude each other (a generation suite carries its KV cache itself)",
                ));
            }
        }
        for (name, r) in &self.inputs {
            for (key, v) in [("min", r.min), ("max", r.max)] {
                if v.is_some_and(f64::is_nan) {
                    return Err(Error::file(path, format!("[inputs.{name}] {key} is NaN")));
                }
            }
            if let (Some(lo), Some(hi)) = (r.min, r.max) {
                if lo > hi {
                    return Err(Error::file(
                        path,
                        format!("[inputs.{name}] min = {lo} is above max = {hi}"),
                    ));
                }
            }
        }
        self.validate_integrity(path)
    }

    /// `[files]` keys are safe suite-relative paths and every digest is 64 hex digits;
    /// `[provenance] model_sha256` agrees with `[files] "model.onnx"` when both are set.
    fn validate_integrity(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Err(Error::file(path, msg));
        for (key, digest) in &self.files {
            if let Err(why) = check_relative_path(key) {
                return bad(format!("[files] \"{}\": {why}", key.escape_debug()));
            }
            if !is_sha256_hex(digest) {
                return bad(format!(
                    "[files] \"{}\" = \"{}\": not a sha256 (64 hex digits)",
                    key.escape_debug(),
                    digest.escape_debug()
                ));
            }
        }
        let recorded = self
            .provenance
            .as_ref()
            .and_then(|p| p.model_sha256.as_ref());
        if let Some(sha) = recorded {
            if !is_sha256_hex(sha) {
                return bad(format!(
                    "[provenance] model_sha256 = \"{}\": not a sha256 (64 hex digits)",
                    sha.escape_debug()
                ));
            }
            if let Some(listed) = self.files.get(crate::suite::MODEL_FILE) {
                if !listed.eq_ignore_ascii_case(sha) {
                    return bad(
                        "[provenance] model_sha256 and [files] \"model.onnx\" differ".to_string(),
                    );
                }
            }
        }
        Ok(())
    }

    /// The sha256 the suite's model was recorded with: `[provenance] model_sha256`, else
    /// `[files] "model.onnx"`; `None` for a suite that records neither.
    pub fn recorded_model_sha256(&self) -> Option<&str> {
        self.provenance
            .as_ref()
            .and_then(|p| p.model_sha256.as_deref())
            .or_else(|| self.files.get(crate::suite::MODEL_FILE).map(String::as_str))
    }

    /// The tolerance override for an output compared with the goldens on `backend`
    /// (`None`: against another backend, or no backend in particular): the backend's own
    /// keys under `[outputs.NAME.backends]`, else the output's, else the suite-wide ones.
    pub fn tolerance_for(&self, output: &str, backend: Option<&str>) -> ToleranceOverride {
        let own = self.outputs.get(output);
        let per_backend = own
            .zip(backend)
            .and_then(|(o, b)| o.backends.get(b))
            .copied()
            .unwrap_or_default();
        ToleranceOverride {
            atol: per_backend
                .atol
                .or(own.and_then(|o| o.atol))
                .or(self.tolerance.atol),
            rtol: per_backend
                .rtol
                .or(own.and_then(|o| o.rtol))
                .or(self.tolerance.rtol),
        }
    }

    /// Whether the output must hold only finite values (`finite = true`).
    pub fn requires_finite(&self, output: &str) -> bool {
        self.outputs.get(output).and_then(|o| o.finite) == Some(true)
    }

    /// Whether an output is excluded from comparison.
    pub fn skips(&self, output: &str) -> bool {
        self.rule_for(output) == OutputRule::Skip
    }

    /// Refuses `[outputs.NAME]` and `[inputs.NAME]` tables that name no output or input
    /// of the model: a typo (`logit` for `logits`) would otherwise leave the real output
    /// on default settings without a word. `dir` is the suite, for the message.
    pub fn check_names(&self, dir: &Path, inputs: &[String], outputs: &[String]) -> Result<()> {
        let tables: [(&str, &[String], Vec<&String>); 2] = [
            ("outputs", outputs, self.outputs.keys().collect()),
            ("inputs", inputs, self.inputs.keys().collect()),
        ];
        for (table, names, keys) in tables {
            for key in keys {
                if names.contains(key) {
                    continue;
                }
                let kind = &table[..table.len() - 1];
                let known = match names {
                    [] => format!("the model has no {table}"),
                    _ => format!("the model's {table}: {}", names.join(", ")),
                };
                return Err(Error::file(
                    dir.join(MANIFEST_FILE),
                    format!("[{table}.{key}]: the model has no {kind} `{key}` ({known})"),
                ));
            }
        }
        if self.sequence.as_ref().is_some_and(|s| s.carry.is_empty()) {
            return Err(Error::file(
                dir.join(MANIFEST_FILE),
                "[sequence] carries nothing: name at least one output = input pair in [sequence.carry]",
            ));
        }
        let carry = self.sequence.iter().flat_map(|s| &s.carry);
        let mut fed: Vec<&String> = Vec::new();
        for (output, input) in carry {
            let bad = |msg: String| {
                Err(Error::file(
                    dir.join(MANIFEST_FILE),
                    format!("[sequence.carry] \"{output}\" = \"{input}\": {msg}"),
                ))
            };
            if !outputs.contains(output) {
                return bad(format!(
                    "the model has no output `{output}` (its outputs: {})",
                    outputs.join(", ")
                ));
            }
            if !inputs.contains(input) {
                return bad(format!(
                    "the model has no input `{input}` (its inputs: {})",
                    inputs.join(", ")
                ));
            }
            if fed.contains(&input) {
                return bad(format!("input `{input}` is already fed by another output"));
            }
            fed.push(input);
        }
        Ok(())
    }

    /// How an output is compared: its `[outputs.NAME]` mode, allclose by default.
    pub fn rule_for(&self, output: &str) -> OutputRule {
        self.rules.get(output).copied().unwrap_or_default()
    }
}

/// The keys an output table may hold besides `mode`/`skip`, and the modes each one
/// belongs to.
const MODE_KEYS: [(&str, &[ModeKey]); 9] = [
    ("atol", &[ModeKey::Allclose]),
    ("rtol", &[ModeKey::Allclose]),
    ("backends", &[ModeKey::Allclose]),
    ("max_ulp", &[ModeKey::Ulp]),
    ("min_cosine", &[ModeKey::Cosine]),
    ("k", &[ModeKey::Topk]),
    ("axis", &[ModeKey::Cosine, ModeKey::Topk]),
    ("ordered", &[ModeKey::Topk]),
    (
        "outlier_fraction",
        &[
            ModeKey::Allclose,
            ModeKey::Ulp,
            ModeKey::Cosine,
            ModeKey::Topk,
        ],
    ),
];

/// Resolves and checks one output table; the message names the offending key.
fn resolve(o: &OutputSettings) -> std::result::Result<OutputRule, String> {
    let mode = match (o.mode, o.skip) {
        (None, Some(true)) | (Some(ModeKey::Skip), None | Some(true)) => ModeKey::Skip,
        (Some(ModeKey::Skip), Some(false)) => {
            return Err("skip = false contradicts mode = \"skip\"".to_string())
        }
        (Some(mode), Some(true)) => {
            return Err(format!(
                "skip = true contradicts mode = \"{}\"",
                mode.name()
            ))
        }
        (Some(mode), _) => mode,
        (None, _) => ModeKey::Allclose,
    };
    let present = [
        o.atol.is_some(),
        o.rtol.is_some(),
        !o.backends.is_empty(),
        o.max_ulp.is_some(),
        o.min_cosine.is_some(),
        o.k.is_some(),
        o.axis.is_some(),
        o.ordered.is_some(),
        o.outlier_fraction.is_some(),
    ];
    for ((key, modes), present) in MODE_KEYS.iter().zip(present) {
        if present && !modes.contains(&mode) {
            let allowed: Vec<String> = modes.iter().map(|m| format!("\"{}\"", m.name())).collect();
            return Err(format!(
                "{key} does not apply to mode = \"{}\" (it belongs to mode = {})",
                mode.name(),
                allowed.join(" or ")
            ));
        }
    }
    let outlier_fraction = match o.outlier_fraction {
        None => 0.0,
        Some(f) if (0.0..=1.0).contains(&f) => f,
        Some(f) => {
            return Err(format!(
                "outlier_fraction = {f}: must be a number in [0, 1]"
            ))
        }
    };
    let mode = match mode {
        ModeKey::Skip => return Ok(OutputRule::Skip),
        ModeKey::Allclose => Mode::AllClose,
        ModeKey::Ulp => {
            let max_ulp = o
                .max_ulp
                .ok_or_else(|| "mode = \"ulp\" needs max_ulp (an integer ≥ 0)".to_string())?;
            let max_ulp = u64::try_from(max_ulp)
                .map_err(|_| format!("max_ulp = {max_ulp}: must be an integer ≥ 0"))?;
            Mode::Ulp { max_ulp }
        }
        ModeKey::Cosine => {
            let min_cosine = o.min_cosine.ok_or_else(|| {
                "mode = \"cosine\" needs min_cosine (a number in [0, 1], e.g. 0.999)".to_string()
            })?;
            if !(0.0..=1.0).contains(&min_cosine) {
                return Err(format!(
                    "min_cosine = {min_cosine}: must be a number in [0, 1]"
                ));
            }
            Mode::Cosine {
                min_cosine,
                axis: o.axis,
            }
        }
        ModeKey::Topk => {
            let k = o.k.unwrap_or(1);
            let k = usize::try_from(k)
                .ok()
                .filter(|&k| k >= 1)
                .ok_or_else(|| format!("k = {k}: must be an integer ≥ 1"))?;
            Mode::TopK {
                k,
                axis: o.axis.unwrap_or(-1),
                ordered: o.ordered.unwrap_or(false),
            }
        }
    };
    Ok(OutputRule::Compare {
        mode,
        outlier_fraction,
    })
}

/// Whether `s` is a hex sha256 digest (either case).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A `[files]` key must name a file inside the suite: relative, `/`-separated, without
/// `.`/`..` or empty components, so that a manifest can never point outside its suite.
pub fn check_relative_path(key: &str) -> std::result::Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty path");
    }
    if key.contains('\\') {
        return Err("use `/` as the separator");
    }
    if key.starts_with('/') || key.contains(':') {
        return Err("must be relative to the suite directory");
    }
    if key
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("empty, `.` or `..` components are not allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, Result<Manifest>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), text).unwrap();
        let m = Manifest::read_or_default(dir.path());
        (dir, m)
    }

    #[test]
    fn output_settings_override_the_suite_wide_ones() {
        let (_d, m) = write("[tolerance]\natol = 1e-5\nrtol = 1e-4\n[outputs.y]\nrtol = 1e-2\n[outputs.z]\nskip = true\n");
        let m = m.unwrap();
        assert_eq!(
            m.tolerance_for("y", None),
            ToleranceOverride {
                atol: Some(1e-5),
                rtol: Some(1e-2)
            }
        );
        assert_eq!(
            m.tolerance_for("x", None),
            ToleranceOverride {
                atol: Some(1e-5),
                rtol: Some(1e-4)
            }
        );
        assert!(m.skips("z") && !m.skips("y"));
    }

    #[test]
    fn a_backends_own_tolerance_comes_first_then_the_outputs() {
        let text = "[tolerance]\natol = 1e-5\n[outputs.y]\nrtol = 1e-3\n\
                    [outputs.y.backends.ort-cpu]\natol = 1e-9\nrtol = 2e-7\n\
                    [outputs.y.backends.tract-cpu]\nrtol = 5e-6\n";
        let (_d, m) = write(text);
        let m = m.unwrap();
        let t = |b| m.tolerance_for("y", b);
        assert_eq!(
            t(Some("ort-cpu")),
            ToleranceOverride {
                atol: Some(1e-9),
                rtol: Some(2e-7)
            }
        );
        // A missing key falls through to the output's, then to the suite-wide one.
        assert_eq!(
            t(Some("tract-cpu")),
            ToleranceOverride {
                atol: Some(1e-5),
                rtol: Some(5e-6)
            }
        );
        // A backend not calibrated, and a comparison with no golden, get the output's.
        assert_eq!(
            t(Some("candle-cpu")),
            ToleranceOverride {
                atol: Some(1e-5),
                rtol: Some(1e-3)
            }
        );
        assert_eq!(t(None), t(Some("candle-cpu")));
    }

    #[test]
    fn per_backend_tolerances_are_validated_and_belong_to_allclose() {
        let (_d, m) = write("[outputs.y.backends.ort-cpu]\natol = -1.0\n");
        let err = m.unwrap_err().to_string();
        assert!(
            err.contains("[outputs.y.backends.ort-cpu] atol = -1"),
            "{err}"
        );
        let (_d, m) = write(
            "[outputs.y]\nmode = \"ulp\"\nmax_ulp = 2\n[outputs.y.backends.ort-cpu]\natol = 1.0\n",
        );
        let err = m.unwrap_err().to_string();
        assert!(
            err.contains("backends does not apply to mode = \"ulp\""),
            "{err}"
        );
        let (_d, m) = write("[outputs.y.backends.ort-cpu]\natoll = 1.0\n");
        assert!(m.unwrap_err().to_string().contains("atoll"));
    }

    #[test]
    fn a_typo_is_an_error_naming_the_file() {
        let (d, m) = write("[tolerance]\nrtoll = 1e-3\n");
        let err = m.unwrap_err().to_string();
        assert!(
            err.starts_with(&d.path().join(MANIFEST_FILE).display().to_string()),
            "{err}"
        );
        assert!(err.contains("rtoll"), "{err}");
    }

    #[test]
    fn negative_tolerance_is_refused() {
        let (_d, m) = write("[outputs.y]\natol = -1.0\n");
        assert!(m.unwrap_err().to_string().contains("[outputs.y] atol = -1"));
    }

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn provenance_and_files_are_read() {
        let text = format!(
            "[provenance]\nbackend = \"ort-cpu\"\nmodel_sha256 = \"{SHA}\"\n[files]\n\"test_data_set_0/input_0.pb\" = \"{SHA}\"\n"
        );
        let (_d, m) = write(&text);
        let m = m.unwrap();
        assert_eq!(
            m.provenance.as_ref().unwrap().backend.as_deref(),
            Some("ort-cpu")
        );
        assert_eq!(m.recorded_model_sha256(), Some(SHA));
        assert_eq!(m.files["test_data_set_0/input_0.pb"], SHA);
    }

    #[test]
    fn integrity_tables_are_validated() {
        for (text, needle) in [
            (format!("[files]\n\"../x.pb\" = \"{SHA}\"\n"), "`..`"),
            (
                format!("[files]\n\"/etc/passwd\" = \"{SHA}\"\n"),
                "relative",
            ),
            ("[files]\n\"a.pb\" = \"abc\"\n".to_string(), "not a sha256"),
            (
                "[provenance]\nmodel_sha256 = \"xyz\"\n".to_string(),
                "model_sha256",
            ),
            (
                "[provenance]\nbackendd = \"ort-cpu\"\n".to_string(),
                "backendd",
            ),
            (
                format!(
                    "[provenance]\nmodel_sha256 = \"{SHA}\"\n[files]\n\"model.onnx\" = \"{}\"\n",
                    "0".repeat(64)
                ),
                "differ",
            ),
        ] {
            let (_d, m) = write(&text);
            let err = m.unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.contains(MANIFEST_FILE), "{err}");
        }
    }

    #[test]
    fn no_manifest_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::read_or_default(dir.path()).unwrap();
        assert_eq!(m.tolerance_for("y", None), ToleranceOverride::default());
    }

    fn error_of(text: &str) -> (String, String) {
        let (d, m) = write(text);
        let err = m.unwrap_err().to_string();
        let path = d.path().join(MANIFEST_FILE).display().to_string();
        assert!(err.starts_with(&path), "{err}");
        (err, path)
    }

    #[test]
    fn modes_are_parsed_with_their_defaults() {
        let (_d, m) = write(concat!(
            "[outputs.h]\nmode = \"ulp\"\nmax_ulp = 4\n",
            "[outputs.e]\nmode = \"cosine\"\nmin_cosine = 0.999\naxis = 1\noutlier_fraction = 0.01\n",
            "[outputs.w]\nmode = \"cosine\"\nmin_cosine = 1\n",
            "[outputs.l]\nmode = \"topk\"\n",
            "[outputs.l3]\nmode = \"topk\"\nk = 3\naxis = 0\nordered = true\n",
            "[outputs.p]\nmode = \"allclose\"\natol = 0.1\n",
            "[outputs.s]\nmode = \"skip\"\n",
            "[outputs.t]\nskip = true\n",
            "[outputs.f]\nskip = false\nrtol = 0.5\n",
        ));
        let m = m.unwrap();
        let compare = |mode, outlier_fraction| OutputRule::Compare {
            mode,
            outlier_fraction,
        };
        assert_eq!(m.rule_for("h"), compare(Mode::Ulp { max_ulp: 4 }, 0.0));
        assert_eq!(
            m.rule_for("e"),
            compare(
                Mode::Cosine {
                    min_cosine: 0.999,
                    axis: Some(1)
                },
                0.01
            )
        );
        assert_eq!(
            m.rule_for("w"),
            compare(
                Mode::Cosine {
                    min_cosine: 1.0,
                    axis: None
                },
                0.0
            )
        );
        let top1 = Mode::TopK {
            k: 1,
            axis: -1,
            ordered: false,
        };
        assert_eq!(m.rule_for("l"), compare(top1, 0.0));
        let top3 = Mode::TopK {
            k: 3,
            axis: 0,
            ordered: true,
        };
        assert_eq!(m.rule_for("l3"), compare(top3, 0.0));
        assert_eq!(m.rule_for("p"), OutputRule::default());
        assert_eq!(m.tolerance_for("p", None).atol, Some(0.1));
        assert_eq!(m.rule_for("f"), OutputRule::default());
        assert!(m.skips("s") && m.skips("t") && !m.skips("f") && !m.skips("unlisted"));
        assert_eq!(m.rule_for("unlisted"), OutputRule::default());
    }

    #[test]
    fn a_key_of_another_mode_is_an_error_naming_file_and_table() {
        let (err, _) = error_of("[outputs.logits]\nmode = \"ulp\"\nmax_ulp = 2\nk = 1\n");
        assert!(
            err.ends_with(": [outputs.logits] k does not apply to mode = \"ulp\" (it belongs to mode = \"topk\")"),
            "{err}"
        );
        let (err, _) = error_of("[outputs.y]\natol = 1e-3\nmin_cosine = 0.9\n");
        assert!(
            err.contains("[outputs.y] min_cosine does not apply to mode = \"allclose\""),
            "{err}"
        );
        let (err, _) = error_of("[outputs.y]\nmode = \"topk\"\nrtol = 1e-3\n");
        assert!(
            err.contains("[outputs.y] rtol does not apply to mode = \"topk\""),
            "{err}"
        );
        let (err, _) = error_of("[outputs.y]\naxis = 1\n");
        assert!(
            err.contains("belongs to mode = \"cosine\" or \"topk\""),
            "{err}"
        );
        let (err, _) = error_of("[outputs.y]\nmode = \"skip\"\noutlier_fraction = 0.1\n");
        assert!(
            err.contains("[outputs.y] outlier_fraction does not apply to mode = \"skip\""),
            "{err}"
        );
    }

    #[test]
    fn mode_values_are_validated() {
        for (text, needle) in [
            (
                "mode = \"ulp\"\nmax_ulp = -1",
                "max_ulp = -1: must be an integer ≥ 0",
            ),
            ("mode = \"ulp\"", "mode = \"ulp\" needs max_ulp"),
            (
                "mode = \"ulp\"\nmax_ulp = 1.5",
                "line 3: invalid type: floating point `1.5`",
            ),
            (
                "mode = \"cosine\"\nmin_cosine = 1.5",
                "min_cosine = 1.5: must be a number in [0, 1]",
            ),
            ("mode = \"cosine\"\nmin_cosine = -0.1", "min_cosine = -0.1"),
            ("mode = \"cosine\"\nmin_cosine = nan", "min_cosine = NaN"),
            ("mode = \"cosine\"", "mode = \"cosine\" needs min_cosine"),
            ("mode = \"topk\"\nk = 0", "k = 0: must be an integer ≥ 1"),
            ("mode = \"topk\"\nk = -2", "k = -2: must be an integer ≥ 1"),
            (
                "outlier_fraction = 1.01",
                "outlier_fraction = 1.01: must be a number in [0, 1]",
            ),
            ("outlier_fraction = -0.5", "outlier_fraction = -0.5"),
            ("mode = \"cosin\"", "unknown variant `cosin`"),
            (
                "mode = \"topk\"\nskip = true",
                "skip = true contradicts mode = \"topk\"",
            ),
            (
                "mode = \"skip\"\nskip = false",
                "skip = false contradicts mode = \"skip\"",
            ),
            ("mode = \"topk\"\nkk = 1", "kk"),
        ] {
            let (err, _) = error_of(&format!("[outputs.y]\n{text}\n"));
            assert!(err.contains(needle), "`{text}`: {err}");
        }
    }

    /// The fuzzer's kept inputs (fuzz/corpus/manifest) parse or fail with an error.
    #[test]
    fn fuzz_corpus_replays() {
        for (path, bytes) in crate::formats::test_util::fuzz_corpus("manifest") {
            let Ok(Ok(m)) = std::str::from_utf8(&bytes).map(|t| Manifest::parse(t, &path)) else {
                continue;
            };
            for output in m.outputs.keys() {
                let _ = (m.rule_for(output), m.tolerance_for(output, None));
            }
        }
    }
}
