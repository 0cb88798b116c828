//! `tract-cpu`: the pure-Rust ONNX engine tract (`tract-onnx`), parity's second opinion
//! on CPU: it shares no code with ONNX Runtime, builds without any native library, and
//! reports unsupported ops clearly at load time.
//!
//! Loading parses the model once, refuses what tract cannot run (unimplemented ops, bf16
//! tensors) with the op or dtype named, then compiles an optimised plan. Inputs whose
//! declared dims are symbolic (`batch`) stay symbolic; unnamed dynamic dims get a fresh
//! symbol, so one plan serves every input shape and tract binds the symbols from the
//! actual inputs on each run. Only when tract cannot compile the symbolic model (some
//! shape logic needs numbers) is a plan compiled per distinct set of input shapes, at run
//! time, and cached.
//!
//! tract runs single-threaded here: its multi-threaded matmul executor sits behind the
//! `tract-linalg/multithread-mm` cargo feature, which parity does not enable, so
//! [`LoadOptions::threads`] is accepted and has no effect (see `docs/backends.md`).

use super::{
    check_inputs, Availability, Backend, BackendError, Dim, IoSpec, Knobs, LoadOptions, Session,
};
use crate::tensor::{DType, Element, Tensor};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use tract_onnx::pb;
use tract_onnx::prelude::{
    DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, IntoRunnable,
    SymbolValues, TDim, TValue, TVec, TypedRunnableModel, TypedSimpleState,
};
use tract_onnx::tract_hir::infer::GenericFactoid;

/// The tract release compiled in (pinned `=0.23.9` in Cargo.toml; the crate does not
/// export its version, so this constant must follow the pin).
pub const TRACT_VERSION: &str = "0.23.9";

/// The `tract-cpu` backend.
pub struct TractCpu;

impl Backend for TractCpu {
    fn name(&self) -> &str {
        "tract-cpu"
    }

    fn probe(&self) -> Availability {
        Availability::Available {
            version: format!("tract-onnx {TRACT_VERSION}"),
            device: "cpu".into(),
        }
    }

    fn load(&self, model: &Path, options: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
        let level = match options.optimization.as_deref() {
            None | Some("optimized") => Level::Optimized,
            Some("decluttered") => Level::Decluttered,
            Some(other) => {
                return Err(BackendError::new(format!(
                    "tract-cpu has no optimisation level `{other}` (known: {})",
                    LEVELS.join(", ")
                )))
            }
        };
        guarded("loading the model", || load(model, level))?
            .map(|s| Box::new(s) as Box<dyn Session>)
    }

    fn knobs(&self) -> Knobs {
        Knobs {
            threads: false,
            optimization_levels: &LEVELS,
            fresh_session: true,
        }
    }
}

/// tract's two plans of a model, weakest first: decluttered (the typed graph with
/// tract's semantics-preserving rewrites) and optimized (rewritten into its kernels;
/// what the backend runs by default).
const LEVELS: [&str; 2] = ["decluttered", "optimized"];

/// Which of tract's plans a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Decluttered,
    Optimized,
}

/// Runs tract code, turning a panic inside tract into an error: a model must never take
/// parity down. (The panic message still reaches stderr through the panic hook.)
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, BackendError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        BackendError::new(format!("tract panicked while {what}: {msg}"))
    })
}

