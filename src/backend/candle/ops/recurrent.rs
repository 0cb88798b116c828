//! Recurrent layers: RNN, GRU and LSTM (opset 7 and later), with every attribute that
//! changes results: `direction` (forward, reverse, bidirectional), `layout` 0/1,
//! `hidden_size`, `clip` (applied to every gate's pre-activation, as ONNX Runtime does),
//! `activations` with `activation_alpha`/`activation_beta`, GRU's `linear_before_reset`,
//! LSTM's `input_forget` and peepholes (`P`), optional biases, initial states and
//! `sequence_lens` (each batch entry stops at its own length: its later outputs are 0 and
//! its final state is the one at its last step; reverse runs start at its last step).
//!
//! The input projection `X·Wᵀ + b` is one matmul over every step; each step then adds
//! `H·Rᵀ` and applies the gates. Everything runs on the session's device; half-precision
//! inputs are computed in f32 and rounded back once.

use super::{input, op, opt_input, widen_half, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::{index_tensor, Value};
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each (opset 7 fixed their
/// current semantics; earlier versions are refused in [`build`]).
pub(crate) const OPS: &[(&str, i64)] = &[("RNN", 1), ("GRU", 1), ("LSTM", 1)];

/// Which layer a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rnn,
    Gru,
    Lstm,
}

impl Kind {
    /// Gates stacked in `W`, `R` and (twice) in `B`.
    fn gates(self) -> usize {
        match self {
            Kind::Rnn => 1,
            Kind::Gru => 3,
            Kind::Lstm => 4,
        }
    }

    /// Activation functions per direction (f; f, g; f, g, h).
    fn activations(self) -> usize {
        match self {
            Kind::Rnn => 1,
            Kind::Gru => 2,
            Kind::Lstm => 3,
        }
    }

    /// The default activations of one direction.
    fn default_activations(self) -> &'static [Activation] {
        match self {
            Kind::Rnn => &[Activation::Tanh],
            Kind::Gru => &[Activation::Sigmoid, Activation::Tanh],
            Kind::Lstm => &[Activation::Sigmoid, Activation::Tanh, Activation::Tanh],
        }
    }
}

/// An activation function of the `activations` attribute, with its alpha/beta.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Activation {
    Sigmoid,
    Tanh,
    Relu,
    Affine(f64, f64),
    LeakyRelu(f64),
    ThresholdedRelu(f64),
    ScaledTanh(f64, f64),
    HardSigmoid(f64, f64),
    Elu(f64),
    Softsign,
    Softplus,
}

impl Activation {
    /// Parses `activations`, consuming `activation_alpha`/`activation_beta` in order
    /// for the functions that take them (each one's ONNX operator default when the
    /// list runs out).
    fn parse_all(names: &[String], alphas: &[f32], betas: &[f32]) -> OpResult<Vec<Activation>> {
        let (mut alphas, mut betas) = (alphas.iter(), betas.iter());
        let next = |list: &mut std::slice::Iter<f32>, default: f64| {
            list.next().map_or(default, |&v| f64::from(v))
        };
        names
            .iter()
            .map(|name| {
                Ok(match name.to_ascii_lowercase().as_str() {
                    "sigmoid" => Activation::Sigmoid,
                    "tanh" => Activation::Tanh,
                    "relu" => Activation::Relu,
                    "affine" => Activation::Affine(next(&mut alphas, 1.0), next(&mut betas, 0.0)),
                    "leakyrelu" => Activation::LeakyRelu(next(&mut alphas, 0.01)),
                    "thresholdedrelu" => Activation::ThresholdedRelu(next(&mut alphas, 1.0)),
                    "scaledtanh" => {
                        Activation::ScaledTanh(next(&mut alphas, 1.0), next(&mut betas, 1.0))
                    }
                    "hardsigmoid" => {
                        Activation::HardSigmoid(next(&mut alphas, 0.2), next(&mut betas, 0.5))
                    }
                    "elu" => Activation::Elu(next(&mut alphas, 1.0)),
                    "softsign" => Activation::Softsign,
                    "softplus" => Activation::Softplus,
                    _ => {
                        return Err(unsupported!(
                            "attribute `activations`: `{name}` is not an activation this backend implements"
                        ))
                    }
                })
            })
            .collect()
    }

