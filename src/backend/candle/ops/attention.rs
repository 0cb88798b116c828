//! The transformer ops that current exporters emit for language models (opset 23+):
//! `Attention` (scaled dot-product attention with its KV cache, grouped-query heads,
//! softcap, causal, sliding-window and padding masks, and the `qk_matmul_output` views)
//! and `RotaryEmbedding`. Both run on the session's device with candle ops; f16/bf16 are
//! computed in f32 and rounded once at the end (the reference computes in the input type,
//! which is less accurate, not different in kind).

use super::{input, opt_input, widen_half, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::{dtype_from_onnx, full, storage_dtype, Value};
use crate::tensor::DType;
use candle_core::{DType as CDType, Device, Tensor as CTensor, D};

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[("Attention", 23), ("RotaryEmbedding", 23)];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    match ctx.op() {
        "Attention" => build_attention(ctx),
        _ => build_rotary(ctx),
    }
}

/// What `qk_matmul_output` (output 3) shows.
#[derive(Clone, Copy, PartialEq)]
enum QkView {
    /// The raw `Q·Kᵀ` product (scaled).
    Product,
    /// After the softcap.
    Softcapped,
    /// After the softcap and the additive mask.
    Biased,
    /// The (guarded) softmax probabilities.
    Probabilities,
}

/// An `Attention` node's attributes.
struct Attention {
    causal: bool,
    q_heads: Option<usize>,
    kv_heads: Option<usize>,
    scale: Option<f64>,
    softcap: f64,
    view: QkView,
    softmax_dtype: Option<CDType>,
    /// Sliding window (opset 25): keys at most `left` before / `right` after the query's
    /// position; -1 leaves a side unbounded.
    left: i64,
    right: i64,
    want_qk: bool,
}

fn build_attention(ctx: &Ctx) -> OpResult<Built> {
    let windowed = ctx.opset >= 25;
    ctx.arity((3, if ctx.opset >= 24 { 7 } else { 6 }), (1, 4))?;
    let mut allowed = vec![
        "is_causal",
        "kv_num_heads",
        "q_num_heads",
        "qk_matmul_output_mode",
        "scale",
        "softcap",
        "softmax_precision",
    ];
    if windowed {
        allowed.extend(["left_window_size", "right_window_size"]);
    }
    let a = ctx.attrs(&allowed)?;
    let heads = |name: &str| -> OpResult<Option<usize>> {
        match a.opt_int(name)? {
            None => Ok(None),
            Some(h) if h > 0 => Ok(Some(h as usize)),
            Some(h) => Err(failed!("attribute `{name}` = {h} must be positive")),
        }
    };
    let view = match a.int("qk_matmul_output_mode", 0)? {
        0 => QkView::Product,
        1 => QkView::Softcapped,
        2 => QkView::Biased,
        3 => QkView::Probabilities,
        m => {
            return Err(failed!(
                "attribute `qk_matmul_output_mode` = {m} is not 0 to 3"
            ))
        }
    };
    let softmax_dtype = match a.opt_int("softmax_precision")? {
        None => None,
        Some(code) => {
            let d = dtype_from_onnx(code as i32)?;
            if !d.is_float() {
                return Err(failed!(
                    "attribute `softmax_precision` names {d}, not a float type"
                ));
            }
            storage_dtype(d)
        }
    };
    let window = |name: &str| -> OpResult<i64> {
        match a.int(name, -1)? {
            w if w >= -1 => Ok(w),
            w => Err(failed!(
                "attribute `{name}` = {w} must be -1 or non-negative"
            )),
        }
    };
    let op = Attention {
        causal: a.int("is_causal", 0)? != 0,
        q_heads: heads("q_num_heads")?,
        kv_heads: heads("kv_num_heads")?,
        scale: a.opt_float("scale")?.map(f64::from),
        softcap: a.float("softcap", 0.0)? as f64,
        view,
        softmax_dtype,
        left: window("left_window_size")?,
        right: window("right_window_size")?,
        want_qk: ctx.has_output(3),
    };
    Ok(Built::Op(Box::new(AttentionOp {
        op,
        strict_heads: windowed,
    })))
}

struct AttentionOp {
    op: Attention,
    /// Opset 25+: `q_num_heads`/`kv_num_heads` are an error on 4-D inputs.
    strict_heads: bool,
}

impl super::Op for AttentionOp {
    fn run(&self, inputs: &[Option<&Value>]) -> OpResult<Vec<Value>> {
        self.op.run(inputs, self.strict_heads)
    }
}

