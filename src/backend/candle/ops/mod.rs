//! The op registry: every ONNX op this backend runs, grouped by family, each built once at
//! load time from its node (attributes parsed, validated and whitelisted for the model's
//! opset) into an [`Op`] that the executor runs on candle tensors; and, apart, the few
//! ONNX Runtime `com.microsoft` contrib ops it runs (the QOperator quantized ops).

mod attention;
mod binary;
mod bitwise;
mod control;
mod conv;
mod conv_cpu;
mod cpu_fast;
mod einsum;
mod indexing;
mod loss;
mod matmul;
mod norm;
mod pool;
mod qbinary;
mod qlinear;
mod qlookup;
mod qpool;
mod qsoftmax;
mod qtensor;
mod quant;
mod recurrent;
mod reduce;
mod resize;
mod sequence;
mod shape;
mod slicing;
mod unary;
mod window;

pub(crate) use control::implicit_inputs;

use super::attrs::Attrs;
use super::error::{failed, unsupported, OpResult};
use super::value::Value;
use crate::formats::onnx_pb::NodeProto;
use candle_core::scalar::TensorOrScalar;
use candle_core::Tensor as CTensor;

/// A node ready to run: attributes parsed, semantics fixed for its opset.
pub(crate) trait Op: Send + Sync {
    /// Runs the node. `inputs` follow the node's inputs (`None` for an omitted optional
    /// input); the result has one value per node output.
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult<Vec<Value>>;
}

/// What a node becomes at load time.
pub(crate) enum Built {
    /// An op to run for every case.
    Op(Box<dyn Op>),
    /// A value known at load time (`Constant`).
    Constant(Value),
}

/// A node and the opset of its domain, handed to the op builders.
pub(crate) struct Ctx<'a> {
    pub node: &'a NodeProto,
    pub opset: i64,
    /// The model file, named in errors about tensors embedded in the node.
    pub path: &'a std::path::Path,
    /// The device the session runs on: values built at load time (`Constant`, fill
    /// values) are put there.
    pub device: &'a candle_core::Device,
    /// Plans the node's subgraphs (If, Loop, Scan).
    pub subgraphs: &'a dyn Subgraphs,
}

/// What control-flow ops need from the planner: their subgraphs planned like the model.
/// A trait so that the ops do not depend on the planner and executor (which use them).
pub(crate) trait Subgraphs {
    /// Plans `graph`, which reads the enclosing-scope values `outer` (bound after its
    /// formal inputs), at `opset`.
    fn plan(
        &self,
        graph: &crate::formats::onnx_pb::GraphProto,
        outer: &[String],
        opset: i64,
    ) -> Result<Box<dyn Subgraph>, crate::backend::BackendError>;
}

/// A planned subgraph, ready to run.
pub(crate) trait Subgraph: Send + Sync {
    /// Runs it: `inputs` are its formal inputs, then its outer values.
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, crate::backend::BackendError>;
    /// Formal inputs plus outer values.
    fn inputs(&self) -> usize;
    /// Its outputs.
    fn outputs(&self) -> usize;
}

impl<'a> Ctx<'a> {
    /// The op type.
    pub(crate) fn op(&self) -> &'a str {
        self.node.op_type()
    }

    /// The node's attributes, refusing any not in `allowed`.
    pub(crate) fn attrs(&self, allowed: &[&str]) -> OpResult<Attrs<'a>> {
        Attrs::new(self.node, allowed)
    }

    /// Checks the number of inputs and outputs the node declares (trailing omitted
    /// optional inputs/outputs are written as empty names and count here).
    pub(crate) fn arity(&self, inputs: (usize, usize), outputs: (usize, usize)) -> OpResult<()> {
        let (ni, no) = (self.node.input.len(), self.node.output.len());
        if ni < inputs.0 || ni > inputs.1 {
            return Err(failed!(
                "has {ni} inputs, expected {} to {}",
                inputs.0,
                inputs.1
            ));
        }
        if no < outputs.0 {
            return Err(failed!("has {no} outputs, expected at least {}", outputs.0));
        }
        if no > outputs.1 {
            // Extra outputs are optional ones (masks, indices, training statistics) that
            // this backend does not compute; refusing beats producing none.
            if let Some((i, name)) = self
                .node
                .output
                .iter()
                .enumerate()
                .skip(outputs.1)
                .find(|(_, n)| !n.is_empty())
            {
                return Err(unsupported!("output {i} (`{name}`) is not supported"));
            }
        }
        Ok(())
    }

    /// Whether optional output `i` is requested.
    pub(crate) fn has_output(&self, i: usize) -> bool {
        self.node.output.get(i).is_some_and(|n| !n.is_empty())
    }
}

