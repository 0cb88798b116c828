//! Writing a recorded suite's files: `model.onnx`, every data set in the ONNX
//! backend-test layout, and `parity.toml` (tolerances, provenance, sha256 of every file),
//! each synced before the suite is moved into place.

use super::{InputSet, Outputs};
use crate::compare::Tolerance;
use crate::error::{Error, Result};
use crate::formats::{self, onnx_model, onnx_model::ModelInfo};
use crate::suite::integrity;
use crate::suite::manifest::{Calibration, GenerateSettings, Provenance};
use crate::suite::{DATA_SET_PREFIX, MODEL_FILE};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Writes `model.onnx` and every data set into `dir`; returns `[files]`: relative path →
/// sha256 of the bytes on disk.
pub(super) fn write_data(
    dir: &Path,
    model_bytes: &[u8],
    info: &ModelInfo,
    sets: &[InputSet],
    outputs: &Outputs,
) -> Result<BTreeMap<String, String>> {
    let model_path = dir.join(MODEL_FILE);
    write_synced(&model_path, model_bytes)?;
    let mut files = BTreeMap::new();
    files.insert(MODEL_FILE.to_string(), onnx_model::sha256_hex(model_bytes));
    for (n, (set, produced)) in sets.iter().zip(outputs).enumerate() {
        let case = format!("{DATA_SET_PREFIX}{n}");
        let case_dir = dir.join(&case);
        std::fs::create_dir(&case_dir)
            .map_err(|e| Error::file(&case_dir, formats::io_problem(&e)))?;
        let mut written = Vec::new();
        for (k, (spec, tensor)) in info.inputs.iter().zip(&set.tensors).enumerate() {
            let file = format!("input_{k}.pb");
            let path = case_dir.join(&file);
            match set.verbatim.get(k).and_then(Option::as_ref) {
                Some(bytes) => write_synced(&path, bytes)?,
                None => formats::write_tensor(&path, &spec.name, tensor)?,
            }
            written.push((format!("{case}/{file}"), path));
        }
        for (k, (name, tensor)) in produced.iter().enumerate() {
            let file = format!("output_{k}.pb");
            let path = case_dir.join(&file);
            formats::write_tensor(&path, name, tensor)?;
            written.push((format!("{case}/{file}"), path));
        }
        // Tensor writers are atomic and honour the umask (formats::atomic), so the data
        // files get the mode of any file created here, like model.onnx.
        for (key, path) in written {
            files.insert(key, integrity::sha256_file(&path)?);
        }
    }
    Ok(files)
}

/// `parity.toml` as written by `record`.
#[derive(Serialize)]
struct ManifestOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    generate: Option<&'a GenerateSettings>,
    outputs: BTreeMap<&'a str, OutputOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence: Option<SequenceOut<'a>>,
    provenance: &'a Provenance,
    files: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calibration: Option<&'a Calibration>,
}

/// The `[sequence]` table as written.
#[derive(Serialize)]
struct SequenceOut<'a> {
    carry: &'a BTreeMap<String, String>,
}

/// One `[outputs.NAME]` table as written.
#[derive(Serialize)]
struct OutputOut<'a> {
    atol: f64,
    rtol: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    finite: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backends: Option<&'a BTreeMap<String, Tolerance>>,
}

/// What a recorded suite's `parity.toml` states, table by table.
pub(super) struct ManifestTables<'a> {
    /// `[outputs.NAME]` atol/rtol.
    pub tolerances: &'a BTreeMap<String, Tolerance>,
    /// `[outputs.NAME.backends.B]`: output → backend → its own tolerance.
    pub per_backend: &'a BTreeMap<String, BTreeMap<String, Tolerance>>,
    /// Outputs written with `finite = true`.
    pub finite: &'a [String],
    /// `[provenance]`.
    pub provenance: &'a Provenance,
    /// `[files]`: relative path → sha256.
    pub files: &'a BTreeMap<String, String>,
    /// `[calibration]`, with `--calibrate`.
    pub calibration: Option<&'a Calibration>,
    /// `[sequence.carry]` (empty: not a stateful suite).
    pub carry: &'a BTreeMap<String, String>,
    /// `[generate]`, for a generation suite.
    pub generate: Option<&'a GenerateSettings>,
}

