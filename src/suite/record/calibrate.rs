//! `parity record --calibrate`: per-output tolerances measured instead of assumed.
//!
//! Every available backend runs the recorded inputs, and so does an f64 oracle (the
//! model promoted to f64 by [`crate::formats::onnx_f64`], run by the first backend that
//! can). The natural error of an output is what separates the goldens from what a
//! correct implementation answers: each other backend's output, and the oracle's output
//! rounded to the output dtype (a perfectly rounding implementation). From those pairs
//! `(e, |a - e|)`, pooled over backends and data sets:
//!
//! - `rtol = margin × max |a - e| / |e|` over elements with `|e|` at least the median
//!   `|e|` of the output (where relative error is meaningful), never below
//!   `4·eps(dtype)`;
//! - `atol = max(margin × |a - e| − rtol × |e|)` over all elements, so that every
//!   observed error times the margin is within `atol + rtol × |e|`; never below
//!   `4·eps(dtype) × max |e|` (the rounding of a sum whose terms are as large as the
//!   output's largest value).
//!
//! That pooled fit is the output's tolerance, for any backend. Each backend that ran
//! also gets its own (`[outputs.NAME.backends.B]`), fitted by the same rule to its own
//! pairs and the oracle's alone: the recording backend rerun against its own goldens
//! (exactly 0 when it is deterministic) is then held to what a correctly rounding
//! implementation may differ by, not to the noisiest other engine's error.
//!
//! Integer and bool outputs stay exact; a backend that differs on them, or answers
//! NaN/Inf where the golden is finite, is reported (no tolerance can honestly absorb it).
//! The evidence — each source's observed max abs and max rel error against the goldens
//! and against the oracle — is written to `parity.toml` next to the tolerances.

use super::{run_all, InputSet, Outputs};
use crate::backend::{self, LoadOptions};
use crate::compare::Tolerance;
use crate::error::{Error, Result};
use crate::formats::{onnx_f64, onnx_model::ModelInfo, onnx_pb::ModelProto};
use crate::suite::manifest::{Calibration, ErrorEvidence, OutputEvidence};
use crate::tensor::{DType, Tensor, TensorError};
use half::{bf16, f16};
use prost::Message;
use std::collections::BTreeMap;
use std::path::Path;

/// Floors are this many machine epsilons of the output dtype: a correct implementation
/// rounds differently from the goldens by about one ulp; four leaves room for reduction
/// orders the recording machine did not show.
pub const FLOOR_EPS: f64 = 4.0;

/// The name of the oracle among the evidence's sources.
pub const ORACLE: &str = "f64-oracle";

/// Tolerances for the recorded outputs, with the evidence they were derived from.
#[derive(Debug, Clone)]
pub struct Calibrated {
    /// Per-output tolerance, for `[outputs.NAME]`: any backend not listed in
    /// `per_backend`.
    pub tolerances: BTreeMap<String, Tolerance>,
    /// Output → backend → that backend's own tolerance, for
    /// `[outputs.NAME.backends.BACKEND]`.
    pub per_backend: BTreeMap<String, BTreeMap<String, Tolerance>>,
    /// The `[calibration]` table.
    pub evidence: Calibration,
    /// What the user must know: backends left out, differences no tolerance covers.
    pub warnings: Vec<String>,
}