/// Where each query's causal/window frontier sits: keys `j` with `j <= i + offset` are
/// in the past of query `i`.
enum Offset {
    /// The same for every batch entry (no cache: 0; an internal cache: its length).
    Shared(i64),
    /// Per batch entry (an external cache: `nonpad_kv_seqlen[b] - q_len`); holds
    /// `nonpad_kv_seqlen`, shape (B,).
    PerBatch(CTensor),
}

impl Attention {
    fn run(&self, inputs: &[Option<&Value>], strict_heads: bool) -> OpResult<Vec<Value>> {
        let (q, k, v) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        q.require_float("Q")?;
        for (x, what) in [(k, "K"), (v, "V")] {
            if x.dtype != q.dtype {
                return Err(failed!("{what} has dtype {}, Q has {}", x.dtype, q.dtype));
            }
        }
        let rank = q.rank();
        if !(rank == 3 || rank == 4) || k.rank() != rank || v.rank() != rank {
            return Err(failed!(
                "Q, K and V must all be 3-D or all 4-D, got shapes {:?}, {:?} and {:?}",
                q.shape(),
                k.shape(),
                v.shape()
            ));
        }
        let (qt, kt, vt) = if rank == 3 {
            let (Some(hq), Some(hkv)) = (self.q_heads, self.kv_heads) else {
                return Err(failed!(
                    "3-D inputs need the attributes `q_num_heads` and `kv_num_heads`"
                ));
            };
            (
                split_heads(&q.t, hq, "Q")?,
                split_heads(&k.t, hkv, "K")?,
                split_heads(&v.t, hkv, "V")?,
            )
        } else {
            if strict_heads && (self.q_heads.is_some() || self.kv_heads.is_some()) {
                return Err(failed!(
                    "`q_num_heads` and `kv_num_heads` must not be set for 4-D inputs"
                ));
            }
            for (given, t, what) in [
                (self.q_heads, &q.t, "q_num_heads"),
                (self.kv_heads, &k.t, "kv_num_heads"),
            ] {
                if let Some(h) = given.filter(|&h| h != t.dims()[1]) {
                    return Err(failed!(
                        "attribute `{what}` = {h} differs from the input's {} heads",
                        t.dims()[1]
                    ));
                }
            }
            (q.t.clone(), k.t.clone(), v.t.clone())
        };
        let (b, hq, sq, dq) = qt.dims4()?;
        let (kb, hk, _, dk) = kt.dims4()?;
        let (vb, hv, _, _) = vt.dims4()?;
        if kb != b || vb != b || dk != dq {
            return Err(failed!(
                "K {:?} does not match Q {:?} (batch and head size must agree)",
                kt.dims(),
                qt.dims()
            ));
        }
        // The KV cache: present = past ++ new along the sequence axis.
        let (past_k, past_v) = (opt_input(inputs, 4), opt_input(inputs, 5));
        let nonpad = opt_input(inputs, 6);
        let (present_k, present_v, past_len) = match (past_k, past_v) {
            (None, None) => (kt, vt, 0),
            (Some(pk), Some(pv)) => {
                if nonpad.is_some() {
                    return Err(failed!(
                        "`nonpad_kv_seqlen` cannot be combined with past_key/past_value"
                    ));
                }
                let cat = |p: &Value, t: &CTensor, what: &str| -> OpResult<CTensor> {
                    if p.dtype != q.dtype || p.rank() != 4 {
                        return Err(failed!(
                            "{what} must be a 4-D {} tensor, got {} {:?}",
                            q.dtype,
                            p.dtype,
                            p.shape()
                        ));
                    }
                    CTensor::cat(&[&p.t, t], 2).map_err(|_| {
                        failed!("{what} {:?} does not extend {:?}", p.shape(), t.dims())
                    })
                };
                let (k, v) = (cat(pk, &kt, "past_key")?, cat(pv, &vt, "past_value")?);
                (k, v, pk.shape()[2])
            }
            _ => return Err(failed!("past_key and past_value must be given together")),
        };
        let skv = present_k.dims()[2];
        if skv == 0 {
            return Err(failed!("K has no positions to attend"));
        }
        if present_v.dims()[2] != skv {
            return Err(failed!(
                "K and V have {skv} and {} positions",
                present_v.dims()[2]
            ));
        }
        let dev = qt.device().clone();
        let qc = widen_half(&qt)?;
        let cdt = qc.dtype();
        let offset = match nonpad {
            Some(n) if past_len == 0 => {
                if n.dtype != DType::I64 || n.shape() != [b] {
                    return Err(failed!(
                        "nonpad_kv_seqlen must be an i64 tensor of shape [{b}], got {} {:?}",
                        n.dtype,
                        n.shape()
                    ));
                }
                Offset::PerBatch(n.t.clone())
            }
            _ => Offset::Shared(past_len as i64),
        };
        let bias = self.bias(opt_input(inputs, 3), &offset, nonpad, sq, skv, cdt, &dev)?;

        // Grouped-query attention: each KV head serves hq / hk query heads.
        let (mut kc, mut vc) = (widen_half(&present_k)?, widen_half(&present_v)?);
        super::check_size(&[b, hq, sq.max(skv), skv.max(dq)])?;
        if hq != hk || hk != hv {
            if hk == 0 || hk != hv || hq % hk != 0 {
                return Err(failed!(
                    "{hq} query heads cannot share {hk} key and {hv} value heads"
                ));
            }
            kc = repeat_heads(&kc, hq / hk)?;
            vc = repeat_heads(&vc, hq / hk)?;
        }
        let scale = self.scale.unwrap_or(1.0 / (dq as f64).sqrt()).sqrt();
        let qs = (qc * scale)?;
        let ks = (kc * scale)?;
        let product = qs.matmul(&ks.t()?.contiguous()?)?;
        let capped = if self.softcap > 0.0 {
            ((product.clone() / self.softcap)?.tanh()? * self.softcap)?
        } else {
            product.clone()
        };
        let logits = capped.broadcast_add(&bias)?;
        let probs = masked_softmax(&logits, self.softmax_dtype.unwrap_or(cdt))?.to_dtype(cdt)?;
        // A query row whose bias allows no key attends to nothing: its output is zero
        // (decided on the bias, so that NaN logits in a masked row cannot leak).
        let dead = bias
            .max_keepdim(D::Minus1)?
            .eq(f64::NEG_INFINITY)?
            .broadcast_as(probs.dims())?;
        let probs = dead.where_cond(&probs.zeros_like()?, &probs)?;
        let mut y = probs.matmul(&vc.contiguous()?)?;
        if rank == 3 {
            let (b, h, s, d) = y.dims4()?;
            y = y.transpose(1, 2)?.contiguous()?.reshape((b, s, h * d))?;
        }
        let sdt = qt.dtype();
        let mut out = vec![
            Value::new(y.to_dtype(sdt)?, q.dtype),
            Value::new(present_k, q.dtype),
            Value::new(present_v, q.dtype),
        ];
        if self.want_qk {
            let view = match self.view {
                QkView::Product => product,
                QkView::Softcapped => capped,
                QkView::Biased => logits,
                QkView::Probabilities => probs,
            };
            out.push(Value::new(view.to_dtype(sdt)?, q.dtype));
        }
        Ok(out)
    }

