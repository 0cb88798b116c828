#!/usr/bin/env python3
"""Writes the one-node fixtures of ONNX Runtime's QOperator contrib ops (com.microsoft
QGemm, QLinearAdd, QLinearMul, QLinearSoftmax, QLinearSigmoid, QLinearLeakyRelu,
QLinearConcat, QLinearGlobalAveragePool, QLinearAveragePool) that candle-cpu's unit tests
compare with exactly: tests/fixtures/qop/CASE/model.onnx and test_data_set_0 with the
inputs and ONNX Runtime's outputs.

    .venv/bin/python scripts/make-qop-fixtures.py [OUT_DIR]   (default tests/fixtures/qop)

Scales and zero points are initializers (as quantize_static writes them); data is drawn
from a fixed seed. Regenerating with another onnxruntime version may change outputs.
"""
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "qop")
RNG = np.random.default_rng(20240611)
ONNX_TYPE = {np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8,
             np.float32: TensorProto.FLOAT, np.int32: TensorProto.INT32}


def data(dtype, shape):
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max + 1, size=shape, dtype=np.int64).astype(dtype)


def f32(v):
    return np.array(v, dtype=np.float32)


def write(name, op, feeds, consts, attrs=None, inputs=None, out_dtype=None):
    """One `op` node reading `inputs` (names; "" for an omitted one) from the data `feeds`
    and the initializers `consts`; runs it with ONNX Runtime and writes the case."""
    inputs = inputs or list(feeds) + list(consts)
    node = helper.make_node(op, inputs, ["y"], domain="com.microsoft", **(attrs or {}))
    first = next(iter(feeds.values()))
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(k, ONNX_TYPE[v.dtype.type], v.shape) for k, v in feeds.items()],
        [helper.make_tensor_value_info("y", ONNX_TYPE[out_dtype or first.dtype.type], None)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, feeds)
    case = os.path.join(OUT, name)
    ds = os.path.join(case, "test_data_set_0")
    os.makedirs(ds)
    onnx.save(model, os.path.join(case, "model.onnx"))
    for i, (k, v) in enumerate(feeds.items()):
        onnx.save_tensor(numpy_helper.from_array(v, k), os.path.join(ds, f"input_{i}.pb"))
    onnx.save_tensor(numpy_helper.from_array(y, "y"), os.path.join(ds, "output_0.pb"))


def qgemm():
    a = data(np.uint8, (3, 6))
    b = data(np.int8, (5, 6))
    write("qgemm_u8s8_transb_percol_bias", "QGemm", {"a": a},
          {"a_s": f32(0.023), "a_z": np.uint8(131), "b": b,
           "b_s": f32([0.011, 0.017, 0.009, 0.021, 0.013]), "b_z": np.zeros(5, np.int8),
           "c": RNG.integers(-900, 900, 5).astype(np.int32), "y_s": f32(0.07), "y_z": np.uint8(120)},
          attrs={"transB": 1, "alpha": 0.75})
    a = data(np.uint8, (6, 3))
    b = data(np.uint8, (6, 4))
    write("qgemm_u8u8_transa_bias_mx1", "QGemm", {"a": a},
          {"a_s": f32(0.031), "a_z": np.uint8(100), "b": b, "b_s": f32(0.019),
           "b_z": np.uint8(140), "c": RNG.integers(-2000, 2000, (3, 1)).astype(np.int32),
           "y_s": f32(0.2), "y_z": np.uint8(128)},
          attrs={"transA": 1})
    a = data(np.int8, (2, 7))
    b = data(np.int8, (7, 3))
    write("qgemm_s8s8_float_output", "QGemm", {"a": a},
          {"a_s": f32(0.05), "a_z": np.int8(-3), "b": b, "b_s": f32(0.02), "b_z": np.int8(0)},
          out_dtype=np.float32)


def binary():
    for op in ("QLinearAdd", "QLinearMul"):
        low = op[7:].lower()
        for dt, sa, sb in ((np.uint8, (67,), (67,)), (np.uint8, (2, 3, 5), (3, 1)),
                           (np.uint8, (1,), (4, 9)), (np.int8, (4, 9), (9,)),
                           (np.int8, (3, 1, 4), (1, 5, 1))):
            name = f"qlinear{low}_{np.dtype(dt).name}_{'x'.join(map(str, sa))}_{'x'.join(map(str, sb))}"
            zs = (7, 140, 125) if dt == np.uint8 else (-5, 12, 3)
            write(name, op, {"a": data(dt, sa), "b": data(dt, sb)},
                  {"a_s": f32(0.0173), "a_z": dt(zs[0]), "b_s": f32(0.0291), "b_z": dt(zs[1]),
                   "c_s": f32(0.0419 if op == "QLinearAdd" else 0.021), "c_z": dt(zs[2])},
                  inputs=["a", "a_s", "a_z", "b", "b_s", "b_z", "c_s", "c_z"])


