//! `parity merge REPORT.json...`: combine the `parity.report/v1` JSON reports of a
//! sharded run (`check --shard I/N` on several machines) into one report, rendered in
//! any report format. Cases are sorted by suite, case, backend and reference; the
//! summary and verdict are recomputed from them, so the merged report of all shards
//! says what the unsharded run says. A case that appears in two inputs is an error.
//! The suites' audit hashes are united (a suite checked with different model or manifest
//! hashes in two inputs is an error: the shards did not check the same files), and the
//! `--matrix` tables of the shards are folded cell by cell into the run's.

use super::output::OutputArgs;
use super::Global;
use crate::error::{Error, Result};
use crate::report::gates::{Gate, GateResult, SuiteGates};
use crate::report::{
    BackendInfo, CaseReport, CaseVerdict, Environment, Incomplete, MatrixEntry, MergedReport,
    Report, SuiteAudit, Summary, Warning, SCHEMA,
};
use std::collections::HashSet;
use std::path::PathBuf;

/// Combine JSON reports of sharded runs into one report.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  parity merge shard-*.json --format junit --out parity.xml\n\nThe exit code is the merged verdict's: 0 pass, 1 mismatch, 2 could not evaluate\n(also: a file that is not a parity.report/v1 report, or a case found in two files)."
)]
pub struct MergeArgs {
    /// `parity check --format json` reports (`parity.report/v1`), e.g. one per shard.
    #[arg(required = true, value_name = "REPORT.json")]
    reports: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(args: MergeArgs, global: Global) -> Result<u8> {
    args.output
        .refuse_inputs(args.reports.iter().map(PathBuf::as_path))?;
    let inputs = args
        .reports
        .iter()
        .map(|path| read_report(path).map(|r| (path, r)))
        .collect::<Result<Vec<_>>>()?;
    let merged = merge(&inputs)?;
    if !args.output.text_on_stdout() {
        for w in &merged.warnings {
            eprintln!("warning: {}", w.message);
        }
    }
    args.output.emit_report(&merged, global)
}

/// A `parity.report/v1` report as read back (the schema id was checked before).
#[derive(Debug, serde::Deserialize)]
pub struct ReportFile {
    pub verdict: CaseVerdict,
    pub environment: Environment,
    pub summary: Summary,
    pub cases: Vec<CaseReport>,
    /// The suites' audit entries (hashes, provenance); absent from `compare` reports.
    #[serde(default)]
    pub suites: Vec<SuiteAudit>,
    #[serde(default)]
    pub shard: Option<String>,
    #[serde(default)]
    pub merged: Vec<MergedReport>,
    #[serde(default)]
    pub matrix: Option<Vec<MatrixEntry>>,
    /// Set when the run was interrupted; carried into the merged report.
    #[serde(default)]
    pub incomplete: Option<Incomplete>,
    /// The run's warnings; carried into the merged report (each once).
    #[serde(default)]
    pub warnings: Vec<Warning>,
    /// The dataset gates judged; `merge` re-judges them on the merged metrics.
    #[serde(default)]
    pub gates: Vec<GateResult>,
}

/// Reads one JSON report, checking its schema identifier first.
fn read_report(path: &std::path::Path) -> Result<ReportFile> {
    with_report_words(|words| crate::formats::read_schema_json(path, words))
}

/// [`read_report`] on a report already read; `path` names it in errors.
pub fn parse_report(text: &str, path: &std::path::Path) -> Result<ReportFile> {
    with_report_words(|words| crate::formats::parse_schema_json(text, path, words))
}

/// Calls `f` with how a report's refusals are worded.
fn with_report_words<R>(f: impl FnOnce(&crate::formats::SchemaWords) -> R) -> R {
    f(&crate::formats::SchemaWords {
        schema: SCHEMA,
        other: &format!("merge reads `{SCHEMA}` reports"),
        missing: &format!(
            "not a `{SCHEMA}` report (no \"schema\" field; write it with --format json)"
        ),
        thing: "report",
    })
}

/// Merges reports: cases concatenated and sorted, summary and verdict recomputed, the
/// environment of the first report (with the backends of all) on top and every input's
/// environment under `merged`.
pub fn merge(inputs: &[(&PathBuf, ReportFile)]) -> Result<Report> {
    let mut seen = HashSet::new();
    let mut cases = Vec::new();
    let mut backends: Vec<BackendInfo> = Vec::new();
    let mut skipped: Vec<crate::report::SkippedBackend> = Vec::new();
    let mut sources = Vec::new();
    for (path, report) in inputs {
        for case in &report.cases {
            let key = (
                case.suite.clone(),
                case.case.clone(),
                case.backend.clone(),
                case.reference.clone(),
            );
            if !seen.insert(key) {
                return Err(Error::file(
                    path,
                    format!(
                        "case {} {} {} (reference {}) is already in another report (the same shard twice?)",
                        case.suite, case.case, case.backend, case.reference
                    ),
                ));
            }
        }
        cases.extend(report.cases.iter().cloned());
        for b in &report.environment.backends {
            if !backends.contains(b) {
                backends.push(b.clone());
            }
        }
        // A backend skipped by any shard left that shard's cases untested on it.
        for b in &report.environment.skipped_backends {
            if !skipped.contains(b) {
                skipped.push(b.clone());
            }
        }
        if !report.merged.is_empty() {
            // A merged report merged again: keep its original inputs.
            sources.extend(report.merged.iter().cloned());
            continue;
        }
        sources.push(MergedReport {
            file: path.display().to_string(),
            shard: report.shard.clone(),
            verdict: report.verdict,
            summary: report.summary.clone(),
            environment: report.environment.clone(),
        });
    }
    cases.sort_by(|a, b| {
        (&a.suite, natural(&a.case), &a.backend, &a.reference).cmp(&(
            &b.suite,
            natural(&b.case),
            &b.backend,
            &b.reference,
        ))
    });
    let Some((_, first)) = inputs.first() else {
        return Err(Error::Usage("merge needs at least one report".to_string()));
    };
    let mut environment = first.environment.clone();
    environment.backends = backends;
    environment.skipped_backends = skipped;
    let mut merged = Report::new(environment, cases);
    merged.merged = sources;
    merged.suites = merge_suites(inputs)?;
    merged.incomplete = inputs.iter().find_map(|(_, r)| r.incomplete.clone());
    for (_, report) in inputs {
        for w in &report.warnings {
            if !merged.warnings.contains(w) {
                merged.warnings.push(w.clone());
            }
        }
    }
    let gates = merge_gates(inputs)?;
    let suite_gates: Vec<SuiteGates> = gates
        .iter()
        .map(|(suite, gates)| SuiteGates { suite, gates })
        .collect();
    merged.judge_gates(&suite_gates);
    let (matrix, without) = merge_matrices(inputs);
    for path in without {
        merged.warnings.push(Warning {
            suite: None,
            message: format!(
                "{} has no matrix (checked without --matrix); the merged matrix covers the other reports",
                path.display()
            ),
        });
    }
    merged.matrix = matrix.map(|mut entries| {
        // Suites in the order of the run (as `suites`), outputs as first seen.
        let rank = |e: &MatrixEntry| merged.suites.iter().position(|s| s.suite == e.suite);
        entries.sort_by_key(|e| rank(e));
        entries
    });
    if merged.cases.is_empty() {
        // Every shard empty: the run selected no case, which is never a pass.
        eprintln!("error: the merged reports hold no case");
        merged.verdict = CaseVerdict::Error;
    }
    Ok(merged)
}

/// The gates each suite was judged by in any input (each once, in first-seen order),
/// read back from their canonical text.
fn merge_gates(inputs: &[(&PathBuf, ReportFile)]) -> Result<Vec<(String, Vec<Gate>)>> {
    let mut suites: Vec<(String, Vec<Gate>)> = Vec::new();
    for (path, report) in inputs {
        for result in &report.gates {
            let gate = Gate::parse(&result.gate)
                .map_err(|e| Error::file(path, format!("gates[]: {e}")))?;
            let i = match suites.iter().position(|(s, _)| *s == result.suite) {
                Some(i) => i,
                None => {
                    suites.push((result.suite.clone(), Vec::new()));
                    suites.len() - 1
                }
            };
            if !suites[i].1.contains(&gate) {
                suites[i].1.push(gate);
            }
        }
    }
    Ok(suites)
}

/// The suites of every input, in order of first appearance. The same suite must carry
/// the same hashes everywhere.
fn merge_suites(inputs: &[(&PathBuf, ReportFile)]) -> Result<Vec<SuiteAudit>> {
    let mut suites: Vec<(SuiteAudit, &PathBuf)> = Vec::new();
    for (path, report) in inputs {
        for audit in &report.suites {
            match suites.iter().find(|(s, _)| s.suite == audit.suite) {
                None => suites.push((audit.clone(), path)),
                Some((seen, _)) if seen == audit => {}
                Some((seen, other)) => {
                    let what = if seen.model_sha256 != audit.model_sha256 {
                        format!(
                            "model sha256 {} here, {}",
                            audit.model_sha256, seen.model_sha256
                        )
                    } else {
                        "a different parity.toml here than".to_string()
                    };
                    return Err(Error::file(
                        path,
                        format!(
                            "suite {} was checked with {what} in {} (the reports are not of the same files)",
                            audit.suite,
                            other.display()
                        ),
                    ));
                }
            }
        }
    }
    Ok(suites.into_iter().map(|(s, _)| s).collect())
}

/// The `--matrix` tables of the inputs folded per suite × output (`None` when no input
/// has one), and the inputs without a matrix among inputs with one.
fn merge_matrices<'a>(
    inputs: &[(&'a PathBuf, ReportFile)],
) -> (Option<Vec<MatrixEntry>>, Vec<&'a PathBuf>) {
    if inputs.iter().all(|(_, r)| r.matrix.is_none()) {
        return (None, Vec::new());
    }
    let mut entries: Vec<MatrixEntry> = Vec::new();
    let mut without = Vec::new();
    for (path, report) in inputs {
        let Some(matrix) = &report.matrix else {
            without.push(*path);
            continue;
        };
        for entry in matrix {
            let mut entry = entry.clone();
            entry.restore_infinities();
            match entries
                .iter_mut()
                .find(|e| e.suite == entry.suite && e.output == entry.output)
            {
                Some(existing) => existing.absorb(&entry),
                None => entries.push(entry),
            }
        }
    }
    (Some(entries), without)
}

/// Sort key putting `test_data_set_2` before `test_data_set_10`: the name without its
/// trailing digits, then their value, then the name itself.
fn natural(name: &str) -> (&str, u128, &str) {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let number = name[stem.len()..].parse().unwrap_or(0);
    (stem, number, name)
}

#[cfg(test)]
mod tests {
    use super::natural;
    use crate::compare::{compare_with, Mode, OutputComparison, Policy, Tolerance};
    use crate::tensor::Tensor;

    /// Every comparison mode, passing and failing, reads back as it was written
    /// (non-finite error maxima travel as JSON `null` and come back as +inf).
    #[test]
    fn output_comparisons_read_back_in_every_mode() {
        let e = Tensor::from_vec(vec![2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let a = Tensor::from_vec(vec![2, 3], vec![1.0f32, 2.5, 3.0, 4.0, f32::NAN, 6.0]).unwrap();
        let short = Tensor::from_vec(vec![3], vec![1.0f32, 2.0, 3.0]).unwrap();
        let modes = [
            Mode::AllClose,
            Mode::Ulp { max_ulp: 4 },
            Mode::Cosine {
                min_cosine: 0.99,
                axis: None,
            },
            Mode::Cosine {
                min_cosine: 0.99,
                axis: Some(-1),
            },
            Mode::TopK {
                k: 2,
                axis: -1,
                ordered: true,
            },
        ];
        for mode in modes {
            let policy = Policy {
                tolerance: Tolerance {
                    atol: 1e-5,
                    rtol: 1e-4,
                },
                mode,
                outlier_fraction: 0.0,
            };
            for actual in [&e, &a, &short] {
                let c = compare_with(&e, actual, &policy);
                let json = serde_json::to_string(&c).unwrap();
                let back: OutputComparison = serde_json::from_str(&json).unwrap();
                assert_eq!(serde_json::to_string(&back).unwrap(), json, "{mode:?}");
            }
        }
    }

    #[test]
    fn data_sets_sort_numerically() {
        let mut v = vec![
            "test_data_set_10",
            "test_data_set_2",
            "a",
            "test_data_set_1",
        ];
        v.sort_by_key(|n| natural(n));
        assert_eq!(
            v,
            [
                "a",
                "test_data_set_1",
                "test_data_set_2",
                "test_data_set_10"
            ]
        );
    }

    /// The fuzzer's kept inputs (fuzz/corpus/report_json) read as reports or errors;
    /// what merges is written as JSON and reads back.
    #[test]
    fn fuzz_corpus_replays() {
        for (path, bytes) in crate::formats::test_util::fuzz_corpus("report_json") {
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            let Ok(report) = super::parse_report(text, &path) else {
                continue;
            };
            if let Ok(merged) = super::merge(&[(&path, report)]) {
                super::parse_report(&merged.to_json(), &path).unwrap();
            }
        }
    }
}
