#!/usr/bin/env python3
"""Makes a slower variant of a suite's model for the bench baseline gate (issue 5).

    make-slow-variant.py SUITE OUT [--pairs N]

Copies the suite directory SUITE to OUT (a directory of the same name keeps the same
bench model name, so results match a baseline of the original) and inserts N pairs of
`Mul(x, 2)`, `Mul(x, 0.5)` on the first input before the original graph: scaling by a
power of two is exact, so the outputs are bit-identical while every query runs 2N extra
nodes. The data files and parity.toml stay valid (the model sha256 in parity.toml then
differs from model.onnx, which `parity check` reports as a warning).
"""

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


def slow_variant(model: onnx.ModelProto, pairs: int) -> onnx.ModelProto:
    graph = model.graph
    x = graph.input[0]
    elem = x.type.tensor_type.elem_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
    if not np.issubdtype(dtype, np.floating):
        sys.exit(f"make-slow-variant: input {x.name} is not a float tensor")
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(2.0, dtype=dtype), "slow_variant_two"),
            numpy_helper.from_array(np.array(0.5, dtype=dtype), "slow_variant_half"),
        ]
    )
    prev = x.name
    extra = []
    for i in range(pairs):
        up, down = f"slow_variant_{i}_up", f"slow_variant_{i}_down"
        extra.append(helper.make_node("Mul", [prev, "slow_variant_two"], [up]))
        extra.append(helper.make_node("Mul", [up, "slow_variant_half"], [down]))
        prev = down
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name == x.name:
                node.input[k] = prev
    nodes = extra + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--pairs", type=int, default=10)
    a = ap.parse_args()
    if a.out.exists():
        sys.exit(f"make-slow-variant: {a.out} exists")
    shutil.copytree(a.suite, a.out)
    model = onnx.load(str(a.suite / "model.onnx"))
    onnx.save(slow_variant(model, a.pairs), str(a.out / "model.onnx"))
    print(f"{a.out}/model.onnx: {a.suite} plus {2 * a.pairs} Mul nodes on its first input")


if __name__ == "__main__":
    main()
