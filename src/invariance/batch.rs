//! The `batch` check's tensors: a data set's rows placed among other rows in a larger
//! batch along the model's batch axis, and its outputs cut back out. Works on bytes, so
//! any dtype; every size is checked before anything is allocated.

use crate::schema::{Dim, IoSpec};
use crate::tensor::Tensor;

/// Most bytes one stacked input may take (the bound `record` and `bench` use too).
const MAX_BYTES: usize = crate::suite::record::MAX_TENSOR_BYTES;

/// The batch axis of every input: `forced` (`--batch-axis`), else its first symbolic
/// dim. A scalar input (a sample rate, a threshold) has none and is passed to every
/// batch as it is; any other input must have one. Errors say why the check does not
/// apply. (Outputs are cut along the axis that grew with the batch: [`grown_axis`].)
pub fn axes(inputs: &[IoSpec], forced: Option<usize>) -> Result<Vec<Option<usize>>, String> {
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
            if spec.dims.as_ref().is_some_and(Vec::is_empty) {
                return Ok(None);
            }
            axis_of(spec).map(Some).ok_or_else(|| match forced {
                Some(a) => format!("input `{}` has no symbolic dim at axis {a}", spec.name),
                None => format!(
                    "input `{}` has no symbolic dim to batch along (every dim is fixed); --batch-axis names one",
                    spec.name
                ),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if input_axes.iter().all(Option::is_none) {
        return Err("the model has no input with a batch axis".to_string());
    }
    Ok(input_axes)
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

/// The axis of an output that holds the batch: the first along which the data set's
/// own output (`alone`) has `rows` and the batched run's has `size`, every other dim
/// equal. `None` when the output did not grow with the batch.
pub fn grown_axis(alone: &[usize], batched: &[usize], rows: usize, size: usize) -> Option<usize> {
    if alone.len() != batched.len() {
        return None;
    }
    (0..alone.len()).find(|&i| {
        alone[i] == rows
            && batched[i] == size
            && alone
                .iter()
                .zip(batched)
                .enumerate()
                .all(|(j, (a, b))| j == i || a == b)
    })
}

/// Outputs cut or joined back to the data set's own rows, and the names of those that
/// have no axis that grew with the batch (not compared; the caller says why).
pub type Cut = (Vec<(String, Tensor)>, Vec<String>);

/// The data set's rows `at..at + rows` cut back out of a batch of `size` rows, along
/// each output's [`grown_axis`].
pub fn cut(
    alone: &[(String, Tensor)],
    batched: Vec<(String, Tensor)>,
    rows: usize,
    size: usize,
    at: usize,
) -> Result<Cut, String> {
    let mut kept = Vec::new();
    let mut uncut = Vec::new();
    for (name, t) in batched {
        let own = alone
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.shape());
        match own.and_then(|own| grown_axis(own, t.shape(), rows, size)) {
            Some(axis) => kept.push((name, slice(&t, axis, at, rows)?)),
            None => uncut.push(name),
        }
    }
    Ok((kept, uncut))
}

/// The data set run in consecutive batches of `size` rows (the last may be smaller),
/// each output's parts joined back along its [`grown_axis`].
pub fn chunked(
    inputs: &[Tensor],
    input_axes: &[Option<usize>],
    alone: &[(String, Tensor)],
    size: usize,
    mut run: impl FnMut(&[Tensor]) -> Result<Vec<(String, Tensor)>, String>,
) -> Result<Cut, String> {
    let rows = batch_rows(inputs, input_axes)?;
    let mut parts: Vec<(usize, Vec<(String, Tensor)>)> = Vec::new();
    let mut start = 0;
    while start < rows {
        let len = size.max(1).min(rows - start);
        let part = inputs
            .iter()
            .zip(input_axes)
            .map(|(t, &ax)| match ax {
                Some(ax) => slice(t, ax, start, len),
                None => Ok(t.clone()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        parts.push((len, run(&part)?));
        start += len;
    }
    let mut kept = Vec::new();
    let mut uncut = Vec::new();
    for (name, own) in alone {
        let pieces: Option<Vec<(usize, &Tensor)>> = parts
            .iter()
            .map(|(len, outs)| {
                let (_, t) = outs.iter().find(|(n, _)| n == name)?;
                Some((grown_axis(own.shape(), t.shape(), rows, *len)?, t))
            })
            .collect();
        match pieces {
            Some(p) if p.iter().all(|(a, _)| *a == p[0].0) => {
                let refs: Vec<&Tensor> = p.iter().map(|(_, t)| *t).collect();
                kept.push((name.clone(), concat(&refs, p[0].0)?));
            }
            _ => uncut.push(name.clone()),
        }
    }
    Ok((kept, uncut))
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
    input_axes: &[Option<usize>],
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
                    let Some(ax) = ax else {
                        // Passed as it is: the filler's own value does not matter.
                        return true;
                    };
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
        let src_rows = batch_rows(src, input_axes)?;
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
            let Some(ax) = ax else {
                return Ok(t.clone());
            };
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
pub fn batch_rows(inputs: &[Tensor], input_axes: &[Option<usize>]) -> Result<usize, String> {
    let mut rows = None;
    for (t, ax) in inputs.iter().zip(input_axes) {
        let Some(ax) = *ax else { continue };
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
        None => Err("the model has no input with a batch axis".to_string()),
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
            let batch = place(&case, &[Some(0)], &other, 4, at).unwrap();
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
        let batch = place(&case, &[Some(0)], &[], 4, 2).unwrap();
        assert_eq!(vals(&batch[0]), [2.0, 1.0, 1.0, 2.0]);
    }

    #[test]
    fn a_data_set_runs_in_smaller_batches_and_joins_back() {
        let x = t(&[5, 1], &[1.0, 2.0, 3.0, 4.0, 5.0]);
        let alone = [
            ("y".to_string(), x.clone()),
            ("z".to_string(), t(&[1], &[0.0])),
        ];
        let mut seen = Vec::new();
        let (out, uncut) = chunked(std::slice::from_ref(&x), &[Some(0)], &alone, 2, |part| {
            seen.push(part[0].shape()[0]);
            Ok(vec![
                ("y".to_string(), part[0].clone()),
                ("z".to_string(), t(&[1], &[0.0])),
            ])
        })
        .unwrap();
        assert_eq!(seen, [2, 2, 1]);
        assert_eq!(uncut, ["z"], "z does not grow with the batch");
        assert_eq!(out.len(), 1);
        assert_eq!(vals(&out[0].1), vals(&x));
        // A state [layers, batch, width]: the batch is axis 1, not the first axis.
        assert_eq!(grown_axis(&[2, 1, 4], &[2, 3, 4], 1, 3), Some(1));
        assert_eq!(grown_axis(&[2, 1, 4], &[2, 1, 4], 1, 3), None);
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
        assert_eq!(axes(&inputs, None).unwrap(), [Some(1)]);
        let fixed = [spec("x", vec![Dim::Fixed(3)])];
        let e = axes(&fixed, None).unwrap_err();
        assert!(e.contains("input `x` has no symbolic dim"), "{e}");
        let e = axes(&inputs, Some(0)).unwrap_err();
        assert!(e.contains("no symbolic dim at axis 0"), "{e}");
        // A scalar input (silero-vad's sample rate) goes to every batch as it is.
        let with_scalar = [inputs[0].clone(), spec("sr", vec![])];
        assert_eq!(axes(&with_scalar, None).unwrap(), [Some(1), None]);
        let e = axes(&[spec("sr", vec![])], None).unwrap_err();
        assert!(e.contains("no input with a batch axis"), "{e}");
        let x = t(&[1, 2], &[1.0, 2.0]);
        let sr = Tensor::from_vec(vec![], vec![16000i64]).unwrap();
        let batch = place(&[x, sr.clone()], &[Some(0), None], &[], 3, 1).unwrap();
        assert_eq!(batch[0].shape(), &[3, 2]);
        assert_eq!(batch[1].bytes(), sr.bytes());
    }
}
