//! Running the exposed models chunk by chunk on both sides and comparing each exposed
//! value as soon as a chunk has run, so only one chunk's tensors are held at a time.
//!
//! A chunk that fails on either side (the engine refuses the rewritten model, or runs
//! out of memory and says so) is split in halves and retried, down to single values; a
//! value that fails alone is reported as not compared. A chunk whose tensors (both
//! sides together) exceed the memory budget shrinks the chunks that follow in proportion.

use super::expose::Exposable;
use crate::backend::{Backend, LoadOptions};
use crate::compare::{self, OutputComparison, Tolerance};
use crate::error::Result;
use crate::suite::runner::run_guarded;
use crate::tensor::Tensor;
use std::collections::{HashMap, VecDeque};

/// One side of the comparison: a backend and the model it runs.
pub struct Side<'a> {
    /// The engine.
    pub backend: &'a dyn Backend,
    /// The model it runs.
    pub model: &'a Exposable,
}

/// How many values to expose per run.
#[derive(Debug, Clone, Copy)]
pub struct ChunkPlan {
    /// At most this many values per run (`--chunk`); `None`: all at once.
    pub size: Option<usize>,
    /// Bytes of exposed tensors (both sides) a run may hold before later chunks shrink.
    pub budget_bytes: u64,
}

/// What became of one exposed value.
#[derive(Debug, Clone)]
pub enum Measured {
    /// Both sides produced it; the reference's tensor is the expected one.
    Compared(Box<OutputComparison>),
    /// It could not be obtained from one side even when exposed alone.
    Failed(String),
}

/// Every exposed value's outcome, and how many runs (per side) it took.
pub struct Measurements {
    /// Each exposed value by name.
    pub values: HashMap<String, Measured>,
    /// Runs per side, retries included.
    pub runs: usize,
}

