"""Differential battery for the candle-cpu interpreter: ~250 small models with random
inputs, with onnxruntime's outputs as the expected values, written in the ONNX backend-test
layout under OUT/node/. Run the interpreter over them with

    .venv/bin/python scripts/candle-ort-battery.py /tmp/ortcases
    PARITY_ONNX_NODE_DATA=/tmp/ortcases cargo test --lib backend::candle::tests::node_test_sweep -- --ignored --nocapture

Any MISMATCH is a candle-cpu bug or an unrecognised ambiguity (refuse it); ERRORs are refusals.
"""
import os, sys, shutil
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper
import onnxruntime as ort

OUT = sys.argv[1]
rng = np.random.default_rng(0)
NP2ONNX = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.int64: TensorProto.INT64,
           np.int32: TensorProto.INT32, np.bool_: TensorProto.BOOL, np.uint8: TensorProto.UINT8,
           np.float16: TensorProto.FLOAT16, np.int8: TensorProto.INT8}

def case(name, opset, nodes, inputs, init=(), outputs=None):
    """inputs: list of (name, array); outputs: list of names (types from ORT)."""
    ins = [helper.make_tensor_value_info(n, NP2ONNX[a.dtype.type], list(a.shape)) for n, a in inputs]
    outs_names = outputs or [nodes[-1].output[0]]
    # infer output types by running once with untyped outputs
    g = helper.make_graph(nodes, name, ins, [helper.make_value_info(o, onnx.TypeProto()) for o in outs_names],
                          initializer=[numpy_helper.from_array(a, n) for n, a in init])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    try:
        m2 = onnx.shape_inference.infer_shapes(m)
        vi = {v.name: v for v in list(m2.graph.value_info) + list(m2.graph.output)}
        g.ClearField("output")
        for o in outs_names:
            t = vi[o].type.tensor_type
            g.output.append(helper.make_tensor_value_info(o, t.elem_type, None))
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        res = sess.run(outs_names, {n: a for n, a in inputs})
    except Exception as e:
        print("SKIP", name, str(e).splitlines()[0][:150]); return
    d = os.path.join(OUT, "node", name); shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    open(os.path.join(d, "model.onnx"), "wb").write(m.SerializeToString())
    for i, (n, a) in enumerate(inputs):
        open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb").write(numpy_helper.from_array(a, n).SerializeToString())
    for i, (n, a) in enumerate(zip(outs_names, res)):
        open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb").write(numpy_helper.from_array(np.asarray(a), n).SerializeToString())

def r(*shape, dtype=np.float32, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)
N = helper.make_node
x4 = r(1, 2, 5, 7)

# Upsample / Resize-10 with non-integer scales
for opset in (9, 10):
    for mode in ("nearest", "linear"):
        for sc in ([1, 1, 2, 3], [1, 1, 1.5, 2.7], [1, 1, 0.6, 0.5]):
            op = "Upsample"
            case(f"up_{opset}_{mode}_{'_'.join(str(s).replace('.','p') for s in sc)}", opset,
                 [N(op, ["x", "s"], ["y"], mode=mode)], [("x", x4)], init=[("s", np.array(sc, np.float32))])
            case(f"rs10_{opset}_{mode}_{'_'.join(str(s).replace('.','p') for s in sc)}", 10,
                 [N("Resize", ["x", "s"], ["y"], mode=mode)], [("x", x4)], init=[("s", np.array(sc, np.float32))])
# Resize 13 variants
for mode in ("nearest", "linear", "cubic"):
    for ct in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"):
        for nm in (["round_prefer_floor", "floor", "ceil", "round_prefer_ceil"] if mode == "nearest" else ["round_prefer_floor"]):
            for sc in ([1, 1, 1.7, 2.3], [1, 1, 0.55, 0.8]):
                case(f"rs13_{mode}_{ct}_{nm}_{sc[2]}".replace(".", "p"), 13,
                     [N("Resize", ["x", "", "s"], ["y"], mode=mode, coordinate_transformation_mode=ct, nearest_mode=nm, exclude_outside=int(mode=="cubic" and sc[2] < 1))],
                     [("x", x4)], init=[("s", np.array(sc, np.float32))])
    case(f"rs13_sizes_{mode}", 13, [N("Resize", ["x", "", "", "sz"], ["y"], mode=mode)], [("x", x4)], init=[("sz", np.array([1, 2, 9, 4], np.int64))])

# Pools with ceil_mode / count_include_pad / dilations
xp = r(2, 3, 9, 10)
for ceil in (0, 1):
    for cip in (0, 1):
        case(f"avgpool_c{ceil}_p{cip}", 19, [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 4], strides=[2, 3], pads=[1, 2, 1, 0], ceil_mode=ceil, count_include_pad=cip)], [("x", xp)])
        case(f"avgpool_dil_c{ceil}_p{cip}", 19, [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 3], strides=[2, 2], dilations=[2, 1], pads=[1, 1, 1, 1], ceil_mode=ceil, count_include_pad=cip)], [("x", xp)])
    case(f"maxpool_c{ceil}", 12, [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 0, 1], dilations=[1, 2], ceil_mode=ceil)], [("x", xp)])