    fn apply(self, t: &CTensor) -> OpResult<CTensor> {
        let zeros = || t.zeros_like();
        Ok(match self {
            Activation::Sigmoid => (t.neg()?.exp()? + 1.0)?.recip()?,
            Activation::Tanh => t.tanh()?,
            Activation::Relu => t.relu()?,
            Activation::Affine(a, b) => t.affine(a, b)?,
            Activation::LeakyRelu(a) => t.ge(0f64)?.where_cond(t, &t.affine(a, 0.0)?)?,
            Activation::ThresholdedRelu(a) => t.gt(a)?.where_cond(t, &zeros()?)?,
            Activation::ScaledTanh(a, b) => t.affine(b, 0.0)?.tanh()?.affine(a, 0.0)?,
            Activation::HardSigmoid(a, b) => t.affine(a, b)?.clamp(0f64, 1f64)?,
            Activation::Elu(a) => t
                .ge(0f64)?
                .where_cond(t, &(t.exp()? - 1.0)?.affine(a, 0.0)?)?,
            Activation::Softsign => t.broadcast_div(&(t.abs()? + 1.0)?)?,
            Activation::Softplus => (t.exp()? + 1.0)?.log()?,
        })
    }
}

/// A recurrent node's settings, fixed at load time.
#[derive(Debug, Clone)]
struct Spec {
    kind: Kind,
    hidden: usize,
    /// 1 or 2; with 2 the second direction runs in reverse.
    directions: usize,
    /// The single direction runs in reverse (`direction = "reverse"`).
    reverse: bool,
    /// `layout = 1`: batch first in X, the states and Y.
    batch_first: bool,
    clip: Option<f64>,
    /// `activations.len() == directions × kind.activations()`.
    activations: Vec<Activation>,
    /// GRU: apply the reset gate after the recurrent projection.
    linear_before_reset: bool,
    /// LSTM: the forget gate is `1 - input gate`.
    input_forget: bool,
}

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    let kind = match ctx.op() {
        "RNN" => Kind::Rnn,
        "GRU" => Kind::Gru,
        "LSTM" => Kind::Lstm,
        other => return Err(unsupported!("op {other} is not a recurrent layer")),
    };
    if ctx.opset < 7 {
        return Err(unsupported!(
            "{} before opset 7 (`output_sequence`, other defaults) is not supported",
            ctx.op()
        ));
    }
    let mut allowed = vec![
        "activation_alpha",
        "activation_beta",
        "activations",
        "clip",
        "direction",
        "hidden_size",
    ];
    if ctx.opset >= 14 {
        allowed.push("layout");
    }
    match kind {
        Kind::Gru => allowed.push("linear_before_reset"),
        Kind::Lstm => allowed.push("input_forget"),
        Kind::Rnn => {}
    }
    let a = ctx.attrs(&allowed)?;
    let (directions, reverse) = match a.string("direction")?.as_deref().unwrap_or("forward") {
        "forward" => (1, false),
        "reverse" => (1, true),
        "bidirectional" => (2, false),
        other => {
            return Err(unsupported!(
                "attribute `direction` = \"{other}\" is not supported"
            ))
        }
    };
    let hidden = a
        .opt_int("hidden_size")?
        .ok_or_else(|| failed!("attribute `hidden_size` is required"))?;
    let hidden = usize::try_from(hidden)
        .ok()
        .filter(|&h| h >= 1)
        .ok_or_else(|| failed!("attribute `hidden_size` = {hidden} must be at least 1"))?;
    let batch_first = match a.int("layout", 0)? {
        0 => false,
        1 => true,
        l => return Err(unsupported!("attribute `layout` = {l} is not supported")),
    };
    let clip = match a.opt_float("clip")? {
        None => None,
        Some(c) if c > 0.0 && c.is_finite() => Some(f64::from(c)),
        Some(c) => return Err(failed!("attribute `clip` = {c} must be a positive number")),
    };
    let names = a.strings("activations")?;
    let alphas = a.floats("activation_alpha")?.unwrap_or_default();
    let betas = a.floats("activation_beta")?.unwrap_or_default();
    let activations = match names {
        Some(names) => {
            let want = directions * kind.activations();
            if names.len() != want {
                return Err(failed!(
                    "attribute `activations` has {} functions, expected {want} ({} per direction)",
                    names.len(),
                    kind.activations()
                ));
            }
            Activation::parse_all(&names, &alphas, &betas)?
        }
        None if alphas.is_empty() && betas.is_empty() => {
            kind.default_activations().repeat(directions)
        }
        None => {
            return Err(unsupported!(
            "attribute `activation_alpha`/`activation_beta` without `activations` is not supported"
        ))
        }
    };
    let flag = |name: &str| -> OpResult<bool> {
        match a.int(name, 0)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(unsupported!("attribute `{name}` = {v} is not supported")),
        }
    };
    let spec = Spec {
        kind,
        hidden,
        directions,
        reverse,
        batch_first,
        clip,
        activations,
        linear_before_reset: kind == Kind::Gru && flag("linear_before_reset")?,
        input_forget: kind == Kind::Lstm && flag("input_forget")?,
    };
    match kind {
        Kind::Lstm => ctx.arity((3, 8), (0, 3))?,
        _ => ctx.arity((3, 6), (0, 2))?,
    }
    op(move |inputs| run(&spec, inputs))
}

