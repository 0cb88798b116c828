"""Writes an MLServer directory serving ONNX models through tests/servers/mlserver_onnx.py.

Usage: python mlserver_dir.py DIR HTTP_PORT GRPC_PORT METRICS_PORT NAME=MODEL.onnx...
Loopback only, models loaded in the main process (`parallel_workers: 0`: the default
worker pool fails to load models here, see docs/remote.md), absolute model paths (a
relative `uri` is resolved against the server's working directory)."""
import json
import os
import shutil
import sys


def main():
    out, http, grpc, metrics, *models = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "mlserver_onnx.py"), out)
    settings = {"host": "127.0.0.1", "http_port": int(http), "grpc_port": int(grpc),
                "metrics_port": int(metrics), "parallel_workers": 0, "debug": False}
    with open(os.path.join(out, "settings.json"), "w") as f:
        json.dump(settings, f)
    for spec in models:
        name, path = spec.split("=", 1)
        os.makedirs(os.path.join(out, name), exist_ok=True)
        with open(os.path.join(out, name, "model-settings.json"), "w") as f:
            json.dump({"name": name, "implementation": "mlserver_onnx.OnnxModel",
                       "parameters": {"uri": os.path.abspath(path)}}, f)


if __name__ == "__main__":
    main()