for ap in ("SAME_UPPER", "SAME_LOWER", "VALID"):
    case(f"maxpool_{ap}", 12, [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 3], auto_pad=ap)], [("x", xp)])
    case(f"avgpool_{ap}", 12, [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 3], auto_pad=ap)], [("x", xp)])
    case(f"conv_{ap}", 13, [N("Conv", ["x", "w"], ["y"], strides=[2, 3], dilations=[1, 2], auto_pad=ap)], [("x", xp)], init=[("w", r(4, 3, 3, 2))])
case("lppool", 18, [N("LpPool", ["x"], ["y"], kernel_shape=[2, 3], p=3, strides=[1, 2])], [("x", xp)])
# Conv/ConvTranspose variants
case("conv_group_asym", 13, [N("Conv", ["x", "w", "b"], ["y"], group=3, pads=[0, 1, 2, 0], strides=[1, 2], dilations=[2, 1])], [("x", r(2, 6, 8, 9))], init=[("w", r(9, 2, 3, 3)), ("b", r(9))])
case("conv1d", 13, [N("Conv", ["x", "w"], ["y"], pads=[2, 1], strides=[3])], [("x", r(2, 4, 17))], init=[("w", r(5, 4, 4))])
case("conv3d_group", 13, [N("Conv", ["x", "w"], ["y"], group=2, pads=[1, 0, 1, 0, 1, 1])], [("x", r(1, 4, 5, 6, 4))], init=[("w", r(6, 2, 2, 3, 2))])
case("convt_group_dil", 13, [N("ConvTranspose", ["x", "w", "b"], ["y"], group=2, strides=[2, 3], dilations=[2, 1], pads=[1, 0, 0, 2], output_padding=[1, 0])], [("x", r(2, 4, 5, 4))], init=[("w", r(4, 3, 3, 3)), ("b", r(6))])
case("convt1d", 13, [N("ConvTranspose", ["x", "w"], ["y"], strides=[2])], [("x", r(1, 3, 6))], init=[("w", r(3, 2, 4))])
case("convt3d", 13, [N("ConvTranspose", ["x", "w"], ["y"], strides=[1, 2, 2], pads=[0, 1, 1, 0, 0, 1])], [("x", r(1, 2, 3, 4, 3))], init=[("w", r(2, 3, 2, 3, 3))])
# Elementwise odds
xe = np.array([-3.5, -2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 100.0, -100.0, np.nan, np.inf, -np.inf], np.float32)
for op in ("Relu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Round", "Sign", "Abs", "Neg", "Exp", "Erf", "Floor", "Ceil", "Elu", "Selu", "HardSwish", "Mish", "Sin", "Cos", "Atan", "Sinh", "Cosh", "Asinh"):
    case(f"u_{op}", 18 if op != "Mish" else 18, [N(op, ["x"], ["y"])], [("x", xe)])