/// The node's inputs in time-major layout, widened to the compute dtype.
struct Inputs {
    /// `[seq, batch, input]`.
    x: CTensor,
    /// `[dirs, gates·hidden, input]`.
    w: CTensor,
    /// `[dirs, gates·hidden, hidden]`.
    r: CTensor,
    /// `[dirs, 2·gates·hidden]` (zeros when absent).
    b: CTensor,
    /// Per batch entry, its number of steps (`None`: every entry runs every step).
    lens: Option<Vec<usize>>,
    /// `[dirs, batch, hidden]`.
    h0: CTensor,
    /// LSTM: `[dirs, batch, hidden]`.
    c0: CTensor,
    /// LSTM: `[dirs, 3·hidden]` peepholes (i, o, f), zeros when absent.
    p: CTensor,
}

fn run(spec: &Spec, inputs: &[Option<&Value>]) -> OpResult<Vec<Value>> {
    let x = input(inputs, 0)?;
    x.require_float("X")?;
    let io = prepare(spec, x, inputs)?;
    let mut ys = Vec::with_capacity(spec.directions);
    let (mut hs, mut cs) = (Vec::new(), Vec::new());
    for d in 0..spec.directions {
        let reverse = spec.reverse || d == 1;
        let acts =
            &spec.activations[d * spec.kind.activations()..(d + 1) * spec.kind.activations()];
        let (y, h, c) = direction(spec, &io, d, reverse, acts)?;
        ys.push(y);
        hs.push(h);
        cs.push(c);
    }
    // Y: [seq, dirs, batch, hidden]; Y_h, Y_c: [dirs, batch, hidden].
    let y = CTensor::stack(&ys, 1)?;
    let h = CTensor::stack(&hs, 0)?;
    let c = CTensor::stack(&cs, 0)?;
    let (y, h, c) = if spec.batch_first {
        (
            y.permute((2, 0, 1, 3))?,
            h.transpose(0, 1)?,
            c.transpose(0, 1)?,
        )
    } else {
        (y, h, c)
    };
    let out = |t: CTensor| -> OpResult<Value> {
        Ok(Value::new(t.contiguous()?.to_dtype(x.t.dtype())?, x.dtype))
    };
    let mut outputs = vec![out(y)?, out(h)?];
    if spec.kind == Kind::Lstm {
        outputs.push(out(c)?);
    }
    Ok(outputs)
}

