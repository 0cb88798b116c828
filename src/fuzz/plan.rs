//! Which cases `parity fuzz` runs: a fixed list of edge cases first (every input filled
//! with one edge value at the smallest shapes, then empty and largest-batch shapes),
//! then random combinations. Deterministic in (model inputs, case count, seed).

use super::generators::{self, Fill};
use crate::backend::{Dim, IoSpec};
use crate::suite::manifest::InputRange;
use crate::tensor::random::SplitMix64;
use crate::tensor::{checked_nbytes, DType, Tensor};
use std::collections::BTreeMap;

/// The order of the fixed edge cases: those most likely to break a runtime first, so a
/// small `--cases` still covers them.
const EDGE_ORDER: [Fill; 12] = [
    Fill::Zeros,
    Fill::Nan,
    Fill::PosInf,
    Fill::NegInf,
    Fill::Max,
    Fill::Lowest,
    Fill::NegOnes,
    Fill::Subnormal,
    Fill::Large,
    Fill::NegLarge,
    Fill::MinPositive,
    Fill::Ones,
];

/// One planned input: what to generate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlannedInput {
    /// The model input's name.
    pub name: String,
    /// Its dtype, by name (`f32`).
    #[serde(serialize_with = "dtype_name")]
    pub dtype: DType,
    /// The concrete shape.
    pub shape: Vec<usize>,
    /// How it is filled.
    pub fill: Fill,
    /// The suite's `[inputs.NAME]` range its values are kept in, when it declares one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<InputRange>,
}

fn dtype_name<S: serde::Serializer>(d: &DType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.name())
}

/// One fuzz case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FuzzCase {
    /// `fuzz_0007`: stable for a given seed and model.
    pub case: String,
    /// What the case tries (`nan`, `empty-dims`, `max-batch-N-4096`, or
    /// `random(x=max,ids=random)` with each input's fill).
    pub recipe: String,
    /// Its inputs, in model input order.
    pub inputs: Vec<PlannedInput>,
    #[serde(skip)]
    index: usize,
}