/// One family of ops: the op types (with the first opset that defines each) and the
/// builder.
struct Family {
    ops: &'static [(&'static str, i64)],
    build: fn(&Ctx) -> OpResult<Built>,
}

const FAMILIES: &[Family] = &[
    Family {
        ops: unary::OPS,
        build: unary::build,
    },
    Family {
        ops: binary::OPS,
        build: binary::build,
    },
    Family {
        ops: matmul::OPS,
        build: matmul::build,
    },
    Family {
        ops: shape::OPS,
        build: shape::build,
    },
    Family {
        ops: slicing::OPS,
        build: slicing::build,
    },
    Family {
        ops: reduce::OPS,
        build: reduce::build,
    },
    Family {
        ops: norm::OPS,
        build: norm::build,
    },
    Family {
        ops: conv::OPS,
        build: conv::build,
    },
    Family {
        ops: pool::OPS,
        build: pool::build,
    },
    Family {
        ops: resize::OPS,
        build: resize::build,
    },
    Family {
        ops: indexing::OPS,
        build: indexing::build,
    },
    Family {
        ops: einsum::OPS,
        build: einsum::build,
    },
    Family {
        ops: recurrent::OPS,
        build: recurrent::build,
    },
    Family {
        ops: control::OPS,
        build: control::build,
    },
    Family {
        ops: quant::OPS,
        build: quant::build,
    },
    Family {
        ops: sequence::OPS,
        build: sequence::build,
    },
    Family {
        ops: qlinear::OPS,
        build: qlinear::build,
    },
    Family {
        ops: bitwise::OPS,
        build: bitwise::build,
    },
    Family {
        ops: loss::OPS,
        build: loss::build,
    },
    Family {
        ops: attention::OPS,
        build: attention::build,
    },
];

/// The `com.microsoft` domain, whose QOperator ops (ONNX Runtime's contrib ops that
/// `quantize_static(..., quant_format=QOperator)` writes) this backend runs.
pub(crate) const MICROSOFT: &str = "com.microsoft";

/// The `com.microsoft` families; every op of theirs is version 1 of the domain.
const MICROSOFT_FAMILIES: &[Family] = &[
    Family {
        ops: qlinear::MS_OPS,
        build: qlinear::build,
    },
    Family {
        ops: qbinary::OPS,
        build: qbinary::build,
    },
    Family {
        ops: qlookup::OPS,
        build: qlookup::build,
    },
    Family {
        ops: qsoftmax::OPS,
        build: qsoftmax::build,
    },
    Family {
        ops: qpool::OPS,
        build: qpool::build,
    },
];

/// The `com.microsoft` op types this backend runs, sorted.
pub(crate) fn microsoft_ops() -> Vec<&'static str> {
    let mut v: Vec<_> = MICROSOFT_FAMILIES
        .iter()
        .flat_map(|f| f.ops.iter().map(|o| o.0))
        .collect();
    v.sort_unstable();
    v
}

/// Builds the op for a `com.microsoft` node, or `None` when this backend does not run
/// that op type.
pub(crate) fn build_microsoft(ctx: &Ctx) -> Option<OpResult<Built>> {
    let op = ctx.op();
    MICROSOFT_FAMILIES
        .iter()
        .find(|f| f.ops.iter().any(|o| o.0 == op))
        .map(|f| (f.build)(ctx))
}

