//! Greedy decoding with a KV cache on one backend: the prompts of a batch left-padded to
//! one length, the whole prompt as the first step (with an empty past), then one token
//! per step, each backend feeding back its own cache.

use super::convention::Layout;
use crate::backend::{BackendError, Session};
use crate::tensor::{DType, Tensor};
use std::time::Instant;

/// The id put in the padded positions of shorter prompts; masked out, so any id works.
const PAD_ID: i64 = 0;

/// One prompt's greedy generation on one backend.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The prompt's token ids.
    pub prompt: Vec<i64>,
    /// The generated ids, one per step.
    pub tokens: Vec<i64>,
    /// Each step's logits at the last position (`[vocab]`, the model's dtype): what
    /// chose the token, and what the verdict compares.
    pub logits: Vec<Tensor>,
    /// Seconds each step took (the whole batch's run; step 0 is the prompt).
    pub step_seconds: Vec<f64>,
}

/// Decodes `prompts` together (one batch) for `max_new` tokens each. Prompts of
/// different lengths need the model to take an attention mask and positions (left
/// padding moves every token's position otherwise).
pub fn decode(
    session: &mut dyn Session,
    layout: &Layout,
    prompts: &[Vec<i64>],
    max_new: usize,
) -> Result<Vec<Generation>, BackendError> {
    let batch = prompts.len();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    if batch == 0 || prompts.iter().any(Vec::is_empty) {
        return Err(BackendError::new("every prompt needs at least one token"));
    }
    let padded = prompts.iter().any(|p| p.len() != longest);
    if padded && (layout.attention_mask.is_none() || layout.position_ids.is_none()) {
        return Err(BackendError::new(
            "prompts of different lengths in one batch need the model to take an attention mask and position ids (left padding); decode them with --batch 1",
        ));
    }
    let mut ids: Vec<i64> = Vec::with_capacity(batch * longest);
    let mut mask: Vec<i64> = Vec::with_capacity(batch * longest);
    let mut positions: Vec<i64> = Vec::with_capacity(batch * longest);
    for p in prompts {
        let pad = longest - p.len();
        ids.extend(std::iter::repeat_n(PAD_ID, pad).chain(p.iter().copied()));
        mask.extend((0..longest).map(|i| i64::from(i >= pad)));
        positions.extend((0..longest).map(|i| i.saturating_sub(pad) as i64));
    }
    let mut past: Vec<Tensor> = layout
        .cache
        .iter()
        .map(|slot| {
            let mut dims = slot.dims.clone();
            dims[0] = batch;
            Tensor::from_bytes(slot.dtype, dims, Vec::new())
        })
        .collect::<Result<_, _>>()
        .map_err(|e| BackendError::new(format!("empty cache: {e}")))?;
    let n_inputs = session.inputs().len();
    let mut out: Vec<Generation> = prompts
        .iter()
        .map(|p| Generation {
            prompt: p.clone(),
            tokens: Vec::with_capacity(max_new),
            logits: Vec::with_capacity(max_new),
            step_seconds: Vec::with_capacity(max_new),
        })
        .collect();
    for step in 0..max_new {
        // The first step reads the whole (padded) prompt, each later one a token.
        let step_len = if step == 0 { longest } else { 1 };
        let total = longest + step;
        let mut feed: Vec<Option<Tensor>> = vec![None; n_inputs];
        feed[layout.input_ids] = Some(ids_tensor(layout.ids_dtype, vec![batch, step_len], &ids)?);
        if let Some(i) = layout.attention_mask {
            feed[i] = Some(ids_tensor(
                declared(session, i, layout.ids_dtype),
                vec![batch, total],
                &mask,
            )?);
        }
        if let Some(i) = layout.position_ids {
            feed[i] = Some(ids_tensor(
                declared(session, i, layout.ids_dtype),
                vec![batch, step_len],
                &positions,
            )?);
        }
        for (slot, t) in layout.cache.iter().zip(past.drain(..)) {
            feed[slot.input] = Some(t);
        }
        let feed: Vec<Tensor> = feed.into_iter().flatten().collect();
        let started = Instant::now();
        let outputs = session.run(&feed)?;
        let seconds = started.elapsed().as_secs_f64();
        if outputs.len() != session.outputs().len() {
            return Err(BackendError::new(format!(
                "step {step}: the backend returned {} outputs, the model declares {}",
                outputs.len(),
                session.outputs().len()
            )));
        }
        let mut outputs: Vec<Option<(String, Tensor)>> = outputs.into_iter().map(Some).collect();
        let Some((_, logits)) = outputs[layout.logits].take() else {
            return Err(BackendError::new("the logits output is missing"));
        };
        let rows = last_rows(&logits, batch)
            .map_err(|e| BackendError::new(format!("step {step}: output logits {e}")))?;
        ids.clear();
        for (b, (gen, row)) in out.iter_mut().zip(rows).enumerate() {
            let token = argmax(&row).ok_or_else(|| {
                BackendError::new(format!(
                    "step {step}: the logits of prompt {b} have no finite maximum (NaN throughout)"
                ))
            })?;
            gen.tokens.push(token as i64);
            gen.logits.push(row);
            gen.step_seconds.push(seconds);
            ids.push(token as i64);
        }
        for slot in &layout.cache {
            let Some((name, t)) = outputs[slot.output].take() else {
                return Err(BackendError::new("a cache output feeds two inputs"));
            };
            let shape = t.shape();
            let fits = shape.len() == slot.dims.len()
                && shape[0] == batch
                && shape[slot.seq_axis] == total
                && t.dtype() == slot.dtype;
            if !fits {
                return Err(BackendError::new(format!(
                    "step {step}: cache output `{}` has shape {:?} ({}); expected batch {batch} and {total} positions on axis {}",
                    name,
                    shape,
                    t.dtype(),
                    slot.seq_axis
                )));
            }
            past.push(t);
        }
        let next_mask: Vec<i64> = mask
            .chunks(total)
            .flat_map(|row| row.iter().copied().chain([1]))
            .collect();
        mask = next_mask;
        positions = positions
            .chunks(step_len)
            .map(|row| row[row.len() - 1] + 1)
            .collect();
    }
    Ok(out)
}

