//! Comparison modes: how one output's verdict is reached (`parity.toml`
//! `[outputs.NAME] mode = ...`, see docs/suites.md).
//!
//! Every mode starts from the allclose scan ([`compare`](super::compare)), whose
//! statistics (`max_abs_err`, `max_rel_err`, `mean_abs_err`, `cosine`) are reported in
//! every mode, then judges by its own *units*:
//!
//! | mode       | unit                                    | a unit misses when                      |
//! |------------|-----------------------------------------|-----------------------------------------|
//! | `allclose` | element                                 | `\|a - e\| > atol + rtol * \|e\|`       |
//! | `ulp`      | element                                 | ULP distance > `max_ulp`                |
//! | `cosine`   | the whole tensor, or each row along `axis` | similarity < `min_cosine`            |
//! | `topk`     | each slice along `axis`                 | top-k positions differ                  |
//!
//! `mismatched` and `total` count units. The output passes when no NaN/Inf mismatch was
//! found (NaN matches only NaN, ±Inf only the same Inf: the same in every mode and never
//! forgiven) and `mismatched / total <= outlier_fraction` (0 by default, so nothing may
//! miss). A problem with the setting itself (an axis out of range, `k` above the axis
//! length) fails the output with `problem` saying so.

use super::slices::Slices;
use super::stats::Summary;
use super::value::visit;
use super::{cosine, topk, ulp, unravel, OutputComparison, Tolerance, Verdict};
use crate::tensor::Tensor;

/// How an output is judged, with the settings of the mode. Serialises into the report
/// entry as `"mode": "<name>"` plus the mode's settings (`ulp_limit`; `min_cosine` and
/// `axis`; `k`, `axis` and `ordered`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode")]
pub enum Mode {
    /// Element-wise `|a - e| <= atol + rtol * |e|`: the default.
    #[serde(rename = "allclose")]
    AllClose,
    /// Element-wise distance in units in the last place of the expected's dtype.
    #[serde(rename = "ulp")]
    Ulp {
        /// The largest distance that passes.
        #[serde(rename = "ulp_limit")]
        max_ulp: u64,
    },
    /// Cosine similarity in f64, of the whole tensor or of each row along `axis`.
    #[serde(rename = "cosine")]
    Cosine {
        /// The lowest similarity that passes, in [0, 1].
        min_cosine: f64,
        /// Rows along this axis (negative counts from the end); the whole tensor when
        /// `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        axis: Option<i64>,
    },
    /// Agreement of the top-k positions of every slice along `axis`.
    #[serde(rename = "topk")]
    TopK {
        /// How many top positions to compare, at least 1.
        k: usize,
        /// The axis the slices run along (negative counts from the end).
        axis: i64,
        /// Compare the positions in rank order (`true`) or as sets (`false`).
        ordered: bool,
    },
}

impl Mode {
    /// The name written in `parity.toml` and the report.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::AllClose => "allclose",
            Mode::Ulp { .. } => "ulp",
            Mode::Cosine { .. } => "cosine",
            Mode::TopK { .. } => "topk",
        }
    }
}

/// Everything that decides one output's verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// atol/rtol: decide the verdict in `allclose` mode; in the other modes they only
    /// shape the reported allclose statistics (the worst element of a passing `topk`).
    pub tolerance: Tolerance,
    /// How the verdict is reached.
    pub mode: Mode,
    /// Share of units allowed to miss, in [0, 1].
    pub outlier_fraction: f64,
}

impl Policy {
    /// Plain allclose under `tolerance`, nothing forgiven: what [`compare`](super::compare) does.
    pub fn allclose(tolerance: Tolerance) -> Policy {
        Policy {
            tolerance,
            mode: Mode::AllClose,
            outlier_fraction: 0.0,
        }
    }
}

/// The largest number of missing units out of `total` that `fraction` forgives: the
/// largest `m` with `m / total <= fraction`, both sides in f64 as written in
/// `parity.toml` (so 1 of 1000 passes `0.001` exactly).
pub fn allowed_outliers(total: u64, fraction: f64) -> u64 {
    if total == 0 || fraction <= 0.0 || fraction.is_nan() {
        return 0;
    }
    if fraction >= 1.0 {
        return total;
    }
    let fits = |m: u64| m as f64 / total as f64 <= fraction;
    // The product is within a unit or two of the answer; settle it with the exact test.
    let mut m = ((fraction * total as f64).floor() as u64).min(total);
    while m > 0 && !fits(m) {
        m -= 1;
    }
    while m < total && fits(m + 1) {
        m += 1;
    }
    m
}

/// Compares `actual` against `expected` under `policy`: the entry point for a suite's
/// outputs. With [`Policy::allclose`] this is exactly [`compare`](super::compare).
/// Never panics on data.
pub fn compare_with(expected: &Tensor, actual: &Tensor, policy: &Policy) -> OutputComparison {
    match super::scan_compare(expected, actual, policy.tolerance) {
        Err(not_compared) => with_mode(*not_compared, policy),
        Ok((base, summary)) => {
            let judged = judge(base, &summary, expected, actual, policy);
            with_mode(judged, policy)
        }
    }
}

