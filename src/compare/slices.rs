//! 1-D slices of a row-major tensor along one axis: the rows of per-row `cosine` and
//! the slices of `topk`. Slice `s` is numbered in row-major order over the shape with
//! the axis removed; its `j`-th element sits at flat index `start(s) + j * inner`.

/// The slices of one shape along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slices {
    /// The axis, non-negative; `None` when the whole tensor is one slice.
    pub axis: Option<usize>,
    /// Product of the dimensions before the axis.
    pub outer: usize,
    /// Length of each slice (the axis dimension).
    pub len: usize,
    /// Product of the dimensions after the axis (the stride of the axis).
    pub inner: usize,
}

impl Slices {
    /// The slices along `axis` of `shape`; a negative axis counts from the end, numpy
    /// style. An axis outside `[-rank, rank)` is an error phrased for the report.
    pub(super) fn along(shape: &[usize], axis: i64) -> Result<Slices, String> {
        let rank = shape.len();
        let resolved = if axis < 0 {
            i64::try_from(rank).ok().map(|r| r + axis)
        } else {
            Some(axis)
        };
        let Some(axis_index) = resolved
            .and_then(|a| usize::try_from(a).ok())
            .filter(|&a| a < rank)
        else {
            return Err(format!(
                "axis {axis} is out of range for an output of rank {rank} (shape {})",
                super::format_shape(shape)
            ));
        };
        Ok(Slices {
            axis: Some(axis_index),
            outer: shape[..axis_index].iter().product(),
            len: shape[axis_index],
            inner: shape[axis_index + 1..].iter().product(),
        })
    }

    /// The whole tensor as one slice of `numel` elements.
    pub(super) fn whole(numel: usize) -> Slices {
        Slices {
            axis: None,
            outer: 1,
            len: numel,
            inner: 1,
        }
    }

    /// Number of slices. Saturates: with a zero-length axis the other dimensions may
    /// multiply past `usize` (the tensor itself is empty); callers never iterate over
    /// the slices of a zero-length axis.
    pub(super) fn count(&self) -> usize {
        self.outer.saturating_mul(self.inner)
    }

    /// Flat index of element 0 of slice `s`.
    #[inline(always)]
    pub(super) fn start(&self, s: usize) -> usize {
        (s / self.inner) * self.len * self.inner + s % self.inner
    }

    /// Flat index of element `j` of slice `s`.
    #[inline(always)]
    pub(super) fn element(&self, s: usize, j: usize) -> usize {
        self.start(s) + j * self.inner
    }

    /// Slices per parallel work item: about as many elements as the element scan's
    /// chunk, at least one slice.
    pub(super) fn per_chunk(&self) -> usize {
        (super::parallel::CHUNK / self.len.max(1)).max(1)
    }

    /// Slice `s` written as an index with `:` on the axis, e.g. `[2, :]`; `the whole
    /// tensor` when there is no axis.
    pub(super) fn describe(&self, shape: &[usize], s: usize) -> String {
        let Some(axis) = self.axis else {
            return "the whole tensor".to_string();
        };
        let flat = self.start(s);
        let index = super::unravel(flat, shape);
        let parts: Vec<String> = index
            .iter()
            .enumerate()
            .map(|(d, i)| {
                if d == axis {
                    ":".to_string()
                } else {
                    i.to_string()
                }
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_along_every_axis_cover_each_element_once() {
        let shape = [2, 3, 4];
        for axis in -3..3 {
            let s = Slices::along(&shape, axis).unwrap();
            let mut seen = vec![0; 24];
            for slice in 0..s.count() {
                for j in 0..s.len {
                    seen[s.element(slice, j)] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "axis {axis}: {seen:?}");
        }
        let middle = Slices::along(&shape, 1).unwrap();
        assert_eq!((middle.outer, middle.len, middle.inner), (2, 3, 4));
        assert_eq!(middle.describe(&shape, 5), "[1, :, 1]");
        assert_eq!(
            Slices::along(&shape, -1).unwrap().describe(&shape, 4),
            "[1, 1, :]"
        );
    }

    #[test]
    fn an_axis_out_of_range_is_refused() {
        for axis in [3, -4, i64::MIN, i64::MAX] {
            let err = Slices::along(&[2, 3, 4], axis).unwrap_err();
            assert!(
                err.contains(&format!("axis {axis} is out of range")),
                "{err}"
            );
        }
        assert!(Slices::along(&[], 0).is_err());
        let huge = 1usize << 40;
        let empty_axis = Slices::along(&[huge, 0, huge], 1).unwrap();
        assert_eq!((empty_axis.len, empty_axis.count()), (0, usize::MAX));
        assert!(Slices::along(&[], -1).is_err());
    }
}
