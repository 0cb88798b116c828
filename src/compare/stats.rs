//! Statistics of one scanned range of elements, and how the ranges combine.
//!
//! Contract: [`Summary::merge`] is applied to ranges in increasing index order, so sums
//! are added in an order fixed by the data layout and the result never depends on thread
//! scheduling. Ties between equally bad elements go to the lowest index.

/// The element that most violates the tolerance among those seen so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Worst {
    /// `|a - e| / (atol + rtol * |e|)`: above 1 means the element fails.
    pub excess: f64,
    /// `|a - e|`, which breaks ties between equal excesses (all +inf where the allowance
    /// is zero, as for exact dtypes).
    pub abs: f64,
    /// Flat, row-major index.
    pub index: u64,
}

impl Worst {
    /// The worse of two candidates: larger excess, then larger abs error, then lower index.
    pub(super) fn pick(a: Option<Worst>, b: Option<Worst>) -> Option<Worst> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.is_worse_than(&a) { b } else { a }),
            (a, None) => a,
            (None, b) => b,
        }
    }

    fn is_worse_than(&self, other: &Worst) -> bool {
        (self.excess, self.abs, std::cmp::Reverse(self.index)).partial_cmp(&(
            other.excess,
            other.abs,
            std::cmp::Reverse(other.index),
        )) == Some(std::cmp::Ordering::Greater)
    }
}

/// Statistics over element pairs where both values are finite.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct FiniteStats {
    pub mismatched: u64,
    pub max_abs: f64,
    pub max_rel: f64,
    pub sum_abs: f64,
    pub dot: f64,
    pub sum_sq_actual: f64,
    pub sum_sq_expected: f64,
    pub worst: Option<Worst>,
}

impl FiniteStats {
    fn merge(self, later: FiniteStats) -> FiniteStats {
        FiniteStats {
            mismatched: self.mismatched + later.mismatched,
            max_abs: self.max_abs.max(later.max_abs),
            max_rel: self.max_rel.max(later.max_rel),
            sum_abs: self.sum_abs + later.sum_abs,
            dot: self.dot + later.dot,
            sum_sq_actual: self.sum_sq_actual + later.sum_sq_actual,
            sum_sq_expected: self.sum_sq_expected + later.sum_sq_expected,
            worst: Worst::pick(self.worst, later.worst),
        }
    }

    /// Cosine similarity of the finite pairs, clamped to [-1, 1] against rounding.
    /// Two all-zero vectors are identical (1); one all-zero vector against a non-zero
    /// one has no direction in common (0). `None` when the sums overflowed f64.
    pub(super) fn cosine(&self) -> Option<f64> {
        let norms = self.sum_sq_actual.sqrt() * self.sum_sq_expected.sqrt();
        let cosine = match (self.sum_sq_actual == 0.0, self.sum_sq_expected == 0.0) {
            (true, true) => 1.0,
            (true, false) | (false, true) => 0.0,
            (false, false) => self.dot / norms,
        };
        cosine.is_finite().then(|| cosine.clamp(-1.0, 1.0))
    }
}

/// Pairs where at least one side is NaN or ±Inf.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct NonFinite {
    /// Pairs with a non-finite value on either side, matching or not.
    pub pairs: u64,
    /// Actual NaN where the reference is finite.
    pub nan_where_finite: u64,
    /// Actual ±Inf where the reference is finite.
    pub inf_where_finite: u64,
    /// Actual not NaN where the reference is NaN.
    pub not_nan: u64,
    /// Actual not the same infinity where the reference is ±Inf.
    pub not_same_inf: u64,
    /// Lowest index of a non-finite mismatch.
    pub first_mismatch: Option<u64>,
}

impl NonFinite {
    /// Records a pair with a NaN or Inf on at least one side. NaN matches only NaN;
    /// ±Inf matches only the same infinity. Pairs are recorded in increasing index order.
    pub(super) fn record(&mut self, expected: f64, actual: f64, index: u64) {
        self.pairs += 1;
        let counter = if expected.is_nan() {
            (!actual.is_nan()).then_some(&mut self.not_nan)
        } else if expected.is_infinite() {
            (actual != expected).then_some(&mut self.not_same_inf)
        } else if actual.is_nan() {
            Some(&mut self.nan_where_finite)
        } else {
            Some(&mut self.inf_where_finite)
        };
        if let Some(counter) = counter {
            *counter += 1;
            self.first_mismatch.get_or_insert(index);
        }
    }

    /// Number of non-finite pairs that do not match.
    pub(super) fn mismatched(&self) -> u64 {
        self.nan_where_finite + self.inf_where_finite + self.not_nan + self.not_same_inf
    }

    /// One line naming each kind of non-finite mismatch, or `None` when there is none.
    pub(super) fn problem(&self) -> Option<String> {
        let kinds = [
            (self.nan_where_finite, "NaN where the reference is finite"),
            (self.inf_where_finite, "Inf where the reference is finite"),
            (self.not_nan, "not NaN where the reference is NaN"),
            (
                self.not_same_inf,
                "not the same Inf where the reference is Inf",
            ),
        ];
        let parts: Vec<String> = kinds
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, what)| format!("{count} {what}"))
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn merge(self, later: NonFinite) -> NonFinite {
        NonFinite {
            pairs: self.pairs + later.pairs,
            nan_where_finite: self.nan_where_finite + later.nan_where_finite,
            inf_where_finite: self.inf_where_finite + later.inf_where_finite,
            not_nan: self.not_nan + later.not_nan,
            not_same_inf: self.not_same_inf + later.not_same_inf,
            first_mismatch: self.first_mismatch.or(later.first_mismatch),
        }
    }
}

/// Everything a scan learns about a range of elements.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Summary {
    /// Number of elements scanned.
    pub elements: u64,
    pub finite: FiniteStats,
    pub non_finite: NonFinite,
}

impl Summary {
    /// Combines the summary of a range with that of the range right after it.
    pub(super) fn merge(self, later: Summary) -> Summary {
        Summary {
            elements: self.elements + later.elements,
            finite: self.finite.merge(later.finite),
            non_finite: self.non_finite.merge(later.non_finite),
        }
    }

    /// Number of pairs where both values are finite.
    pub(super) fn finite_pairs(&self) -> u64 {
        self.elements - self.non_finite.pairs
    }

    /// All mismatches, finite and not.
    pub(super) fn mismatched(&self) -> u64 {
        self.finite.mismatched + self.non_finite.mismatched()
    }

    /// Flat index of the worst element: a non-finite mismatch when there is one (it is
    /// worse than any finite error), otherwise the largest tolerance-normalised excess,
    /// otherwise (nothing differs) the first element; `None` only when empty.
    pub(super) fn worst_index(&self) -> Option<u64> {
        self.non_finite
            .first_mismatch
            .or(self.finite.worst.map(|w| w.index))
            .or((self.elements > 0).then_some(0))
    }
}