/// Calibrates the tolerances of `goldens` (recorded by `golden_backend` from `sets`).
pub fn calibrate(
    model: &Path,
    info: &ModelInfo,
    sets: &[InputSet],
    goldens: &Outputs,
    golden_backend: &str,
    load: &LoadOptions,
    margin: f64,
) -> Result<Calibrated> {
    let mut excluded = Vec::new();
    let mut runs: Vec<(String, Outputs)> = Vec::new();
    let mut backends = Vec::new();
    for selected in backend::select(&[])? {
        let name = selected.backend.name().to_string();
        backends.push(name.clone());
        // The recording backend runs again too: its run-to-run noise is evidence for
        // its own tolerance.
        let outputs = selected
            .backend
            .load(model, load)
            .map_err(|e| format!("cannot load the model: {}", e.message))
            .and_then(|mut s| run_all(s.as_mut(), info, sets, &BTreeMap::new(), |t| Ok(t.clone())));
        match outputs {
            Ok(outputs) => runs.push((name, outputs)),
            Err(why) => excluded.push(format!("{name}: {why}")),
        }
    }
    let (oracle, oracle_runs) = run_oracle(model, info, sets, load, &mut excluded)?;

    let mut tolerances = BTreeMap::new();
    let mut per_backend = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    let mut warnings = Vec::new();
    for (k, spec) in info.outputs.iter().enumerate() {
        let Some(dtype) = goldens
            .first()
            .and_then(|g| g.get(k))
            .map(|(_, t)| t.dtype())
        else {
            continue;
        };
        let golden: Vec<&Tensor> = goldens.iter().map(|g| &g[k].1).collect();
        let mut sources: Vec<(String, Vec<Tensor>)> = runs
            .iter()
            .map(|(name, o)| (name.clone(), o.iter().map(|set| set[k].1.clone()).collect()))
            .collect();
        if let Some(oracle) = &oracle {
            let rounded = oracle
                .iter()
                .map(|set| round_to(&set[k].1, dtype))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| {
                    Error::file(model, format!("f64 oracle output `{}`: {e}", spec.name))
                })?;
            sources.push((ORACLE.to_string(), rounded));
        }
        let fit = fit_output(
            &golden,
            &sources,
            oracle.as_ref().map(|o| (o, k)),
            dtype,
            margin,
        );
        for (source, ev) in &fit.evidence.sources {
            if ev.nonfinite_mismatches > 0 || ev.exact_mismatches > 0 {
                warnings.push(format!(
                    "output `{}`: {source} differs from the goldens where no tolerance can cover it ({} NaN/Inf where the golden is finite, {} differing integers); that backend will fail this suite",
                    spec.name, ev.nonfinite_mismatches, ev.exact_mismatches
                ));
            }
        }
        let mut evidence = fit.evidence;
        evidence.proposed_gates =
            super::propose::propose(&golden, &sources, golden_backend, margin);
        tolerances.insert(spec.name.clone(), fit.tolerance);
        per_backend.insert(spec.name.clone(), fit.per_backend);
        outputs.insert(spec.name.clone(), evidence);
    }
    // Oracle runs that failed matter only when no backend could be the oracle; the
    // evidence lists them either way.
    warnings.extend(
        excluded
            .iter()
            .filter(|e| oracle.is_none() || !e.starts_with(ORACLE))
            .map(|e| format!("calibration left out {e}")),
    );
    let evidence = Calibration {
        margin,
        golden: golden_backend.to_string(),
        backends,
        oracle: oracle_runs,
        excluded,
        data_sets: sets.len(),
        rule: RULE.to_string(),
        outputs,
    };
    Ok(Calibrated {
        tolerances,
        per_backend,
        evidence,
        warnings,
    })
}

/// One line stating the rule, written into `[calibration] rule`.
const RULE: &str =
    "rtol = margin x max |a-e|/|e| over elements with |e| >= median |e| (at least 4 eps); \
atol = max(margin x |a-e| - rtol x |e|) over all elements (at least 4 eps x max |e|); \
a = every backend (the recording one rerun) and the f64 oracle rounded to the output dtype, \
e = the goldens; [outputs.NAME] pools every a, [outputs.NAME.backends.B] fits B's and the oracle's alone";