    /// The additive bias (0 where a query may attend a key, -inf where not, or the
    /// user's float mask), right-aligned against the (B, H, Sq, Skv) scores.
    #[allow(clippy::too_many_arguments)]
    fn bias(
        &self,
        mask: Option<&Value>,
        offset: &Offset,
        nonpad: Option<&Value>,
        sq: usize,
        skv: usize,
        cdt: CDType,
        dev: &Device,
    ) -> OpResult<CTensor> {
        let mut bias = match mask {
            Some(m) => mask_bias(m, skv, cdt)?,
            None => CTensor::zeros((sq, skv), cdt, dev)?,
        };
        if self.causal {
            bias = bias.broadcast_add(&frontier(offset, sq, skv, cdt, dev, |d| d.ge(0i64))?)?;
        }
        if self.left >= 0 || self.right >= 0 {
            let (left, right) = (self.left, self.right);
            let window = frontier(offset, sq, skv, cdt, dev, |d| {
                let mut ok = d.ones_like()?.to_dtype(CDType::U8)?;
                if left >= 0 {
                    ok = ok.minimum(&d.le(left)?)?;
                }
                if right >= 0 {
                    ok = ok.minimum(&d.ge(-right)?)?;
                }
                Ok(ok)
            })?;
            bias = bias.broadcast_add(&window)?;
        }
        if let Some(n) = nonpad {
            // Keys at or past each batch entry's valid length are padding.
            let b = n.shape()[0];
            let j = CTensor::arange(0i64, skv as i64, dev)?.unsqueeze(0)?;
            let valid = j.broadcast_lt(&n.t.unsqueeze(1)?)?;
            bias = bias.broadcast_add(&additive(&valid, cdt)?.reshape((b, 1, 1, skv))?)?;
        }
        Ok(bias)
    }
}

/// Splits (B, S, H·D) into (B, H, S, D).
fn split_heads(t: &CTensor, heads: usize, what: &str) -> OpResult<CTensor> {
    let (b, s, hidden) = t.dims3()?;
    if hidden % heads != 0 {
        return Err(failed!(
            "{what}'s hidden size {hidden} is not a multiple of {heads} heads"
        ));
    }
    Ok(t.reshape((b, s, heads, hidden / heads))?
        .transpose(1, 2)?
        .contiguous()?)
}

