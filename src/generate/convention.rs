//! Which inputs and outputs of a decoder-only language model carry what: the token ids,
//! the attention mask, the positions, the logits and the key/value cache that each step
//! feeds back. Detected from the model's declared IO in the usual export convention
//! (`input_ids`, `attention_mask`, `position_ids`, `past_key_values.{i}.key/value` in;
//! `logits`, `present.{i}.key/value` out), with every name overridable.

use crate::schema::{dims_text, names_text, Dim, IoSpec};
use crate::tensor::DType;

/// The names to look for; [`Names::default`] is the Hugging Face / Optimum convention.
#[derive(Debug, Clone)]
pub struct Names {
    /// The token ids input.
    pub input_ids: String,
    /// The attention mask input (optional in the model unless named by the user).
    pub attention_mask: String,
    /// The position ids input (optional in the model unless named by the user).
    pub position_ids: String,
    /// The logits output.
    pub logits: String,
    /// Cache pairs `(output, input)` given by the user; empty: every input named
    /// `past_key_values.X` or `past.X` is fed by the output `present.X`.
    pub cache: Vec<(String, String)>,
    /// Whether the user named the mask or the positions, which the model must then have.
    pub explicit_mask: bool,
    /// See `explicit_mask`.
    pub explicit_positions: bool,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            input_ids: "input_ids".into(),
            attention_mask: "attention_mask".into(),
            position_ids: "position_ids".into(),
            logits: "logits".into(),
            cache: Vec::new(),
            explicit_mask: false,
            explicit_positions: false,
        }
    }
}

/// One cache tensor: the input that takes the past and the output that gives the
/// present (past plus this step), with the axis that grows.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSlot {
    /// Index among the model's inputs.
    pub input: usize,
    /// Index among the model's outputs.
    pub output: usize,
    /// Element type of the cache.
    pub dtype: DType,
    /// The declared dims with the batch (axis 0) and sequence axes as 0.
    pub dims: Vec<usize>,
    /// The axis that grows by one per generated token.
    pub seq_axis: usize,
}

/// Where everything is, by index into the model's inputs and outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Index of the token ids input.
    pub input_ids: usize,
    /// Element type of the ids (and of the mask and positions): i64 or i32.
    pub ids_dtype: DType,
    /// Index of the attention mask input, when the model has one.
    pub attention_mask: Option<usize>,
    /// Index of the position ids input, when the model has one.
    pub position_ids: Option<usize>,
    /// Index of the logits output.
    pub logits: usize,
    /// The cache, in input order.
    pub cache: Vec<CacheSlot>,
}

