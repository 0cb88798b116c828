#!/usr/bin/env python3
"""Makes a QDQ-quantized copy of a model with onnxruntime.quantization.quantize_static
(int8 weights, uint8 activations, QuantizeLinear/DequantizeLinear pairs around each
quantized op), calibrated on the data sets of a suite.

    .venv/bin/python scripts/make-qdq-model.py models/cnn /tmp/cnn-qdq.onnx [--per-channel]
        [--format qoperator|dynamic|optimized] [--op-types Conv,MatMul]

`--format qoperator` writes ONNX Runtime's other static form instead: the integer
operators themselves (QLinearConv, QLinearMatMul; for most other ops ORT's own
com.microsoft QLinear* contrib ops, which ONNX Runtime and candle-cpu run). `--format dynamic`
uses quantize_dynamic: int8 weights, activations quantized at run time
(DynamicQuantizeLinear, MatMulInteger/ConvInteger, all standard ONNX); no calibration.
`--format optimized` quantizes nothing: it writes a float re-export, the model as ONNX
Runtime's offline optimizer saves it (SessionOptions.optimized_model_filepath with
graph_optimization_level ORT_ENABLE_BASIC on CPUExecutionProvider: constant folding,
redundant-node elimination and the other semantics-preserving rewrites that keep standard
ONNX ops), the "same model, exported again" candidate of a release gate (issue 18); no
calibration. Initializers stay inside the file.

`--op-types Conv,MatMul` quantizes only those op types (quantize_static/quantize_dynamic's
op_types_to_quantize; default: every op type ORT can quantize). Needed where a model
spells out LayerNorm or softmax in elementwise ops: magika's variance is E[x^2] - E[x]^2, a
difference of two uint8-quantized activations, and quantizing every Mul/Add/Sub leaves it
agreeing with the float model on 3 of 160 top-1 classes; with Conv,MatMul only, on 159.

The result is what teams ship as "the int8 model"; parity checks candle-cpu's run of it
against ONNX Runtime's (docs/conformance.md).
"""
import argparse
import glob
import os
import sys

import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)


class SuiteReader(CalibrationDataReader):
    """The suite's test_data_set_N/input_K.pb as calibration feeds."""

    def __init__(self, suite: str):
        self.feeds = []
        for d in sorted(glob.glob(os.path.join(suite, "test_data_set_*"))):
            tensors = [onnx.load_tensor(p) for p in sorted(glob.glob(os.path.join(d, "input_*.pb")))]
            self.feeds.append({t.name: numpy_helper.to_array(t) for t in tensors})
        self.it = iter(self.feeds)

    def get_next(self):
        return next(self.it, None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("suite")
    p.add_argument("out")
    p.add_argument("--per-channel", action="store_true")
    p.add_argument("--format", choices=("qdq", "qoperator", "dynamic", "optimized"),
                   default="qdq")
    p.add_argument("--op-types", help="comma-separated op types to quantize (default: all)")
    a = p.parse_args()
    op_types = a.op_types.split(",") if a.op_types else None
    if a.format == "optimized":
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = a.out
        ort.InferenceSession(os.path.join(a.suite, "model.onnx"), so,
                             providers=["CPUExecutionProvider"])
        print(f"wrote {a.out}")
        return 0
    if a.format == "dynamic":
        quantize_dynamic(os.path.join(a.suite, "model.onnx"), a.out, weight_type=QuantType.QInt8,
                         per_channel=a.per_channel, op_types_to_quantize=op_types)
        print(f"wrote {a.out}")
        return 0
    reader = SuiteReader(a.suite)
    if not reader.feeds:
        print(f"make-qdq-model: {a.suite} has no data sets", file=sys.stderr)
        return 1
    quantize_static(os.path.join(a.suite, "model.onnx"), a.out, reader, 
                    quant_format=QuantFormat.QOperator if a.format == "qoperator" else QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=a.per_channel, op_types_to_quantize=op_types)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