/// The free (symbolic or unnamed dynamic) dims of the model's inputs, in order of first
/// appearance: a symbolic dim by name, an unnamed one as `INPUT:AXIS`.
fn free_dims(specs: &[IoSpec]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for spec in specs {
        for (axis, d) in spec.dims.iter().flatten().enumerate() {
            let key = match d {
                Dim::Fixed(_) => continue,
                Dim::Symbolic(s) => s.clone(),
                Dim::Unknown => format!("{}:{axis}", spec.name),
            };
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// The concrete shape of every input under the free dims' sizes in `sizes`.
fn shapes(specs: &[IoSpec], sizes: &BTreeMap<String, usize>) -> Vec<Vec<usize>> {
    specs
        .iter()
        .map(|spec| {
            spec.dims
                .iter()
                .flatten()
                .enumerate()
                .map(|(axis, d)| match d {
                    Dim::Fixed(n) => *n,
                    Dim::Symbolic(s) => sizes.get(s).copied().unwrap_or(1),
                    Dim::Unknown => sizes
                        .get(&format!("{}:{axis}", spec.name))
                        .copied()
                        .unwrap_or(1),
                })
                .collect()
        })
        .collect()
}

/// Total input bytes of these shapes, `None` on overflow.
fn total_bytes(dtypes: &[DType], shapes: &[Vec<usize>]) -> Option<usize> {
    dtypes.iter().zip(shapes).try_fold(0usize, |acc, (d, s)| {
        acc.checked_add(checked_nbytes(*d, s)?)
    })
}

/// The largest size of the first free dim (others at 1) whose inputs fit `max_bytes`.
fn max_batch(specs: &[IoSpec], dtypes: &[DType], key: &str, max_bytes: usize) -> usize {
    let fits = |b: usize| {
        let sizes = BTreeMap::from([(key.to_string(), b)]);
        total_bytes(dtypes, &shapes(specs, &sizes)).is_some_and(|n| n <= max_bytes)
    };
    if !fits(1) {
        return 0;
    }
    let (mut lo, mut hi) = (1usize, 2usize);
    while fits(hi) {
        lo = hi;
        match hi.checked_mul(2) {
            Some(h) if h <= max_bytes.max(2) => hi = h,
            _ => return lo,
        }
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The values a fuzz case may put in each input: every edge value, or what the model's
/// contract allows.
#[derive(Debug, Clone, Default)]
pub struct Domain {
    /// `--finite-inputs`: no NaN or ±Inf in any input.
    pub finite_only: bool,
    /// The suite's `[inputs.NAME]` tables: values are kept inside `min`/`max`, and NaN or
    /// ±Inf are put in that input only when it allows them (`allow_nan`, `allow_inf`, and
    /// no finite bound on that side).
    pub ranges: BTreeMap<String, InputRange>,
}

impl Domain {
    /// Whether `fill` may be used for input `input`.
    fn allows(&self, input: &str, fill: Fill) -> bool {
        let range = self.ranges.get(input);
        let nan = range.is_none_or(|r| r.allow_nan == Some(true));
        let inf = |bound: fn(&InputRange) -> Option<f64>, at: f64| {
            range.is_none_or(|r| r.allow_inf == Some(true) && bound(r).is_none_or(|b| b == at))
        };
        let pos_inf = inf(|r| r.max, f64::INFINITY);
        let neg_inf = inf(|r| r.min, f64::NEG_INFINITY);
        match fill {
            _ if fill.is_finite() => true,
            _ if self.finite_only => false,
            Fill::Nan => nan,
            Fill::PosInf => pos_inf,
            Fill::NegInf => neg_inf,
            _ => nan && pos_inf && neg_inf,
        }
    }
}

/// Plans `count` cases for a model with these inputs; the error names the input that
/// cannot be generated (no dtype, no rank) or says that even the smallest shapes exceed
/// `max_bytes`. An input whose `domain` excludes a case's fill gets random values in that
/// case; a case whose fill no input may take is left out.
pub fn plan(
    specs: &[IoSpec],
    count: usize,
    seed: u64,
    max_bytes: usize,
    domain: &Domain,
) -> Result<Vec<FuzzCase>, String> {
    let mut dtypes = Vec::with_capacity(specs.len());
    for spec in specs {
        let dtype = spec.dtype.ok_or_else(|| {
            format!(
                "input `{}` is not a numeric or bool tensor; parity fuzz cannot generate it",
                spec.name
            )
        })?;
        if spec.dims.is_none() {
            return Err(format!(
                "input `{}` declares no shape (rank unknown); parity fuzz cannot generate it",
                spec.name
            ));
        }
        dtypes.push(dtype);
    }
    let free = free_dims(specs);
    let base = shapes(specs, &BTreeMap::new());
    match total_bytes(&dtypes, &base) {
        Some(n) if n <= max_bytes => {}
        _ => {
            return Err(format!(
                "the inputs at their smallest shapes take more than --max-bytes {max_bytes}"
            ))
        }
    }
    let input = |spec: &IoSpec, dtype: DType, shape: &Vec<usize>, fill: Fill| PlannedInput {
        name: spec.name.clone(),
        dtype,
        shape: shape.clone(),
        fill: if domain.allows(&spec.name, fill) {
            fill
        } else {
            Fill::Random
        },
        range: domain.ranges.get(&spec.name).copied(),
    };
    let same = |fill: Fill, shapes: &[Vec<usize>]| -> Vec<PlannedInput> {
        specs
            .iter()
            .zip(&dtypes)
            .zip(shapes)
            .map(|((spec, &dtype), shape)| input(spec, dtype, shape, fill))
            .collect()
    };
    let mut fixed: Vec<(String, Vec<PlannedInput>)> = Vec::new();
    for fill in EDGE_ORDER {
        let inputs = same(fill, &base);
        if !inputs.iter().any(|i| i.fill == fill) {
            continue;
        }
        fixed.push((fill.name().to_string(), inputs));
        // The shape cases come after the first edge values that break runtimes most.
        if fill == Fill::NegOnes {
            if let Some(first) = free.first() {
                let empty: BTreeMap<String, usize> = free.iter().map(|k| (k.clone(), 0)).collect();
                fixed.push((
                    "empty-dims".to_string(),
                    same(Fill::Random, &shapes(specs, &empty)),
                ));
                let b = max_batch(specs, &dtypes, first, max_bytes);
                if b > 1 {
                    let sizes = BTreeMap::from([(first.clone(), b)]);
                    fixed.push((
                        format!("max-batch-{first}-{b}"),
                        same(Fill::Random, &shapes(specs, &sizes)),
                    ));
                }
            }
        }
    }
    let mut cases = Vec::with_capacity(count);
    for index in 0..count {
        let (recipe, inputs) = match fixed.get(index) {
            Some((recipe, inputs)) => (recipe.clone(), inputs.clone()),
            None => {
                let mut rng = SplitMix64::stream(seed, index as u64, u64::MAX);
                let mut inputs = same(Fill::Random, &base);
                for input in &mut inputs {
                    let fills: Vec<Fill> = Fill::ALL
                        .into_iter()
                        .filter(|&f| domain.allows(&input.name, f))
                        .collect();
                    input.fill = fills[(rng.next_u64() % fills.len() as u64) as usize];
                }
                let fills: Vec<String> = inputs
                    .iter()
                    .map(|i| format!("{}={}", i.name, i.fill.name()))
                    .collect();
                (format!("random({})", fills.join(",")), inputs)
            }
        };
        cases.push(FuzzCase {
            case: format!("fuzz_{index:04}"),
            recipe,
            inputs,
            index,
        });
    }
    Ok(cases)
}

impl FuzzCase {
    /// The case's tensors: input `k` of case `n` draws from its own stream of `seed`.
    pub fn tensors(&self, seed: u64) -> Result<Vec<Tensor>, String> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(k, input)| {
                let mut rng = SplitMix64::stream(seed, self.index as u64, k as u64);
                let range = input.range.as_ref();
                generators::tensor(
                    input.dtype,
                    input.shape.clone(),
                    input.fill,
                    range,
                    &mut rng,
                )
                .map_err(|e| format!("input `{}`: {e}", input.name))
            })
            .collect()
    }

    /// Whether every input holds only finite values (a non-finite output then comes
    /// from the model, not from the input).
    pub fn finite_inputs(&self) -> bool {
        self.inputs
            .iter()
            .all(|i| !i.dtype.is_float() || i.fill.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, dtype: DType, dims: Vec<Dim>) -> IoSpec {
        IoSpec {
            name: name.to_string(),
            dtype: Some(dtype),
            dims: Some(dims),
        }
    }

    #[test]
    fn fixed_cases_cover_edges_empty_and_largest_batch() {
        let specs = [
            spec(
                "x",
                DType::F32,
                vec![Dim::Symbolic("N".into()), Dim::Fixed(4)],
            ),
            spec("ids", DType::I64, vec![Dim::Symbolic("N".into())]),
        ];
        let cases = plan(&specs, 20, 7, 1 << 20, &Domain::default()).unwrap();
        let recipes: Vec<&str> = cases.iter().map(|c| c.recipe.as_str()).collect();
        assert_eq!(&recipes[..3], &["zeros", "nan", "pos-inf"]);
        let empty = cases.iter().find(|c| c.recipe == "empty-dims").unwrap();
        assert_eq!(empty.inputs[0].shape, vec![0, 4]);
        assert_eq!(empty.inputs[1].shape, vec![0]);
        // 16 + 8 bytes per batch row: the largest batch in 1 MiB is 43690.
        let big = cases
            .iter()
            .find(|c| c.recipe.starts_with("max-batch"))
            .unwrap();
        assert_eq!(big.recipe, "max-batch-N-43690");
        assert_eq!(big.inputs[0].shape, vec![43690, 4]);
        assert_eq!(cases[0].inputs[0].shape, vec![1, 4]);
        assert!(
            cases[19].recipe.starts_with("random(x="),
            "{}",
            cases[19].recipe
        );
        assert!(!cases[1].finite_inputs());
        assert!(cases[0].finite_inputs());
    }

    const FINITE: Domain = Domain {
        finite_only: true,
        ranges: BTreeMap::new(),
    };

    #[test]
    fn declared_ranges_keep_values_inside_and_leave_out_what_they_exclude() {
        let specs = [
            spec(
                "bytes",
                DType::I32,
                vec![Dim::Symbolic("N".into()), Dim::Fixed(8)],
            ),
            spec("gain", DType::F32, vec![Dim::Fixed(2)]),
        ];
        let mut domain = Domain::default();
        let byte = InputRange {
            min: Some(0.0),
            max: Some(256.0),
            ..Default::default()
        };
        domain.ranges.insert("bytes".into(), byte);
        // gain may be NaN or +Inf, not -Inf (its min is finite).
        let gain = InputRange {
            min: Some(0.0),
            allow_nan: Some(true),
            allow_inf: Some(true),
            ..Default::default()
        };
        domain.ranges.insert("gain".into(), gain);
        let cases = plan(&specs, 40, 2, 1 << 16, &domain).unwrap();
        let recipes: Vec<&str> = cases.iter().map(|c| c.recipe.as_str()).collect();
        assert!(recipes.contains(&"nan") && recipes.contains(&"pos-inf"));
        assert!(!recipes.contains(&"neg-inf"), "{recipes:?}");
        let nan = cases.iter().find(|c| c.recipe == "nan").unwrap();
        // Integers have no NaN: `bytes` is random there, inside its range.
        assert_eq!(nan.inputs[0].range, Some(byte));
        for case in &cases {
            let t = case.tensors(2).unwrap();
            for i in 0..t[0].numel() {
                assert!((0.0..=256.0).contains(&t[0].get_f64(i)), "{}", case.recipe);
            }
            for i in 0..t[1].numel() {
                let v = t[1].get_f64(i);
                assert!(v.is_nan() || v >= 0.0, "{}: {v}", case.recipe);
            }
        }
        let max = cases.iter().find(|c| c.recipe == "max").unwrap();
        assert_eq!(max.tensors(2).unwrap()[0].get_f64(0), 256.0);
        // A range without allow_nan makes the model's own contract finite.
        domain.ranges.get_mut("gain").unwrap().allow_nan = None;
        domain.ranges.get_mut("gain").unwrap().allow_inf = None;
        let cases = plan(&specs, 40, 2, 1 << 16, &domain).unwrap();
        assert!(cases.iter().all(FuzzCase::finite_inputs));
    }

    #[test]
    fn finite_only_leaves_nan_and_inf_out_of_every_case() {
        let specs = [spec(
            "x",
            DType::F32,
            vec![Dim::Symbolic("N".into()), Dim::Fixed(4)],
        )];
        let cases = plan(&specs, 60, 3, 1 << 20, &FINITE).unwrap();
        assert!(cases.iter().all(FuzzCase::finite_inputs));
        let recipes: Vec<&str> = cases.iter().map(|c| c.recipe.as_str()).collect();
        assert_eq!(&recipes[..3], &["zeros", "max", "lowest"]);
        // The shape cases still follow `neg-ones`.
        let at = |r: &str| recipes.iter().position(|x| x.starts_with(r)).unwrap();
        assert_eq!(at("empty-dims"), at("neg-ones") + 1);
        assert!(recipes[at("random(")..]
            .iter()
            .all(|r| r.starts_with("random(")));
        // Without it, the same plan has NaN and Inf cases.
        let all = plan(&specs, 60, 3, 1 << 20, &Domain::default()).unwrap();
        assert!(!all.iter().all(FuzzCase::finite_inputs));
    }

    #[test]
    fn plans_and_tensors_are_deterministic() {
        let specs = [spec("x", DType::F16, vec![Dim::Unknown, Dim::Fixed(3)])];
        let a = plan(&specs, 30, 5, 4096, &Domain::default()).unwrap();
        let b = plan(&specs, 30, 5, 4096, &Domain::default()).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.recipe, y.recipe);
            let (tx, ty) = (x.tensors(5).unwrap(), y.tensors(5).unwrap());
            assert_eq!(tx[0].bytes(), ty[0].bytes());
        }
        let c = plan(&specs, 30, 6, 4096, &Domain::default()).unwrap();
        let differs = a
            .iter()
            .zip(&c)
            .any(|(x, y)| x.tensors(5).unwrap()[0].bytes() != y.tensors(6).unwrap()[0].bytes());
        assert!(differs);
    }

    #[test]
    fn inputs_that_cannot_be_generated_are_named() {
        let bad = IoSpec {
            name: "seq".into(),
            dtype: None,
            dims: None,
        };
        assert!(plan(&[bad], 1, 0, 1024, &Domain::default())
            .unwrap_err()
            .contains("`seq`"));
        let huge = spec("x", DType::F64, vec![Dim::Fixed(1 << 20)]);
        assert!(plan(&[huge], 1, 0, 1024, &Domain::default())
            .unwrap_err()
            .contains("--max-bytes"));
    }
}
