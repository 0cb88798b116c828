#!/usr/bin/env python3
"""Makes a QDQ-quantized copy of a model with onnxruntime.quantization.quantize_static
(int8 weights, uint8 activations, QuantizeLinear/DequantizeLinear pairs around each
quantized op), calibrated on the data sets of a suite.

    .venv/bin/python scripts/make-qdq-model.py models/cnn /tmp/cnn-qdq.onnx [--per-channel]
        [--format qoperator]

`--format qoperator` writes ONNX Runtime's other static form instead: the integer
operators themselves (QLinearConv, QLinearMatMul; for most other ops ORT's own
com.microsoft QLinear* contrib ops, which ONNX Runtime and candle-cpu run). `--format dynamic`
uses quantize_dynamic: int8 weights, activations quantized at run time
(DynamicQuantizeLinear, MatMulInteger/ConvInteger, all standard ONNX); no calibration.

The result is what teams ship as "the int8 model"; parity checks candle-cpu's run of it
against ONNX Runtime's (docs/conformance.md).
"""
import argparse
import glob
import os
import sys

import onnx
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
    p.add_argument("--format", choices=("qdq", "qoperator", "dynamic"), default="qdq")
    a = p.parse_args()
    if a.format == "dynamic":
        quantize_dynamic(os.path.join(a.suite, "model.onnx"), a.out, weight_type=QuantType.QInt8,
                         per_channel=a.per_channel)
        print(f"wrote {a.out}")
        return 0
    reader = SuiteReader(a.suite)
    if not reader.feeds:
        print(f"make-qdq-model: {a.suite} has no data sets", file=sys.stderr)
        return 1
    quantize_static(os.path.join(a.suite, "model.onnx"), a.out, reader, 
                    quant_format=QuantFormat.QOperator if a.format == "qoperator" else QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=a.per_channel)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
