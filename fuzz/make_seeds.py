#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/seeds/TARGET (docs/reliability.md).

Sources: the suites under models/ (.pb tensors, model.onnx), numpy's own writers (.npy,
.npz), hand-built .safetensors, the parity.toml examples in docs/, v2 responses shaped
like tests/servers/fake_kserve.py's, the exec lines of tests/fixtures/exec, tables like
tests/data.rs's, and reports/baselines written by `parity` itself (REPORTS, when given).
Needs numpy and onnx (the project's .venv). Usage: make_seeds.py [REPORT.json ...]
"""
import io, json, pathlib, re, struct, sys, zipfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "seeds"


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def npy_bytes(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def npz_bytes(arrays, compressed):
    b = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(b, **arrays)
    return b.getvalue()


def safetensors_bytes(arrays):
    names = {"float32": "F32", "float64": "F64", "float16": "F16", "int8": "I8",
             "int32": "I32", "int64": "I64", "uint8": "U8", "bool": "BOOL"}
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for k, a in arrays.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[k] = {"dtype": names[str(a.dtype)], "shape": list(a.shape),
                     "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def main():
    models = sorted((ROOT / "models").glob("*/model.onnx"))
    for m in models:
        if m.stat().st_size > 100_000:  # the transformer: slow to mutate, adds little
            continue
        put("onnx_model", m.parent.name + ".onnx", m.read_bytes())
        put("candle_load", m.parent.name + ".onnx", m.read_bytes())
        for pb in sorted(m.parent.glob("test_data_set_*/*.pb")):
            if pb.stat().st_size < 4096:
                put("pb", f"{m.parent.name}-{pb.parent.name}-{pb.name}", pb.read_bytes())
    try:  # small one-op models exercise more of the loaders than three big ones
        import onnx
        from onnx import TensorProto, helper
        for i, (op, attrs) in enumerate([("Relu", {}), ("Softmax", {"axis": -1}),
                                         ("Transpose", {"perm": [1, 0]}),
                                         ("Cast", {"to": TensorProto.DOUBLE})]):
            x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
            y = helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)
            w = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
            n1 = helper.make_node("Add", ["x", "w"], ["t"])
            n2 = helper.make_node(op, ["t"], ["y"], **attrs)
            c = helper.make_node("Constant", [], ["unused"],
                                 value=helper.make_tensor("c", TensorProto.INT64, [2], [3, 4]))
            g = helper.make_graph([c, n1, n2], f"g{i}", [x], [y], [w])
            model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
            put("onnx_model", f"tiny-{op}.onnx", model.SerializeToString())
            put("candle_load", f"tiny-{op}.onnx", model.SerializeToString())
    except ImportError:
        pass

    arrays = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f64": np.array([1.5, -np.inf, np.nan]),
        "f16": np.ones((2, 2), dtype=np.float16),
        "i64": np.array([[-1, 2]], dtype=np.int64),
        "i8": np.array([-128, 127], dtype=np.int8),
        "u8": np.array([255], dtype=np.uint8),
        "bool": np.array([True, False]),
        "scalar": np.array(3.0, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    for k, a in arrays.items():
        put("npy", k + ".npy", npy_bytes(a))
    put("npy", "fortran.npy", npy_bytes(np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))))
    put("npy", "bigendian.npy", npy_bytes(np.arange(3, dtype=">f4")))
    small = {"input_0": arrays["f32"], "output_0": arrays["i64"]}
    put("npz", "stored.npz", npz_bytes(small, False))
    put("npz", "deflated.npz", npz_bytes(small, True))
    put("npz", "one.npz", npz_bytes({"x": arrays["bool"]}, True))
    put("safetensors", "mixed.safetensors", safetensors_bytes(
        {k: arrays[k] for k in ("f32", "f64", "i64", "u8", "bool")}))
    put("safetensors", "one.safetensors", safetensors_bytes({"x": arrays["f16"]}))

    for doc in sorted((ROOT / "docs").glob("*.md")):
        for i, block in enumerate(re.findall(r"```toml\n(.*?)```", doc.read_text(), re.S)):
            put("manifest", f"{doc.stem}-{i}.toml", block)

    binary = np.arange(4, dtype=np.float32).tobytes()
    head = json.dumps({"model_name": "m", "outputs": [
        {"name": "y", "datatype": "FP32", "shape": [2, 2], "parameters": {"binary_data_size": 16}},
        {"name": "z", "datatype": "INT64", "shape": [2], "data": [1, 2]}]}).encode()
    put("kserve_response", "binary", struct.pack("<H", len(head)) + head + binary)
    for k, (dt, data) in enumerate([("FP32", [[1.5, 2], [3, 4]]), ("BOOL", [True, False, True, False]),
                                    ("BYTES", ["a", "b", "c", "d"]), ("FP16", [1, 2, 3, 4]),
                                    ("UINT8", [0, 1, 2, 255])]):
        doc = json.dumps({"model_name": "m", "outputs": [{"name": "y", "datatype": dt, "shape": [2, 2], "data": data}]})
        put("kserve_response", f"json-{k}", b"\xff\xff" + doc.encode())

    put("exec_protocol", "session", 'parity-exec/1 {"name":"onnxruntime","version":"1.20","device":"cpu"}\nok\nerror RuntimeError: no kernel\nerror\n')

    put("tabular", "plain.csv", b"\x00a,b,label\n1,2.5,NA\n3,nan,-inf\n")
    put("tabular", "quoted.csv", b"\x00\xef\xbb\xbf\"x\",\"y, z\"\n\"1\",\"2\"\"\"\n\n4,\"5\n6\"\n")
    put("tabular", "rows.jsonl", b'\x01{"a": 1, "b": "nan", "c": null}\n{"a": 2.5, "b": true}\n\n{"c": [1]}\n')

    for i, report in enumerate(sys.argv[1:]):
        put("report_json", f"report-{i}.json", pathlib.Path(report).read_bytes())


if __name__ == "__main__":
    main()