case("u_Gelu_tanh", 20, [N("Gelu", ["x"], ["y"], approximate="tanh")], [("x", xe)])
case("u_Gelu", 20, [N("Gelu", ["x"], ["y"])], [("x", xe)])
case("u_LeakyRelu", 16, [N("LeakyRelu", ["x"], ["y"], alpha=0.3)], [("x", xe)])
case("u_HardSigmoid", 6, [N("HardSigmoid", ["x"], ["y"], alpha=0.3, beta=0.4)], [("x", xe)])
case("u_ThresholdedRelu", 10, [N("ThresholdedRelu", ["x"], ["y"], alpha=0.4)], [("x", xe)])
case("u_Celu", 12, [N("Celu", ["x"], ["y"], alpha=0.7)], [("x", xe)])
case("u_Shrink", 9, [N("Shrink", ["x"], ["y"], lambd=1.0, bias=0.3)], [("x", xe)])
case("u_Clip11", 11, [N("Clip", ["x", "lo", "hi"], ["y"])], [("x", xe)], init=[("lo", np.array(-1.0, np.float32)), ("hi", np.array(2.0, np.float32))])
case("u_Clip_int", 13, [N("Clip", ["x", "lo", "hi"], ["y"])], [("x", np.arange(-5, 5, dtype=np.int64))], init=[("lo", np.array(-2, np.int64)), ("hi", np.array(3, np.int64))])
case("isnan", 13, [N("IsNaN", ["x"], ["y"])], [("x", xe)])
case("isinf", 10, [N("IsInf", ["x"], ["y"], detect_negative=0)], [("x", xe)])
xa, xb = r(3, 4, scale=5), r(3, 4, scale=3)
case("mod_fmod", 13, [N("Mod", ["a", "b"], ["y"], fmod=1)], [("a", xa), ("b", xb)])
case("mod_int", 13, [N("Mod", ["a", "b"], ["y"])], [("a", np.array([-7, 7, -7, 7, 0, 9], np.int64)), ("b", np.array([3, -3, -3, 3, 5, 4], np.int64))])
case("pow_bcast", 15, [N("Pow", ["a", "b"], ["y"])], [("a", xa), ("b", np.array([2, 3, 0.5, -1], np.float32))])
case("pow_int_exp", 15, [N("Pow", ["a", "b"], ["y"])], [("a", xa), ("b", np.array([2, 3, 0, -1], np.int64))])
case("max_nan", 13, [N("Max", ["a", "b"], ["y"])], [("a", np.array([1, np.nan, 3], np.float32)), ("b", np.array([np.nan, 2, 1], np.float32))])
case("min_3", 13, [N("Min", ["a", "b", "c"], ["y"])], [("a", r(2, 3)), ("b", r(3)), ("c", r(2, 1))])
case("mean_3", 13, [N("Mean", ["a", "b", "c"], ["y"])], [("a", r(2, 3)), ("b", r(3)), ("c", r(2, 1))])
case("where_bcast", 16, [N("Where", ["c", "a", "b"], ["y"])], [("c", rng.random((2, 1, 4)) > 0.5), ("a", r(3, 1)), ("b", r(1, 3, 4))])
case("prelu_bcast", 16, [N("PRelu", ["x", "s"], ["y"])], [("x", r(2, 3, 4))], init=[("s", r(3, 1))])
case("div_int", 14, [N("Div", ["a", "b"], ["y"])], [("a", np.array([-7, 7, -7, 9], np.int32)), ("b", np.array([2, -2, -2, 4], np.int32))])
# Cast
case("cast_f_i32", 13, [N("Cast", ["x"], ["y"], to=TensorProto.INT32)], [("x", np.array([-2.7, -0.5, 0.5, 2.7, 1e5], np.float32))])
case("cast_f_u8", 13, [N("Cast", ["x"], ["y"], to=TensorProto.UINT8)], [("x", np.array([0.0, 2.7, 200.5, 255.0], np.float32))])
case("cast_i64_i8", 13, [N("Cast", ["x"], ["y"], to=TensorProto.INT8)], [("x", np.array([-129, 127, 128, 300, -5], np.int64))])
case("cast_f_bool", 13, [N("Cast", ["x"], ["y"], to=TensorProto.BOOL)], [("x", xe)])
case("cast_f_f16", 13, [N("Cast", ["x"], ["y"], to=TensorProto.FLOAT16)], [("x", r(20, scale=100))])
case("castlike", 15, [N("CastLike", ["x", "t"], ["y"])], [("x", r(5, scale=10)), ("t", np.array([1], np.int64))])
# Shape ops
case("slice_neg_step", 13, [N("Slice", ["x", "s", "e", "a", "st"], ["y"])], [("x", r(5, 6, 7))],
     init=[("s", np.array([-1, 5, 0], np.int64)), ("e", np.array([-100, 0, 100], np.int64)), ("a", np.array([0, 1, 2], np.int64)), ("st", np.array([-2, -3, 3], np.int64))])