/// The manifest text: a header saying what each table is for, then the tables.
pub(super) fn manifest_text(t: &ManifestTables) -> Result<String> {
    let body = toml::to_string(&ManifestOut {
        generate: t.generate,
        outputs: t
            .tolerances
            .iter()
            .map(|(k, v)| {
                let out = OutputOut {
                    atol: v.atol,
                    rtol: v.rtol,
                    finite: t.finite.contains(k).then_some(true),
                    backends: t.per_backend.get(k).filter(|b| !b.is_empty()),
                };
                (k.as_str(), out)
            })
            .collect(),
        sequence: (!t.carry.is_empty()).then_some(SequenceOut { carry: t.carry }),
        provenance: t.provenance,
        files: t.files,
        calibration: t.calibration,
    })
    .map_err(|e| Error::Usage(format!("cannot write parity.toml: {e}")))?;
    Ok(format!(
        "# Golden suite written by `parity record`.\n\
         # [outputs.NAME]  tolerances `parity check` applies to each output (the dtype defaults\n\
         #                 when recorded, --atol/--rtol, or calibrated); edit to loosen or tighten.\n\
         #                 [outputs.NAME.backends.B]: backend B's own, against these goldens.\n\
         # [generate]      a generation suite: each data set is a prompt with its golden greedy\n\
         #                 generation (prompt_ids, tokens, logits); docs/generate.md.\n\
         # [sequence]      the data sets are consecutive steps of one stream: each output in\n\
         #                 [sequence.carry] feeds the named input of the next step.\n\
         # [provenance]    what produced the expected outputs, where and when.\n\
         # [files]         sha256 of every file; `parity check` refuses a data file that\n\
         #                 changed and warns when model.onnx is not the recorded model.\n\
         # [calibration]   with --calibrate: how [outputs] were derived and the errors measured\n\
         #                 per backend and against the f64 oracle (informative).\n\n{body}"
    ))
}

/// Creates `path` with `bytes` and flushes it to disk (the suite directory as a whole is
/// what is renamed atomically, so files inside need no rename of their own).
pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let mut file = std::fs::File::create(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::manifest::MANIFEST_FILE;
    use crate::suite::manifest::{ErrorEvidence, Manifest, OutputEvidence};
    use crate::tensor::DType;

    #[test]
    fn the_written_manifest_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut tol = BTreeMap::new();
        tol.insert("output.1".to_string(), Tolerance::default_for(DType::F32));
        tol.insert("ids".to_string(), Tolerance::default_for(DType::I64));
        let prov = Provenance {
            backend: Some("ort-cpu".into()),
            model_sha256: Some("ab".repeat(32)),
            ..Default::default()
        };
        let mut files = BTreeMap::new();
        files.insert("model.onnx".to_string(), "ab".repeat(32));
        files.insert("test_data_set_0/input_0.pb".to_string(), "cd".repeat(32));
        let mut sources = BTreeMap::new();
        sources.insert(
            "candle-cpu".to_string(),
            ErrorEvidence {
                max_abs_err: 3e-7,
                max_rel_err: 2e-6,
                vs_oracle_max_abs_err: Some(1e-7),
                vs_oracle_max_rel_err: Some(1e-6),
                ..Default::default()
            },
        );
        let mut outputs = BTreeMap::new();
        outputs.insert(
            "output.1".to_string(),
            OutputEvidence {
                dtype: "f32".into(),
                median_abs: 0.5,
                max_abs: 2.0,
                rtol_floor: Some(4.8e-7),
                atol_floor: Some(9.6e-7),
                sources,
                proposed_gates: vec!["sqnr_db>=100.5".into(), "top1_agreement>=1".into()],
            },
        );
        let calibration = Calibration {
            margin: 4.0,
            golden: "ort-cpu".into(),
            backends: vec!["ort-cpu".into(), "candle-cpu".into()],
            oracle: vec!["candle-cpu".into()],
            excluded: vec!["f64-oracle on ort-cpu: \"quoted\" reason".into()],
            data_sets: 2,
            rule: "rule".into(),
            outputs,
        };
        let own = Tolerance {
            atol: 1.5e-7,
            rtol: 4.8e-7,
        };
        let per_backend = BTreeMap::from([(
            "output.1".to_string(),
            BTreeMap::from([("ort-cpu".to_string(), own)]),
        )]);
        for calibrated in [None, Some(&calibration)] {
            let backends = calibrated.map_or_else(BTreeMap::new, |_| per_backend.clone());
            // The calibrated manifest also carries a `[sequence]` table, read back as written.
            let carry: BTreeMap<String, String> = calibrated
                .map(|_| BTreeMap::from([("state_out".to_string(), "state".to_string())]))
                .unwrap_or_default();
            let text = manifest_text(&ManifestTables {
                tolerances: &tol,
                per_backend: &backends,
                finite: &[],
                provenance: &prov,
                files: &files,
                calibration: calibrated,
                carry: &carry,
                generate: None,
            })
            .unwrap();
            std::fs::write(dir.path().join(MANIFEST_FILE), &text).unwrap();
            let m = Manifest::read_or_default(dir.path()).unwrap();
            assert_eq!(
                m.sequence.clone().map(|s| s.carry).unwrap_or_default(),
                carry
            );
            assert_eq!(m.tolerance_for("output.1", None).rtol, Some(1e-4));
            let on_ort = m.tolerance_for("output.1", Some("ort-cpu"));
            let expected = match calibrated {
                Some(_) => (Some(own.atol), Some(own.rtol)),
                None => (Some(1e-5), Some(1e-4)),
            };
            assert_eq!((on_ort.atol, on_ort.rtol), expected, "{text}");
            assert_eq!(m.tolerance_for("ids", None).atol, Some(0.0));
            assert_eq!(m.provenance.as_ref(), Some(&prov));
            assert_eq!(m.files, files);
            assert_eq!(m.calibration.as_ref(), calibrated);
        }
    }
}
