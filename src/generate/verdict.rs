//! Token-level parity of two greedy generations of one prompt: the logits of every step
//! before the first differing token are compared within tolerance (a model whose logits
//! moved is caught even when its tokens did not change); a differing token passes only as
//! a near-tie (vLLM's `check_logprobs_close` rule, tightened by the tolerance): each
//! side's token is in the other's top-k and the reference's logits of the two tokens are
//! within tolerance of each other. After a divergence the contexts differ and nothing
//! more is compared.

use super::decode::Generation;
use crate::compare::{compare, Tolerance, Verdict};
pub use crate::report::generation::{Divergence, Judgement, Ranked, StepError};
use crate::tensor::Tensor;

/// Judges `candidate` against `reference` (same prompt) under the logits' tolerance
/// `tol`, with near-ties allowed among the top `k` tokens.
pub fn judge(
    reference: &Generation,
    candidate: &Generation,
    tol: Tolerance,
    k: usize,
) -> Judgement {
    let mut steps = Vec::new();
    let mut first_out = None;
    let mut divergence = None;
    let mut problem = None;
    let n = reference.tokens.len().min(candidate.tokens.len());
    for s in 0..n {
        let (e, a) = (&reference.logits[s], &candidate.logits[s]);
        let c = compare(e, a, tol);
        if c.problem.is_some() && problem.is_none() {
            problem = c.problem.clone().map(|p| format!("step {s}: {p}"));
        }
        if c.verdict == Verdict::Fail && first_out.is_none() {
            first_out = Some(s);
        }
        steps.push(StepError {
            step: s,
            verdict: c.verdict,
            max_abs_err: c.max_abs_err,
            tolerance_used: c.tolerance_used,
            worst_token: c.worst_index.as_ref().and_then(|i| i.first().copied()),
            expected: c.expected,
            actual: c.actual,
        });
        let (want, got) = (reference.tokens[s], candidate.tokens[s]);
        if want != got {
            divergence = Some(diverged(s, e, a, want, got, tol, k));
            break;
        }
    }
    if divergence.is_none() && reference.tokens.len() != candidate.tokens.len() {
        problem.get_or_insert_with(|| {
            format!(
                "{} tokens generated, the reference has {}",
                candidate.tokens.len(),
                reference.tokens.len()
            )
        });
    }
    let passed = first_out.is_none()
        && problem.is_none()
        && divergence.as_ref().is_none_or(|d| d.near_tie)
        && !steps.is_empty();
    Judgement {
        verdict: if passed { Verdict::Pass } else { Verdict::Fail },
        steps_compared: steps.len(),
        first_step_out_of_tolerance: first_out,
        divergence,
        steps,
        problem,
    }
}

fn diverged(
    step: usize,
    expected_logits: &Tensor,
    actual_logits: &Tensor,
    expected: i64,
    actual: i64,
    tol: Tolerance,
    k: usize,
) -> Divergence {
    let at = |t: &Tensor, token: i64| {
        usize::try_from(token)
            .ok()
            .filter(|&i| i < t.numel())
            .map_or(f64::NAN, |i| t.get_f64(i))
    };
    let high = at(expected_logits, expected);
    let gap = high - at(expected_logits, actual);
    let allowed_gap = tol.atol + tol.rtol * high.abs();
    let expected_top = top_logprobs(expected_logits, k);
    let actual_top = top_logprobs(actual_logits, k);
    let near_tie = gap.abs() <= allowed_gap
        && expected_top.iter().any(|r| r.token == actual)
        && actual_top.iter().any(|r| r.token == expected);
    Divergence {
        step,
        expected,
        actual,
        gap,
        allowed_gap,
        near_tie,
        expected_top,
        actual_top,
    }
}