/// Exposes `values` in chunks, runs both sides on `inputs` (named by model input) and
/// compares each value with the tolerance `tolerance` picks for the reference tensor.
pub fn measure(
    candidate: &Side,
    reference: &Side,
    inputs: &[(String, Tensor)],
    values: &[String],
    plan: ChunkPlan,
    tolerance: &dyn Fn(&Tensor) -> Tolerance,
    load: &LoadOptions,
) -> Result<Measurements> {
    let dir = tempfile::tempdir().map_err(|e| crate::Error::Write {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let mut size = plan.size.unwrap_or(values.len()).max(1);
    let mut pending: VecDeque<&String> = values.iter().collect();
    let mut retry: VecDeque<Vec<String>> = VecDeque::new();
    let mut out = Measurements {
        values: HashMap::new(),
        runs: 0,
    };
    loop {
        let chunk: Vec<String> = match retry.pop_front() {
            Some(c) => c,
            None if pending.is_empty() => break,
            None => {
                let n = size.min(pending.len());
                pending.drain(..n).cloned().collect()
            }
        };
        out.runs += 1;
        let stem = format!("chunk{}", out.runs);
        match run_chunk(
            candidate,
            reference,
            inputs,
            &chunk,
            dir.path(),
            &stem,
            load,
        )? {
            Ok(pairs) => {
                let bytes: u64 = pairs
                    .iter()
                    .map(|(_, c, r)| (c.bytes().len() + r.bytes().len()) as u64)
                    .sum();
                if bytes > plan.budget_bytes && chunk.len() > 1 {
                    let fit = chunk.len() as u64 * plan.budget_bytes / bytes;
                    size = size.min(usize::try_from(fit).unwrap_or(1).max(1));
                }
                for (name, actual, expected) in pairs {
                    let c = compare::compare(&expected, &actual, tolerance(&expected));
                    out.values.insert(name, Measured::Compared(Box::new(c)));
                }
            }
            Err(_) if chunk.len() > 1 => {
                let mut first = chunk;
                let second = first.split_off(first.len() / 2);
                retry.push_front(second);
                retry.push_front(first);
            }
            Err(reason) => {
                out.values
                    .insert(chunk[0].clone(), Measured::Failed(reason));
            }
        }
    }
    Ok(out)
}

/// Each value of a chunk: name, candidate tensor, reference tensor.
type Pairs = Vec<(String, Tensor, Tensor)>;

/// Runs one chunk on both sides. The outer error is parity's own (a file it cannot
/// write); the inner one is a side that could not run the chunk.
fn run_chunk(
    candidate: &Side,
    reference: &Side,
    inputs: &[(String, Tensor)],
    chunk: &[String],
    dir: &std::path::Path,
    stem: &str,
    load: &LoadOptions,
) -> Result<std::result::Result<Pairs, String>> {
    let cand_path = candidate
        .model
        .write_exposing(chunk, dir, &format!("{stem}-candidate"))?;
    let ref_path = if std::ptr::eq(candidate.model, reference.model) {
        cand_path.clone()
    } else {
        reference
            .model
            .write_exposing(chunk, dir, &format!("{stem}-reference"))?
    };
    let run = |side: &Side,
               path: &std::path::Path|
     -> std::result::Result<Vec<(String, Tensor)>, String> {
        let name = side.backend.name();
        let mut session = crate::panic_guard::catch(|| side.backend.load(path, load))
            .unwrap_or_else(|m| Err(crate::backend::BackendError::new(format!("panicked: {m}"))))
            .map_err(|e| format!("{name}: {e}"))?;
        let ordered = session
            .inputs()
            .iter()
            .map(|spec| {
                inputs
                    .iter()
                    .find(|(n, _)| *n == spec.name)
                    .map(|(_, t)| t.clone())
                    .ok_or_else(|| format!("{name}: no input named `{}`", spec.name))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        run_guarded(session.as_mut(), &ordered).map_err(|e| format!("{name}: {e}"))
    };
    let got = run(candidate, &cand_path).and_then(|c| Ok((c, run(reference, &ref_path)?)));
    let (cand, mut refs) = match got {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let mut pairs = Vec::with_capacity(chunk.len());
    for (name, actual) in cand {
        let Some(k) = refs.iter().position(|(n, _)| *n == name) else {
            return Ok(Err(format!(
                "{}: did not return `{name}`",
                reference.backend.name()
            )));
        };
        let (_, expected) = refs.swap_remove(k);
        pairs.push((name, actual, expected));
    }
    Ok(Ok(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Availability, BackendError, IoSpec, Session};
    use crate::formats::onnx_model::{graph_inputs, read_model};
    use crate::formats::onnx_pb::{
        type_proto, GraphProto, ModelProto, NodeProto, TypeProto, ValueInfoProto,
    };
    use crate::tensor::DType;
    use prost::Message;
    use std::path::Path;

    /// Refuses models with more than `max_outputs` outputs or an output named `bad`;
    /// otherwise answers 1024 ones per output.
    struct Fake {
        max_outputs: usize,
    }

    struct FakeSession {
        inputs: Vec<IoSpec>,
        outputs: Vec<IoSpec>,
    }

    impl Backend for Fake {
        fn name(&self) -> &str {
            "fake"
        }
        fn probe(&self) -> Availability {
            Availability::Available {
                version: "0".into(),
                device: "cpu".into(),
            }
        }
        fn load(&self, path: &Path, _: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
            let (model, _) = read_model(path).map_err(|e| BackendError::new(e.to_string()))?;
            let graph = model.graph.unwrap_or_default();
            if graph.output.len() > self.max_outputs {
                return Err(BackendError::new("too many outputs"));
            }
            if graph.output.iter().any(|o| o.name() == "bad") {
                return Err(BackendError::new("cannot expose `bad`"));
            }
            let spec = |v: &ValueInfoProto| IoSpec {
                name: v.name().to_string(),
                dtype: Some(DType::F32),
                dims: None,
            };
            Ok(Box::new(FakeSession {
                inputs: graph_inputs(&graph),
                outputs: graph.output.iter().map(spec).collect(),
            }))
        }
    }

    impl Session for FakeSession {
        fn inputs(&self) -> &[IoSpec] {
            &self.inputs
        }
        fn outputs(&self) -> &[IoSpec] {
            &self.outputs
        }
        fn run(&mut self, _: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
            self.outputs
                .iter()
                .map(|o| {
                    let t = Tensor::from_vec(vec![1024], vec![1.0f32; 1024])
                        .map_err(|e| BackendError::new(e.to_string()))?;
                    Ok((o.name.clone(), t))
                })
                .collect()
        }
    }

    /// x -> a -> b -> bad -> c -> d, all Relu.
    fn chain(dir: &Path) -> Exposable {
        let names = ["x", "a", "b", "bad", "c", "d"];
        let node = |w: &[&str]| NodeProto {
            op_type: Some("Relu".into()),
            input: vec![w[0].to_string()],
            output: vec![w[1].to_string()],
            ..Default::default()
        };
        let x = ValueInfoProto {
            name: Some("x".into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(DType::F32.onnx_code()),
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let model = ModelProto {
            graph: Some(GraphProto {
                node: names.windows(2).map(node).collect(),
                input: vec![x],
                ..Default::default()
            }),
            ..Default::default()
        };
        let path = dir.join("chain.onnx");
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        Exposable::open(&path).unwrap()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn run(values: &[&str], max_outputs: usize, plan: ChunkPlan) -> Measurements {
        let dir = tempfile::tempdir().unwrap();
        let model = chain(dir.path());
        let backend = Fake { max_outputs };
        let side = || Side {
            backend: &backend,
            model: &model,
        };
        let x = Tensor::from_vec(vec![1], vec![0.5f32]).unwrap();
        measure(
            &side(),
            &side(),
            &[("x".to_string(), x)],
            &names(values),
            plan,
            &|_| Tolerance::EXACT,
            &LoadOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn failed_chunks_are_halved_down_to_the_value_that_fails() {
        let plan = ChunkPlan {
            size: None,
            budget_bytes: u64::MAX,
        };
        let m = run(&["a", "b", "bad", "c", "d"], 2, plan);
        // [a b bad c d] fails, [a b] runs, [bad c d] fails, [bad] fails alone, [c d] runs.
        assert_eq!(m.runs, 5);
        for v in ["a", "b", "c", "d"] {
            assert!(
                matches!(&m.values[v], Measured::Compared(c) if c.verdict == crate::compare::Verdict::Pass),
                "{v}"
            );
        }
        let Measured::Failed(why) = &m.values["bad"] else {
            panic!("`bad` cannot be compared");
        };
        assert_eq!(why, "fake: cannot expose `bad`");
    }

    #[test]
    fn chunks_over_the_memory_budget_shrink_the_next_ones() {
        // Each value is 4 KiB per side; [a b] holds 16 KiB against a budget of 8 KiB,
        // so the rest go one at a time.
        let plan = ChunkPlan {
            size: Some(2),
            budget_bytes: 8 << 10,
        };
        let m = run(&["a", "b", "c", "d"], usize::MAX, plan);
        assert_eq!(m.runs, 3);
        assert_eq!(m.values.len(), 4);
        let roomy = ChunkPlan {
            size: Some(2),
            budget_bytes: 16 << 10,
        };
        assert_eq!(run(&["a", "b", "c", "d"], usize::MAX, roomy).runs, 2);
    }
}
