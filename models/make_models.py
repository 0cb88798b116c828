"""Build parity's bundled models and their golden suites.

For each model this writes, next to this script, a suite in the ONNX backend-test
layout:

    <name>/model.onnx
    <name>/test_data_set_N/input_K.pb
    <name>/test_data_set_N/output_K.pb

Weights and inputs come from fixed seeds. Expected outputs come from a float64
numpy reference of each model's math, written by hand here (never from a backend
that parity tests), then cast to float32. The script then runs each model with
onnxruntime (CPU) and asserts that it agrees with the goldens within parity's f32
default tolerance.

Run: .venv/bin/python models/make_models.py
Running it twice gives byte-identical files.
"""

import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT_DIR = Path(__file__).resolve().parent
OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17
PRODUCER_NAME = "parity-models"
PRODUCER_VERSION = "1"
ATOL = 1e-5  # parity's f32 defaults
RTOL = 1e-4
REL_FLOOR = 1e-6  # max rel error is taken over elements with |expected| > REL_FLOOR


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


def he_normal(rng, shape, fan_in):
    return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)


def xavier_normal(rng, shape, fan_in, fan_out):
    return (rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))).astype(np.float32)


def small_normal(rng, shape, scale=0.1):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def f64(a):
    return np.asarray(a, dtype=np.float64)


