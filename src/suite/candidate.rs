//! `check --model CANDIDATE.onnx`: a suite's inputs run through another model file (a
//! re-export, a quantized or pruned version) and compared with the goldens recorded
//! from the shipped model. The candidate must take the same inputs; it must give every
//! output the suite compares; what it gives beyond them is named, not compared. An
//! exporter that renamed inputs or outputs is matched through `[candidate.inputs]` and
//! `[candidate.outputs]` of `parity.toml` (suite name = "candidate name"); inputs are
//! fed by name, whatever order the candidate declares them in.

use super::NamedTensors;
use crate::schema::{dims_text, names_text, Dim, IoSpec};
use crate::tensor::Tensor;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// `[candidate]` in `parity.toml`: the candidate's names for the suite model's inputs
/// and outputs, keyed by the suite's names; a name not listed is the same in both.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NameMap {
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
}

/// The candidate's IO matched to the suite model's: which suite input feeds each of its
/// inputs, and what each of its outputs is called in the suite.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateIo {
    /// For each candidate input, in its declared order, the index of the suite input
    /// that feeds it.
    pub input_order: Vec<usize>,
    /// Candidate output name → suite output name, for the outputs the suite has.
    pub output_names: Vec<(String, String)>,
}

impl CandidateIo {
    /// The suite's inputs (in the suite model's order) in the candidate's order; as
    /// they are, without a copy, when the candidate declares them in the same order.
    pub fn feed<'a>(&self, inputs: Cow<'a, [Tensor]>) -> Cow<'a, [Tensor]> {
        let same = self.input_order.len() == inputs.len()
            && self.input_order.iter().enumerate().all(|(k, &i)| k == i);
        if same {
            return inputs;
        }
        Cow::Owned(
            self.input_order
                .iter()
                .filter_map(|&i| inputs.get(i).cloned())
                .collect(),
        )
    }

    /// The candidate's outputs under the suite's names (outputs the suite does not
    /// have keep their own).
    pub fn rename(&self, outputs: NamedTensors) -> NamedTensors {
        outputs
            .into_iter()
            .map(|(name, t)| {
                let suite = self
                    .output_names
                    .iter()
                    .find(|(c, _)| *c == name)
                    .map_or(name, |(_, s)| s.clone());
                (suite, t)
            })
            .collect()
    }
}