/// Repeats each head `n` times in place: [h0, h0, h1, h1, ...].
fn repeat_heads(t: &CTensor, n: usize) -> OpResult<CTensor> {
    let (b, h, s, d) = t.dims4()?;
    Ok(t.unsqueeze(2)?
        .broadcast_as((b, h, n, s, d))?
        .contiguous()?
        .reshape((b, h * n, s, d))?)
}

/// 0 where `allowed` (u8) is set, -inf elsewhere.
fn additive(allowed: &CTensor, cdt: CDType) -> OpResult<CTensor> {
    let zeros = CTensor::zeros(allowed.dims(), cdt, allowed.device())?;
    let neg = neg_inf(allowed.dims(), cdt, allowed.device())?;
    Ok(allowed.where_cond(&zeros, &neg)?)
}

/// A tensor of -inf in the compute dtype `cdt` (f32 or f64).
fn neg_inf(shape: &[usize], cdt: CDType, dev: &Device) -> OpResult<CTensor> {
    let dt = if cdt == CDType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    full(f64::NEG_INFINITY, shape, dt, dev)
}

/// The user's mask as an additive bias over `skv` keys: a bool mask attends where true;
/// a float mask is added as is; a mask shorter than the keys is extended with -inf.
fn mask_bias(m: &Value, skv: usize, cdt: CDType) -> OpResult<CTensor> {
    let bias = match m.dtype {
        DType::Bool => additive(&m.t, cdt)?,
        d if d.is_float() => m.t.to_dtype(cdt)?,
        d => return Err(failed!("attn_mask has dtype {d}, expected bool or float")),
    };
    let last = bias.dims().last().copied().unwrap_or(0);
    if m.rank() == 0 || last > skv {
        return Err(failed!(
            "attn_mask of shape {:?} does not fit {skv} keys",
            m.shape()
        ));
    }
    if last == skv {
        return Ok(bias);
    }
    let mut pad_shape = bias.dims().to_vec();
    let r = pad_shape.len();
    pad_shape[r - 1] = skv - last;
    let pad = neg_inf(&pad_shape, cdt, bias.device())?;
    Ok(CTensor::cat(&[&bias, &pad], r - 1)?)
}

/// An additive mask from the signed distance `d = i + offset - j` of each (query, key)
/// pair: `keep(d)` gives the u8 pairs to keep. Shape (Sq, Skv), or (B, 1, Sq, Skv) for a
/// per-batch offset.
fn frontier(
    offset: &Offset,
    sq: usize,
    skv: usize,
    cdt: CDType,
    dev: &Device,
    keep: impl Fn(&CTensor) -> candle_core::Result<CTensor>,
) -> OpResult<CTensor> {
    let (sq, skv) = (sq as i64, skv as i64);
    let d = match offset {
        Offset::Shared(o) => {
            let i = CTensor::arange(*o, o + sq, dev)?.unsqueeze(1)?;
            let j = CTensor::arange(0, skv, dev)?.unsqueeze(0)?;
            i.broadcast_sub(&j)?
        }
        Offset::PerBatch(valid) => {
            // i + valid[b] - Sq for i in 0..Sq.
            let i = CTensor::arange(-sq, 0, dev)?.reshape((1, sq as usize, 1))?;
            let j = CTensor::arange(0, skv, dev)?.reshape((1, 1, skv as usize))?;
            let b = valid.dims()[0];
            i.broadcast_add(&valid.reshape((b, 1, 1))?)?
                .broadcast_sub(&j)?
                .unsqueeze(1)?
        }
    };
    additive(&keep(&d)?, cdt)
}

/// Softmax over the last axis in `dt`, a row of only -inf giving zeros (not NaN).
fn masked_softmax(x: &CTensor, dt: CDType) -> OpResult<CTensor> {
    let x = x.to_dtype(dt)?;
    let max = x.max_keepdim(D::Minus1)?;
    let max = max
        .eq(f64::NEG_INFINITY)?
        .where_cond(&max.zeros_like()?, &max)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    let sum = sum.eq(0f64)?.where_cond(&sum.ones_like()?, &sum)?;
    Ok(e.broadcast_div(&sum)?)
}