def softmax_ref(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def make_model(name, nodes, inputs, outputs, weights):
    initializers = [numpy_helper.from_array(value, key) for key, value in weights.items()]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def f32_info(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# ---------------------------------------------------------------------------
# mlp: Gemm+Relu x2, Gemm -> logits, Softmax -> probs
# ---------------------------------------------------------------------------

def build_mlp():
    rng = np.random.default_rng(1001)
    weights = {  # Gemm weights are [out, in], used with transB=1
        "fc0.weight": he_normal(rng, (128, 64), 64),
        "fc0.bias": small_normal(rng, (128,)),
        "fc1.weight": he_normal(rng, (64, 128), 128),
        "fc1.bias": small_normal(rng, (64,)),
        "fc2.weight": xavier_normal(rng, (10, 64), 64, 10),
        "fc2.bias": small_normal(rng, (10,)),
    }

    nodes = [
        helper.make_node("Gemm", ["x", "fc0.weight", "fc0.bias"], ["fc0"], transB=1),
        helper.make_node("Relu", ["fc0"], ["act0"]),
        helper.make_node("Gemm", ["act0", "fc1.weight", "fc1.bias"], ["fc1"], transB=1),
        helper.make_node("Relu", ["fc1"], ["act1"]),
        helper.make_node("Gemm", ["act1", "fc2.weight", "fc2.bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    model = make_model(
        "mlp",
        nodes,
        [f32_info("x", ["batch", 64])],
        [f32_info("logits", ["batch", 10]), f32_info("probs", ["batch", 10])],
        weights,
    )
    return model, weights


def reference_mlp(weights, x):
    w = {k: f64(v) for k, v in weights.items()}
    h = f64(x)
    h = np.maximum(h @ w["fc0.weight"].T + w["fc0.bias"], 0.0)
    h = np.maximum(h @ w["fc1.weight"].T + w["fc1.bias"], 0.0)
    logits = h @ w["fc2.weight"].T + w["fc2.bias"]
    return [logits, softmax_ref(logits)]


def inputs_mlp():
    return [
        [np.random.default_rng(1100 + i).standard_normal((batch, 64)).astype(np.float32)]
        for i, batch in enumerate([1, 4, 16])
    ]


# ---------------------------------------------------------------------------
# cnn: Conv-BN-Relu-MaxPool, Conv-BN-Relu-AveragePool, Conv 1x1, GAP, Flatten, Gemm
# ---------------------------------------------------------------------------

BN_EPSILON = 1e-5


def batchnorm_params(rng, channels, prefix):
    return {
        f"{prefix}.scale": (1.0 + 0.1 * rng.standard_normal(channels)).astype(np.float32),
        f"{prefix}.bias": small_normal(rng, (channels,)),
        f"{prefix}.mean": small_normal(rng, (channels,)),
        f"{prefix}.var": rng.uniform(0.5, 1.5, channels).astype(np.float32),
    }


def build_cnn():
    rng = np.random.default_rng(2001)
    weights = {
        "conv0.weight": he_normal(rng, (16, 3, 3, 3), 3 * 9),
        "conv0.bias": small_normal(rng, (16,)),
        **batchnorm_params(rng, 16, "bn0"),
        "conv1.weight": he_normal(rng, (32, 16, 3, 3), 16 * 9),
        "conv1.bias": small_normal(rng, (32,)),
        **batchnorm_params(rng, 32, "bn1"),
        "conv2.weight": he_normal(rng, (32, 32, 1, 1), 32),
        "conv2.bias": small_normal(rng, (32,)),
        "fc.weight": xavier_normal(rng, (10, 32), 32, 10),
        "fc.bias": small_normal(rng, (10,)),
    }

    def bn(x, prefix, y):
        return helper.make_node(
            "BatchNormalization",
            [x, f"{prefix}.scale", f"{prefix}.bias", f"{prefix}.mean", f"{prefix}.var"],
            [y],
            epsilon=BN_EPSILON,
        )

    nodes = [
        helper.make_node("Conv", ["image", "conv0.weight", "conv0.bias"], ["conv0"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        bn("conv0", "bn0", "bn0"),
        helper.make_node("Relu", ["bn0"], ["act0"]),
        helper.make_node("MaxPool", ["act0"], ["pool0"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool0", "conv1.weight", "conv1.bias"], ["conv1"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], group=1),
        bn("conv1", "bn1", "bn1"),
        helper.make_node("Relu", ["bn1"], ["act1"]),
        helper.make_node("AveragePool", ["act1"], ["pool1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"], kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["conv2"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1),
    ]
    model = make_model(
        "cnn",
        nodes,
        [f32_info("image", ["batch", 3, 32, 32])],
        [f32_info("logits", ["batch", 10])],
        weights,
    )
    return model, weights


def conv2d_ref(x, w, b, pad):
    """Stride-1 2-D convolution (cross-correlation) via im2col."""
    _, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    patches = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))  # n,c,h,w,kh,kw
    return np.einsum("nchwij,ocij->nohw", patches, w) + b[None, :, None, None]


def batchnorm_ref(x, w, prefix):
    scale, bias, mean, var = (w[f"{prefix}.{k}"][None, :, None, None] for k in ("scale", "bias", "mean", "var"))
    return (x - mean) / np.sqrt(var + BN_EPSILON) * scale + bias


def pool2x2_ref(x, reduce):
    n, c, h, w = x.shape
    return reduce(x.reshape(n, c, h // 2, 2, w // 2, 2), axis=(3, 5))


def reference_cnn(weights, image):
    w = {k: f64(v) for k, v in weights.items()}
    h = f64(image)
    h = np.maximum(batchnorm_ref(conv2d_ref(h, w["conv0.weight"], w["conv0.bias"], 1), w, "bn0"), 0.0)
    h = pool2x2_ref(h, np.max)
    h = np.maximum(batchnorm_ref(conv2d_ref(h, w["conv1.weight"], w["conv1.bias"], 1), w, "bn1"), 0.0)
    h = pool2x2_ref(h, np.mean)
    h = conv2d_ref(h, w["conv2.weight"], w["conv2.bias"], 0)
    h = h.mean(axis=(2, 3))  # GlobalAveragePool + Flatten
    return [h @ w["fc.weight"].T + w["fc.bias"]]


def inputs_cnn():
    def image(seed, batch):
        u = np.random.default_rng(seed).random((batch, 3, 32, 32))
        return ((u - 0.5) * math.sqrt(12.0)).astype(np.float32)  # zero mean, unit variance

    return [[image(2100 + i, batch)] for i, batch in enumerate([1, 2, 2])]


# ---------------------------------------------------------------------------
# transformer: one pre-LN encoder block (4 heads x 16, FFN 256 with erf GELU)
# ---------------------------------------------------------------------------

D_MODEL = 64
N_HEADS = 4
HEAD_DIM = D_MODEL // N_HEADS
D_FF = 256
LN_EPSILON = 1e-5


def build_transformer():
    rng = np.random.default_rng(3001)
    weights = {}
    for prefix in ("ln1", "ln2"):
        weights[f"{prefix}.scale"] = (1.0 + 0.1 * rng.standard_normal(D_MODEL)).astype(np.float32)
        weights[f"{prefix}.bias"] = small_normal(rng, (D_MODEL,))
    for prefix, fan_in, fan_out in [
        ("q", D_MODEL, D_MODEL),
        ("k", D_MODEL, D_MODEL),
        ("v", D_MODEL, D_MODEL),
        ("out", D_MODEL, D_MODEL),
        ("ff1", D_MODEL, D_FF),
        ("ff2", D_FF, D_MODEL),
    ]:
        weights[f"{prefix}.weight"] = xavier_normal(rng, (fan_in, fan_out), fan_in, fan_out)  # [in, out]
        weights[f"{prefix}.bias"] = small_normal(rng, (fan_out,))
    weights["heads_shape"] = np.array([0, 0, N_HEADS, HEAD_DIM], dtype=np.int64)
    weights["model_shape"] = np.array([0, 0, D_MODEL], dtype=np.int64)
    weights["attn_scale"] = np.array(1.0 / math.sqrt(HEAD_DIM), dtype=np.float32)
    weights["half"] = np.array(0.5, dtype=np.float32)
    weights["one"] = np.array(1.0, dtype=np.float32)
    weights["inv_sqrt2"] = np.array(1.0 / math.sqrt(2.0), dtype=np.float32)

    def layernorm(x, prefix, y):
        return helper.make_node("LayerNormalization", [x, f"{prefix}.scale", f"{prefix}.bias"], [y],
                                axis=-1, epsilon=LN_EPSILON)

    def linear(x, prefix, y):
        return [
            helper.make_node("MatMul", [x, f"{prefix}.weight"], [f"{y}.mm"]),
            helper.make_node("Add", [f"{y}.mm", f"{prefix}.bias"], [y]),
        ]

    node = helper.make_node
    nodes = [
        layernorm("tokens", "ln1", "ln1_out"),
        *linear("ln1_out", "q", "q"),
        *linear("ln1_out", "k", "k"),
        *linear("ln1_out", "v", "v"),
        node("Reshape", ["q", "heads_shape"], ["q_heads"]),  # [b, s, h, d]
        node("Reshape", ["k", "heads_shape"], ["k_heads"]),
        node("Reshape", ["v", "heads_shape"], ["v_heads"]),
        node("Transpose", ["q_heads"], ["q_t"], perm=[0, 2, 1, 3]),  # [b, h, s, d]
        node("Transpose", ["k_heads"], ["k_t"], perm=[0, 2, 3, 1]),  # [b, h, d, s]
        node("Transpose", ["v_heads"], ["v_t"], perm=[0, 2, 1, 3]),  # [b, h, s, d]
        node("MatMul", ["q_t", "k_t"], ["scores_raw"]),  # [b, h, s, s]
        node("Mul", ["scores_raw", "attn_scale"], ["scores"]),
        node("Softmax", ["scores"], ["attn"], axis=-1),
        node("MatMul", ["attn", "v_t"], ["context_t"]),  # [b, h, s, d]
        node("Transpose", ["context_t"], ["context_heads"], perm=[0, 2, 1, 3]),  # [b, s, h, d]
        node("Reshape", ["context_heads", "model_shape"], ["context"]),  # [b, s, h*d]
        *linear("context", "out", "attn_out"),
        node("Add", ["tokens", "attn_out"], ["resid1"]),
        layernorm("resid1", "ln2", "ln2_out"),
        *linear("ln2_out", "ff1", "ff1"),
        node("Mul", ["ff1", "inv_sqrt2"], ["gelu.scaled"]),
        node("Erf", ["gelu.scaled"], ["gelu.erf"]),
        node("Add", ["gelu.erf", "one"], ["gelu.erf1"]),
        node("Mul", ["ff1", "gelu.erf1"], ["gelu.prod"]),
        node("Mul", ["gelu.prod", "half"], ["gelu"]),
        *linear("gelu", "ff2", "ff2"),
        node("Add", ["resid1", "ff2"], ["hidden"]),
    ]
    model = make_model(
        "transformer",
        nodes,
        [f32_info("tokens", ["batch", "seq", D_MODEL])],
        [f32_info("hidden", ["batch", "seq", D_MODEL])],
        weights,
    )
    return model, weights


def layernorm_ref(x, scale, bias):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPSILON) * scale + bias


erf_ref = np.vectorize(math.erf, otypes=[np.float64])


def reference_transformer(weights, tokens):
    w = {k: f64(v) for k, v in weights.items()}
    x = f64(tokens)
    batch, seq, _ = x.shape

    def linear(h, prefix):
        return h @ w[f"{prefix}.weight"] + w[f"{prefix}.bias"]

    def split_heads(h):  # [b, s, h*d] -> [b, h, s, d]
        return h.reshape(batch, seq, N_HEADS, HEAD_DIM).transpose(0, 2, 1, 3)

    h = layernorm_ref(x, w["ln1.scale"], w["ln1.bias"])
    q, k, v = (split_heads(linear(h, p)) for p in ("q", "k", "v"))
    attn = softmax_ref(q @ k.transpose(0, 1, 3, 2) / math.sqrt(HEAD_DIM), axis=-1)
    context = (attn @ v).transpose(0, 2, 1, 3).reshape(batch, seq, D_MODEL)
    x = x + linear(context, "out")

    h = linear(layernorm_ref(x, w["ln2.scale"], w["ln2.bias"]), "ff1")
    h = 0.5 * h * (1.0 + erf_ref(h / math.sqrt(2.0)))
    return [x + linear(h, "ff2")]


def inputs_transformer():
    return [
        [np.random.default_rng(3100 + i).standard_normal((batch, seq, D_MODEL)).astype(np.float32)]
        for i, (batch, seq) in enumerate([(1, 8), (2, 16), (1, 32)])
    ]


# ---------------------------------------------------------------------------
# lm: a decoder-only language model with a KV cache (a generation suite)
# ---------------------------------------------------------------------------

LM_VOCAB = 64
LM_D = 32
LM_HEADS = 2
LM_HEAD_DIM = LM_D // LM_HEADS
LM_FF = 64
LM_LAYERS = 2
LM_POSITIONS = 64
LM_BLOCKED = -1e9  # the additive bias of a masked (future or padded) key
LM_PROMPTS = [[1, 2, 3, 4], [10, 20, 30], [5], [7, 7, 7, 7, 7, 7]]
LM_NEW_TOKENS = 16
LM_TOP = 5


def build_lm():
    rng = np.random.default_rng(4001)
    weights = {
        "tok_emb": small_normal(rng, (LM_VOCAB, LM_D), 1.0),
        "pos_emb": small_normal(rng, (LM_POSITIONS, LM_D), 0.3),
    }
    layer_names = [f"layer{l}" for l in range(LM_LAYERS)]
    for prefix in [f"{n}.{ln}" for n in layer_names for ln in ("ln1", "ln2")] + ["ln_f"]:
        weights[f"{prefix}.scale"] = (1.0 + 0.1 * rng.standard_normal(LM_D)).astype(np.float32)
        weights[f"{prefix}.bias"] = small_normal(rng, (LM_D,))
    for n in layer_names:
        for part, fan_in, fan_out in [("q", LM_D, LM_D), ("k", LM_D, LM_D), ("v", LM_D, LM_D),
                                      ("out", LM_D, LM_D), ("ff1", LM_D, LM_FF), ("ff2", LM_FF, LM_D)]:
            weights[f"{n}.{part}.weight"] = xavier_normal(rng, (fan_in, fan_out), fan_in, fan_out)
            weights[f"{n}.{part}.bias"] = small_normal(rng, (fan_out,))
    # Scaled up so that the greedy choice is rarely a near-tie.
    weights["lm_head"] = xavier_normal(rng, (LM_D, LM_VOCAB), LM_D, LM_VOCAB) * np.float32(4.0)
    weights["heads_shape"] = np.array([0, 0, LM_HEADS, LM_HEAD_DIM], dtype=np.int64)
    weights["model_shape"] = np.array([0, 0, LM_D], dtype=np.int64)
    weights["attn_scale"] = np.array(1.0 / math.sqrt(LM_HEAD_DIM), dtype=np.float32)
    weights["half"] = np.array(0.5, dtype=np.float32)
    weights["one"] = np.array(1.0, dtype=np.float32)
    weights["inv_sqrt2"] = np.array(1.0 / math.sqrt(2.0), dtype=np.float32)
    weights["blocked"] = np.array(LM_BLOCKED, dtype=np.float32)
    weights["open"] = np.array(0.0, dtype=np.float32)
    weights["zero_i"] = np.array(0, dtype=np.int64)
    weights["one_i"] = np.array(1, dtype=np.int64)
    weights["axis0"] = np.array([0], dtype=np.int64)
    weights["axis1"] = np.array([1], dtype=np.int64)
    weights["axes12"] = np.array([1, 2], dtype=np.int64)

    node = helper.make_node

    def layernorm(x, prefix, y):
        return node("LayerNormalization", [x, f"{prefix}.scale", f"{prefix}.bias"], [y],
                    axis=-1, epsilon=LN_EPSILON)

    def linear(x, prefix, y):
        return [node("MatMul", [x, f"{prefix}.weight"], [f"{y}.mm"]),
                node("Add", [f"{y}.mm", f"{prefix}.bias"], [y])]

    nodes = [
        # The attention bias [batch, 1, seq, total]: a key is blocked when it is in the
        # query's future (causal, positions counted over past + seq) or padding.
        node("Shape", ["input_ids"], ["ids_shape"]),
        node("Gather", ["ids_shape", "one_i"], ["seq_len"], axis=0),
        node("Shape", ["attention_mask"], ["mask_shape"]),
        node("Gather", ["mask_shape", "one_i"], ["total_len"], axis=0),
        node("Sub", ["total_len", "seq_len"], ["past_len"]),
        node("Range", ["past_len", "total_len", "one_i"], ["query_pos"]),
        node("Range", ["zero_i", "total_len", "one_i"], ["key_pos"]),
        node("Unsqueeze", ["query_pos", "axis1"], ["query_col"]),  # [seq, 1]
        node("Unsqueeze", ["key_pos", "axis0"], ["key_row"]),  # [1, total]
        node("Greater", ["key_row", "query_col"], ["future"]),  # [seq, total]
        node("Equal", ["attention_mask", "zero_i"], ["padding"]),  # [batch, total]
        node("Unsqueeze", ["padding", "axes12"], ["padding4"]),  # [batch, 1, 1, total]
        node("Or", ["future", "padding4"], ["blocked_keys"]),  # [batch, 1, seq, total]
        node("Where", ["blocked_keys", "blocked", "open"], ["attn_bias"]),
        node("Gather", ["tok_emb", "input_ids"], ["tok"], axis=0),
        node("Gather", ["pos_emb", "position_ids"], ["pos"], axis=0),
        node("Add", ["tok", "pos"], ["x0"]),
    ]
    x = "x0"
    for l, n in enumerate(layer_names):
        p = n
        nodes += [
            layernorm(x, f"{p}.ln1", f"{p}.h"),
            *linear(f"{p}.h", f"{p}.q", f"{p}.q"),
            *linear(f"{p}.h", f"{p}.k", f"{p}.k"),
            *linear(f"{p}.h", f"{p}.v", f"{p}.v"),
        ]
        for part in ("q", "k", "v"):
            nodes += [
                node("Reshape", [f"{p}.{part}", "heads_shape"], [f"{p}.{part}.heads"]),
                node("Transpose", [f"{p}.{part}.heads"], [f"{p}.{part}.t"], perm=[0, 2, 1, 3]),
            ]
        nodes += [
            node("Concat", [f"past_key_values.{l}.key", f"{p}.k.t"], [f"present.{l}.key"], axis=2),
            node("Concat", [f"past_key_values.{l}.value", f"{p}.v.t"], [f"present.{l}.value"], axis=2),
            node("Transpose", [f"present.{l}.key"], [f"{p}.keys_t"], perm=[0, 1, 3, 2]),
            node("MatMul", [f"{p}.q.t", f"{p}.keys_t"], [f"{p}.scores_raw"]),
            node("Mul", [f"{p}.scores_raw", "attn_scale"], [f"{p}.scores_scaled"]),
            node("Add", [f"{p}.scores_scaled", "attn_bias"], [f"{p}.scores"]),
            node("Softmax", [f"{p}.scores"], [f"{p}.attn"], axis=-1),
            node("MatMul", [f"{p}.attn", f"present.{l}.value"], [f"{p}.ctx_t"]),
            node("Transpose", [f"{p}.ctx_t"], [f"{p}.ctx_heads"], perm=[0, 2, 1, 3]),
            node("Reshape", [f"{p}.ctx_heads", "model_shape"], [f"{p}.ctx"]),
            *linear(f"{p}.ctx", f"{p}.out", f"{p}.attn_out"),
            node("Add", [x, f"{p}.attn_out"], [f"{p}.resid1"]),
            layernorm(f"{p}.resid1", f"{p}.ln2", f"{p}.h2"),
            *linear(f"{p}.h2", f"{p}.ff1", f"{p}.ff1"),
            node("Mul", [f"{p}.ff1", "inv_sqrt2"], [f"{p}.gelu.scaled"]),
            node("Erf", [f"{p}.gelu.scaled"], [f"{p}.gelu.erf"]),
            node("Add", [f"{p}.gelu.erf", "one"], [f"{p}.gelu.erf1"]),
            node("Mul", [f"{p}.ff1", f"{p}.gelu.erf1"], [f"{p}.gelu.prod"]),
            node("Mul", [f"{p}.gelu.prod", "half"], [f"{p}.gelu"]),
            *linear(f"{p}.gelu", f"{p}.ff2", f"{p}.ff2"),
            node("Add", [f"{p}.resid1", f"{p}.ff2"], [f"{p}.out_x"]),
        ]
        x = f"{p}.out_x"
    nodes += [
        layernorm(x, "ln_f", "final"),
        node("MatMul", ["final", "lm_head"], ["logits"]),
    ]
    ids = lambda name, dims: helper.make_tensor_value_info(name, TensorProto.INT64, dims)
    cache = ["batch", LM_HEADS, "past", LM_HEAD_DIM]
    present = ["batch", LM_HEADS, "total", LM_HEAD_DIM]
    inputs = [ids("input_ids", ["batch", "seq"]), ids("attention_mask", ["batch", "total"]),
              ids("position_ids", ["batch", "seq"])]
    outputs = [f32_info("logits", ["batch", "seq", LM_VOCAB])]
    for l in range(LM_LAYERS):
        for t in ("key", "value"):
            inputs.append(f32_info(f"past_key_values.{l}.{t}", cache))
            outputs.append(f32_info(f"present.{l}.{t}", present))
    return make_model("lm", nodes, inputs, outputs, weights), weights


def reference_lm_step(w, ids, mask, positions, past):
    """One decoding step in float64: logits [batch, seq, vocab] and the present cache."""
    batch, seq = ids.shape
    total = mask.shape[1]
    past_len = total - seq
    future = np.arange(total)[None, :] > np.arange(past_len, total)[:, None]  # [seq, total]
    blocked = future[None, None, :, :] | (mask == 0)[:, None, None, :]
    bias = np.where(blocked, LM_BLOCKED, 0.0)
    x = w["tok_emb"][ids] + w["pos_emb"][positions]

    def linear(h, prefix):
        return h @ w[f"{prefix}.weight"] + w[f"{prefix}.bias"]

    def split_heads(h):
        return h.reshape(batch, seq, LM_HEADS, LM_HEAD_DIM).transpose(0, 2, 1, 3)

    present = []
    for l in range(LM_LAYERS):
        p = f"layer{l}"
        h = layernorm_ref(x, w[f"{p}.ln1.scale"], w[f"{p}.ln1.bias"])
        q, k, v = (split_heads(linear(h, f"{p}.{part}")) for part in ("q", "k", "v"))
        keys = np.concatenate([past[2 * l], k], axis=2)
        values = np.concatenate([past[2 * l + 1], v], axis=2)
        present += [keys, values]
        scores = q @ keys.transpose(0, 1, 3, 2) / math.sqrt(LM_HEAD_DIM) + bias
        ctx = (softmax_ref(scores, axis=-1) @ values).transpose(0, 2, 1, 3).reshape(batch, seq, LM_D)
        x = x + linear(ctx, f"{p}.out")
        h = linear(layernorm_ref(x, w[f"{p}.ln2.scale"], w[f"{p}.ln2.bias"]), f"{p}.ff1")
        h = 0.5 * h * (1.0 + erf_ref(h / math.sqrt(2.0)))
        x = x + linear(h, f"{p}.ff2")
    logits = layernorm_ref(x, w["ln_f.scale"], w["ln_f.bias"]) @ w["lm_head"]
    return logits, present


def greedy(step, prompt, new_tokens, cast):
    """Greedy decoding as parity decodes: the prompt as the first step with an empty past,
    then one token per step; `step(ids, mask, positions, past)` -> (logits, present).
    Returns the tokens and each step's last-position logits."""
    ids = np.array([prompt], dtype=np.int64)
    mask = np.ones((1, len(prompt)), dtype=np.int64)
    positions = np.arange(len(prompt), dtype=np.int64)[None, :]
    past = [cast(np.zeros((1, LM_HEADS, 0, LM_HEAD_DIM))) for _ in range(2 * LM_LAYERS)]
    tokens, rows = [], []
    for _ in range(new_tokens):
        logits, past = step(ids, mask, positions, past)
        row = logits[0, -1]
        token = int(np.argmax(row))
        tokens.append(token)
        rows.append(row)
        ids = np.array([[token]], dtype=np.int64)
        mask = np.concatenate([mask, np.ones((1, 1), dtype=np.int64)], axis=1)
        positions = positions[:, -1:] + 1
    return tokens, np.stack(rows)


def log_softmax(row):
    m = row.max()
    return row - (m + np.log(np.exp(row - m).sum()))


def write_npz(path, arrays):
    """An uncompressed .npz with fixed timestamps, so reruns are byte-identical."""
    import io
    import zipfile
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, array in arrays:
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, buf.getvalue())


LM_MANIFEST = f"""# Generation suite of the bundled decoder-only model, written by models/make_models.py.
# Each test_data_set_N.npz holds a prompt (prompt_ids), the greedy tokens and every step's
# logits computed by the script's float64 numpy reference (top_tokens/top_logprobs: its
# top-{LM_TOP} per step, for people); `parity check` decodes each prompt with the KV cache on
# every backend and judges the tokens and logits (docs/generate.md).

[generate]
max_new_tokens = {LM_NEW_TOKENS}
top_logprobs = {LM_TOP}
batch = 1

[outputs.logits]
atol = {ATOL}
rtol = {RTOL}
"""


def make_lm_suite():
    suite_dir = OUT_DIR / "lm"
    if suite_dir.exists():
        shutil.rmtree(suite_dir)
    suite_dir.mkdir()
    model, weights = build_lm()
    model_path = suite_dir / "model.onnx"
    model_path.write_bytes(model.SerializeToString())
    print(f"lm: {model_path.stat().st_size} bytes, ops: "
          f"{', '.join(sorted({n.op_type for n in model.graph.node}))}")
    w = {k: f64(v) for k, v in weights.items()}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in model.graph.input]

    def ort_step(ids, mask, positions, past):
        out = session.run(None, dict(zip(names, [ids, mask, positions, *past])))
        return out[0], out[1:]

    f32 = lambda a: a.astype(np.float32)
    for n, prompt in enumerate(LM_PROMPTS):
        tokens, logits = greedy(lambda *a: reference_lm_step(w, *a), prompt, LM_NEW_TOKENS, f64)
        top = [np.argsort(-row, kind="stable")[:LM_TOP] for row in logits]
        write_npz(suite_dir / f"test_data_set_{n}.npz", [
            ("prompt_ids", np.array(prompt, dtype=np.int64)),
            ("tokens", np.array(tokens, dtype=np.int64)),
            ("logits", logits.astype(np.float32)),
            ("top_tokens", np.array(top, dtype=np.int64)),
            ("top_logprobs", np.array([log_softmax(r)[t] for r, t in zip(logits, top)])),
        ])
        ort_tokens, ort_logits = greedy(ort_step, prompt, LM_NEW_TOKENS, f32)
        gaps = [sorted(r)[-1] - sorted(r)[-2] for r in logits]
        used = float((np.abs(f64(ort_logits) - logits) / (ATOL + RTOL * np.abs(logits))).max())
        ok = ort_tokens == tokens and used <= 1.0
        print(f"  test_data_set_{n}: prompt {prompt} -> {tokens}; smallest top-2 gap {min(gaps):.3f}; "
              f"onnxruntime tokens {'equal' if ort_tokens == tokens else 'DIFFER'}, "
              f"logits tolerance_used={used:.3f} {'ok' if ok else 'MISMATCH'}")
        assert ok, f"{model_path}: onnxruntime's generation differs from the golden"
    (suite_dir / "parity.toml").write_text(LM_MANIFEST)


# ---------------------------------------------------------------------------
# Writing and checking suites
# ---------------------------------------------------------------------------

MODELS = [
    ("mlp", build_mlp, reference_mlp, inputs_mlp),
    ("cnn", build_cnn, reference_cnn, inputs_cnn),
    ("transformer", build_transformer, reference_transformer, inputs_transformer),
]


def write_tensor(path, array, name):
    path.write_bytes(numpy_helper.from_array(array, name).SerializeToString())


def check_against_ort(model_path, input_names, output_names, inputs, goldens):
    """Run the written model with onnxruntime CPU; print and assert agreement with the goldens."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    actuals = session.run(output_names, dict(zip(input_names, inputs)))
    for name, actual, expected in zip(output_names, actuals, goldens):
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, name
        a, e = f64(actual), f64(expected)
        abs_err = np.abs(a - e)
        significant = np.abs(e) > REL_FLOOR
        max_rel = float((abs_err[significant] / np.abs(e[significant])).max(initial=0.0))
        tolerance_used = float((abs_err / (ATOL + RTOL * np.abs(e))).max())  # <= 1 passes
        ok = tolerance_used <= 1.0
        print(f"    {name:8s} shape={list(expected.shape)!s:16s} max_abs_err={abs_err.max():.3e} "
              f"max_rel_err={max_rel:.3e} tolerance_used={tolerance_used:.3f} {'ok' if ok else 'MISMATCH'}")
        assert ok, f"{model_path}: onnxruntime output {name!r} differs from the golden"


def make_suite(name, build, reference, make_inputs):
    suite_dir = OUT_DIR / name
    if suite_dir.exists():
        shutil.rmtree(suite_dir)
    suite_dir.mkdir()

    model, weights = build()
    model_path = suite_dir / "model.onnx"
    model_path.write_bytes(model.SerializeToString())
    input_names = [i.name for i in model.graph.input]
    output_names = [o.name for o in model.graph.output]
    print(f"{name}: {model_path.stat().st_size} bytes, ops: "
          f"{', '.join(sorted({n.op_type for n in model.graph.node}))}")

    for n, inputs in enumerate(make_inputs()):
        goldens = [out.astype(np.float32) for out in reference(weights, *inputs)]
        data_dir = suite_dir / f"test_data_set_{n}"
        data_dir.mkdir()
        for k, (input_name, array) in enumerate(zip(input_names, inputs)):
            write_tensor(data_dir / f"input_{k}.pb", array, input_name)
        for k, (output_name, array) in enumerate(zip(output_names, goldens)):
            write_tensor(data_dir / f"output_{k}.pb", array, output_name)
        print(f"  test_data_set_{n}: input shapes {[list(a.shape) for a in inputs]}")
        check_against_ort(model_path, input_names, output_names, inputs, goldens)


def main():
    for entry in MODELS:
        make_suite(*entry)
    make_lm_suite()


if __name__ == "__main__":
    main()
