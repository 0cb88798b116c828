//! The samples `data drift` compares: one per feature. A table gives one feature per
//! numeric column; a tensor gives one per channel along `--axis` (rank ≤ 1: the whole
//! tensor), named `NAME[c]`, pooled over every data set. NaN is left out of the sample
//! and counted as missing.

use super::source::{DataSet, Source};
use super::tabular::{Cell, Table};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// One feature's sample.
#[derive(Debug, Clone)]
pub struct Feature {
    /// Column name, or `TENSOR[c]`.
    pub name: String,
    /// Non-NaN values.
    pub values: Vec<f64>,
    /// NaN values and missing cells left out.
    pub missing: usize,
}

/// A column or tensor left out of the comparison, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    /// Its name.
    pub name: String,
    /// Why it was not compared.
    pub reason: String,
}

/// Features of a source; tables skip non-numeric columns (returned with the reason).
pub fn extract(source: &Source, axis: i64) -> Result<(Vec<Feature>, Vec<Skipped>)> {
    match source {
        Source::Table(t) => Ok(from_table(t)),
        Source::Sets(sets) => {
            let mut named: Vec<(String, Vec<Tensor>)> = Vec::new();
            for DataSet { tensors, .. } in sets {
                for n in tensors {
                    match named.iter_mut().find(|(name, _)| *name == n.name) {
                        Some((_, list)) => list.push(n.tensor.clone()),
                        None => named.push((n.name.clone(), vec![n.tensor.clone()])),
                    }
                }
            }
            let mut features = Vec::new();
            for (name, tensors) in &named {
                features.extend(from_tensors(name, tensors, axis)?);
            }
            Ok((features, Vec::new()))
        }
    }
}

fn from_table(table: &Table) -> (Vec<Feature>, Vec<Skipped>) {
    let mut features = Vec::new();
    let mut skipped = Vec::new();
    for (c, name) in table.columns.iter().enumerate() {
        let mut values = Vec::with_capacity(table.rows.len());
        let mut missing = 0;
        let mut text = None;
        for row in &table.rows {
            match &row[c] {
                Cell::Number(v) if v.is_nan() => missing += 1,
                Cell::Number(v) => values.push(*v),
                Cell::Missing => missing += 1,
                Cell::Text(s) => {
                    text.get_or_insert_with(|| s.clone());
                }
            }
        }
        match text {
            Some(s) => skipped.push(Skipped {
                name: name.clone(),
                reason: format!("not numeric (holds `{s}`)"),
            }),
            None => features.push(Feature {
                name: name.clone(),
                values,
                missing,
            }),
        }
    }
    (features, skipped)
}

/// One feature per channel of `name` along `axis`, over all its tensors (whose channel
/// counts must agree).
pub fn from_tensors(name: &str, tensors: &[Tensor], axis: i64) -> Result<Vec<Feature>> {
    let Some(first) = tensors.first() else {
        return Ok(Vec::new());
    };
    let rank = first.shape().len();
    if rank <= 1 {
        let mut f = Feature {
            name: name.to_string(),
            values: Vec::new(),
            missing: 0,
        };
        for t in tensors {
            push_values(t, 0..t.numel(), &mut f);
        }
        return Ok(vec![f]);
    }
    let ax = if axis < 0 { axis + rank as i64 } else { axis };
    let ax = usize::try_from(ax)
        .ok()
        .filter(|&a| a < rank)
        .ok_or_else(|| {
            Error::Usage(format!(
                "--axis {axis} is outside `{name}`, which has rank {rank}"
            ))
        })?;
    let channels = first.shape()[ax];
    let mut features: Vec<Feature> = (0..channels)
        .map(|c| Feature {
            name: format!("{name}[{c}]"),
            values: Vec::new(),
            missing: 0,
        })
        .collect();
    for t in tensors {
        if t.shape().len() != rank || t.shape()[ax] != channels {
            return Err(Error::Usage(format!(
                "`{name}` has shape {:?} in one data set and {:?} in another: channels along axis {ax} differ",
                first.shape(),
                t.shape()
            )));
        }
        let inner: usize = t.shape()[ax + 1..].iter().product();
        for i in 0..t.numel() {
            let c = (i / inner.max(1)) % channels;
            push_values(t, i..i + 1, &mut features[c]);
        }
    }
    Ok(features)
}

fn push_values(t: &Tensor, range: std::ops::Range<usize>, f: &mut Feature) {
    for i in range {
        let v = t.get_f64(i);
        if v.is_nan() {
            f.missing += 1;
        } else {
            f.values.push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_along_axis_one_and_last() {
        // shape [2, 3, 2]: channel c along axis 1 holds elements whose middle index is c.
        let t = Tensor::from_vec(vec![2, 3, 2], (0..12).map(|v| v as f32).collect()).unwrap();
        let f = from_tensors("x", std::slice::from_ref(&t), 1).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].name, "x[1]");
        assert_eq!(f[1].values, [2.0, 3.0, 8.0, 9.0]);
        let f = from_tensors("x", &[t], -1).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].values, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
    }

    #[test]
    fn nan_counts_as_missing_and_bad_axis_is_refused() {
        let t = Tensor::from_vec(vec![3], vec![1.0f32, f32::NAN, 2.0]).unwrap();
        let f = from_tensors("v", std::slice::from_ref(&t), 1).unwrap();
        assert_eq!((f[0].values.len(), f[0].missing), (2, 1));
        let m = Tensor::from_vec(vec![2, 2], vec![0f32; 4]).unwrap();
        assert!(from_tensors("m", &[m], 5).is_err());
    }
}