/// Runs the f64-promoted model on every available backend that can. The first backend
/// that runs every data set is the oracle; the others' f64 answers are kept as
/// evidence of the oracle's own accuracy (`[calibration] oracle`). Backends that cannot
/// run the promoted model are listed in `excluded`.
fn run_oracle(
    model: &Path,
    info: &ModelInfo,
    sets: &[InputSet],
    load: &LoadOptions,
    excluded: &mut Vec<String>,
) -> Result<(Option<Outputs>, Vec<String>)> {
    let (mut proto, _) = crate::formats::onnx_model::read_model(model)?;
    if let Err(why) = onnx_f64::promote_to_f64(&mut proto, model) {
        excluded.push(format!("{ORACLE}: {why}"));
        return Ok((None, Vec::new()));
    }
    let dir = tempfile::tempdir().map_err(|e| Error::file(Path::new("<tmp>"), e.to_string()))?;
    let promoted = dir.path().join("model-f64.onnx");
    std::fs::write(&promoted, ModelProto::encode_to_vec(&proto)).map_err(|e| Error::Write {
        path: promoted.clone(),
        source: e,
    })?;
    let mut oracle: Option<Outputs> = None;
    let mut names = Vec::new();
    for selected in backend::select(&[])? {
        let name = selected.backend.name();
        let outputs = selected
            .backend
            .load(&promoted, load)
            .map_err(|e| format!("cannot load the model promoted to f64: {}", e.message))
            .and_then(|mut s| run_all(s.as_mut(), info, sets, &BTreeMap::new(), widen));
        match outputs {
            Ok(outputs) => {
                names.push(name.to_string());
                oracle.get_or_insert(outputs);
            }
            Err(why) => excluded.push(format!("{ORACLE} on {name}: {why}")),
        }
    }
    Ok((oracle, names))
}

/// A float input widened to f64 for the promoted model; other inputs as they are.
fn widen(t: &Tensor) -> std::result::Result<Tensor, TensorError> {
    if !t.dtype().is_float() || t.dtype() == DType::F64 {
        return Ok(t.clone());
    }
    t.to_f64()
}

/// The oracle's f64 output rounded (to nearest) to the golden's dtype: what a
/// perfectly rounding implementation of the model would store.
fn round_to(t: &Tensor, dtype: DType) -> std::result::Result<Tensor, TensorError> {
    if dtype == DType::F64 {
        return Ok(t.clone());
    }
    let values = (0..t.numel()).map(|i| t.get_f64(i));
    // Non-float outputs were not promoted: the oracle answers in the dtype.
    Tensor::from_f64_values(dtype, t.shape().to_vec(), values).unwrap_or_else(|| Ok(t.clone()))
}

/// Machine epsilon of a float dtype (spacing of values at 1).
fn eps(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::EPSILON,
        DType::F32 => f64::from(f32::EPSILON),
        DType::F16 => f16::EPSILON.to_f64(),
        DType::BF16 => bf16::EPSILON.to_f64(),
        _ => 0.0,
    }
}

/// A calibrated tolerance, each backend's own, and their evidence.
struct Fit {
    tolerance: Tolerance,
    per_backend: BTreeMap<String, Tolerance>,
    evidence: OutputEvidence,
}