/// Checks every input's shape against X and `hidden_size` and brings them to the
/// time-major layout and compute dtype.
fn prepare(spec: &Spec, x: &Value, inputs: &[Option<&Value>]) -> OpResult<Inputs> {
    let xt = widen_half(&x.t)?;
    let compute = xt.dtype();
    if x.rank() != 3 {
        return Err(failed!("X must have rank 3, got shape {:?}", x.shape()));
    }
    let xt = if spec.batch_first {
        xt.transpose(0, 1)?.contiguous()?
    } else {
        xt
    };
    let (seq, batch, size) = (xt.dim(0)?, xt.dim(1)?, xt.dim(2)?);
    if seq == 0 || batch == 0 {
        return Err(unsupported!(
            "an empty sequence or batch (X of shape {:?}) is not supported",
            x.shape()
        ));
    }
    let (dirs, hid, g) = (spec.directions, spec.hidden, spec.kind.gates());
    let dev = xt.device();
    let param = |i: usize, what: &str, shape: &[usize]| -> OpResult<Option<CTensor>> {
        let Some(v) = opt_input(inputs, i) else {
            return Ok(None);
        };
        v.require_float(what)?;
        if v.shape() != shape {
            return Err(failed!(
                "{what} has shape {:?}, expected {shape:?}",
                v.shape()
            ));
        }
        Ok(Some(v.t.to_dtype(compute)?))
    };
    let required = |i: usize, what: &str, shape: &[usize]| -> OpResult<CTensor> {
        param(i, what, shape)?.ok_or_else(|| failed!("required input {what} is missing"))
    };
    let w = required(1, "W", &[dirs, g * hid, size])?;
    let r = required(2, "R", &[dirs, g * hid, hid])?;
    let b = match param(3, "B", &[dirs, 2 * g * hid])? {
        Some(b) => b,
        None => CTensor::zeros((dirs, 2 * g * hid), compute, dev)?,
    };
    let lens = match opt_input(inputs, 4) {
        None => None,
        Some(v) => {
            let lens = v.i64s("sequence_lens")?;
            if lens.len() != batch {
                return Err(failed!(
                    "sequence_lens has {} values for a batch of {batch}",
                    lens.len()
                ));
            }
            let lens = lens
                .into_iter()
                .map(|l| match usize::try_from(l) {
                    Ok(l) if (1..=seq).contains(&l) => Ok(l),
                    _ => Err(unsupported!(
                        "sequence_lens value {l} outside 1..={seq} is not supported"
                    )),
                })
                .collect::<OpResult<Vec<usize>>>()?;
            // Every entry at full length is the plain case.
            lens.iter().any(|&l| l != seq).then_some(lens)
        }
    };
    let state_shape = if spec.batch_first {
        [batch, dirs, hid]
    } else {
        [dirs, batch, hid]
    };
    let state = |i: usize, what: &str| -> OpResult<CTensor> {
        Ok(match param(i, what, &state_shape)? {
            Some(t) if spec.batch_first => t.transpose(0, 1)?.contiguous()?,
            Some(t) => t,
            None => CTensor::zeros((dirs, batch, hid), compute, dev)?,
        })
    };
    let h0 = state(5, "initial_h")?;
    let (c0, p) = if spec.kind == Kind::Lstm {
        let c0 = state(6, "initial_c")?;
        let p = match param(7, "P", &[dirs, 3 * hid])? {
            Some(p) => p,
            None => CTensor::zeros((dirs, 3 * hid), compute, dev)?,
        };
        (c0, p)
    } else {
        (
            h0.zeros_like()?,
            CTensor::zeros((dirs, 3 * hid), compute, dev)?,
        )
    };
    Ok(Inputs {
        x: xt,
        w,
        r,
        b,
        lens,
        h0,
        c0,
        p,
    })
}