/// Stamps the mode and outlier fraction onto a comparison (missing or not compared
/// outputs keep their failing verdict and element counts).
pub(super) fn with_mode(mut c: OutputComparison, policy: &Policy) -> OutputComparison {
    c.mode = policy.mode;
    c.outlier_fraction = policy.outlier_fraction;
    c
}

/// The verdict and unit statistics of `policy.mode`, from the allclose scan `base`.
fn judge(
    mut c: OutputComparison,
    summary: &Summary,
    expected: &Tensor,
    actual: &Tensor,
    policy: &Policy,
) -> OutputComparison {
    let non_finite = summary.non_finite.mismatched();
    let fraction = policy.outlier_fraction;
    match policy.mode {
        Mode::AllClose => {}
        Mode::Ulp { max_ulp } => {
            let Some(scan) = visit(expected, actual, ulp::Scan { limit: max_ulp }) else {
                return unreadable(c, expected);
            };
            c.mismatched = scan.over_limit + non_finite;
            c.max_ulp = Some(scan.max);
            c.tolerance_used = Some(if non_finite > 0 {
                f64::INFINITY
            } else {
                share(scan.max as f64, max_ulp as f64)
            });
            let worst = summary
                .non_finite
                .first_mismatch
                .map(|i| i as usize)
                .or(scan.at)
                .or((c.total > 0).then_some(0));
            set_worst(&mut c, worst, expected, actual);
        }
        Mode::Cosine { min_cosine, axis } => {
            let slices = match axis {
                None => Slices::whole(expected.numel()),
                Some(axis) => match Slices::along(expected.shape(), axis) {
                    Ok(s) => s,
                    Err(problem) => return setting_problem(c, problem),
                },
            };
            let Some(scan) = visit(expected, actual, cosine::Scan { slices, min_cosine }) else {
                return unreadable(c, expected);
            };
            c.mismatched = scan.failing;
            c.total = slices.count() as u64;
            c.cosine = scan.lowest.map(|l| l.cosine);
            c.tolerance_used = Some(match scan.lowest {
                _ if non_finite > 0 => f64::INFINITY,
                // A NaN similarity (sums past f64) is as far from passing as it gets.
                Some(l) if l.cosine.is_nan() => f64::INFINITY,
                Some(l) => share((1.0 - l.cosine).max(0.0), 1.0 - min_cosine),
                None => 0.0,
            });
            let worst = summary
                .non_finite
                .first_mismatch
                .map(|i| i as usize)
                .or(scan.lowest.and_then(|l| l.worst))
                .or((expected.numel() > 0).then_some(0));
            set_worst(&mut c, worst, expected, actual);
            let allowed = allowed_outliers(c.total, fraction);
            if non_finite == 0 && c.mismatched > allowed {
                c.problem = scan.first_failing.map(|first| match slices.axis {
                    None => format!(
                        "cosine similarity {} is below min_cosine {min_cosine}",
                        show(first.cosine)
                    ),
                    Some(axis) => format!(
                        "cosine similarity below {min_cosine} in {} of {} rows along axis {axis}{}; first at {}: {}",
                        c.mismatched,
                        c.total,
                        outliers_note(fraction, allowed),
                        slices.describe(expected.shape(), first.row),
                        show(first.cosine)
                    ),
                });
            }
        }
        Mode::TopK { k, axis, ordered } => {
            let slices = match Slices::along(expected.shape(), axis) {
                Ok(s) => s,
                Err(problem) => return setting_problem(c, problem),
            };
            if k > slices.len {
                let problem = format!(
                    "k = {k} exceeds the length {} of axis {axis} (shape {})",
                    slices.len,
                    super::format_shape(expected.shape())
                );
                return setting_problem(c, problem);
            }
            let scan = topk::Scan { slices, k, ordered };
            let Some(scan) = visit(expected, actual, scan) else {
                return unreadable(c, expected);
            };
            c.mismatched = scan.disagreeing;
            c.total = slices.count() as u64;
            c.topk_agreement = Some(if c.total == 0 {
                1.0
            } else {
                (c.total - c.mismatched) as f64 / c.total as f64
            });
            c.tolerance_used = Some(if non_finite > 0 {
                f64::INFINITY
            } else {
                share(
                    c.mismatched as f64,
                    allowed_outliers(c.total, fraction) as f64,
                )
            });
            let worst = summary
                .non_finite
                .first_mismatch
                .map(|i| i as usize)
                .or(scan.first.as_ref().map(|d| d.element))
                .or_else(|| worst_flat(&c, expected));
            set_worst(&mut c, worst, expected, actual);
            let allowed = allowed_outliers(c.total, fraction);
            if non_finite == 0 && c.mismatched > allowed {
                c.problem = scan.first.map(|d| {
                    let axis_index = slices.axis.unwrap_or(0);
                    format!(
                        "top-{k} {} along axis {axis_index} differ in {} of {} slices{}; first at {}: expected {:?}, got {:?}",
                        if ordered { "lists" } else { "sets" },
                        c.mismatched,
                        c.total,
                        outliers_note(fraction, allowed),
                        slices.describe(expected.shape(), d.slice),
                        d.expected,
                        d.actual
                    )
                });
            }
        }
    }
    let allowed = allowed_outliers(c.total, fraction);
    c.verdict = if non_finite == 0 && c.mismatched <= allowed {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    c
}

/// `used / allowed`, 0 when nothing was used (even of a zero allowance), +inf when
/// something was used of nothing.
fn share(used: f64, allowed: f64) -> f64 {
    if used <= 0.0 {
        0.0
    } else if allowed <= 0.0 {
        f64::INFINITY
    } else {
        used / allowed
    }
}

/// `" (outlier_fraction 0.01 allows 3)"`, or nothing when no outliers are allowed.
fn outliers_note(fraction: f64, allowed: u64) -> String {
    if fraction > 0.0 {
        format!(" (outlier_fraction {fraction} allows {allowed})")
    } else {
        String::new()
    }
}

/// A similarity for a message, in full (the shortest text that reads back as the same
/// f64, so 0.9999999999998 never shows as 1), or why it could not be computed.
fn show(cosine: f64) -> String {
    if cosine.is_nan() {
        "NaN (the sums overflowed f64)".to_string()
    } else {
        format!("{cosine}")
    }
}

/// The flat index of the allclose worst element already in `c`.
fn worst_flat(c: &OutputComparison, expected: &Tensor) -> Option<usize> {
    let index = c.worst_index.as_ref()?;
    let mut flat = 0usize;
    for (&i, &dim) in index.iter().zip(expected.shape()) {
        flat = flat * dim + i;
    }
    Some(flat)
}

/// Points the worst element at flat index `worst` (or nowhere).
fn set_worst(c: &mut OutputComparison, worst: Option<usize>, expected: &Tensor, actual: &Tensor) {
    c.worst_index = worst.map(|flat| unravel(flat, expected.shape()));
    c.expected = worst.map(|flat| expected.get_f64(flat));
    c.actual = worst.map(|flat| actual.get_f64(flat));
}

/// The output fails because the mode's setting does not fit it: every element counts
/// as mismatched, as when shapes differ.
fn setting_problem(mut c: OutputComparison, problem: String) -> OutputComparison {
    c.verdict = Verdict::Fail;
    c.mismatched = c.total;
    c.problem = Some(match c.problem.take() {
        Some(earlier) => format!("{earlier}; {problem}"),
        None => problem,
    });
    c
}

/// Unreachable after the layout check, but a verdict beats a panic.
fn unreadable(c: OutputComparison, expected: &Tensor) -> OutputComparison {
    let problem = format!("{} values could not be read", expected.dtype());
    setting_problem(c, problem)
}

impl OutputComparison {
    /// What decided the verdict, for one line of a human-readable report: `atol 1e-5,
    /// rtol 1e-4` (atol/rtol written by `number`, the renderer's own style), `max 3 ulp,
    /// limit 2 ulp`, `cosine 0.9987, min 0.999 per row along axis -1`, `top-1 along
    /// axis -1, agreement 0.7500`; then `, outlier_fraction F` when one is set.
    pub fn criterion(&self, number: impl Fn(f64) -> String) -> String {
        let mut s = match self.mode {
            Mode::AllClose => format!("atol {}, rtol {}", number(self.atol), number(self.rtol)),
            Mode::Ulp { max_ulp } => match self.max_ulp {
                Some(max) => format!("max {max} ulp, limit {max_ulp} ulp"),
                None => format!("limit {max_ulp} ulp"),
            },
            Mode::Cosine { min_cosine, axis } => {
                let rows = axis.map_or(String::new(), |a| format!(" per row along axis {a}"));
                match self.cosine {
                    Some(v) if v.is_finite() => format!("cosine {v}, min {min_cosine}{rows}"),
                    _ => format!("min cosine {min_cosine}{rows}"),
                }
            }
            Mode::TopK { k, axis, ordered } => {
                let order = if ordered { ", ordered" } else { "" };
                match self.topk_agreement {
                    Some(a) => format!("top-{k} along axis {axis}{order}, agreement {a:.4}"),
                    None => format!("top-{k} along axis {axis}{order}"),
                }
            }
        };
        if self.outlier_fraction > 0.0 {
            s.push_str(&format!(", outlier_fraction {}", self.outlier_fraction));
        }
        s
    }
}

#[cfg(test)]
#[path = "mode_tests.rs"]
mod tests;