/// Whether `candidate`'s IO can stand in for `shipped`'s under `map`: an error naming
/// the first input or output that differs, else how to feed it and the warnings
/// (outputs the candidate adds).
pub fn check_schema(
    shipped: &[IoSpec],
    shipped_outputs: &[IoSpec],
    candidate: &[IoSpec],
    candidate_outputs: &[IoSpec],
    map: &NameMap,
) -> Result<(CandidateIo, Vec<String>), String> {
    for (table, keys, specs) in [
        ("inputs", &map.inputs, shipped),
        ("outputs", &map.outputs, shipped_outputs),
    ] {
        if let Some(k) = keys.keys().find(|k| !specs.iter().any(|s| &s.name == *k)) {
            return Err(format!(
                "parity.toml [candidate.{table}] names `{k}`, which the suite's model does not have (its {table}: {})",
                names_text(specs)
            ));
        }
    }
    fn mapped<'a>(names: &'a BTreeMap<String, String>, suite: &'a str) -> &'a str {
        names.get(suite).map_or(suite, String::as_str)
    }
    let input_name = |suite| mapped(&map.inputs, suite);
    let output_name = |suite| mapped(&map.outputs, suite);
    for want in shipped {
        let name = input_name(&want.name);
        let Some(got) = candidate.iter().find(|c| c.name == name) else {
            return Err(format!(
                "the candidate has no input `{name}` (its inputs: {})",
                names_text(candidate)
            ));
        };
        if let (Some(a), Some(b)) = (want.dtype, got.dtype) {
            if a != b {
                return Err(format!(
                    "input `{name}` is {b} in the candidate, {a} in the suite's model"
                ));
            }
        }
        if let (Some(a), Some(b)) = (&want.dims, &got.dims) {
            let fits = a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| match (x, y) {
                    (Dim::Fixed(m), Dim::Fixed(n)) => m == n,
                    _ => true,
                });
            if !fits {
                return Err(format!(
                    "input `{name}` is {} in the candidate, {} in the suite's model",
                    dims_text(b),
                    dims_text(a)
                ));
            }
        }
    }
    let mut input_order = Vec::new();
    for c in candidate {
        match shipped.iter().position(|s| input_name(&s.name) == c.name) {
            Some(i) => input_order.push(i),
            None => {
                return Err(format!(
                    "the candidate takes an input `{}` that the suite's model does not (the suite has no data for it)",
                    c.name
                ))
            }
        }
    }
    let mut output_names = Vec::new();
    for s in shipped_outputs {
        let name = output_name(&s.name);
        if !candidate_outputs.iter().any(|c| c.name == name) {
            return Err(format!(
                "the candidate has no output `{name}` (its outputs: {})",
                names_text(candidate_outputs)
            ));
        }
        output_names.push((name.to_string(), s.name.clone()));
    }
    let warnings = candidate_outputs
        .iter()
        .filter(|c| !output_names.iter().any(|(n, _)| *n == c.name))
        .map(|c| {
            format!(
                "the candidate's output `{}` is not an output of the suite's model: not compared",
                c.name
            )
        })
        .collect();
    Ok((
        CandidateIo {
            input_order,
            output_names,
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DType;

    fn spec(name: &str, dtype: DType, d: Vec<Dim>) -> IoSpec {
        IoSpec {
            name: name.into(),
            dtype: Some(dtype),
            dims: Some(d),
        }
    }

    /// `check_schema` of owned lists (shipped in, shipped out, candidate in, out).
    fn check(
        a: Vec<IoSpec>,
        b: Vec<IoSpec>,
        c: Vec<IoSpec>,
        d: Vec<IoSpec>,
    ) -> Result<Vec<String>, String> {
        check_schema(&a, &b, &c, &d, &NameMap::default()).map(|(_, w)| w)
    }

    #[test]
    fn the_candidate_must_take_the_same_inputs_and_give_every_output() {
        let batch = || Dim::Symbolic("batch".into());
        let x = spec("x", DType::F32, vec![batch(), Dim::Fixed(64)]);
        let y = spec("y", DType::F32, vec![batch(), Dim::Fixed(10)]);
        let ok = check(
            vec![x.clone()],
            vec![y.clone()],
            vec![x.clone()],
            vec![y.clone()],
        );
        assert_eq!(ok, Ok(vec![]));
        // A quantized export may name its batch differently: still the same input.
        let x_n = spec(
            "x",
            DType::F32,
            vec![Dim::Symbolic("N".into()), Dim::Fixed(64)],
        );
        let extra = spec("z", DType::F32, vec![]);
        let warn = check(
            vec![x.clone()],
            vec![y.clone()],
            vec![x_n],
            vec![y.clone(), extra],
        )
        .unwrap();
        assert_eq!(warn.len(), 1);
        assert!(warn[0].contains("`z` is not an output"), "{warn:?}");
        let half = spec("x", DType::F16, vec![batch(), Dim::Fixed(64)]);
        let e = check(
            vec![x.clone()],
            vec![y.clone()],
            vec![half],
            vec![y.clone()],
        )
        .unwrap_err();
        assert_eq!(
            e,
            "input `x` is f16 in the candidate, f32 in the suite's model"
        );
        let wide = spec("x", DType::F32, vec![batch(), Dim::Fixed(128)]);
        let e = check(
            vec![x.clone()],
            vec![y.clone()],
            vec![wide],
            vec![y.clone()],
        )
        .unwrap_err();
        assert!(
            e.contains("[batch, 128] in the candidate, [batch, 64]"),
            "{e}"
        );
        let e = check(vec![x.clone()], vec![y.clone()], vec![x.clone()], vec![]).unwrap_err();
        assert!(e.contains("no output `y`"), "{e}");
        let renamed = spec("input", DType::F32, vec![batch(), Dim::Fixed(64)]);
        let e = check(vec![x], vec![y.clone()], vec![renamed], vec![y]).unwrap_err();
        assert!(e.contains("no input `x` (its inputs: input)"), "{e}");
    }

    #[test]
    fn renamed_and_reordered_io_is_matched_through_the_map() {
        let f = |name: &str| spec(name, DType::F32, vec![Dim::Fixed(2)]);
        let map = NameMap {
            inputs: [("a".to_string(), "in_a".to_string())].into(),
            outputs: [("y".to_string(), "out".to_string())].into(),
        };
        // The candidate declares its inputs the other way round.
        let (io, warnings) = check_schema(
            &[f("a"), f("b")],
            &[f("y")],
            &[f("b"), f("in_a")],
            &[f("out"), f("extra")],
            &map,
        )
        .unwrap();
        assert_eq!(io.input_order, vec![1, 0]);
        let t = |v: f32| Tensor::from_vec(vec![1], vec![v]).unwrap();
        let fed = io.feed(Cow::Owned(vec![t(1.0), t(2.0)]));
        assert_eq!((fed[0].get_f64(0), fed[1].get_f64(0)), (2.0, 1.0));
        let named = io.rename(vec![("out".into(), t(3.0)), ("extra".into(), t(4.0))]);
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["y", "extra"]);
        assert_eq!(warnings.len(), 1);
        // A map naming what the suite's model does not have is refused.
        let bad = NameMap {
            inputs: [("c".to_string(), "in_c".to_string())].into(),
            ..NameMap::default()
        };
        let e = check_schema(&[f("a")], &[f("y")], &[f("a")], &[f("y")], &bad).unwrap_err();
        assert!(e.contains("[candidate.inputs] names `c`"), "{e}");
    }
}