/// Every op type this backend can run (documentation and tests).
pub(crate) fn supported_ops() -> Vec<&'static str> {
    let mut v: Vec<_> = FAMILIES
        .iter()
        .flat_map(|f| f.ops.iter().map(|o| o.0))
        .collect();
    v.sort_unstable();
    v
}

/// Builds the op for a node of the default ONNX domain at `opset`.
pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    let op = ctx.op();
    for family in FAMILIES {
        if let Some(&(_, since)) = family.ops.iter().find(|o| o.0 == op) {
            if ctx.opset < since {
                return Err(unsupported!(
                    "the op is not defined at opset {} (it first appears in opset {since})",
                    ctx.opset
                ));
            }
            return (family.build)(ctx);
        }
    }
    Err(unsupported!("the op is not implemented by candle-cpu"))
}

/// Input `i`, which the op requires.
pub(crate) fn input<'v>(inputs: &[Option<&'v Value>], i: usize) -> OpResult<&'v Value> {
    inputs
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| failed!("required input {i} is missing"))
}

/// Optional input `i`.
pub(crate) fn opt_input<'v>(inputs: &[Option<&'v Value>], i: usize) -> Option<&'v Value> {
    inputs.get(i).copied().flatten()
}

/// Normalizes an axis in `[-rank, rank)` to `[0, rank)`.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> OpResult<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return Err(failed!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// Normalizes a list of distinct axes.
pub(crate) fn norm_axes(axes: &[i64], rank: usize) -> OpResult<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = norm_axis(a, rank)?;
        if out.contains(&a) {
            return Err(failed!("axis {a} appears twice"));
        }
        out.push(a);
    }
    Ok(out)
}

/// Numpy-style multidirectional broadcast of two shapes.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> OpResult<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(failed!(
                    "shapes {a:?} and {b:?} cannot be broadcast together"
                ))
            }
        };
    }
    Ok(out)
}

/// Converts a list of ONNX dims (non-negative by contract) to usize.
pub(crate) fn dims_usize(v: &[i64], what: &str) -> OpResult<Vec<usize>> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| failed!("{what} has a negative value {d}")))
        .collect()
}

/// The most elements an op may create from sizes read out of the data (2^32): beyond it
/// a bad model would abort the process on allocation instead of failing with an error.
pub(crate) const MAX_ELEMENTS: usize = 1 << 32;

/// Refuses an output shape with more than [`MAX_ELEMENTS`] elements (or overflowing).
pub(crate) fn check_size(shape: &[usize]) -> OpResult<()> {
    match crate::tensor::checked_numel(shape) {
        Some(n) if n <= MAX_ELEMENTS => Ok(()),
        _ => Err(failed!("output shape {shape:?} is too large")),
    }
}

/// Makes a tensor contiguous unless it already is.
pub(crate) fn contiguous(t: CTensor) -> OpResult<CTensor> {
    Ok(if t.is_contiguous() {
        t
    } else {
        t.contiguous()?
    })
}

/// An op whose run function needs no parsed state beyond what the closure captures.
pub(crate) struct FnOp<F>(pub F);

impl<F> Op for FnOp<F>
where
    F: Fn(&[Option<&Value>]) -> OpResult<Vec<Value>> + Send + Sync,
{
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult<Vec<Value>> {
        (self.0)(inputs)
    }
}

/// Boxes a closure as an op.
pub(crate) fn op<F>(f: F) -> OpResult<Built>
where
    F: Fn(&[Option<&Value>]) -> OpResult<Vec<Value>> + Send + Sync + 'static,
{
    Ok(Built::Op(Box::new(FnOp(f))))
}

