//! `record --sequence`: which outputs of a stateful model feed which inputs at the next
//! step, as the user named them (`--carry OUT=IN`) or inferred from the model's names,
//! dtypes and dims (printed, so the user sees what was chosen).

use crate::schema::{names_text, Dim, IoSpec};
use std::collections::BTreeMap;

/// Output names that are the next value of input `I`: `IN`, `I_out`, `I_next`, `new_I`,
/// `present.X` for `past_key_values.X`, `hn` for `h0`, ...
fn related(output: &str, input: &str) -> bool {
    const SUFFIXES: [&str; 8] = ["N", "n", "_n", "_out", "_next", "_new", "Out", "_output"];
    const PREFIXES: [&str; 3] = ["new_", "next_", "out_"];
    let kv = ["past_key_values.", "past."].iter().any(|p| {
        input
            .strip_prefix(p)
            .is_some_and(|rest| output == format!("present.{rest}"))
    });
    let zero = input
        .strip_suffix('0')
        .is_some_and(|stem| !stem.is_empty() && output == format!("{stem}n"));
    kv || zero
        || SUFFIXES
            .iter()
            .any(|s| output.strip_suffix(s) == Some(input))
        || PREFIXES
            .iter()
            .any(|p| output.strip_prefix(p) == Some(input))
}

/// Whether two declared dims can be the same size.
fn fits(a: &Option<Vec<Dim>>, b: &Option<Vec<Dim>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| match (x, y) {
                    (Dim::Fixed(m), Dim::Fixed(n)) => m == n,
                    _ => true,
                })
        }
        _ => true,
    }
}

/// Infers the carry map: each output paired with the one input whose name it follows
/// (see [`related`]) and whose dtype and dims it fits. An empty result is an error.
pub fn infer(inputs: &[IoSpec], outputs: &[IoSpec]) -> Result<BTreeMap<String, String>, String> {
    let mut carry = BTreeMap::new();
    for out in outputs {
        let found: Vec<&IoSpec> = inputs
            .iter()
            .filter(|i| {
                related(&out.name, &i.name) && i.dtype == out.dtype && fits(&i.dims, &out.dims)
            })
            .collect();
        if let [input] = found.as_slice() {
            if !carry.values().any(|v| v == &input.name) {
                carry.insert(out.name.clone(), input.name.clone());
            }
        }
    }
    if carry.is_empty() {
        return Err(format!(
            "--sequence: no output of the model looks like the next value of an input (inputs: {}; outputs: {}); name the pairs with --carry OUT=IN",
            names_text(inputs),
            names_text(outputs)
        ));
    }
    Ok(carry)
}

/// Checks a user's carry map against the model: every output and input exists, no input
/// is fed twice, dtypes agree.
pub fn validate(
    carry: &BTreeMap<String, String>,
    inputs: &[IoSpec],
    outputs: &[IoSpec],
) -> Result<(), String> {
    let mut fed: Vec<&String> = Vec::new();
    for (o, i) in carry {
        let out = outputs.iter().find(|s| &s.name == o).ok_or_else(|| {
            format!(
                "--carry {o}={i}: the model has no output `{o}` (outputs: {})",
                names_text(outputs)
            )
        })?;
        let input = inputs.iter().find(|s| &s.name == i).ok_or_else(|| {
            format!(
                "--carry {o}={i}: the model has no input `{i}` (inputs: {})",
                names_text(inputs)
            )
        })?;
        if out.dtype != input.dtype {
            return Err(format!(
                "--carry {o}={i}: output `{o}` and input `{i}` have different dtypes"
            ));
        }
        if fed.contains(&i) {
            return Err(format!("--carry: input `{i}` is fed by two outputs"));
        }
        fed.push(i);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DType;

    fn spec(name: &str, dtype: DType, dims: &[usize]) -> IoSpec {
        IoSpec {
            name: name.into(),
            dtype: Some(dtype),
            dims: Some(dims.iter().map(|&n| Dim::Fixed(n)).collect()),
        }
    }

    #[test]
    fn infers_state_pairs_by_name_dtype_and_dims() {
        let inputs = [
            spec("input", DType::F32, &[1, 512]),
            spec("state", DType::F32, &[2, 1, 128]),
            spec("sr", DType::I64, &[]),
            spec("h0", DType::F32, &[1, 1, 16]),
            spec("past_key_values.0.key", DType::F32, &[1, 2, 3, 8]),
        ];
        let outputs = [
            spec("output", DType::F32, &[1, 1]),
            spec("stateN", DType::F32, &[2, 1, 128]),
            spec("hn", DType::F32, &[1, 1, 16]),
            spec("present.0.key", DType::F32, &[1, 2, 3, 8]),
        ];
        let carry = infer(&inputs, &outputs).unwrap();
        let pairs: Vec<(&str, &str)> = carry
            .iter()
            .map(|(o, i)| (o.as_str(), i.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("hn", "h0"),
                ("present.0.key", "past_key_values.0.key"),
                ("stateN", "state")
            ]
        );
    }

    #[test]
    fn a_name_match_with_another_shape_is_not_inferred() {
        let inputs = [spec("state", DType::F32, &[2, 1, 128])];
        let outputs = [spec("stateN", DType::F32, &[2, 1, 64])];
        let e = infer(&inputs, &outputs).unwrap_err();
        assert!(e.contains("name the pairs with --carry"), "{e}");
    }

    #[test]
    fn a_user_map_is_checked_against_the_model() {
        let inputs = [spec("state", DType::F32, &[2]), spec("sr", DType::I64, &[])];
        let outputs = [
            spec("stateN", DType::F32, &[2]),
            spec("out", DType::F32, &[1]),
        ];
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(o, i)| (o.to_string(), i.to_string()))
                .collect()
        };
        assert!(validate(&map(&[("stateN", "state")]), &inputs, &outputs).is_ok());
        let e = validate(&map(&[("stateX", "state")]), &inputs, &outputs).unwrap_err();
        assert!(e.contains("no output `stateX`"), "{e}");
        let e = validate(&map(&[("out", "sr")]), &inputs, &outputs).unwrap_err();
        assert!(e.contains("different dtypes"), "{e}");
        let e = validate(
            &map(&[("out", "state"), ("stateN", "state")]),
            &inputs,
            &outputs,
        )
        .unwrap_err();
        assert!(e.contains("fed by two outputs"), "{e}");
    }
}
