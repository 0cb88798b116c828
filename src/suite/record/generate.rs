//! Inputs generated from the model's input schema: each (data set, input) pair draws
//! from its own [`SplitMix64`] stream, floats standard normal, integers in
//! `[0, INT_HIGH)`, bools 50/50, so a seed gives the same bytes everywhere.

use super::dims::{resolve_shapes, DimValue};
use super::inputs::InputSet;
use crate::formats::onnx_model::ModelInfo;
use crate::tensor::random::SplitMix64;
use crate::tensor::{checked_numel, DType, Tensor, TensorError};

/// Generated integers are drawn from `[0, INT_HIGH)`: integer inputs are most often
/// indices (token ids, gather positions), and small non-negative values are valid
/// indices into most tables. Wider ranges need `--inputs`.
pub const INT_HIGH: u64 = 10;

/// Generates `count` data sets from the model's declared inputs: floats standard normal,
/// integers uniform in `[0, INT_HIGH)`, bools 50/50. Symbolic dims take their size from
/// `dims` (`batch=2`); unnamed dynamic axes from `INPUT:AXIS=N`. Errors are one line
/// naming the input and the dim (the caller adds the model path).
pub fn generate(
    info: &ModelInfo,
    count: usize,
    seed: u64,
    dims: &[DimValue],
) -> std::result::Result<Vec<InputSet>, String> {
    let shapes = resolve_shapes(&info.inputs, dims)?;
    let mut sets = Vec::with_capacity(count);
    for n in 0..count {
        let mut tensors = Vec::with_capacity(shapes.len());
        for (k, (spec, (dtype, shape))) in info.inputs.iter().zip(&shapes).enumerate() {
            let mut rng = SplitMix64::stream(seed, n as u64, k as u64);
            let tensor = random_tensor(*dtype, shape.clone(), &mut rng)
                .map_err(|e| format!("input `{}`: {e}", spec.name))?;
            tensors.push(tensor);
        }
        sets.push(InputSet {
            origin: format!("random data set {n}"),
            verbatim: vec![None; tensors.len()],
            tensors,
        });
    }
    Ok(sets)
}