impl Layout {
    /// Finds every role in `inputs`/`outputs`, or says in one line what is missing or
    /// cannot be fed (an input with no role, a cache input whose dims are not known).
    pub fn detect(inputs: &[IoSpec], outputs: &[IoSpec], names: &Names) -> Result<Layout, String> {
        let find_in = |name: &str| inputs.iter().position(|s| s.name == name);
        let input_ids = find_in(&names.input_ids).ok_or_else(|| {
            format!(
                "the model has no input `{}` for the token ids (inputs: {}); name it with --input-ids",
                names.input_ids,
                names_text(inputs)
            )
        })?;
        let ids_dtype = match inputs[input_ids].dtype {
            Some(d @ (DType::I64 | DType::I32)) => d,
            other => {
                return Err(format!(
                    "input `{}` (token ids) must be int64 or int32, the model declares {}",
                    names.input_ids,
                    other.map_or("a non-tensor type".to_string(), |d| d.to_string())
                ))
            }
        };
        let optional = |name: &str, explicit: bool, flag: &str| match find_in(name) {
            Some(i) => Ok(Some(i)),
            None if explicit => Err(format!(
                "the model has no input `{name}` (named by {flag}); inputs: {}",
                names_text(inputs)
            )),
            None => Ok(None),
        };
        let attention_mask = optional(
            &names.attention_mask,
            names.explicit_mask,
            "--attention-mask",
        )?;
        let position_ids = optional(
            &names.position_ids,
            names.explicit_positions,
            "--position-ids",
        )?;
        for i in [attention_mask, position_ids].into_iter().flatten() {
            if inputs[i].dtype != Some(DType::I64) && inputs[i].dtype != Some(DType::I32) {
                return Err(format!("input `{}` must be int64 or int32", inputs[i].name));
            }
        }
        let logits = outputs
            .iter()
            .position(|s| s.name == names.logits)
            .ok_or_else(|| {
                format!(
                    "the model has no output `{}` (outputs: {}); name it with --logits",
                    names.logits,
                    names_text(outputs)
                )
            })?;
        let pairs = if names.cache.is_empty() {
            conventional_pairs(inputs)
        } else {
            names.cache.clone()
        };
        let mut cache = Vec::new();
        for (out_name, in_name) in &pairs {
            let input = find_in(in_name).ok_or_else(|| {
                format!(
                    "the model has no cache input `{in_name}` (inputs: {})",
                    names_text(inputs)
                )
            })?;
            let output = outputs
                .iter()
                .position(|s| &s.name == out_name)
                .ok_or_else(|| {
                    format!(
                        "the model has no output `{out_name}` to feed its input `{in_name}` (outputs: {}); pair them with --kv OUT=IN",
                        names_text(outputs)
                    )
                })?;
            cache.push(slot(&inputs[input], input, output)?);
        }
        cache.sort_by_key(|s| s.input);
        let used: Vec<usize> = [Some(input_ids), attention_mask, position_ids]
            .into_iter()
            .flatten()
            .chain(cache.iter().map(|s| s.input))
            .collect();
        if let Some(extra) = (0..inputs.len()).find(|i| !used.contains(i)) {
            return Err(format!(
                "input `{}` is not the token ids, the attention mask, the positions or a cache input; \
                 pair it with the output that feeds it (--kv OUT=IN) or name its role (--input-ids, --attention-mask, --position-ids)",
                inputs[extra].name
            ));
        }
        Ok(Layout {
            input_ids,
            ids_dtype,
            attention_mask,
            position_ids,
            logits,
            cache,
        })
    }
}

/// `past_key_values.X` (or `past.X`) fed by `present.X`, for every such input.
fn conventional_pairs(inputs: &[IoSpec]) -> Vec<(String, String)> {
    inputs
        .iter()
        .filter_map(|s| {
            let rest = s
                .name
                .strip_prefix("past_key_values.")
                .or_else(|| s.name.strip_prefix("past."))?;
            Some((format!("present.{rest}"), s.name.clone()))
        })
        .collect()
}