/// The `k` most likely tokens of a logits row with their log-probabilities (computed in
/// f64), most likely first, lower ids first on ties; NaN logits are never ranked.
pub fn top_logprobs(logits: &Tensor, k: usize) -> Vec<Ranked> {
    let values: Vec<f64> = (0..logits.numel()).map(|i| logits.get_f64(i)).collect();
    let max = values
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = values
        .iter()
        .filter(|v| !v.is_nan())
        .map(|v| (v - max).exp())
        .sum();
    let log_z = max + sum.ln();
    let mut order: Vec<usize> = (0..values.len()).filter(|&i| !values[i].is_nan()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|i| Ranked {
            token: i as i64,
            logprob: values[i] - log_z,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(tokens: &[i64], rows: &[&[f32]]) -> Generation {
        Generation {
            prompt: vec![1],
            tokens: tokens.to_vec(),
            logits: rows
                .iter()
                .map(|r| Tensor::from_vec(vec![r.len()], r.to_vec()).unwrap())
                .collect(),
            step_seconds: vec![0.0; tokens.len()],
        }
    }

    const TOL: Tolerance = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
    };

    #[test]
    fn equal_generations_pass_with_their_error_curve() {
        let r = generation(&[2, 0], &[&[0.0, 1.0, 3.0], &[5.0, 1.0, 2.0]]);
        let c = generation(&[2, 0], &[&[0.0, 1.0, 3.0000002], &[5.0, 1.0, 2.0]]);
        let j = judge(&r, &c, TOL, 2);
        assert_eq!(j.verdict, Verdict::Pass);
        assert_eq!(j.steps_compared, 2);
        assert!(j.steps[0].max_abs_err > 0.0 && j.steps[1].max_abs_err == 0.0);
        assert_eq!(j.divergence, None);
    }

    #[test]
    fn moved_logits_fail_at_their_first_step_even_with_the_same_tokens() {
        let r = generation(
            &[2, 0, 0],
            &[&[0.0, 1.0, 3.0], &[5.0, 1.0, 2.0], &[5.0, 1.0, 2.0]],
        );
        let c = generation(
            &[2, 0, 0],
            &[&[0.0, 1.0, 3.0], &[5.1, 1.0, 2.0], &[5.2, 1.0, 2.0]],
        );
        let j = judge(&r, &c, TOL, 2);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.first_step_out_of_tolerance, Some(1));
        assert_eq!(j.steps[1].worst_token, Some(0));
        assert_eq!(j.steps[1].expected, Some(5.0));
        assert_eq!(j.steps_compared, 3);
    }

    #[test]
    fn a_near_tie_passes_and_is_reported() {
        // The reference has tokens 1 and 2 within its tolerance; the candidate picks 1.
        let r = generation(&[2, 0], &[&[0.0, 3.0, 3.0000002], &[1.0, 0.0, 0.0]]);
        let c = generation(&[1, 5], &[&[0.0, 3.0000002, 3.0], &[0.0, 1.0, 0.0]]);
        let j = judge(&r, &c, TOL, 2);
        let d = j.divergence.as_ref().unwrap();
        assert_eq!((d.step, d.expected, d.actual, d.near_tie), (0, 2, 1, true));
        assert!(d.gap > 0.0 && d.gap <= d.allowed_gap);
        assert_eq!(j.verdict, Verdict::Pass);
        assert_eq!(j.steps_compared, 1);
    }

    #[test]
    fn a_divergence_beyond_the_tolerance_or_the_top_k_fails() {
        let r = generation(&[2], &[&[0.0, 2.9, 3.0]]);
        let c = generation(&[1], &[&[0.0, 3.0, 2.9]]);
        let j = judge(
            &r,
            &c,
            Tolerance {
                atol: 0.5,
                rtol: 0.0,
            },
            2,
        );
        assert!(j.divergence.as_ref().unwrap().near_tie);
        assert_eq!(j.verdict, Verdict::Pass);
        let j = judge(
            &r,
            &c,
            Tolerance {
                atol: 0.5,
                rtol: 0.0,
            },
            1,
        );
        assert!(
            !j.divergence.as_ref().unwrap().near_tie,
            "token 1 is not the reference's top 1"
        );
        assert_eq!(j.verdict, Verdict::Fail);
        let j = judge(
            &r,
            &c,
            Tolerance {
                atol: 0.05,
                rtol: 0.0,
            },
            2,
        );
        let d = j.divergence.unwrap();
        assert!(!d.near_tie);
        assert!((d.gap - 0.1).abs() < 1e-6, "{}", d.gap);
        assert_eq!(j.verdict, Verdict::Fail);
    }

    #[test]
    fn top_logprobs_are_normalised_and_ordered() {
        let t = Tensor::from_vec(vec![3], vec![0.0f32, 2.0, 2.0]).unwrap();
        let top = top_logprobs(&t, 2);
        assert_eq!(top.iter().map(|r| r.token).collect::<Vec<_>>(), [1, 2]);
        let p: f64 = top_logprobs(&t, 3).iter().map(|r| r.logprob.exp()).sum();
        assert!((p - 1.0).abs() < 1e-12);
    }
}