/// The dtype the model declares for input `i` (the mask and positions may differ from
/// the ids' type).
fn declared(session: &dyn Session, i: usize, fallback: DType) -> DType {
    session.inputs()[i].dtype.unwrap_or(fallback)
}

fn ids_tensor(dtype: DType, shape: Vec<usize>, values: &[i64]) -> Result<Tensor, BackendError> {
    let t = match dtype {
        DType::I32 => Tensor::from_vec(shape, values.iter().map(|&v| v as i32).collect()),
        _ => Tensor::from_vec(shape, values.to_vec()),
    };
    t.map_err(|e| BackendError::new(e.to_string()))
}

/// Each sequence's logits at its last position: `[batch, seq, vocab]` or `[batch, vocab]`.
fn last_rows(logits: &Tensor, batch: usize) -> Result<Vec<Tensor>, String> {
    let shape = logits.shape();
    let (seq, vocab) = match *shape {
        [b, s, v] if b == batch && s > 0 => (s, v),
        [b, v] if b == batch => (1, v),
        _ => {
            return Err(format!(
                "has shape {shape:?}; expected [batch {batch}, seq, vocab] or [batch, vocab]"
            ))
        }
    };
    if !logits.dtype().is_float() {
        return Err(format!(
            "has dtype {}; expected a float type",
            logits.dtype()
        ));
    }
    let width = logits.dtype().size();
    let bytes = logits.bytes();
    (0..batch)
        .map(|b| {
            let start = ((b * seq + seq - 1) * vocab) * width;
            Tensor::from_bytes(
                logits.dtype(),
                vec![vocab],
                bytes[start..start + vocab * width].to_vec(),
            )
            .map_err(|e| e.to_string())
        })
        .collect()
}

/// The index of the largest value, the first on ties (numpy's `argmax`), ignoring NaN.
pub fn argmax(row: &Tensor) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for i in 0..row.numel() {
        let v = row.get_f64(i);
        if !v.is_nan() && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_ties_and_skips_nan() {
        let row = Tensor::from_vec(vec![4], vec![1.0f32, f32::NAN, 3.0, 3.0]).unwrap();
        assert_eq!(argmax(&row), Some(2));
        let row = Tensor::from_vec(vec![2], vec![f32::NAN, f32::NAN]).unwrap();
        assert_eq!(argmax(&row), None);
    }

    #[test]
    fn last_rows_take_each_sequence_last_position() {
        let logits = Tensor::from_vec(vec![2, 2, 3], (0..12).map(|v| v as f32).collect()).unwrap();
        let rows = last_rows(&logits, 2).unwrap();
        assert_eq!(rows[0].values::<f32>().unwrap().as_ref(), [3.0, 4.0, 5.0]);
        assert_eq!(rows[1].values::<f32>().unwrap().as_ref(), [9.0, 10.0, 11.0]);
        assert!(last_rows(&logits, 3)
            .unwrap_err()
            .contains("expected [batch 3"));
    }
}