def softmax():
    for dt, shape, axis, opset, ys, yz in (
            (np.uint8, (2, 5, 3), 1, 13, 1 / 256, 0),
            (np.uint8, (2, 3, 4), 1, 12, 1 / 256, 0),
            (np.uint8, (3, 10), -1, 13, 1 / 255, 0),
            (np.int8, (2, 4, 6), -1, 13, 1 / 256, -128),
            (np.int8, (2, 3, 4), 0, 11, 1 / 256, -128)):
        name = f"qlinearsoftmax_{np.dtype(dt).name}_{'x'.join(map(str, shape))}_axis{axis}_opset{opset}"
        write(name, "QLinearSoftmax", {"x": data(dt, shape)},
              {"x_s": f32(0.043), "x_z": dt(11), "y_s": f32(ys), "y_z": dt(yz)},
              attrs={"axis": axis, "opset": opset})
    # One dominant value: round(v · 256 / sum) = 256, so int8 output saturates at 127.
    x = np.full((2, 8), -128, np.int8)
    x[0, 0] = 127
    x[1] = data(np.int8, 8)
    write("qlinearsoftmax_int8_saturates", "QLinearSoftmax", {"x": x},
          {"x_s": f32(0.2), "x_z": np.int8(0), "y_s": f32(1 / 256), "y_z": np.int8(-128)},
          attrs={"axis": -1, "opset": 13})


def lookup():
    for op, attrs in (("QLinearSigmoid", {}), ("QLinearLeakyRelu", {"alpha": 0.1})):
        for dt, xz, yz in ((np.uint8, 120, 3), (np.int8, -7, -128)):
            # Every byte value once, so that the whole table is compared.
            x = np.arange(256, dtype=np.uint8).view(dt).reshape(16, 16)
            write(f"{op.lower()}_{np.dtype(dt).name}", op, {"x": x},
                  {"x_s": f32(0.047), "x_z": dt(xz), "y_s": f32(0.0039 if op == "QLinearSigmoid" else 0.031),
                   "y_z": dt(yz)}, attrs=attrs)
    for dt, zs in ((np.uint8, (128, 100, 128, 7)), (np.int8, (0, -20, 0, 33))):
        consts = {"y_s": f32(0.05), "y_z": dt(zs[0]),
                  "a_s": f32(0.05), "a_z": dt(zs[2]),  # same as Y: copied
                  "b_s": f32(0.013), "b_z": dt(zs[1]),
                  "c_s": f32(0.11), "c_z": dt(zs[3])}
        write(f"qlinearconcat_{np.dtype(dt).name}", "QLinearConcat",
              {"a": data(dt, (2, 3, 2)), "b": data(dt, (2, 1, 2)), "c": data(dt, (2, 4, 2))}, consts,
              attrs={"axis": 1},
              inputs=["y_s", "y_z", "a", "a_s", "a_z", "b", "b_s", "b_z", "c", "c_s", "c_z"])


def pools():
    for dt, shape, last in ((np.uint8, (2, 3, 5, 4), 0), (np.int8, (1, 4, 3, 6), 1),
                            (np.uint8, (1, 2, 300), 0)):
        write(f"qlinearglobalaveragepool_{np.dtype(dt).name}_{'x'.join(map(str, shape))}_last{last}",
              "QLinearGlobalAveragePool", {"x": data(dt, shape)},
              {"x_s": f32(0.031), "x_z": dt(9), "y_s": f32(0.017), "y_z": dt(-4 if dt == np.int8 else 130)},
              attrs={"channels_last": last})
    for name, dt, shape, attrs in (
            ("k3_s2_pads_u8", np.uint8, (2, 3, 7, 6),
             {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
            ("k3_s2_pads_include_u8", np.uint8, (2, 3, 7, 6),
             {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
            ("k2_ceil_u8", np.uint8, (1, 2, 5, 5),
             {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
            ("k2_same_upper_s8", np.int8, (1, 2, 5, 5),
             {"kernel_shape": [2, 3], "auto_pad": "SAME_UPPER"}),
            ("k3_1d_s8_last", np.int8, (2, 9, 3),
             {"kernel_shape": [3], "strides": [2], "pads": [1, 0], "channels_last": 1}),
            ("whole_image_u8", np.uint8, (1, 3, 4, 4), {"kernel_shape": [4, 4]})):
        write(f"qlinearaveragepool_{name}", "QLinearAveragePool", {"x": data(dt, shape)},
              {"x_s": f32(0.027), "x_z": dt(5), "y_s": f32(0.019), "y_z": dt(-2 if dt == np.int8 else 128)},
              attrs=attrs)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    qgemm()
    binary()
    softmax()
    lookup()
    pools()
    print(f"wrote {len(os.listdir(OUT))} cases to {os.path.normpath(OUT)} (onnxruntime {ort.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