/// Fits one output's tolerance to the errors of `sources` against `golden` (one tensor
/// per data set each), and measures every source against the oracle (`oracle` output
/// `k`, unrounded) when there is one.
fn fit_output(
    golden: &[&Tensor],
    sources: &[(String, Vec<Tensor>)],
    oracle: Option<(&Outputs, usize)>,
    dtype: DType,
    margin: f64,
) -> Fit {
    let mut evidence = BTreeMap::new();
    // Per source, (|e|, |a - e|) of every finite pair over data sets.
    let mut pairs: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for (name, actual) in sources {
        let own = pairs.entry(name.as_str()).or_default();
        let mut ev = errors(golden.iter().copied().zip(actual), dtype, Some(own));
        if let Some((oracle, k)) = oracle.filter(|_| name != ORACLE) {
            let vs = errors(oracle.iter().map(|set| &set[k].1).zip(actual), dtype, None);
            ev.vs_oracle_max_abs_err = Some(vs.max_abs_err);
            ev.vs_oracle_max_rel_err = Some(vs.max_rel_err);
        }
        evidence.insert(name.clone(), ev);
    }
    let mut magnitudes: Vec<f64> = golden
        .iter()
        .flat_map(|t| (0..t.numel()).map(|i| t.get_f64(i).abs()))
        .filter(|v| v.is_finite())
        .collect();
    magnitudes.sort_by(f64::total_cmp);
    let median = magnitudes.get(magnitudes.len() / 2).copied().unwrap_or(0.0);
    let max_golden = magnitudes.last().copied().unwrap_or(0.0);
    let floors = dtype.is_float().then(|| {
        let rtol_floor = FLOOR_EPS * eps(dtype);
        let atol_floor = (FLOOR_EPS * eps(dtype) * max_golden).max(smallest_normal(dtype));
        (rtol_floor, atol_floor)
    });
    let fit = |pairs: Vec<(f64, f64)>| match floors {
        Some(floors) => fit_pairs(&pairs, median, floors, margin),
        None => Tolerance::EXACT,
    };
    let tolerance = fit(pairs.values().flatten().copied().collect());
    let from_oracle = pairs.get(ORACLE).map_or(&[][..], Vec::as_slice);
    let per_backend = pairs
        .iter()
        .filter(|(name, _)| **name != ORACLE)
        .map(|(name, own)| {
            let tolerance = fit(own.iter().chain(from_oracle).copied().collect());
            (name.to_string(), tolerance)
        })
        .collect();
    Fit {
        tolerance,
        per_backend,
        evidence: OutputEvidence {
            dtype: dtype.name().to_string(),
            median_abs: median,
            max_abs: max_golden,
            rtol_floor: floors.map(|f| f.0),
            atol_floor: floors.map(|f| f.1),
            sources: evidence,
            proposed_gates: Vec::new(),
        },
    }
}

/// The rule of the module doc applied to pairs `(|e|, |a - e|)` of a float output:
/// rtol from the pairs with `|e|` at least `median`, atol so that every pair times the
/// margin is covered, each at least its floor (`(rtol, atol)`), rounded up.
fn fit_pairs(
    pairs: &[(f64, f64)],
    median: f64,
    (rtol_floor, atol_floor): (f64, f64),
    margin: f64,
) -> Tolerance {
    let rel = pairs
        .iter()
        .filter(|&&(e, _)| e >= median && e > 0.0)
        .map(|&(e, d)| d / e)
        .fold(0.0, f64::max);
    let rtol = (margin * rel).max(rtol_floor);
    let atol = pairs
        .iter()
        .map(|&(e, d)| margin * d - rtol * e)
        .fold(0.0, f64::max)
        .max(atol_floor);
    Tolerance {
        atol: round_up(atol),
        rtol: round_up(rtol),
    }
}

/// `x` rounded up to two significant digits, so `parity.toml` reads `2.8e-6` rather
/// than `2.771065138372151e-6`; never below `x`.
fn round_up(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return x;
    }
    // Scaled by an exact power of ten (divided for negative exponents), so the result
    // is the double nearest the decimal `steps × 10^k` and prints as such.
    let k = x.log10().floor() as i32 - 1;
    let scale = 10f64.powi(k.abs());
    let at = |steps: f64| if k < 0 { steps / scale } else { steps * scale };
    let steps = if k < 0 { x * scale } else { x / scale }.ceil();
    [steps - 1.0, steps, steps + 1.0]
        .into_iter()
        .map(at)
        .find(|&r| r >= x)
        .unwrap_or(x)
}

/// The smallest positive normal value of a float dtype, the least useful atol.
fn smallest_normal(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => f64::MIN_POSITIVE,
        DType::F32 => f64::from(f32::MIN_POSITIVE),
        DType::F16 => f16::MIN_POSITIVE.to_f64(),
        DType::BF16 => bf16::MIN_POSITIVE.to_f64(),
        _ => 0.0,
    }
}