fn build_rotary(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((3, 4), (1, 1))?;
    let a = ctx.attrs(&["interleaved", "num_heads", "rotary_embedding_dim"])?;
    let interleaved = a.int("interleaved", 0)? != 0;
    let heads = match a.int("num_heads", 0)? {
        h if h >= 0 => h as usize,
        h => return Err(failed!("attribute `num_heads` = {h} is negative")),
    };
    let rot_dim = match a.int("rotary_embedding_dim", 0)? {
        d if d >= 0 => d as usize,
        d => {
            return Err(failed!(
                "attribute `rotary_embedding_dim` = {d} is negative"
            ))
        }
    };
    super::op(move |inputs| {
        let x = input(inputs, 0)?;
        x.require_float("input")?;
        let (cos, sin) = (input(inputs, 1)?, input(inputs, 2)?);
        for (c, what) in [(cos, "cos_cache"), (sin, "sin_cache")] {
            if c.dtype != x.dtype {
                return Err(failed!(
                    "{what} has dtype {}, input has {}",
                    c.dtype,
                    x.dtype
                ));
            }
        }
        // To (B, S, H, D).
        let t = match x.rank() {
            4 => x.t.transpose(1, 2)?,
            3 => {
                let (b, s, hidden) = x.t.dims3()?;
                if heads == 0 || hidden % heads != 0 {
                    return Err(failed!(
                        "3-D input of hidden size {hidden} needs `num_heads` dividing it"
                    ));
                }
                x.t.reshape((b, s, heads, hidden / heads))?
            }
            r => return Err(failed!("input must be 3-D or 4-D, got rank {r}")),
        };
        let t = widen_half(&t)?;
        let (b, s, _, d) = t.dims4()?;
        let rd = if rot_dim == 0 { d } else { rot_dim };
        if rd > d || rd % 2 != 0 {
            return Err(failed!(
                "rotary_embedding_dim {rd} must be even and at most the head size {d}"
            ));
        }
        let (cos, sin) = match opt_input(inputs, 3) {
            Some(p) => (gather_rows(cos, p)?, gather_rows(sin, p)?),
            None => (widen_half(&cos.t)?, widen_half(&sin.t)?),
        };
        for c in [&cos, &sin] {
            if c.dims() != [b, s, rd / 2] {
                return Err(failed!(
                    "the cos/sin caches give shape {:?}, expected [{b}, {s}, {}]",
                    c.dims(),
                    rd / 2
                ));
            }
        }
        let (cos, sin) = (cos.unsqueeze(2)?, sin.unsqueeze(2)?);
        let rot = t.narrow(3, 0, rd)?;
        let (x1, x2) = if interleaved {
            let pairs = rot.reshape((b, s, t.dims()[2], rd / 2, 2))?;
            (
                pairs.narrow(4, 0, 1)?.squeeze(4)?,
                pairs.narrow(4, 1, 1)?.squeeze(4)?,
            )
        } else {
            (rot.narrow(3, 0, rd / 2)?, rot.narrow(3, rd / 2, rd / 2)?)
        };
        let real = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
        let imag = (x1.broadcast_mul(&sin)? + x2.broadcast_mul(&cos)?)?;
        let rotated = if interleaved {
            CTensor::stack(&[&real, &imag], 4)?.flatten_from(3)?
        } else {
            CTensor::cat(&[&real, &imag], 3)?
        };
        let y = if rd < d {
            CTensor::cat(&[&rotated, &t.narrow(3, rd, d - rd)?], 3)?
        } else {
            rotated
        };
        let y = if x.rank() == 4 {
            y.transpose(1, 2)?.contiguous()?
        } else {
            y.contiguous()?.reshape(x.shape())?
        };
        Ok(vec![Value::new(y.to_dtype(x.t.dtype())?, x.dtype)])
    })
}

/// `cache[position_ids]`: rows of a (max_position, D/2) cache picked by (B, S) ids.
fn gather_rows(cache: &Value, ids: &Value) -> OpResult<CTensor> {
    if cache.rank() != 2 || ids.rank() != 2 || ids.is_float() {
        return Err(unsupported!(
            "with position_ids the caches must be 2-D and the ids a 2-D integer tensor"
        ));
    }
    let rows = cache.shape()[0] as i64;
    let flat = ids.i64s("position_ids")?;
    let mut idx = Vec::with_capacity(flat.len());
    for p in flat {
        if p < 0 || p >= rows {
            return Err(failed!(
                "position id {p} is outside the cache's {rows} rows"
            ));
        }
        idx.push(p as u32);
    }
    let idx = crate::backend::candle::value::index_tensor(idx, cache.t.device())?;
    let (b, s) = (ids.shape()[0], ids.shape()[1]);
    Ok(widen_half(&cache.t)?
        .index_select(&idx, 0)?
        .reshape((b, s, cache.shape()[1]))?)
}