/// One generated tensor of `dtype` and `shape`.
fn random_tensor(
    dtype: DType,
    shape: Vec<usize>,
    rng: &mut SplitMix64,
) -> std::result::Result<Tensor, TensorError> {
    let n = checked_numel(&shape).ok_or_else(|| TensorError::Overflow(shape.clone()))?;
    if dtype.is_float() {
        if let Some(t) = Tensor::from_f64_values(dtype, shape.clone(), rng.normals(n)) {
            return t;
        }
    }
    macro_rules! ints {
        ($t:ty) => {
            Tensor::from_vec::<$t>(
                shape,
                (0..n).map(|_| (rng.next_u64() % INT_HIGH) as $t).collect(),
            )
        };
    }
    match dtype {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => {
            unreachable!("float tensors are built above")
        }
        DType::I8 => ints!(i8),
        DType::I16 => ints!(i16),
        DType::I32 => ints!(i32),
        DType::I64 => ints!(i64),
        DType::U8 => ints!(u8),
        DType::U16 => ints!(u16),
        DType::U32 => ints!(u32),
        DType::U64 => ints!(u64),
        DType::Bool => {
            let values: Vec<bool> = (0..n).map(|_| rng.next_u64() >> 63 == 1).collect();
            Tensor::from_bools(shape, &values)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Dim, IoSpec};
    use std::collections::BTreeMap;

    fn spec(name: &str, dtype: Option<DType>, dims: Option<Vec<Dim>>) -> IoSpec {
        IoSpec {
            name: name.to_string(),
            dtype,
            dims,
        }
    }

    fn info(inputs: Vec<IoSpec>) -> ModelInfo {
        ModelInfo {
            inputs,
            outputs: vec![spec("y", Some(DType::F32), Some(vec![Dim::Fixed(1)]))],
            opsets: Vec::new(),
            ops: BTreeMap::new(),
            size: 0,
            sha256: String::new(),
            producer: String::new(),
        }
    }

    fn dims(list: &[&str]) -> Vec<DimValue> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn sym(s: &str) -> Dim {
        Dim::Symbolic(s.to_string())
    }

    #[test]
    fn generated_inputs_follow_dtype_and_shape() {
        let m = info(vec![
            spec(
                "x",
                Some(DType::F32),
                Some(vec![sym("batch"), Dim::Fixed(3)]),
            ),
            spec(
                "ids",
                Some(DType::I64),
                Some(vec![sym("batch"), sym("seq")]),
            ),
            spec("mask", Some(DType::Bool), Some(vec![Dim::Unknown])),
            spec("h", Some(DType::F16), Some(vec![])),
        ]);
        let sets = generate(&m, 2, 1, &dims(&["batch=2", "seq=50", "mask:0=64"])).unwrap();
        assert_eq!(sets.len(), 2);
        let t = &sets[0].tensors;
        assert_eq!(t[0].shape(), [2, 3]);
        assert_eq!(t[0].dtype(), DType::F32);
        assert_eq!(t[1].shape(), [2, 50]);
        let ids = t[1].values::<i64>().unwrap();
        assert!(ids.iter().all(|&i| (0..INT_HIGH as i64).contains(&i)));
        assert!(ids.contains(&0) && ids.contains(&9));
        let mask = t[2].bools().unwrap();
        assert_eq!(mask.len(), 64);
        assert!(mask.iter().any(|&b| b) && mask.iter().any(|&b| !b));
        assert_eq!(t[3].shape(), [] as [usize; 0]);
        assert_eq!(t[3].dtype(), DType::F16);
        // Data sets differ from each other, and each is reproducible.
        assert_ne!(sets[0].tensors[0].bytes(), sets[1].tensors[0].bytes());
        let again = generate(&m, 2, 1, &dims(&["batch=2", "seq=50", "mask:0=64"])).unwrap();
        for (a, b) in sets.iter().zip(&again) {
            for (x, y) in a.tensors.iter().zip(&b.tensors) {
                assert_eq!(x.bytes(), y.bytes());
            }
        }
        let other = generate(&m, 1, 2, &dims(&["batch=2", "seq=50", "mask:0=64"])).unwrap();
        assert_ne!(other[0].tensors[0].bytes(), sets[0].tensors[0].bytes());
    }

    #[test]
    fn an_input_keeps_its_values_when_another_input_changes_shape() {
        let m = info(vec![
            spec("a", Some(DType::F32), Some(vec![sym("n")])),
            spec("b", Some(DType::F32), Some(vec![Dim::Fixed(4)])),
        ]);
        let small = generate(&m, 1, 3, &dims(&["n=2"])).unwrap();
        let large = generate(&m, 1, 3, &dims(&["n=200"])).unwrap();
        assert_eq!(small[0].tensors[1].bytes(), large[0].tensors[1].bytes());
    }

    #[test]
    fn every_dynamic_axis_can_be_sized_by_position() {
        // Two spatial axes whose dim_param is `?` in both: `--dim ?=N` would set both;
        // INPUT:AXIS sets each one, and takes precedence over the name.
        let m = info(vec![spec(
            "img",
            Some(DType::F32),
            Some(vec![sym("batch"), Dim::Fixed(3), sym("?"), sym("?")]),
        )]);
        let sets = generate(&m, 1, 0, &dims(&["batch=2", "img:2=5", "img:3=7"])).unwrap();
        assert_eq!(sets[0].tensors[0].shape(), &[2, 3, 5, 7]);
        let sets = generate(&m, 1, 0, &dims(&["img:0=1", "?=4", "img:3=6"])).unwrap();
        assert_eq!(sets[0].tensors[0].shape(), &[1, 3, 4, 6]);
        let e = generate(&m, 1, 0, &dims(&["batch=2", "img:2=5"])).unwrap_err();
        assert!(
            e.contains("axis 3") && e.contains("--dim ?=N") && e.contains("--dim img:3=N"),
            "{e}"
        );
        let e = generate(&m, 1, 0, &dims(&["batch=2", "?=4", "img:1=5"])).unwrap_err();
        assert!(e.contains("axis 1 of input `img` is fixed at 3"), "{e}");
    }

    #[test]
    fn dims_that_cannot_be_resolved_are_named() {
        let m = info(vec![spec(
            "x",
            Some(DType::F32),
            Some(vec![sym("batch"), Dim::Unknown]),
        )]);
        let err = |d: &[&str]| generate(&m, 1, 0, &dims(d)).unwrap_err();
        let e = err(&["x:1=3"]);
        assert!(
            e.contains("input `x`") && e.contains("`batch`") && e.contains("--dim batch=N"),
            "{e}"
        );
        let e = err(&["batch=2"]);
        assert!(e.contains("axis 1") && e.contains("--dim x:1=N"), "{e}");
        let e = err(&["batch=2", "x:1=3", "seq=8"]);
        assert!(
            e.contains("--dim seq") && e.contains("symbolic dims: batch"),
            "{e}"
        );
        let e = err(&["x:0=3"]);
        assert!(e.contains("axis 1") && e.contains("--dim x:1=N"), "{e}");
        let e = err(&["batch=2", "batch=3", "x:1=3"]);
        assert!(e.contains("twice"), "{e}");
        let e = err(&["batch=2", "x:7=3"]);
        assert!(e.contains("no axis 7"), "{e}");
        let big = err(&["batch=100000", "x:1=100000"]);
        assert!(big.contains("2 GiB"), "{big}");
        let no_rank = info(vec![spec("x", Some(DType::F32), None)]);
        let e = generate(&no_rank, 1, 0, &[]).unwrap_err();
        assert!(
            e.contains("input `x` declares no shape") && e.contains("--inputs"),
            "{e}"
        );
        let no_dtype = info(vec![spec("s", None, Some(vec![]))]);
        let e = generate(&no_dtype, 1, 0, &[]).unwrap_err();
        assert!(e.contains("input `s` is not a numeric"), "{e}");
    }
}
