#!/usr/bin/env python3
"""Reference runner of parity's `parity-exec/1` protocol, over ONNX Runtime (CPU).

parity starts this script once per model, e.g.

    parity check models/ --backend ort-cpu \
        --backend 'exec:.venv/bin/python examples/exec/ort_runner.py' --matrix

and speaks one line at a time on stdin/stdout (docs/exec-backend.md):

    runner -> parity   parity-exec/1 {"name": ..., "version": ..., "device": ...}
    parity -> runner   load {"model": "/abs/model.onnx", "threads": null}
    runner -> parity   ok                       (or: error MESSAGE)
    parity -> runner   run {"inputs": "/tmp/.../inputs.npz", "outputs": "/tmp/.../outputs.npz"}
    runner -> parity   ok                       (or: error MESSAGE)
    ...                parity closes stdin: the runner exits

stdout carries only protocol lines; logs go to stderr (parity quotes its tail in errors).
To put another runtime in the comparison, copy this file and change `load` and `run`.
"""

import json
import sys

import numpy as np
import onnxruntime as ort

PROTOCOL = "parity-exec/1"


def load(request):
    options = ort.SessionOptions()
    if request.get("threads"):
        options.intra_op_num_threads = request["threads"]
    return ort.InferenceSession(
        request["model"], options, providers=["CPUExecutionProvider"]
    )


def run(session, request):
    with np.load(request["inputs"]) as archive:
        feeds = {name: archive[name] for name in archive.files}
    names = [o.name for o in session.get_outputs()]
    outputs = session.run(names, feeds)
    np.savez(request["outputs"], **dict(zip(names, outputs)))


def reply(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    hello = {"name": "onnxruntime", "version": ort.__version__, "device": "cpu"}
    reply(PROTOCOL + " " + json.dumps(hello))
    session = None
    for line in sys.stdin:
        verb, _, argument = line.rstrip("\n").partition(" ")
        try:
            request = json.loads(argument) if argument else {}
            if verb == "load":
                session = load(request)
            elif verb == "run" and session is not None:
                run(session, request)
            elif verb == "run":
                raise RuntimeError("`run` before `load`")
            else:
                raise RuntimeError(f"unknown request `{verb}`")
            reply("ok")
        except Exception as e:  # the case fails, the runner stays up
            print(f"{type(e).__name__}: {e}", file=sys.stderr)
            reply("error " + " ".join(f"{type(e).__name__}: {e}".split()))


if __name__ == "__main__":
    main()
