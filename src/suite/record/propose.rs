//! `record --calibrate` also proposes dataset gates (docs/gates.md) from the same runs:
//! what correct implementations of the model measure against the goldens (every other
//! backend, the f64 oracle rounded to the output dtype), loosened by the margin. They
//! state the noise floor of a faithful re-implementation or re-export; a quantized or
//! pruned candidate needs gates chosen for its task, which is why they are proposals
//! (printed and kept in `[calibration.outputs.NAME] proposed_gates`), not `[gates]`.
//!
//! Per float output, over the sources that are not the recording backend's own rerun:
//! - `sqnr_db >= S − 20·log10(margin)`, S the lowest SQNR measured (the margin scales
//!   the error amplitude), rounded down to 0.1 dB; none when every source is exact;
//! - `cosine_min >= 1 − margin·(1 − C)`, C the lowest case cosine, rounded down to 9
//!   decimals;
//! - `top1_agreement >= A` for a `[batch, classes]` output (rank 2, at least two
//!   classes), A the lowest agreement measured.

use crate::compare::metrics::{ClassAxis, OutputStats};
use crate::report::metrics::{measure, MetricName};
use crate::tensor::Tensor;

/// Gates (in `[gates]` form: `METRIC>=VALUE`) for one output, from `sources` (name,
/// one tensor per data set) against `golden`; `own` is the recording backend, whose
/// rerun says nothing about other implementations.
pub fn propose(
    golden: &[&Tensor],
    sources: &[(String, Vec<Tensor>)],
    own: &str,
    margin: f64,
) -> Vec<String> {
    let Some(first) = golden.first() else {
        return Vec::new();
    };
    if !first.dtype().is_float() {
        return Vec::new();
    }
    let classes =
        (first.shape().len() == 2 && first.shape()[1] >= 2).then_some(ClassAxis { axis: 1, k: 1 });
    let (mut sqnr, mut cosine, mut top1) = (f64::INFINITY, 1.0f64, None::<f64>);
    let mut measured = false;
    for (_, actual) in sources.iter().filter(|(name, _)| name != own) {
        let stats: Vec<OutputStats> = golden
            .iter()
            .zip(actual)
            .filter_map(|(e, a)| OutputStats::measure(e, a, classes, None)?.ok())
            .collect();
        if stats.len() != golden.len() {
            continue;
        }
        let set = measure(stats.iter().map(|s| (s, 0, 0)));
        let value = |m: MetricName| set.get(m).map(|v| v.value);
        if let (Some(s), Some(c)) = (value(MetricName::SqnrDb), value(MetricName::CosineMin)) {
            measured = true;
            sqnr = sqnr.min(s);
            cosine = cosine.min(c);
        }
        if let Some(t) = value(MetricName::Top1Agreement) {
            top1 = Some(top1.map_or(t, |x: f64| x.min(t)));
        }
    }
    if !measured {
        return Vec::new();
    }
    let mut gates = Vec::new();
    if sqnr.is_finite() {
        let floor = ((sqnr - 20.0 * margin.log10()) * 10.0).floor() / 10.0;
        gates.push(format!("{}>={floor}", MetricName::SqnrDb.name()));
    }
    let cos = 1.0 - margin * (1.0 - cosine);
    let cos = (cos * 1e9).floor() / 1e9;
    gates.push(format!("{}>={cos}", MetricName::CosineMin.name()));
    if let Some(t) = top1 {
        gates.push(format!("{}>={t}", MetricName::Top1Agreement.name()));
    }
    gates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_vec(vec![2, 2], v.to_vec()).unwrap()
    }

    #[test]
    fn gates_follow_the_noisiest_other_source() {
        let g = [t(&[1.0, 0.0, 0.0, 1.0])];
        let golden: Vec<&Tensor> = g.iter().collect();
        let sources = vec![
            ("own".to_string(), vec![t(&[1.0, 0.0, 0.0, 1.0])]),
            ("b".to_string(), vec![t(&[1.0, 0.1, 0.0, 1.0])]),
            // Swaps row 1's top class: half the rows agree.
            ("c".to_string(), vec![t(&[1.0, 0.0, 1.0, 0.6])]),
        ];
        let gates = propose(&golden, &sources, "own", 4.0);
        // c: signal 2 over noise 1 + 0.16: 10·log10(2 / 1.16) = 2.366 dB, minus
        // 20·log10(4) = 12.041 dB, rounded down to 0.1 dB.
        assert_eq!(gates[0], "sqnr_db>=-9.7");
        assert!(gates[1].starts_with("cosine_min>="), "{gates:?}");
        assert_eq!(gates[2], "top1_agreement>=0.5");
        // Only the recording backend: nothing to propose from.
        assert!(propose(&golden, &sources[..1], "own", 4.0).is_empty());
    }
}