/// Error statistics of `actual` against `expected`, over data sets; the finite pairs
/// `(|e|, |a - e|)` are appended to `pairs` when given. A shape difference counts every
/// element as an exact mismatch.
fn errors<'a>(
    sets: impl Iterator<Item = (&'a Tensor, &'a Tensor)>,
    dtype: DType,
    mut pairs: Option<&mut Vec<(f64, f64)>>,
) -> ErrorEvidence {
    let mut ev = ErrorEvidence::default();
    for (expected, actual) in sets {
        if expected.shape() != actual.shape() {
            ev.exact_mismatches += expected.numel() as u64;
            continue;
        }
        for i in 0..expected.numel() {
            let (e, a) = (expected.get_f64(i), actual.get_f64(i));
            if !(e.is_finite() && a.is_finite()) {
                let same = (e.is_nan() && a.is_nan()) || e == a;
                if !same && e.is_finite() {
                    ev.nonfinite_mismatches += 1;
                }
                continue;
            }
            let d = (a - e).abs();
            if !dtype.is_float() && d > 0.0 {
                ev.exact_mismatches += 1;
            }
            ev.max_abs_err = ev.max_abs_err.max(d);
            if e != 0.0 {
                ev.max_rel_err = ev.max_rel_err.max(d / e.abs());
            }
            if let Some(p) = pairs.as_deref_mut() {
                p.push((e.abs(), d));
            }
        }
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t32(values: &[f32]) -> Tensor {
        Tensor::from_vec(vec![values.len()], values.to_vec()).unwrap()
    }

    #[test]
    fn tolerance_covers_every_observed_error_times_the_margin() {
        let golden = t32(&[1.0, 2.0, 4.0, 1e-3]);
        // Relative errors 1e-6 at the large values; an absolute 1e-8 near zero.
        let other = t32(&[1.000001, 2.000002, 4.000004, 1e-3 + 1e-8]);
        let fit = fit_output(
            &[&golden],
            &[("b".to_string(), vec![other.clone()])],
            None,
            DType::F32,
            4.0,
        );
        let tol = fit.tolerance;
        // The f32 differences (not the decimal literals) decide: recompute them.
        let rel = (0..3)
            .map(|i| (other.get_f64(i) - golden.get_f64(i)).abs() / golden.get_f64(i))
            .fold(0.0, f64::max);
        assert_eq!(tol.rtol, round_up(4.0 * rel));
        for i in 0..4 {
            let (e, a) = (golden.get_f64(i), other.get_f64(i));
            assert!(4.0 * (a - e).abs() <= tol.atol + tol.rtol * e.abs() + 1e-18);
        }
        // atol is set by the small element or by the floor, whichever is larger.
        let d_small = (other.get_f64(3) - golden.get_f64(3)).abs();
        let floor = 4.0 * f64::from(f32::EPSILON) * 4.0;
        let needed = (4.0 * d_small - tol.rtol * 1e-3f32 as f64).max(floor);
        assert_eq!(tol.atol, round_up(needed));
        let ev = &fit.evidence.sources["b"];
        assert_eq!(ev.max_abs_err, (other.get_f64(2) - 4.0).abs());
        assert_eq!(fit.evidence.median_abs, 2.0);
    }

    #[test]
    fn each_backend_gets_its_own_fit_with_the_oracle_and_the_output_pools_all() {
        let golden = t32(&[1.0, 2.0, 4.0]);
        // `rec` reruns the goldens exactly; `noisy` is off by 1e-4 relative; the oracle
        // (already rounded) by 1e-6.
        let noisy = t32(&[1.0001, 2.0002, 4.0004]);
        let oracle = t32(&[1.000001, 2.000002, 4.000004]);
        let sources = [
            ("rec".to_string(), vec![golden.clone()]),
            ("noisy".to_string(), vec![noisy.clone()]),
            (ORACLE.to_string(), vec![oracle.clone()]),
        ];
        let fit = fit_output(&[&golden], &sources, None, DType::F32, 4.0);
        let rel = |t: &Tensor| {
            (0..3)
                .map(|i| (t.get_f64(i) - golden.get_f64(i)).abs() / golden.get_f64(i))
                .fold(0.0, f64::max)
        };
        assert_eq!(fit.tolerance.rtol, round_up(4.0 * rel(&noisy)));
        assert_eq!(fit.per_backend["noisy"], fit.tolerance);
        // The recording backend is held to the oracle's distance, 100 times tighter.
        assert_eq!(fit.per_backend["rec"].rtol, round_up(4.0 * rel(&oracle)));
        assert!(fit.per_backend["rec"].rtol * 50.0 < fit.tolerance.rtol);
        assert!(!fit.per_backend.contains_key(ORACLE));
        // Without an oracle, an exact rerun gets the floors.
        let fit = fit_output(&[&golden], &sources[..2], None, DType::F32, 4.0);
        let eps = f64::from(f32::EPSILON);
        assert_eq!(fit.per_backend["rec"].rtol, round_up(4.0 * eps));
        assert_eq!(fit.per_backend["rec"].atol, round_up(4.0 * eps * 4.0));
    }

    #[test]
    fn floors_apply_when_backends_agree_exactly() {
        let golden = t32(&[0.5, -3.0]);
        let fit = fit_output(
            &[&golden],
            &[("b".to_string(), vec![golden.clone()])],
            None,
            DType::F32,
            4.0,
        );
        let eps = f64::from(f32::EPSILON);
        assert_eq!(fit.tolerance.rtol, round_up(4.0 * eps));
        assert_eq!(fit.tolerance.atol, round_up(4.0 * eps * 3.0));
    }

    #[test]
    fn integer_outputs_stay_exact_and_differences_are_counted() {
        let golden = Tensor::from_vec(vec![3], vec![1i64, 2, 3]).unwrap();
        let other = Tensor::from_vec(vec![3], vec![1i64, 5, 3]).unwrap();
        let fit = fit_output(
            &[&golden],
            &[("b".to_string(), vec![other])],
            None,
            DType::I64,
            4.0,
        );
        assert_eq!(fit.tolerance, Tolerance::EXACT);
        assert_eq!(fit.evidence.sources["b"].exact_mismatches, 1);
        assert_eq!(fit.evidence.rtol_floor, None);
    }

    #[test]
    fn nan_where_the_golden_is_finite_is_counted_not_fitted() {
        let golden = t32(&[1.0, 2.0]);
        let other = t32(&[f32::NAN, 2.0]);
        let fit = fit_output(
            &[&golden],
            &[("b".to_string(), vec![other])],
            None,
            DType::F32,
            4.0,
        );
        assert_eq!(fit.evidence.sources["b"].nonfinite_mismatches, 1);
        assert_eq!(fit.tolerance.rtol, round_up(4.0 * f64::from(f32::EPSILON)));
    }

    #[test]
    fn rounding_up_keeps_two_digits_and_never_lowers() {
        assert_eq!(round_up(2.771065e-6), 2.8e-6);
        assert_eq!(round_up(4.768e-7), 4.8e-7);
        assert_eq!(round_up(0.0), 0.0);
        for x in [1e-9, 3.3e-5, 0.1, 0.7, 123.456, 1.0] {
            let r = round_up(x);
            assert!(r >= x && r <= x * 1.1 + 1e-300, "{x} -> {r}");
        }
    }

    #[test]
    fn oracle_rounding_and_widening() {
        let t = Tensor::from_vec(vec![2], vec![0.1f64, 1.0 / 3.0]).unwrap();
        let r = round_to(&t, DType::F32).unwrap();
        assert_eq!(r.dtype(), DType::F32);
        assert_eq!(r.values::<f32>().unwrap().as_ref(), &[0.1f32, 1.0 / 3.0]);
        let h = round_to(&t, DType::F16).unwrap();
        assert_eq!(h.get_f64(0), f16::from_f64(0.1).to_f64());
        let w = widen(&t32(&[0.1])).unwrap();
        assert_eq!((w.dtype(), w.get_f64(0)), (DType::F64, f64::from(0.1f32)));
        let ids = Tensor::from_vec(vec![1], vec![3i64]).unwrap();
        assert_eq!(widen(&ids).unwrap().dtype(), DType::I64);
    }
}