fn load(path: &Path, level: Level) -> Result<TractSession, BackendError> {
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_path(path)
        .map_err(|e| BackendError::new(format!("{}: {}", path.display(), chain(&e))))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| BackendError::new(format!("{}: the model has no graph", path.display())))?;
    let inputs = graph_inputs(graph);
    let outputs: Vec<IoSpec> = graph.output.iter().map(io_spec).collect();
    for spec in inputs.iter().chain(&outputs) {
        if spec.dtype == Some(DType::BF16) {
            return Err(BackendError::new(format!(
                "tract has no bf16 type: {} is bf16",
                spec.name
            )));
        }
    }
    let dir = path.parent().and_then(|d| d.to_str());
    let parsed = onnx.parse(&proto, dir).map_err(|e| tract_error(&e))?;
    if !parsed.unresolved_inputs.is_empty() {
        return Err(BackendError::new(format!(
            "the graph uses values nothing defines: {}",
            parsed.unresolved_inputs.join(", ")
        )));
    }
    let model = parsed.model;
    let node_ops = node_ops(graph);
    if let Some(op) = model
        .nodes()
        .iter()
        .find_map(|n| unimplemented_op(&n.op.name()))
    {
        return Err(BackendError::unsupported_op(
            op.clone(),
            format!("tract-onnx {TRACT_VERSION} does not implement {op}"),
        ));
    }
    let concrete = (0..inputs.len()).all(|i| {
        model
            .input_fact(i)
            .ok()
            .and_then(|f| f.shape.as_concrete_finite().ok().flatten())
            .is_some()
    });
    let plan = match compile_symbolic(&model, level) {
        Ok(plan) => Plan::Shared(plan.spawn().map_err(|e| tract_error(&e))?),
        // With fixed input shapes there is nothing to specialise: the model cannot run.
        Err(e) if concrete => return Err(with_failing_op(e, &node_ops)),
        Err(_) => Plan::PerShape(HashMap::new()),
    };
    Ok(TractSession {
        inputs,
        outputs,
        model,
        node_ops,
        plan,
        level,
    })
}

/// Compiles the model as declared, with a fresh symbol for every unnamed dynamic dim.
fn compile_symbolic(
    model: &InferenceModel,
    level: Level,
) -> Result<Arc<TypedRunnableModel>, BackendError> {
    let mut model = model.clone();
    let n_inputs = model.input_outlets().map_err(|e| tract_error(&e))?.len();
    for i in 0..n_inputs {
        let fact = model.input_fact(i).map_err(|e| tract_error(&e))?.clone();
        if fact.shape.is_open() {
            return Err(BackendError::new(format!("input {i} has no declared rank")));
        }
        let dims: TVec<_> = fact
            .shape
            .dims()
            .enumerate()
            .map(|(axis, d)| match d {
                GenericFactoid::Only(d) => GenericFactoid::Only(d.clone()),
                GenericFactoid::Any => GenericFactoid::Only(
                    model
                        .symbols
                        .new_with_prefix(&format!("in{i}_d{axis}_"))
                        .into(),
                ),
            })
            .collect();
        let fact = InferenceFact {
            shape: tract_onnx::tract_hir::infer::ShapeFactoid::closed(dims),
            ..fact
        };
        model.set_input_fact(i, fact).map_err(|e| tract_error(&e))?;
    }
    compile(model, level)
}

/// Type-checks, declutters or optimises, and plans a model.
fn compile(model: InferenceModel, level: Level) -> Result<Arc<TypedRunnableModel>, BackendError> {
    match level {
        Level::Optimized => model.into_optimized(),
        Level::Decluttered => model.into_typed().and_then(|m| m.into_decluttered()),
    }
    .and_then(|m| m.into_runnable())
    .map_err(|e| tract_error(&e))
}

/// ONNX op type of each node by the name tract gives it (`name`, else first output, else
/// `<id>-<op_type>`, which [`with_failing_op`] reads directly).
fn node_ops(graph: &pb::GraphProto) -> HashMap<String, String> {
    graph
        .node
        .iter()
        .filter_map(|n| {
            let name = if n.name.is_empty() {
                n.output.first()?
            } else {
                &n.name
            };
            Some((name.clone(), n.op_type.clone()))
        })
        .collect()
}

/// tract names the node it could not translate (`Translating node #2 "name" Prelu …`)
/// with its own op names; this fills in the ONNX op type of that node.
fn with_failing_op(mut e: BackendError, node_ops: &HashMap<String, String>) -> BackendError {
    if e.op.is_some() {
        return e;
    }
    let node_name = e
        .message
        .split("node #")
        .nth(1)
        .and_then(|s| s.split_once(" \""))
        .and_then(|(_, rest)| rest.split('"').next());
    if let Some(name) = node_name {
        e.op = node_ops
            .get(name)
            .cloned()
            .or_else(|| name.split_once('-').map(|(_, op)| op.to_string()));
    }
    e
}

/// `Unimplemented(StringNormalizer)` (tract's name for ops it parsed but cannot run).
fn unimplemented_op(name: &str) -> Option<String> {
    name.strip_prefix("Unimplemented(")
        .and_then(|s| s.strip_suffix(')'))
        .map(str::to_string)
}