/// Computes `f` element-wise in f64 on a float tensor and rounds back once, for
/// functions candle lacks or computes differently from ONNX (ties-to-even rounding,
/// log1p-accurate softplus, exact pow).
pub(crate) fn map_f64(t: &CTensor, f: impl Fn(f64) -> f64) -> OpResult<CTensor> {
    let dt = t.dtype();
    let shape = t.dims().to_vec();
    let v: Vec<f64> = t
        .flatten_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?;
    let v: Vec<f64> = v.into_iter().map(f).collect();
    Ok(CTensor::from_vec(v, shape, t.device())?.to_dtype(dt)?)
}

/// Like [`map_f64`] for two tensors of the same shape.
pub(crate) fn zip_f64(a: &CTensor, b: &CTensor, f: impl Fn(f64, f64) -> f64) -> OpResult<CTensor> {
    let dt = a.dtype();
    let shape = a.dims().to_vec();
    let x: Vec<f64> = a
        .flatten_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?;
    let y: Vec<f64> = b
        .flatten_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?;
    let v: Vec<f64> = x.into_iter().zip(y).map(|(x, y)| f(x, y)).collect();
    Ok(CTensor::from_vec(v, shape, a.device())?.to_dtype(dt)?)
}

/// `a.maximum(b)` with candle-cpu's NaN rule on every device: a NaN in `a` is kept, a
/// NaN in `b` is not (candle's CUDA kernels use `fmax`, which drops NaN on both sides;
/// the ops are written against the CPU rule).
pub(crate) fn maximum<T: TensorOrScalar>(a: &CTensor, b: T) -> OpResult<CTensor> {
    keep_left_nan(a, a.maximum(b)?)
}

/// `a.minimum(b)` with candle-cpu's NaN rule on every device (see [`maximum`]).
pub(crate) fn minimum<T: TensorOrScalar>(a: &CTensor, b: T) -> OpResult<CTensor> {
    keep_left_nan(a, a.minimum(b)?)
}

fn keep_left_nan(a: &CTensor, r: CTensor) -> OpResult<CTensor> {
    if a.device().is_cpu() || !a.dtype().is_float() {
        return Ok(r);
    }
    Ok(a.ne(a)?.where_cond(a, &r)?)
}

/// `argmax_keepdim` / `argmin_keepdim` returning the first index among equal extremes on
/// every device: candle's CPU kernel does; its CUDA kernel reduces in parallel and may
/// return a later one, so on a GPU the (small) index computation runs on the host and
/// the result is copied back.
pub(crate) fn first_arg(t: &CTensor, axis: usize, is_max: bool) -> OpResult<CTensor> {
    let arg = |t: &CTensor| -> OpResult<CTensor> {
        Ok(if is_max {
            t.argmax_keepdim(axis)?
        } else {
            t.argmin_keepdim(axis)?
        })
    };
    if t.device().is_cpu() {
        return arg(t);
    }
    Ok(arg(&t.to_device(&candle_core::Device::Cpu)?)?.to_device(t.device())?)
}

/// Whether a float tensor holds a NaN (false for integer tensors).
pub(crate) fn has_nan(t: &CTensor) -> OpResult<bool> {
    if !t.dtype().is_float() || t.elem_count() == 0 {
        return Ok(false);
    }
    Ok(t.ne(t)?.flatten_all()?.max(0)?.to_scalar::<u8>()? != 0)
}

/// Refuses NaN inputs for ops whose NaN behaviour differs between ONNX Runtime and the
/// ONNX reference (the spec says nothing): no answer could be called right.
pub(crate) fn refuse_nan(t: &CTensor) -> OpResult<()> {
    if has_nan(t)? {
        return Err(unsupported!(
            "NaN inputs are not supported (their result differs between ONNX Runtime and the ONNX reference)"
        ));
    }
    Ok(())
}

/// Half-precision tensors are computed in f32 by reductions and normalizations (as ONNX
/// Runtime does) and rounded back once: returns the tensor to compute on.
pub(crate) fn widen_half(t: &CTensor) -> OpResult<CTensor> {
    Ok(match t.dtype() {
        candle_core::DType::F16 | candle_core::DType::BF16 => {
            t.to_dtype(candle_core::DType::F32)?
        }
        _ => t.clone(),
    })
}
