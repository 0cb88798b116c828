//! The `batch` check's tensors: a data set's rows placed among other rows in a larger
//! batch along the model's batch axis, and its outputs cut back out. Works on bytes, so
//! any dtype; every size is checked before anything is allocated.

use crate::schema::{Dim, IoSpec};
use crate::tensor::Tensor;

/// Most bytes one stacked input may take (the bound `record` and `bench` use too).
const MAX_BYTES: usize = crate::suite::record::MAX_TENSOR_BYTES;

/// The batch axis of every input and output: `forced` (`--batch-axis`), else the first
/// symbolic dim of each. Inputs must all have one; an output without one is `None` (it
/// cannot be cut per row). Errors say why the check does not apply.
pub fn axes(
    inputs: &[IoSpec],
    outputs: &[IoSpec],
    forced: Option<usize>,
) -> Result<(Vec<usize>, Vec<Option<usize>>), String> {
    let axis_of = |spec: &IoSpec| -> Option<usize> {
        let dims = spec.dims.as_ref()?;
        match forced {
            Some(a) => (a < dims.len() && !matches!(dims[a], Dim::Fixed(_))).then_some(a),
            None => dims.iter().position(|d| !matches!(d, Dim::Fixed(_))),
        }
    };
    let input_axes = inputs
        .iter()
        .map(|spec| {
            axis_of(spec).ok_or_else(|| match forced {
                Some(a) => format!("input `{}` has no symbolic dim at axis {a}", spec.name),
                None => format!(
                    "input `{}` has no symbolic dim to batch along (every dim is fixed); --batch-axis names one",
                    spec.name
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if input_axes.is_empty() {
        return Err("the model has no inputs".to_string());
    }
    Ok((input_axes, outputs.iter().map(axis_of).collect()))
}

/// `parts` joined along `axis`: every part has the same rank, dtype and dims but `axis`.
pub fn concat(parts: &[&Tensor], axis: usize) -> Result<Tensor, String> {
    let first = parts.first().ok_or("nothing to join")?;
    let shape = first.shape();
    if axis >= shape.len() {
        return Err(format!("axis {axis} is out of range for shape {shape:?}"));
    }
    for p in parts {
        let same_rest = p.shape().len() == shape.len()
            && p.shape()
                .iter()
                .zip(shape)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if p.dtype() != first.dtype() || !same_rest {
            return Err(format!(
                "cannot join {} {:?} with {} {:?} along axis {axis}",
                first.dtype(),
                shape,
                p.dtype(),
                p.shape()
            ));
        }
    }
    let outer: usize = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product::<usize>() * first.dtype().size();
    let rows: usize = parts.iter().map(|p| p.shape()[axis]).sum();
    let total = rows
        .checked_mul(inner)
        .and_then(|n| n.checked_mul(outer))
        .filter(|&n| n <= MAX_BYTES)
        .ok_or_else(|| format!("a batch of {rows} rows would take more than {MAX_BYTES} bytes"))?;
    let mut bytes = Vec::with_capacity(total);
    for o in 0..outer {
        for p in parts {
            let chunk = p.shape()[axis] * inner;
            bytes.extend_from_slice(&p.bytes()[o * chunk..(o + 1) * chunk]);
        }
    }
    let mut out_shape = shape.to_vec();
    out_shape[axis] = rows;
    Tensor::from_bytes(first.dtype(), out_shape, bytes).map_err(|e| e.to_string())
}

/// Rows `start..start + len` of `t` along `axis`.
pub fn slice(t: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor, String> {
    let shape = t.shape();
    let rows = *shape
        .get(axis)
        .ok_or_else(|| format!("axis {axis} is out of range for shape {shape:?}"))?;
    if start.checked_add(len).is_none_or(|end| end > rows) {
        return Err(format!(
            "rows {start}..{} of an axis of {rows}",
            start.saturating_add(len)
        ));
    }
    let outer: usize = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product::<usize>() * t.dtype().size();
    let mut bytes = Vec::with_capacity(outer * len * inner);
    for o in 0..outer {
        let at = (o * rows + start) * inner;
        bytes.extend_from_slice(&t.bytes()[at..at + len * inner]);
    }
    let mut out_shape = shape.to_vec();
    out_shape[axis] = len;
    Tensor::from_bytes(t.dtype(), out_shape, bytes).map_err(|e| e.to_string())
}

/// The data set run in consecutive batches of `size` rows (the last may be smaller),
/// each output's parts joined back along its batch axis; outputs without one are left
/// out (the caller lists them).
pub fn chunked(
    inputs: &[Tensor],
    input_axes: &[usize],
    output_axes: &[Option<usize>],
    size: usize,
    mut run: impl FnMut(&[Tensor]) -> Result<Vec<(String, Tensor)>, String>,
) -> Result<Vec<(String, Tensor)>, String> {
    let rows = batch_rows(inputs, input_axes)?;
    let mut parts: Vec<Vec<(String, Tensor)>> = Vec::new();
    let mut start = 0;
    while start < rows {
        let len = size.max(1).min(rows - start);
        let part = inputs
            .iter()
            .zip(input_axes)
            .map(|(t, &ax)| slice(t, ax, start, len))
            .collect::<Result<Vec<_>, _>>()?;
        parts.push(run(&part)?);
        start += len;
    }
    let Some(first) = parts.first() else {
        return Err("the data set has no rows".to_string());
    };
    first
        .iter()
        .zip(output_axes)
        .enumerate()
        .filter_map(|(k, ((name, _), axis))| axis.map(|a| (k, name, a)))
        .map(|(k, name, axis)| {
            let pieces: Vec<&Tensor> = parts
                .iter()
                .map(|p| p.get(k).map(|(_, t)| t).ok_or("an output is missing"))
                .collect::<Result<_, _>>()?;
            concat(&pieces, axis).map(|t| (name.clone(), t))
        })
        .collect()
}

/// Where the data set's rows sit in a batch of `size` rows: first, last and (for
/// batches of 3 or more) the middle, each a distinct offset.
pub fn positions(size: usize, rows: usize) -> Vec<usize> {
    if size < rows {
        return Vec::new();
    }
    let last = size - rows;
    let mut at = vec![0, last, last / 2];
    at.sort_unstable();
    at.dedup();
    at
}

/// The data set's inputs placed at row `at` of a batch of `size` rows; the other rows
/// come from `fillers` (other data sets' inputs, cyclically, row by row), else from the
/// data set itself with its rows reversed, so the batch never holds only copies of it.
pub fn place(
    inputs: &[Tensor],
    input_axes: &[usize],
    fillers: &[Vec<Tensor>],
    size: usize,
    at: usize,
) -> Result<Vec<Tensor>, String> {
    let rows = batch_rows(inputs, input_axes)?;
    // Filler sources whose every input matches ours but along the batch axis.
    let usable: Vec<&Vec<Tensor>> = fillers
        .iter()
        .filter(|f| {
            f.len() == inputs.len()
                && f.iter().zip(inputs).zip(input_axes).all(|((a, b), &ax)| {
                    a.dtype() == b.dtype()
                        && a.shape().len() == b.shape().len()
                        && a.shape().get(ax).is_some_and(|&n| n > 0)
                        && a.shape()
                            .iter()
                            .zip(b.shape())
                            .enumerate()
                            .all(|(i, (x, y))| i == ax || x == y)
                })
        })
        .collect();
    let need = size - rows;
    // (source, row) of each filler row: other data sets first, then our own reversed.
    let mut picks: Vec<(Option<usize>, usize)> = Vec::with_capacity(need);
    let mut source = 0usize;
    let mut row = 0usize;
    while picks.len() < need {
        if usable.is_empty() {
            picks.push((None, rows - 1 - (picks.len() % rows)));
            continue;
        }
        let src = usable[source % usable.len()];
        let src_rows = src[0].shape()[input_axes[0]];
        picks.push((Some(source % usable.len()), row % src_rows));
        row += 1;
        if row >= src_rows {
            row = 0;
            source += 1;
        }
    }
    inputs
        .iter()
        .zip(input_axes)
        .enumerate()
        .map(|(i, (t, &ax))| {
            let mut parts: Vec<Tensor> = Vec::with_capacity(need + 1);
            let mut owned: Vec<Tensor> = Vec::with_capacity(need);
            for &(src, r) in &picks {
                let from = match src {
                    Some(s) => &usable[s][i],
                    None => t,
                };
                owned.push(slice(from, ax, r, 1)?);
            }
            parts.extend(owned.drain(..at));
            parts.push(t.clone());
            parts.append(&mut owned);
            let refs: Vec<&Tensor> = parts.iter().collect();
            concat(&refs, ax)
        })
        .collect()
}

/// Rows of the data set along the batch axis; every input must agree.
pub fn batch_rows(inputs: &[Tensor], input_axes: &[usize]) -> Result<usize, String> {
    let mut rows = None;
    for (t, &ax) in inputs.iter().zip(input_axes) {
        let n = *t
            .shape()
            .get(ax)
            .ok_or_else(|| format!("an input of shape {:?} has no axis {ax}", t.shape()))?;
        match rows {
            None => rows = Some(n),
            Some(r) if r != n => {
                return Err(format!(
                    "the inputs disagree on the batch size ({r} and {n} rows)"
                ))
            }
            Some(_) => {}
        }
    }
    match rows {
        Some(0) => Err("the data set has no rows".to_string()),
        Some(r) => Ok(r),
        None => Err("the model has no inputs".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    fn vals(t: &Tensor) -> Vec<f32> {
        t.values::<f32>().unwrap().into_owned()
    }

    #[test]
    fn concat_and_slice_along_an_inner_axis_round_trip() {
        let a = t(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
        let b = t(&[2, 2, 2], &[5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
        let c = concat(&[&a, &b], 1).unwrap();
        assert_eq!(c.shape(), &[2, 3, 2]);
        assert_eq!(
            vals(&c),
            [1.0, 2.0, 5.0, 6.0, 7.0, 8.0, 3.0, 4.0, 9.0, 10.0, 11.0, 12.0]
        );
        assert_eq!(vals(&slice(&c, 1, 0, 1).unwrap()), vals(&a));
        assert_eq!(vals(&slice(&c, 1, 1, 2).unwrap()), vals(&b));
        assert!(slice(&c, 1, 2, 2).is_err());
        assert!(concat(&[&a, &t(&[2], &[0.0, 0.0])], 0).is_err());
    }

    #[test]
    fn placing_rows_puts_the_case_at_each_position_among_other_rows() {
        let case = vec![t(&[1, 2], &[1.0, 1.0])];
        let other = vec![vec![t(&[2, 2], &[2.0, 2.0, 3.0, 3.0])]];
        for at in positions(4, 1) {
            let batch = place(&case, &[0], &other, 4, at).unwrap();
            assert_eq!(batch[0].shape(), &[4, 2]);
            assert_eq!(vals(&slice(&batch[0], 0, at, 1).unwrap()), [1.0, 1.0]);
            // Only one row of the four is the case: the rest are the other data set's.
            let ones = vals(&batch[0]).iter().filter(|&&v| v == 1.0).count();
            assert_eq!(ones, 2, "{:?}", vals(&batch[0]));
        }
        assert_eq!(positions(4, 1), [0, 1, 3]);
        assert_eq!(positions(2, 1), [0, 1]);
        assert!(positions(1, 2).is_empty());
        // Without other data sets, the case's own rows reversed fill the batch.
        let case = vec![t(&[2, 1], &[1.0, 2.0])];
        let batch = place(&case, &[0], &[], 4, 2).unwrap();
        assert_eq!(vals(&batch[0]), [2.0, 1.0, 1.0, 2.0]);
    }

    #[test]
    fn a_data_set_runs_in_smaller_batches_and_joins_back() {
        let x = t(&[5, 1], &[1.0, 2.0, 3.0, 4.0, 5.0]);
        let mut seen = Vec::new();
        let out = chunked(
            std::slice::from_ref(&x),
            &[0],
            &[Some(0), None],
            2,
            |part| {
                seen.push(part[0].shape()[0]);
                Ok(vec![
                    ("y".to_string(), part[0].clone()),
                    ("z".to_string(), t(&[1], &[0.0])),
                ])
            },
        )
        .unwrap();
        assert_eq!(seen, [2, 2, 1]);
        assert_eq!(out.len(), 1, "z has no batch axis");
        assert_eq!(vals(&out[0].1), vals(&x));
    }

    #[test]
    fn the_batch_axis_is_the_first_symbolic_dim() {
        let spec = |name: &str, dims: Vec<Dim>| IoSpec {
            name: name.into(),
            dtype: None,
            dims: Some(dims),
        };
        let sym = || Dim::Symbolic("n".into());
        let inputs = [spec("x", vec![Dim::Fixed(3), sym()])];
        let outputs = [spec("y", vec![sym()]), spec("z", vec![Dim::Fixed(1)])];
        let (ia, oa) = axes(&inputs, &outputs, None).unwrap();
        assert_eq!((ia, oa), (vec![1], vec![Some(0), None]));
        let fixed = [spec("x", vec![Dim::Fixed(3)])];
        let e = axes(&fixed, &outputs, None).unwrap_err();
        assert!(e.contains("input `x` has no symbolic dim"), "{e}");
        let e = axes(&inputs, &outputs, Some(0)).unwrap_err();
        assert!(e.contains("no symbolic dim at axis 0"), "{e}");
    }
}