/// The cache slot of `spec`: batch on axis 0, one growing axis (the only dynamic axis
/// but the batch, else axis 2 of a rank-4 `[batch, heads, seq, head_dim]`), every other
/// axis fixed so that an empty past can be built.
fn slot(spec: &IoSpec, input: usize, output: usize) -> Result<CacheSlot, String> {
    let name = &spec.name;
    let dtype = match spec.dtype {
        Some(d) if d.is_float() => d,
        _ => return Err(format!("cache input `{name}` must be a float tensor")),
    };
    let Some(dims) = spec.dims.as_ref().filter(|d| d.len() >= 2) else {
        return Err(format!(
            "cache input `{name}` has no declared shape of rank 2 or more; parity cannot build its empty past"
        ));
    };
    let dynamic: Vec<usize> = (1..dims.len())
        .filter(|&a| !matches!(dims[a], Dim::Fixed(_)))
        .collect();
    let seq_axis = match dynamic.as_slice() {
        [a] => *a,
        _ if dims.len() == 4 && matches!(dims[1], Dim::Fixed(_)) && matches!(dims[3], Dim::Fixed(_)) => 2,
        _ => {
            return Err(format!(
                "cache input `{name}` has dims {}: parity needs every axis but the batch (0) and one sequence axis fixed",
                dims_text(dims)
            ))
        }
    };
    let dims = dims
        .iter()
        .enumerate()
        .map(|(a, d)| match d {
            Dim::Fixed(n) if a != 0 && a != seq_axis => *n,
            _ => 0,
        })
        .collect();
    Ok(CacheSlot {
        input,
        output,
        dtype,
        dims,
        seq_axis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, dtype: DType, dims: &[Dim]) -> IoSpec {
        IoSpec {
            name: name.into(),
            dtype: Some(dtype),
            dims: Some(dims.to_vec()),
        }
    }

    fn sym(s: &str) -> Dim {
        Dim::Symbolic(s.into())
    }

    fn kv_model() -> (Vec<IoSpec>, Vec<IoSpec>) {
        let ids = [sym("batch"), sym("seq")];
        let past = [sym("batch"), Dim::Fixed(2), sym("past"), Dim::Fixed(8)];
        let present = [sym("batch"), Dim::Fixed(2), sym("total"), Dim::Fixed(8)];
        (
            vec![
                spec("input_ids", DType::I64, &ids),
                spec("attention_mask", DType::I64, &[sym("batch"), sym("total")]),
                spec("past_key_values.0.key", DType::F32, &past),
                spec("past_key_values.0.value", DType::F32, &past),
            ],
            vec![
                spec(
                    "logits",
                    DType::F32,
                    &[sym("batch"), sym("seq"), Dim::Fixed(128)],
                ),
                spec("present.0.key", DType::F32, &present),
                spec("present.0.value", DType::F32, &present),
            ],
        )
    }

    #[test]
    fn finds_the_usual_convention() {
        let (inputs, outputs) = kv_model();
        let layout = Layout::detect(&inputs, &outputs, &Names::default()).unwrap();
        assert_eq!(layout.input_ids, 0);
        assert_eq!(layout.attention_mask, Some(1));
        assert_eq!(layout.position_ids, None);
        assert_eq!(layout.logits, 0);
        assert_eq!(layout.cache.len(), 2);
        assert_eq!(
            layout.cache[1],
            CacheSlot {
                input: 3,
                output: 2,
                dtype: DType::F32,
                dims: vec![0, 2, 0, 8],
                seq_axis: 2
            }
        );
    }

    #[test]
    fn says_what_is_missing() {
        let (inputs, mut outputs) = kv_model();
        outputs.truncate(2);
        let e = Layout::detect(&inputs, &outputs, &Names::default()).unwrap_err();
        assert!(e.contains("no output `present.0.value`"), "{e}");
        let (mut inputs, outputs) = kv_model();
        inputs.push(spec("cache_position", DType::I64, &[sym("seq")]));
        let e = Layout::detect(&inputs, &outputs, &Names::default()).unwrap_err();
        assert!(
            e.starts_with("input `cache_position` is not the token ids"),
            "{e}"
        );
        let names = Names {
            position_ids: "pos".into(),
            explicit_positions: true,
            ..Names::default()
        };
        let (inputs, outputs) = kv_model();
        let e = Layout::detect(&inputs, &outputs, &names).unwrap_err();
        assert!(
            e.contains("no input `pos` (named by --position-ids)"),
            "{e}"
        );
    }

    #[test]
    fn user_named_cache_pairs_replace_the_convention() {
        let (mut inputs, mut outputs) = kv_model();
        inputs[2].name = "k_in".into();
        inputs[3].name = "v_in".into();
        outputs[1].name = "k_out".into();
        outputs[2].name = "v_out".into();
        let names = Names {
            cache: vec![
                ("v_out".into(), "v_in".into()),
                ("k_out".into(), "k_in".into()),
            ],
            ..Names::default()
        };
        let layout = Layout::detect(&inputs, &outputs, &names).unwrap();
        assert_eq!(
            layout
                .cache
                .iter()
                .map(|s| (s.input, s.output))
                .collect::<Vec<_>>(),
            [(2, 1), (3, 2)]
        );
    }

    #[test]
    fn a_cache_without_known_dims_is_refused() {
        let (mut inputs, outputs) = kv_model();
        inputs[2].dims = Some(vec![sym("b"), sym("h"), sym("s"), Dim::Fixed(8)]);
        let e = Layout::detect(&inputs, &outputs, &Names::default()).unwrap_err();
        assert!(e.contains("needs every axis but the batch"), "{e}");
    }
}
