//! `check --model CANDIDATE.onnx`: a suite's inputs run through another model file (a
//! re-export, a quantized or pruned version) and compared with the goldens recorded
//! from the shipped model. The candidate must take the same inputs; it must give every
//! output the suite compares; what it gives beyond them is named, not compared.

use crate::schema::{dims_text, names_text, Dim, IoSpec};

/// Whether `candidate`'s IO can stand in for `shipped`'s: an error naming the first
/// input or output that differs, else the warnings (outputs the candidate adds).
pub fn check_schema(
    shipped: &[IoSpec],
    shipped_outputs: &[IoSpec],
    candidate: &[IoSpec],
    candidate_outputs: &[IoSpec],
) -> Result<Vec<String>, String> {
    for want in shipped {
        let Some(got) = candidate.iter().find(|c| c.name == want.name) else {
            return Err(format!(
                "the candidate has no input `{}` (its inputs: {})",
                want.name,
                names_text(candidate)
            ));
        };
        if let (Some(a), Some(b)) = (want.dtype, got.dtype) {
            if a != b {
                return Err(format!(
                    "input `{}` is {b} in the candidate, {a} in the suite's model",
                    want.name
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
                    "input `{}` is {} in the candidate, {} in the suite's model",
                    want.name,
                    dims_text(b),
                    dims_text(a)
                ));
            }
        }
    }
    if let Some(extra) = candidate
        .iter()
        .find(|c| !shipped.iter().any(|s| s.name == c.name))
    {
        return Err(format!(
            "the candidate takes an input `{}` that the suite's model does not (the suite has no data for it)",
            extra.name
        ));
    }
    if let Some(missing) = shipped_outputs
        .iter()
        .find(|s| !candidate_outputs.iter().any(|c| c.name == s.name))
    {
        return Err(format!(
            "the candidate has no output `{}` (its outputs: {})",
            missing.name,
            names_text(candidate_outputs)
        ));
    }
    Ok(candidate_outputs
        .iter()
        .filter(|c| !shipped_outputs.iter().any(|s| s.name == c.name))
        .map(|c| {
            format!(
                "the candidate's output `{}` is not an output of the suite's model: not compared",
                c.name
            )
        })
        .collect())
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
        check_schema(&a, &b, &c, &d)
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
}