/// Runs direction `d`; returns Y `[seq, batch, hidden]` (in input time order, 0 past
/// each entry's length) and the final H and C `[batch, hidden]`.
fn direction(
    spec: &Spec,
    io: &Inputs,
    d: usize,
    reverse: bool,
    acts: &[Activation],
) -> OpResult<(CTensor, CTensor, CTensor)> {
    let (seq, batch, size) = (io.x.dim(0)?, io.x.dim(1)?, io.x.dim(2)?);
    let (hid, g) = (spec.hidden, spec.kind.gates());
    let dev = io.x.device().clone();
    // Step k reads input row order[k] of the [seq·batch] rows: reversed per entry.
    let order = step_rows(seq, batch, reverse, io.lens.as_deref());
    let rows = io.x.reshape((seq * batch, size))?;
    let rows = match &order {
        Some(idx) => rows.index_select(&index_tensor(idx.clone(), &dev)?, 0)?,
        None => rows,
    };
    let w = io.w.get(d)?;
    let r = io.r.get(d)?;
    let b = io.b.get(d)?;
    let (wb, rb) = (b.narrow(0, 0, g * hid)?, b.narrow(0, g * hid, g * hid)?);
    // GRU with linear_before_reset keeps the h gate's recurrent bias inside the reset.
    let split_rbh = spec.kind == Kind::Gru && spec.linear_before_reset;
    let input_bias = if split_rbh {
        CTensor::cat(
            &[
                (wb.narrow(0, 0, 2 * hid)? + rb.narrow(0, 0, 2 * hid)?)?,
                wb.narrow(0, 2 * hid, hid)?,
            ],
            0,
        )?
    } else {
        // Every other bias, GRU's Rbh included, adds to the input projection.
        (&wb + &rb)?
    };
    let projected =
        rows.matmul(&w.t()?)?
            .broadcast_add(&input_bias)?
            .reshape((seq, batch, g * hid))?;
    let rt = r.t()?.contiguous()?;
    // GRU without linear_before_reset: the z/r and h columns of Rᵀ, apart.
    let (rt_zr, rt_h) = if spec.kind == Kind::Gru {
        (
            rt.narrow(1, 0, 2 * hid)?.contiguous()?,
            rt.narrow(1, 2 * hid, hid)?.contiguous()?,
        )
    } else {
        (rt.clone(), rt.clone())
    };
    let rbh = rb.narrow(0, (g - 1) * hid, hid)?;
    let p = io.p.get(d)?;
    let (pi, po, pf) = (
        p.narrow(0, 0, hid)?,
        p.narrow(0, hid, hid)?,
        p.narrow(0, 2 * hid, hid)?,
    );
    let clip = |t: CTensor| -> OpResult<CTensor> {
        Ok(match spec.clip {
            Some(c) => t.clamp(-c, c)?,
            None => t,
        })
    };
    let gate = |z: &CTensor, k: usize| z.narrow(1, k * hid, hid);
    let lens = io.lens.as_deref();
    let (mut h, mut c) = (io.h0.get(d)?, io.c0.get(d)?);
    let mut ys = Vec::with_capacity(seq);
    for k in 0..seq {
        let xw = projected.get(k)?;
        let (new_h, new_c) = match spec.kind {
            Kind::Rnn => {
                let z = clip((xw + h.matmul(&rt)?)?)?;
                (acts[0].apply(&z)?, c.clone())
            }
            Kind::Gru => {
                // Without linear_before_reset the h gate's recurrent term needs the reset
                // gate first: only the z and r columns are projected here.
                let hr = h.matmul(if spec.linear_before_reset {
                    &rt
                } else {
                    &rt_zr
                })?;
                let zr = clip((gate(&xw, 0)? + gate(&hr, 0)?)?)?;
                let rr = clip((gate(&xw, 1)? + gate(&hr, 1)?)?)?;
                let (z, rgate) = (acts[0].apply(&zr)?, acts[0].apply(&rr)?);
                let recurrent = if spec.linear_before_reset {
                    rgate.mul(&gate(&hr, 2)?.broadcast_add(&rbh)?)?
                } else {
                    rgate.mul(&h)?.matmul(&rt_h)?
                };
                let n = acts[1].apply(&clip((gate(&xw, 2)? + recurrent)?)?)?;
                // H = (1 - z)·n + z·H_prev
                let new_h = (n.clone() + z.mul(&(&h - &n)?)?)?;
                (new_h, c.clone())
            }
            Kind::Lstm => {
                let z = (xw + h.matmul(&rt)?)?;
                let i = acts[0].apply(&clip((gate(&z, 0)? + c.broadcast_mul(&pi)?)?)?)?;
                let f = if spec.input_forget {
                    (i.ones_like()? - &i)?
                } else {
                    acts[0].apply(&clip((gate(&z, 2)? + c.broadcast_mul(&pf)?)?)?)?
                };
                let cand = acts[1].apply(&clip(gate(&z, 3)?)?)?;
                let new_c = (f.mul(&c)? + i.mul(&cand)?)?;
                let o = acts[0].apply(&clip((gate(&z, 1)? + new_c.broadcast_mul(&po)?)?)?)?;
                (o.mul(&acts[2].apply(&new_c)?)?, new_c)
            }
        };
        match lens {
            // Entries past their length keep their state and output 0.
            Some(lens) => {
                let alive: Vec<u8> = lens.iter().map(|&l| u8::from(k < l)).collect();
                let alive =
                    CTensor::from_vec(alive, (batch, 1), &dev)?.broadcast_as((batch, hid))?;
                let zero = new_h.zeros_like()?;
                ys.push(alive.where_cond(&new_h, &zero)?);
                h = alive.where_cond(&new_h, &h)?;
                c = alive.where_cond(&new_c, &c)?;
            }
            None => {
                ys.push(new_h.clone());
                h = new_h;
                c = new_c;
            }
        }
    }
    // Back to input time order: step k of entry b belongs at the row it read.
    let y = CTensor::stack(&ys, 0)?.reshape((seq * batch, hid))?;
    let y = match &order {
        Some(idx) => {
            let mut back = vec![0u32; idx.len()];
            for (k, &row) in idx.iter().enumerate() {
                back[row as usize] = k as u32;
            }
            // Rows no step read (past an entry's length) get a step that output 0 for
            // that entry: any k at or past its length.
            y.index_select(&index_tensor(back, &dev)?, 0)?
        }
        None => y,
    };
    Ok((y.reshape((seq, batch, hid))?, h, c))
}

/// For each step `k` and batch entry `b`, the row `t·batch + b` of the time-major input
/// that the step reads: `t = k` forward; `t = len_b − 1 − k` in reverse while `k <
/// len_b`, and `t = k` after (a row that then only feeds outputs masked to 0). `None`
/// when steps read rows in order.
fn step_rows(seq: usize, batch: usize, reverse: bool, lens: Option<&[usize]>) -> Option<Vec<u32>> {
    if !reverse {
        return None;
    }
    let mut idx = Vec::with_capacity(seq * batch);
    for k in 0..seq {
        for b in 0..batch {
            let len = lens.map_or(seq, |l| l[b]);
            let t = if k < len { len - 1 - k } else { k };
            idx.push((t * batch + b) as u32);
        }
    }
    Some(idx)
}
