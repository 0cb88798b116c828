"""A small Open Inference Protocol (KServe v2 REST) server that misbehaves on purpose.

Serves one ONNX model (run with onnxruntime) under several model names; the name picks
what the server does wrong, so tests/it/kserve.rs can check that parity reports each fault:

  ok              correct JSON answers
  binary          correct, and only through the binary tensor extension (JSON inputs: 400)
  wrong-shape     the first output flattened to one dimension
  wrong-dtype     every output declared (metadata) and sent as FP64
  missing-output  the last output left out
  not-json        HTTP 200 with an HTML body
  short-data      the first output's data one value short of its shape
  http-500        HTTP 500 with a JSON error body
  slow            answers after --slow seconds
  drop            closes the connection without answering
  flaky           every third inference request (server-wide) answered HTTP 503

Usage: python fake_kserve.py MODEL.onnx [--slow SECONDS]; prints `PORT n` once listening
on 127.0.0.1 (an ephemeral port).
"""
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import onnxruntime as ort

FAULTS = ["ok", "binary", "wrong-shape", "wrong-dtype", "missing-output", "not-json",
          "short-data", "http-500", "slow", "drop", "flaky"]
DTYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT8": np.int8,
          "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8,
          "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64, "BOOL": np.bool_}
ONNX_TYPES = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(int64)": "INT64",
              "tensor(int32)": "INT32", "tensor(bool)": "BOOL", "tensor(float16)": "FP16"}


def datatype_of(array):
    for name, t in DTYPES.items():
        if array.dtype == t:
            return name
    raise ValueError(f"no datatype for {array.dtype}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body are separate writes: without this, Nagle's algorithm holds
        # the body until the client's delayed ACK (40 ms a response).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def model(self, parts):
        # /v2/models/NAME[/versions/V]...
        name = parts[3] if len(parts) > 3 else ""
        return name if name in FAULTS else None

    def do_GET(self):
        parts = self.path.split("/")
        if self.path == "/v2":
            return self.reply(200, {"name": "parity-fake", "version": "1", "extensions": ["binary_tensor_data"]})
        if self.path == "/v2/health/ready":
            return self.reply(200, b"")
        name = self.model(parts)
        if name is None:
            return self.reply(404, {"error": f"model {self.path} not found"})
        if parts[-1] == "ready":
            return self.reply(200, b"")
        sess = self.server.session
        def meta(ios, dtype=None):
            return [{"name": i.name, "datatype": dtype or ONNX_TYPES[i.type],
                     "shape": [d if isinstance(d, int) else -1 for d in i.shape]} for i in ios]
        out_type = "FP64" if name == "wrong-dtype" else None
        return self.reply(200, {"name": name, "versions": ["1"], "platform": "onnxruntime",
                                "inputs": meta(sess.get_inputs()),
                                "outputs": meta(sess.get_outputs(), out_type)})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        name = self.model(self.path.split("/"))
        if name is None or not self.path.endswith("/infer"):
            return self.reply(404, {"error": f"no such endpoint {self.path}"})
        if name == "drop":
            self.close_connection = True
            return
        if name == "flaky":
            with self.server.lock:
                self.server.count += 1
                failing = self.server.count % 3 == 0
            if failing:
                return self.reply(503, {"error": "overloaded, try again"})
        if name == "http-500":
            return self.reply(500, {"error": "model crashed: out of memory"})
        if name == "slow":
            time.sleep(self.server.slow)
        header_len = self.headers.get("Inference-Header-Content-Length")
        head = json.loads(body[: int(header_len)] if header_len else body)
        binary = body[int(header_len):] if header_len else b""
        feeds = {}
        for inp in head["inputs"]:
            t = DTYPES[inp["datatype"]]
            size = inp.get("parameters", {}).get("binary_data_size")
            if size is not None:
                arr = np.frombuffer(binary[:size], dtype=t).reshape(inp["shape"])
                binary = binary[size:]
            elif name == "binary":
                return self.reply(400, {"error": f"input {inp['name']}: this model takes binary tensors only"})
            else:
                arr = np.array(inp["data"], dtype=t).reshape(inp["shape"])
            feeds[inp["name"]] = arr
        sess = self.server.session
        names = [o.name for o in sess.get_outputs()]
        results = dict(zip(names, sess.run(names, feeds)))
        if name == "not-json":
            return self.reply(200, b"<html><body>502 Bad Gateway</body></html>", [("Content-Type", "text/html")])
        if name == "missing-output":
            del results[names[-1]]
        outputs, tail = [], b""
        for i, (n, arr) in enumerate(results.items()):
            if name == "wrong-dtype":
                arr = arr.astype(np.float64)
            shape = list(arr.shape)
            if name == "wrong-shape" and i == 0:
                shape = [int(arr.size)]
            out = {"name": n, "datatype": datatype_of(arr), "shape": shape}
            if name == "binary":
                raw = np.ascontiguousarray(arr).tobytes()
                out["parameters"] = {"binary_data_size": len(raw)}
                tail += raw
            else:
                data = arr.reshape(-1).tolist()
                if name == "short-data" and i == 0:
                    data = data[:-1]
                out["data"] = data
            outputs.append(out)
        doc = json.dumps({"model_name": name, "outputs": outputs}).encode()
        if name == "binary":
            return self.reply(200, doc + tail, [("Content-Type", "application/octet-stream"),
                                                ("Inference-Header-Content-Length", str(len(doc)))])
        return self.reply(200, doc, [("Content-Type", "application/json")])


def main():
    args = sys.argv[1:]
    slow = 3.0
    if "--slow" in args:
        i = args.index("--slow")
        slow = float(args[i + 1])
        del args[i:i + 2]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.session = ort.InferenceSession(args[0], providers=["CPUExecutionProvider"])
    server.slow = slow
    server.count = 0
    server.lock = threading.Lock()
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