case("slice_big", 13, [N("Slice", ["x", "s", "e"], ["y"])], [("x", r(5, 6))], init=[("s", np.array([2, -1000], np.int64)), ("e", np.array([2**62, 4], np.int64))])
case("pad_reflect_big", 13, [N("Pad", ["x", "p"], ["y"], mode="reflect")], [("x", r(2, 5))], init=[("p", np.array([1, 4, 0, 3], np.int64))])
case("pad_edge_neg", 13, [N("Pad", ["x", "p"], ["y"], mode="edge")], [("x", r(4, 5))], init=[("p", np.array([-1, 2, 2, -2], np.int64))])
case("pad_const_neg", 13, [N("Pad", ["x", "p", "v"], ["y"], mode="constant")], [("x", r(4, 5))], init=[("p", np.array([-1, 2, 2, -2], np.int64)), ("v", np.array(1.5, np.float32))])
case("pad_axes", 18, [N("Pad", ["x", "p", "", "ax"], ["y"], mode="reflect")], [("x", r(3, 4, 5))], init=[("p", np.array([1, 2, 2, 1], np.int64)), ("ax", np.array([-1, 0], np.int64))])
case("pad_wrap", 19, [N("Pad", ["x", "p"], ["y"], mode="wrap")], [("x", r(3, 4))], init=[("p", np.array([1, 2, 2, 5], np.int64))])
case("split18_uneven", 18, [N("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3)], [("x", r(2, 7))], outputs=["a", "b", "c"])
case("tile", 13, [N("Tile", ["x", "r"], ["y"])], [("x", r(2, 3))], init=[("r", np.array([3, 2], np.int64))])
case("expand", 13, [N("Expand", ["x", "s"], ["y"])], [("x", r(3, 1))], init=[("s", np.array([2, 1, 4], np.int64))])
case("gather_neg", 13, [N("Gather", ["x", "i"], ["y"], axis=1)], [("x", r(3, 4, 2))], init=[("i", np.array([[-1, 0], [2, -4]], np.int64))])
case("gather_scalar", 13, [N("Gather", ["x", "i"], ["y"], axis=0)], [("x", r(3, 4))], init=[("i", np.array(-2, np.int64))])
case("depth2space_dcr", 13, [N("DepthToSpace", ["x"], ["y"], blocksize=2)], [("x", r(1, 8, 2, 3))])
case("depth2space_crd", 13, [N("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD")], [("x", r(1, 8, 2, 3))])
case("space2depth", 13, [N("SpaceToDepth", ["x"], ["y"], blocksize=2)], [("x", r(1, 2, 4, 6))])
case("flatten_neg", 13, [N("Flatten", ["x"], ["y"], axis=-2)], [("x", r(2, 3, 4, 5))])
case("transpose_default", 13, [N("Transpose", ["x"], ["y"])], [("x", r(2, 3, 4))])
case("reshape_allowzero", 14, [N("Reshape", ["x", "s"], ["y"], allowzero=0)], [("x", r(2, 3, 4))], init=[("s", np.array([0, -1, 2], np.int64))])
case("trilu_upper", 14, [N("Trilu", ["x", "k"], ["y"])], [("x", r(2, 4, 5))], init=[("k", np.array(-1, np.int64))])
case("trilu_lower", 14, [N("Trilu", ["x", "k"], ["y"], upper=0)], [("x", r(2, 4, 5))], init=[("k", np.array(2, np.int64))])
case("cumsum", 14, [N("CumSum", ["x", "a"], ["y"])], [("x", r(3, 4))], init=[("a", np.array(1, np.int64))])
case("cumsum_rev_excl", 14, [N("CumSum", ["x", "a"], ["y"], reverse=1, exclusive=1)], [("x", r(3, 4))], init=[("a", np.array(0, np.int64))])
case("gather_elements", 13, [N("GatherElements", ["x", "i"], ["y"], axis=1)], [("x", r(3, 4))], init=[("i", np.array([[0, -1], [2, 1], [3, 3]], np.int64))])
case("gather_nd", 13, [N("GatherND", ["x", "i"], ["y"], batch_dims=1)], [("x", r(2, 3, 4))], init=[("i", np.array([[[1, 2], [0, 3]], [[2, 0], [1, 1]]], np.int64))])
case("scatter_nd", 16, [N("ScatterND", ["x", "i", "u"], ["y"])], [("x", r(4, 3)), ("u", r(2, 3))], init=[("i", np.array([[1], [3]], np.int64))])
case("scatter_nd_add", 16, [N("ScatterND", ["x", "i", "u"], ["y"], reduction="add")], [("x", r(4, 3)), ("u", r(2, 3))], init=[("i", np.array([[1], [1]], np.int64))])
case("scatter_elements", 16, [N("ScatterElements", ["x", "i", "u"], ["y"], axis=1)], [("x", r(3, 4)), ("u", r(3, 2))], init=[("i", np.array([[0, 3], [1, 2], [-1, 0]], np.int64))])
case("scatter_elements_mul", 18, [N("ScatterElements", ["x", "i", "u"], ["y"], axis=0, reduction="mul")], [("x", r(3, 4)), ("u", r(2, 4))], init=[("i", np.array([[0, 1, 2, 0], [0, 1, 2, 0]], np.int64))])
case("topk", 11, [N("TopK", ["x", "k"], ["v", "i"], axis=1)], [("x", r(3, 6))], init=[("k", np.array([3], np.int64))], outputs=["v", "i"])
case("topk_small", 11, [N("TopK", ["x", "k"], ["v", "i"], axis=-1, largest=0)], [("x", r(3, 6))], init=[("k", np.array([2], np.int64))], outputs=["v", "i"])
case("onehot", 11, [N("OneHot", ["i", "d", "v"], ["y"], axis=-1)], [("i", np.array([[1, -1], [0, 3]], np.int64))], init=[("d", np.array(4, np.int64)), ("v", np.array([0.5, 2.0], np.float32))])
case("hardmax13", 13, [N("Hardmax", ["x"], ["y"], axis=1)], [("x", r(2, 5, 3))])
case("hardmax11", 11, [N("Hardmax", ["x"], ["y"], axis=1)], [("x", r(2, 5, 3))])
case("nonzero", 13, [N("NonZero", ["x"], ["y"])], [("x", np.array([[1, 0, 2], [0, 0, 3]], np.float32))])
case("argmax_last", 13, [N("ArgMax", ["x"], ["y"], axis=1, keepdims=0, select_last_index=1)], [("x", np.array([[1, 3, 3, 2], [5, 5, 1, 5]], np.float32))])
case("argmin_first", 13, [N("ArgMin", ["x"], ["y"], axis=1)], [("x", np.array([[1, 0, 0, 2], [5, 5, 1, 1]], np.float32))])
case("range_f", 11, [N("Range", ["a", "b", "c"], ["y"])], [("a", np.array(1.5, np.float32)), ("b", np.array(-3.0, np.float32)), ("c", np.array(-0.7, np.float32))])
case("range_i", 11, [N("Range", ["a", "b", "c"], ["y"])], [("a", np.array(10, np.int64)), ("b", np.array(-3, np.int64)), ("c", np.array(-4, np.int64))])
case("cos", 13, [N("ConstantOfShape", ["s"], ["y"], value=numpy_helper.from_array(np.array([7], np.int32)))], [("s", np.array([2, 3], np.int64))])
# Reductions and norms
xr = r(2, 3, 4, 5)
for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "ReduceProd"):
    case(f"{op}_13", 13, [N(op, ["x"], ["y"], axes=[1, -1], keepdims=0)] if op != "ReduceSum" else [N(op, ["x", "a"], ["y"], keepdims=0)], [("x", xr)], init=[("a", np.array([1, -1], np.int64))] if op == "ReduceSum" else [])
    case(f"{op}_18_all", 18, [N(op, ["x"], ["y"])], [("x", np.abs(xr) + 0.5)])
case("reducelogsum", 13, [N("ReduceLogSum", ["x"], ["y"], axes=[2])], [("x", np.abs(xr) + 0.1)])
case("layernorm_axis1", 17, [N("LayerNormalization", ["x", "s", "b"], ["y", "m", "is"], axis=1, epsilon=1e-3)], [("x", xr)], init=[("s", r(3, 4, 5)), ("b", r(4, 5))], outputs=["y", "m", "is"])
case("instnorm", 6, [N("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)], [("x", xr)], init=[("s", r(3)), ("b", r(3))])
case("groupnorm21", 21, [N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3, epsilon=1e-3)], [("x", r(2, 6, 4, 5))], init=[("s", r(6)), ("b", r(6))])
case("groupnorm18", 18, [N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3, epsilon=1e-3)], [("x", r(2, 6, 4, 5))], init=[("s", r(3)), ("b", r(3))])
case("lrn", 13, [N("LRN", ["x"], ["y"], size=3, alpha=1e-2, beta=0.75, bias=2.0)], [("x", r(2, 5, 4, 4))])
case("lrn_even", 13, [N("LRN", ["x"], ["y"], size=4)], [("x", r(2, 5, 4, 4))])
case("lpnorm", 13, [N("LpNormalization", ["x"], ["y"], axis=1, p=1)], [("x", r(2, 5, 3))])
case("mvn", 13, [N("MeanVarianceNormalization", ["x"], ["y"])], [("x", r(2, 3, 4, 5))])
case("bn15", 15, [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-2)], [("x", r(2, 3, 4))], init=[("s", r(3)), ("b", r(3)), ("m", r(3)), ("v", np.abs(r(3)) + 0.1)])
case("softmax_ax0_13", 13, [N("Softmax", ["x"], ["y"], axis=0)], [("x", xr)])
case("logsoftmax_ax1_11", 11, [N("LogSoftmax", ["x"], ["y"], axis=1)], [("x", xr)])
case("gemm_ta", 13, [N("Gemm", ["a", "b", "c"], ["y"], transA=1, alpha=0.5, beta=2.0)], [("a", r(4, 3)), ("b", r(4, 5)), ("c", r(3, 1))])
case("matmul_bcast", 13, [N("MatMul", ["a", "b"], ["y"])], [("a", r(2, 1, 3, 4)), ("b", r(5, 4, 2))])
case("matmul_1d", 13, [N("MatMul", ["a", "b"], ["y"])], [("a", r(4)), ("b", r(2, 4, 3))])
case("matmul_f16", 13, [N("MatMul", ["a", "b"], ["y"])], [("a", r(3, 8, dtype=np.float16)), ("b", r(8, 2, dtype=np.float16))])
case("einsum", 12, [N("Einsum", ["a", "b"], ["y"], equation="bij,bjk->bik")], [("a", r(2, 3, 4)), ("b", r(2, 4, 5))])
print("done")
# second batch
case("convt_outshape", 13, [N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], output_shape=[10, 9])], [("x", r(1, 2, 4, 4))], init=[("w", r(2, 3, 3, 3))])
case("convt_same_upper", 13, [N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 3], auto_pad="SAME_UPPER")], [("x", r(1, 2, 4, 3))], init=[("w", r(2, 3, 4, 3))])
case("convt_same_lower", 13, [N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 3], auto_pad="SAME_LOWER")], [("x", r(1, 2, 4, 3))], init=[("w", r(2, 3, 4, 3))])
case("maxpool_i8", 12, [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[1, 1, 1, 1])], [("x", rng.integers(-128, 127, (1, 2, 5, 5)).astype(np.int8))])
case("maxpool_u8", 12, [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[1, 1, 1, 1])], [("x", rng.integers(0, 255, (1, 2, 5, 5)).astype(np.uint8))])
case("mod_u8", 13, [N("Mod", ["a", "b"], ["y"])], [("a", np.array([7, 200, 9], np.uint8)), ("b", np.array([3, 7, 4], np.uint8))])
case("pow_int", 15, [N("Pow", ["a", "b"], ["y"])], [("a", np.array([2, -3, 4, 5], np.int64)), ("b", np.array([3, 3, 0, 2], np.int64))])
case("reducemax_bool", 20, [N("ReduceMax", ["x", "a"], ["y"], keepdims=0)], [("x", rng.random((3, 4)) > 0.5)], init=[("a", np.array([1], np.int64))])
case("lpnorm_zero", 13, [N("LpNormalization", ["x"], ["y"], axis=1, p=2)], [("x", np.array([[0, 0, 0], [1, 2, 3]], np.float32))])
case("lppool_pad", 18, [N("LpPool", ["x"], ["y"], kernel_shape=[3, 3], p=2, pads=[1, 1, 1, 1], strides=[2, 2])], [("x", r(1, 2, 6, 7))])
case("globallppool", 2, [N("GlobalLpPool", ["x"], ["y"], p=3)], [("x", r(1, 2, 6, 7))])
case("instnorm_f16", 6, [N("InstanceNormalization", ["x", "s", "b"], ["y"])], [("x", r(2, 3, 8, dtype=np.float16))], init=[("s", r(3, dtype=np.float16)), ("b", r(3, dtype=np.float16))])
case("softmax_f16", 13, [N("Softmax", ["x"], ["y"])], [("x", r(3, 40, dtype=np.float16, scale=4))])
case("conv_f16", 13, [N("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [("x", r(1, 3, 6, 6, dtype=np.float16))], init=[("w", r(4, 3, 3, 3, dtype=np.float16))])
case("layernorm_f16", 17, [N("LayerNormalization", ["x", "s"], ["y"])], [("x", r(2, 3, 16, dtype=np.float16))], init=[("s", r(16, dtype=np.float16))])
case("reducesum_f16", 13, [N("ReduceSum", ["x"], ["y"], keepdims=0)], [("x", r(4, 300, dtype=np.float16))])
case("gemm_f64", 13, [N("Gemm", ["a", "b"], ["y"], transB=1)], [("a", r(3, 5, dtype=np.float64)), ("b", r(4, 5, dtype=np.float64))])
case("cumsum_i32", 14, [N("CumSum", ["x", "a"], ["y"])], [("x", np.arange(12, dtype=np.int32).reshape(3, 4))], init=[("a", np.array(1, np.int32))])
case("argmax_i32", 13, [N("ArgMax", ["x"], ["y"], axis=0)], [("x", np.array([[1, 5], [5, 2], [3, 5]], np.int32))])
case("where_i64", 16, [N("Where", ["c", "a", "b"], ["y"])], [("c", np.array([True, False, True])), ("a", np.array([1, 2, 3], np.int64)), ("b", np.array([-1], np.int64))])
case("equal_bool", 11, [N("Equal", ["a", "b"], ["y"])], [("a", np.array([True, False, True])), ("b", np.array([True, True, False]))])
case("not_and", 7, [N("Not", ["a"], ["n"]), N("And", ["n", "b"], ["y"])], [("a", np.array([True, False, True])), ("b", np.array([True, True, False]))])
case("xor_or", 7, [N("Xor", ["a", "b"], ["x"]), N("Or", ["x", "a"], ["y"])], [("a", np.array([True, False, True, False])), ("b", np.array([True, True, False, False]))])
case("shape_slice", 15, [N("Shape", ["x"], ["y"], start=-3, end=-1)], [("x", r(2, 3, 4, 5))])
case("size", 13, [N("Size", ["x"], ["y"])], [("x", r(2, 3, 4, 5))])
case("squeeze_noaxes", 13, [N("Squeeze", ["x"], ["y"])], [("x", r(1, 3, 1, 2))])
case("unsqueeze_neg", 13, [N("Unsqueeze", ["x", "a"], ["y"])], [("x", r(3, 2))], init=[("a", np.array([-1, 0], np.int64))])
case("concat_neg", 13, [N("Concat", ["a", "b"], ["y"], axis=-2)], [("a", r(2, 3, 2)), ("b", r(2, 1, 2))])
case("dropout_mask", 13, [N("Dropout", ["x"], ["y", "m"])], [("x", r(3, 4))], outputs=["y", "m"])
case("gather_i32_idx", 13, [N("Gather", ["x", "i"], ["y"], axis=0)], [("x", r(4, 3))], init=[("i", np.array([3, -1, 0], np.int32))])
# einsum
case("einsum_attn", 12, [N("Einsum", ["a", "b"], ["y"], equation="bhqd,bhkd->bhqk")], [("a", r(2, 3, 4, 5)), ("b", r(2, 3, 6, 5))])
case("einsum_chain", 12, [N("Einsum", ["a", "b", "c"], ["y"], equation="ij,jk,kl->il")], [("a", r(2, 3)), ("b", r(3, 4)), ("c", r(4, 5))])
case("einsum_implicit", 12, [N("Einsum", ["a", "b"], ["y"], equation="ij,jk")], [("a", r(2, 3)), ("b", r(3, 4))])
case("einsum_ellipsis_bcast", 12, [N("Einsum", ["a", "b"], ["y"], equation="...ij,...jk->...ik")], [("a", r(2, 1, 3, 4)), ("b", r(5, 4, 2))])
case("einsum_dot", 12, [N("Einsum", ["a", "b"], ["y"], equation="i,i->")], [("a", r(7)), ("b", r(7))])
case("einsum_outer_sum", 12, [N("Einsum", ["a", "b"], ["y"], equation="ij,kj->ik")], [("a", r(3, 4)), ("b", r(2, 4))])
case("einsum_reduce", 12, [N("Einsum", ["a"], ["y"], equation="bij->jb")], [("a", r(2, 3, 4))])
case("einsum_private", 12, [N("Einsum", ["a", "b"], ["y"], equation="abc,cd->ad")], [("a", r(2, 3, 4)), ("b", r(4, 5))])
# recurrent layers: every attribute that changes results, against ORT
def rnn_case(op, name, direction="forward", hidden=4, seq=5, batch=3, size=6, lens=None, h0=False,
             c0=False, peep=False, bias=True, attrs=None, dtype=np.float32, opset=14):
    g = {"RNN": 1, "GRU": 3, "LSTM": 4}[op]
    d = 2 if direction == "bidirectional" else 1
    ins = [("X", r(seq, batch, size, dtype=dtype))]
    init = [("W", r(d, g * hidden, size, dtype=dtype, scale=0.5)), ("R", r(d, g * hidden, hidden, dtype=dtype, scale=0.5))]
    names = ["X", "W", "R"]
    def opt(present, value_name, value):
        if present:
            init.append((value_name, value)); names.append(value_name)
        else:
            names.append("")
    opt(bias, "B", r(d, 2 * g * hidden, dtype=dtype, scale=0.3))
    opt(lens is not None, "L", np.array(lens if lens is not None else [], np.int32))
    opt(h0, "H0", r(d, batch, hidden, dtype=dtype))
    if op == "LSTM":
        opt(c0, "C0", r(d, batch, hidden, dtype=dtype))
        opt(peep, "P", r(d, 3 * hidden, dtype=dtype, scale=0.5))
    while names and names[-1] == "":
        names.pop()
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = N(op, names, outs, hidden_size=hidden, direction=direction, **(attrs or {}))
    case(f"{op.lower()}_{name}", opset, [node], ins, init=init, outputs=outs)

for op in ("RNN", "GRU", "LSTM"):
    for direction in ("forward", "reverse", "bidirectional"):
        rnn_case(op, f"{direction}_lens", direction, lens=[5, 2, 4], h0=True, c0=True)
        rnn_case(op, f"{direction}_clip", direction, attrs={"clip": 0.7}, h0=True)
    rnn_case(op, "nobias", bias=False)
    rnn_case(op, "f64", dtype=np.float64, h0=True)
    rnn_case(op, "opset7", opset=7)
rnn_case("RNN", "relu", attrs={"activations": ["Relu"]})
rnn_case("RNN", "leakyrelu_alpha", attrs={"activations": ["LeakyRelu"], "activation_alpha": [0.3]})
rnn_case("RNN", "bi_affine_hardsigmoid", "bidirectional",
         attrs={"activations": ["Affine", "HardSigmoid"], "activation_alpha": [0.5, 0.3], "activation_beta": [0.1, 0.4]})
rnn_case("GRU", "lbr", attrs={"linear_before_reset": 1}, h0=True)
rnn_case("GRU", "lbr_bi_lens", "bidirectional", lens=[1, 5, 3], attrs={"linear_before_reset": 1}, h0=True)
rnn_case("GRU", "scaledtanh_softsign", attrs={"activations": ["Softsign", "ScaledTanh"], "activation_alpha": [0.7], "activation_beta": [1.3]})
rnn_case("GRU", "elu_softplus", attrs={"activations": ["Softplus", "Elu"], "activation_alpha": [0.6]})
rnn_case("LSTM", "peepholes_lens_reverse", "reverse", lens=[3, 5, 1], peep=True, h0=True, c0=True)
rnn_case("LSTM", "input_forget", attrs={"input_forget": 1}, peep=True, h0=True, c0=True)
rnn_case("LSTM", "thresholdedrelu", attrs={"activations": ["Sigmoid", "ThresholdedRelu", "Tanh"], "activation_alpha": [0.2]})
rnn_case("LSTM", "bi_activations", "bidirectional",
         attrs={"activations": ["HardSigmoid", "Tanh", "Relu", "Sigmoid", "Softsign", "Tanh"], "activation_alpha": [0.25], "activation_beta": [0.45]})
# control flow: branches and bodies that read outer-scope values, nested subgraphs
def vi(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)
xa = r(3, 4)
for flag in (True, False):
    then_g = helper.make_graph([N("Add", ["x", "w"], ["t_out"])], "then", [], [vi("t_out")])
    else_g = helper.make_graph([N("Mul", ["x", "x"], ["e0"]), N("Sub", ["e0", "w"], ["e_out"])], "else", [], [vi("e_out")])
    case(f"if_outer_{flag}", 13, [N("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
         [("x", xa), ("c", np.array(flag))], init=[("w", r(3, 4))])
# Loop: 4 iterations, carried sum, a scan output, a nested If reading an outer value and the iteration
inner_then = helper.make_graph([N("Add", ["acc", "w"], ["it_out"])], "it", [], [vi("it_out")])
inner_else = helper.make_graph([N("Sub", ["acc", "w"], ["ie_out"])], "ie", [], [vi("ie_out")])
body = helper.make_graph(
    [N("Constant", [], ["two"], value=numpy_helper.from_array(np.array(2, np.int64))),
     N("Mod", ["i", "two"], ["m"]), N("Equal", ["m", "two"], ["never"]), N("Not", ["never"], ["always"]),
     N("Less", ["i", "two"], ["early"]),
     N("If", ["early"], ["acc2"], then_branch=inner_then, else_branch=inner_else),
     N("Mul", ["acc2", "x"], ["acc3"]), N("Identity", ["always"], ["cond_out"]), N("Identity", ["acc3"], ["scan_out"])],
    "body", [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("acc")],
    [vi("cond_out", TensorProto.BOOL, []), vi("acc3"), vi("scan_out")])
case("loop_nested_if_outer", 13, [N("Loop", ["M", "", "a0"], ["a_final", "scans"], body=body)],
     [("x", r(2, 3, scale=0.5)), ("a0", r(2, 3))], init=[("M", np.array(4, np.int64)), ("w", r(2, 3))],
     outputs=["a_final", "scans"])
# Loop stopped by its condition before the trip count
cbody = helper.make_graph(
    [N("Add", ["s", "x"], ["s2"]), N("ReduceSum", ["s2"], ["tot"], keepdims=0), N("Less", ["tot", "lim"], ["go"])],
    "cbody", [vi("i", TensorProto.INT64, []), vi("c", TensorProto.BOOL, []), vi("s")],
    [vi("go", TensorProto.BOOL, []), vi("s2")])
case("loop_while_cond", 13, [N("Loop", ["M", "c0", "s0"], ["s_final"], body=cbody)],
     [("x", np.abs(r(3)) + 0.5), ("s0", np.zeros(3, np.float32))],
     init=[("M", np.array(50, np.int64)), ("c0", np.array(True)), ("lim", np.array(6.0, np.float32))])
# Scan: two scan inputs on different axes, one reversed, an outer value, a reversed scan output on axis 1
sbody = helper.make_graph(
    [N("Add", ["st", "a"], ["st1"]), N("Mul", ["st1", "b"], ["st2"]), N("Add", ["st2", "w"], ["o"])],
    "sbody", [vi("st"), vi("a"), vi("b")], [vi("st2"), vi("o")])
case("scan_axes_directions_outer", 11, [N("Scan", ["s0", "xa", "xb"], ["s_final", "ys"], body=sbody, num_scan_inputs=2,
                                          scan_input_axes=[0, 1], scan_input_directions=[0, 1],
                                          scan_output_axes=[1], scan_output_directions=[1])],
     [("s0", r(3)), ("xa", r(5, 3)), ("xb", r(3, 5, scale=0.5))], init=[("w", r(3))], outputs=["s_final", "ys"])