/// tract errors are context chains; keep them on one line, outermost first.
fn chain(e: &tract_onnx::prelude::TractError) -> String {
    format!("{e:#}")
}

/// A tract error as a backend error, naming the op when the chain does.
fn tract_error(e: &tract_onnx::prelude::TractError) -> BackendError {
    let message = chain(e);
    if let Some(op) = message
        .split("Unimplemented(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .filter(|s| !s.is_empty())
    {
        return BackendError::unsupported_op(op, message.clone());
    }
    if message.contains("Bfloat16") {
        return BackendError::new(format!("tract has no bf16 type: {message}"));
    }
    BackendError::new(message)
}

/// Graph inputs that are not initializers, as the model declares them.
fn graph_inputs(graph: &pb::GraphProto) -> Vec<IoSpec> {
    let init: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    graph
        .input
        .iter()
        .filter(|v| !init.contains(v.name.as_str()))
        .map(io_spec)
        .collect()
}

/// The declared type of an input or output: `None` dtype for string and non-tensor
/// values, `None` dims when the rank is not declared.
fn io_spec(v: &pb::ValueInfoProto) -> IoSpec {
    let tensor = v
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .map(|value| {
            let pb::type_proto::Value::TensorType(t) = value;
            t
        });
    IoSpec {
        name: v.name.clone(),
        dtype: tensor.and_then(|t| DType::from_onnx_code(t.elem_type)),
        dims: tensor.and_then(|t| t.shape.as_ref()).map(|s| {
            s.dim
                .iter()
                .map(|d| {
                    use pb::tensor_shape_proto::dimension::Value;
                    match &d.value {
                        Some(Value::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as usize),
                        Some(Value::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
                        _ => Dim::Unknown,
                    }
                })
                .collect()
        }),
    }
}

/// How a session runs: one plan for every shape, or one per set of input shapes.
enum Plan {
    /// Compiled at load; symbols (if any) are bound from each run's inputs. The state is
    /// kept between runs so its buffers are reused.
    Shared(TypedSimpleState),
    /// Compiled at run time for each distinct set of input shapes (at most
    /// [`MAX_CACHED_PLANS`] kept).
    PerShape(HashMap<Vec<Vec<usize>>, TypedSimpleState>),
}

/// Per-shape plans kept before the cache is emptied; suites use a handful of shapes.
const MAX_CACHED_PLANS: usize = 16;

/// A model loaded into tract.
struct TractSession {
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    /// The parsed model, kept to specialise it per input shapes when needed.
    model: InferenceModel,
    /// ONNX op type by tract node name, to name the op in compile errors.
    node_ops: HashMap<String, String>,
    plan: Plan,
    /// The plan level every compilation uses.
    level: Level,
}

impl TractSession {
    /// The state to run inputs of these shapes, compiling a specialised plan if needed.
    fn state(
        &mut self,
        inputs: &[tract_onnx::prelude::Tensor],
    ) -> Result<&mut TypedSimpleState, BackendError> {
        let cache = match &mut self.plan {
            Plan::Shared(state) => return Ok(state),
            Plan::PerShape(cache) => cache,
        };
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
        if !cache.contains_key(&shapes) {
            let mut model = self.model.clone();
            for (i, t) in inputs.iter().enumerate() {
                let fact = InferenceFact::dt_shape(t.datum_type(), t.shape());
                model.set_input_fact(i, fact).map_err(|e| tract_error(&e))?;
            }
            let state = compile(model, self.level)
                .map_err(|e| with_failing_op(e, &self.node_ops))?
                .spawn()
                .map_err(|e| tract_error(&e))?;
            if cache.len() >= MAX_CACHED_PLANS {
                cache.clear();
            }
            cache.insert(shapes.clone(), state);
        }
        cache
            .get_mut(&shapes)
            .ok_or_else(|| BackendError::new("internal: compiled plan missing from the cache"))
    }
}

/// The values of the plan's input symbols for these inputs (each input dim the model
/// declares as a bare symbol takes the actual size), to evaluate symbolic outputs.
fn bound_symbols(state: &TypedSimpleState, inputs: &[tract_onnx::prelude::Tensor]) -> SymbolValues {
    let model = state.plan().model();
    let mut values = SymbolValues::default();
    for (i, t) in inputs.iter().enumerate() {
        let Ok(fact) = model.input_fact(i) else {
            continue;
        };
        for (d, &n) in fact.shape.iter().zip(t.shape()) {
            if let (TDim::Sym(s), Ok(n)) = (d, i64::try_from(n)) {
                values.set(s, n);
            }
        }
    }
    values
}

/// Copies a parity tensor into a tract tensor of the same dtype (tract has no bf16).
fn to_tract(name: &str, t: &Tensor) -> Result<tract_onnx::prelude::Tensor, BackendError> {
    fn copy<T: Element + tract_onnx::prelude::Datum>(
        t: &Tensor,
    ) -> Option<tract_onnx::tract_hir::internal::TractResult<tract_onnx::prelude::Tensor>> {
        t.values::<T>()
            .map(|v| tract_onnx::prelude::Tensor::from_shape(t.shape(), &v))
    }
    let made = match t.dtype() {
        DType::F32 => copy::<f32>(t),
        DType::F64 => copy::<f64>(t),
        DType::F16 => copy::<half::f16>(t),
        DType::I8 => copy::<i8>(t),
        DType::I16 => copy::<i16>(t),
        DType::I32 => copy::<i32>(t),
        DType::I64 => copy::<i64>(t),
        DType::U8 => copy::<u8>(t),
        DType::U16 => copy::<u16>(t),
        DType::U32 => copy::<u32>(t),
        DType::U64 => copy::<u64>(t),
        DType::Bool => t
            .bools()
            .map(|b| tract_onnx::prelude::Tensor::from_shape(t.shape(), b)),
        DType::BF16 => {
            return Err(BackendError::new(format!(
                "input {name}: tract has no bf16 type"
            )))
        }
    };
    made.ok_or_else(|| BackendError::new(format!("input {name}: cannot read {} data", t.dtype())))?
        .map_err(|e| BackendError::new(format!("input {name}: {}", chain(&e))))
}

/// Copies a tract output into a parity tensor. Shape computations (`TDim`) become i64;
/// a symbolic plan may return them as expressions (`n`, `2*n`), evaluated with the
/// symbol values this run bound (`symbols`).
fn from_tract(
    name: &str,
    t: &tract_onnx::prelude::Tensor,
    symbols: &SymbolValues,
) -> Result<Tensor, BackendError> {
    fn copy<T: Element + tract_onnx::prelude::Datum>(
        name: &str,
        t: &tract_onnx::prelude::Tensor,
    ) -> Result<Tensor, BackendError> {
        let view = t
            .to_plain_array_view::<T>()
            .map_err(|e| BackendError::new(format!("output {name}: {}", chain(&e))))?;
        Tensor::from_vec(t.shape().to_vec(), view.iter().copied().collect())
            .map_err(|e| BackendError::new(format!("output {name}: {e}")))
    }
    match t.datum_type() {
        DatumType::F32 => copy::<f32>(name, t),
        DatumType::F64 => copy::<f64>(name, t),
        DatumType::F16 => copy::<half::f16>(name, t),
        DatumType::I8 => copy::<i8>(name, t),
        DatumType::I16 => copy::<i16>(name, t),
        DatumType::I32 => copy::<i32>(name, t),
        DatumType::I64 => copy::<i64>(name, t),
        DatumType::U8 => copy::<u8>(name, t),
        DatumType::U16 => copy::<u16>(name, t),
        DatumType::U32 => copy::<u32>(name, t),
        DatumType::U64 => copy::<u64>(name, t),
        DatumType::Bool => {
            let view = t
                .to_plain_array_view::<bool>()
                .map_err(|e| BackendError::new(format!("output {name}: {}", chain(&e))))?;
            Tensor::from_bools(
                t.shape().to_vec(),
                &view.iter().copied().collect::<Vec<_>>(),
            )
            .map_err(|e| BackendError::new(format!("output {name}: {e}")))
        }
        DatumType::TDim => {
            let err = |e: tract_onnx::prelude::TractError| {
                BackendError::new(format!("output {name}: {}", chain(&e)))
            };
            let view = t.to_plain_array_view::<TDim>().map_err(err)?;
            let ints = view
                .iter()
                .map(|d| d.eval_to_i64(symbols))
                .collect::<Result<Vec<i64>, _>>()
                .map_err(err)?;
            Tensor::from_vec(t.shape().to_vec(), ints)
                .map_err(|e| BackendError::new(format!("output {name}: {e}")))
        }
        DatumType::String => Err(BackendError::new(format!(
            "output {name} is a string tensor; parity compares numeric and bool tensors only"
        ))),
        other => Err(BackendError::new(format!(
            "output {name} has tract type {other:?}, which parity does not handle"
        ))),
    }
}

impl Session for TractSession {
    fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
        check_inputs(&self.inputs, inputs)?;
        let mut feeds = Vec::with_capacity(inputs.len());
        for (t, spec) in inputs.iter().zip(&self.inputs) {
            feeds.push(to_tract(&spec.name, t)?);
        }
        let (results, symbols) = guarded("running the model", || -> Result<_, BackendError> {
            let state = self.state(&feeds)?;
            // A failed run leaves its resolved symbols behind (`batch=1`), which would make
            // the next case with another batch fail with "Clashing resolution"; start clean.
            state.turn_state.resolved_symbols = SymbolValues::default();
            let symbols = bound_symbols(state, &feeds);
            let values: TVec<TValue> = feeds.into_iter().map(TValue::from).collect();
            Ok((state.run(values).map_err(|e| tract_error(&e))?, symbols))
        })??;
        if results.len() != self.outputs.len() {
            return Err(BackendError::new(format!(
                "tract returned {} outputs, the model declares {}",
                results.len(),
                self.outputs.len()
            )));
        }
        self.outputs
            .iter()
            .zip(results.iter())
            .map(|(spec, value)| Ok((spec.name.clone(), from_tract(&spec.name, value, &symbols)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::testdata::{self, assert_close, case_dir, data_set, sample, value_info};

    fn load(path: &Path) -> Result<Box<dyn Session>, BackendError> {
        TractCpu.load(path, &LoadOptions::default())
    }

    /// Runs test_data_set_0 of a backend-test case and compares every output.
    fn check_case(rel: &str) {
        let dir = case_dir(rel);
        let mut session = load(&dir.join("model.onnx")).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let (inputs, expected) = data_set(&dir, 0);
        let outputs = session
            .run(&inputs)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(outputs.len(), expected.len(), "{rel}: output count");
        for ((name, actual), (spec, want)) in
            outputs.iter().zip(session.outputs().iter().zip(&expected))
        {
            assert_eq!(name, &spec.name);
            assert_close(&format!("{rel}:{name}"), actual, want, 1e-3, 1e-5);
        }
    }

    #[test]
    fn probe_is_always_available() {
        assert_eq!(
            TractCpu.probe(),
            Availability::Available {
                version: "tract-onnx 0.23.9".into(),
                device: "cpu".into()
            }
        );
    }

    #[test]
    fn single_relu_model() {
        check_case("simple/test_single_relu_model");
    }

    #[test]
    fn conv2d_and_softmax() {
        check_case("pytorch-converted/test_Conv2d");
        check_case("pytorch-converted/test_Softmax");
    }

    #[test]
    fn f64_broadcast_add() {
        check_case("pytorch-operator/test_operator_add_broadcast");
    }

    #[test]
    fn i64_embedding_and_int_params() {
        check_case("pytorch-converted/test_Embedding");
        check_case("pytorch-operator/test_operator_non_float_params");
    }

    #[test]
    fn describe_inputs_and_outputs() {
        let dir = case_dir("pytorch-operator/test_operator_add_broadcast");
        let session = load(&dir.join("model.onnx")).unwrap();
        let spec = |n: &str, dims: &[usize]| IoSpec {
            name: n.into(),
            dtype: Some(DType::F64),
            dims: Some(dims.iter().map(|&x| Dim::Fixed(x)).collect()),
        };
        assert_eq!(session.inputs(), [spec("0", &[2, 3]), spec("1", &[3])]);
        assert_eq!(session.outputs(), [spec("2", &[2, 3])]);
    }

    #[test]
    fn symbolic_and_unknown_dims_bind_per_run() {
        let tmp = tempfile::tempdir().unwrap();
        let mut x = value_info("x", 1, &[Err("batch"), Ok(3)]);
        if let Some(crate::formats::onnx_pb::TypeProto {
            value: Some(crate::formats::onnx_pb::type_proto::Value::TensorType(t)),
            ..
        }) = x.r#type.as_mut()
        {
            t.shape.as_mut().unwrap().dim.push(Default::default());
        }
        let y = value_info("y", 1, &[Err("batch"), Ok(3), Err("w")]);
        let model = testdata::write_model(tmp.path(), "relu", "Relu", 14, vec![x], vec![y]);
        let mut session = load(&model).unwrap();
        assert_eq!(
            session.inputs()[0].dims,
            Some(vec![
                Dim::Symbolic("batch".into()),
                Dim::Fixed(3),
                Dim::Unknown
            ])
        );
        for (batch, w) in [(1, 2), (4, 5), (1, 2)] {
            let x = sample(DType::F32, vec![batch, 3, w]);
            let out = session.run(std::slice::from_ref(&x)).unwrap();
            assert_eq!(out[0].1.shape(), [batch, 3, w]);
            for i in 0..x.numel() {
                assert_eq!(out[0].1.get_f64(i), x.get_f64(i).max(0.0));
            }
        }
    }

    #[test]
    fn a_failed_run_does_not_poison_the_next() {
        let tmp = tempfile::tempdir().unwrap();
        let io = |name: &str| value_info(name, 1, &[Err("n")]);
        let model = testdata::write_model(
            tmp.path(),
            "add",
            "Add",
            14,
            vec![io("a"), io("b")],
            vec![io("c")],
        );
        let mut session = load(&model).unwrap();
        // `n` cannot be both 2 and 3: tract refuses this case...
        let bad = [sample(DType::F32, vec![2]), sample(DType::F32, vec![3])];
        assert!(session.run(&bad).is_err());
        // ...and the next case, with n = 4, must not see `n = 2` left over from it.
        let good = [sample(DType::F32, vec![4]), sample(DType::F32, vec![4])];
        let out = session.run(&good).unwrap();
        assert_eq!(out[0].1.shape(), [4]);
        assert_eq!(out[0].1.get_f64(1), good[0].get_f64(1) + good[1].get_f64(1));
    }

    #[test]
    fn input_of_unknown_rank_is_compiled_per_shape() {
        let tmp = tempfile::tempdir().unwrap();
        let mut x = value_info("x", 1, &[]);
        if let Some(crate::formats::onnx_pb::TypeProto {
            value: Some(crate::formats::onnx_pb::type_proto::Value::TensorType(t)),
            ..
        }) = x.r#type.as_mut()
        {
            t.shape = None;
        }
        let mut y = x.clone();
        y.name = Some("y".into());
        let model = testdata::write_model(tmp.path(), "relu", "Relu", 14, vec![x], vec![y]);
        let mut session = load(&model).unwrap();
        assert_eq!(session.inputs()[0].dims, None);
        for shape in [vec![2, 3], vec![4], vec![2, 3]] {
            let x = sample(DType::F32, shape.clone());
            let out = session.run(std::slice::from_ref(&x)).unwrap();
            assert_eq!(out[0].1.shape(), shape);
            for i in 0..x.numel() {
                assert_eq!(out[0].1.get_f64(i), x.get_f64(i).max(0.0));
            }
        }
    }

    #[test]
    fn every_dtype_but_bf16_round_trips_through_identity() {
        let tmp = tempfile::tempdir().unwrap();
        for dtype in DType::ALL {
            let code = dtype.onnx_code();
            let dims = [Ok(2), Ok(3)];
            let model = testdata::write_model(
                tmp.path(),
                dtype.name(),
                "Identity",
                16,
                vec![value_info("x", code, &dims)],
                vec![value_info("y", code, &dims)],
            );
            let loaded = load(&model);
            if dtype == DType::BF16 {
                let err = loaded.err().expect("bf16 must be refused");
                assert!(
                    err.message.contains("tract has no bf16 type"),
                    "{}",
                    err.message
                );
                continue;
            }
            let mut session = loaded.unwrap_or_else(|e| panic!("{dtype}: {e}"));
            let x = sample(dtype, vec![2, 3]);
            let out = session
                .run(std::slice::from_ref(&x))
                .unwrap_or_else(|e| panic!("{dtype}: {e}"));
            assert_eq!(out[0].0, "y");
            assert_eq!(out[0].1.dtype(), dtype);
            assert_eq!(out[0].1.shape(), [2, 3]);
            assert_eq!(out[0].1.bytes(), x.bytes(), "{dtype}");
        }
    }

    #[test]
    fn bool_logic_runs() {
        testdata::assert_bool_xor(&TractCpu);
    }

    #[test]
    fn shape_output_comes_back_as_i64() {
        let tmp = tempfile::tempdir().unwrap();
        let model = testdata::write_model(
            tmp.path(),
            "shape",
            "Shape",
            13,
            vec![value_info("x", 1, &[Err("n"), Ok(3)])],
            vec![value_info("s", 7, &[Ok(2)])],
        );
        let mut session = load(&model).unwrap();
        let out = session.run(&[sample(DType::F32, vec![5, 3])]).unwrap();
        assert_eq!(out[0].1.dtype(), DType::I64);
        assert_eq!(out[0].1.values::<i64>().unwrap().as_ref(), [5, 3]);
    }

    #[test]
    fn unimplemented_op_is_named_at_load() {
        let dir = case_dir("simple/test_strnorm_model_monday_empty_output");
        let err = load(&dir.join("model.onnx"))
            .err()
            .expect("tract lacks StringNormalizer");
        assert_eq!(err.op.as_deref(), Some("StringNormalizer"), "{err:?}");
        assert!(!err.message.contains('\n'));
    }

    #[test]
    fn wrong_input_dtype_and_count_are_errors() {
        let dir = case_dir("simple/test_single_relu_model");
        let mut session = load(&dir.join("model.onnx")).unwrap();
        let err = session.run(&[sample(DType::F64, vec![1, 2])]).unwrap_err();
        assert!(
            err.message
                .contains("has dtype f64, the model declares f32"),
            "{}",
            err.message
        );
        let err = session.run(&[]).unwrap_err();
        assert!(
            err.message.contains("1 inputs, 0 were given"),
            "{}",
            err.message
        );
        let err = session.run(&[sample(DType::F32, vec![3, 2])]).unwrap_err();
        assert!(!err.message.is_empty() && !err.message.contains('\n'));
    }

    #[test]
    fn missing_model_file_is_an_error() {
        let err = load(Path::new("/nonexistent/model.onnx")).err().unwrap();
        assert!(
            err.message.contains("/nonexistent/model.onnx"),
            "{}",
            err.message
        );
    }

    /// `cargo test --release --lib tract::tests::timings -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn timings() {
        const TIMED: &[&str] = &[
            "simple/test_single_relu_model",
            "pytorch-converted/test_Conv2d",
            "pytorch-converted/test_MaxPool2d_stride_padding_dilation",
            "pytorch-operator/test_operator_conv",
        ];
        testdata::timings(&TractCpu, None, TIMED, 50);
    }

    /// `cargo test --lib tract::tests::conformance -- --ignored --nocapture`
    #[test]
    #[ignore = "sweeps all 140 shipped cases; run by hand"]
    fn conformance() {
        testdata::sweep(&TractCpu);
    }

    #[test]
    fn op_is_found_in_error_chains() {
        assert_eq!(
            unimplemented_op("Unimplemented(Foo)").as_deref(),
            Some("Foo")
        );
        assert_eq!(unimplemented_op("Conv"), None);
    }

    #[test]
    fn untranslatable_node_names_its_onnx_op() {
        // x: f32[1,3,1], shape: i64[2] (a graph input, so of unknown value): tract cannot
        // type an Expand whose output rank depends on input values.
        let dir = case_dir("simple/test_expand_shape_model1");
        let err = load(&dir.join("model.onnx"))
            .err()
            .expect("variable-rank Expand");
        assert_eq!(err.op.as_deref(), Some("Expand"), "{err:?}");
        assert!(err.message.contains("variable rank"), "{}", err.message);
    }
}
