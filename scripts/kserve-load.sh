#!/usr/bin/env bash
# Load test of the kserve+http backend against a real Open Inference Protocol server:
# starts MLServer 1.7.1 (.venv-serve, from scripts/setup.sh --test) on loopback serving
# models/mlp through onnxruntime, runs `parity bench --verify` with at least 10,000
# queries at concurrency 32 against it and the same model in-process (ort-cpu), and
# writes both into the section "Remote endpoint under load" at the end of
# docs/performance.md (replacing that section only). Exits 1 if a query was lost or
# mismatched. PARITY=path selects the binary (default: the debug build, built here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
queries=${QUERIES:-10000}
concurrency=${CONCURRENCY:-32}
for venv in .venv .venv-serve; do
  if [ ! -x "$venv/bin/python" ]; then
    echo "kserve-load: $venv is missing; run scripts/setup.sh --test first" >&2
    exit 1
  fi
done
if [ -z "${PARITY:-}" ]; then
  cargo build --quiet
  PARITY="${CARGO_TARGET_DIR:-$root/target}/debug/parity"
fi
tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -- "-$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
read -r http grpc metrics < <(.venv/bin/python -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
.venv-serve/bin/python tests/servers/mlserver_dir.py "$tmp/server" "$http" "$grpc" "$metrics" \
  "mlp=$root/models/mlp/model.onnx"
(cd "$tmp/server" && exec setsid "$root/.venv-serve/bin/mlserver" start . >"$tmp/server.log" 2>&1) &
server_pid=$!
.venv/bin/python - "$http" <<'PY' || { cat "$tmp/server.log" >&2; exit 1; }
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/v2/health/ready"
for _ in range(600):
    try:
        if urllib.request.urlopen(url, timeout=1).status == 200:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("kserve-load: MLServer not ready after 120 s")
PY
url="kserve+http://127.0.0.1:$http/v2/models/mlp"
common=(--concurrency "$concurrency" --min-queries "$queries" --min-duration 0 --max-duration 300
        --warmup 1 --verify --format json)
echo "kserve-load: $queries queries at concurrency $concurrency against $url" >&2
"$PARITY" bench models/mlp --backend "$url" "${common[@]}" --out "$tmp/remote.json" || true
echo "kserve-load: the same in-process on ort-cpu (1 intra-op thread per session)" >&2
"$PARITY" bench models/mlp --backend ort-cpu --threads 1 "${common[@]}" --out "$tmp/local.json" || true
.venv/bin/python - "$tmp/remote.json" "$tmp/local.json" "$PARITY" docs/performance.md <<'PY'
import json, sys, subprocess, platform, datetime
remote, local = (json.load(open(p))["results"][0] for p in sys.argv[1:3])
binary, doc = sys.argv[3], sys.argv[4]
rows = []
bad = 0
for label, r in (("MLServer 1.7.1 over loopback (kserve+http)", remote), ("in-process ort-cpu", local)):
    if r.get("error"):
        sys.exit(f"kserve-load: {label}: {r['error']}")
    v, l = r["verify"], r["latency_ms"]
    bad += v["mismatched"] + v["errors"]
    rows.append(f"| {label} | {r['queries']} | {r['concurrency']} | {r['duration_s']:.2f} | "
                f"{r['throughput_per_s']:.0f} | {l['p50']:.3f} / {l['p90']:.3f} / {l['p99']:.3f} / {l['p999']:.3f} / {l['max']:.3f} | "
                f"{v['checked']} | {v['mismatched']} | {v['errors']} ({v['timeouts']}) |")
profile = ("debug build (the crate unoptimised, its dependencies at opt-level 3)" if "/debug/" in binary
           else "release build" if "/release/" in binary else f"binary {binary}")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
section = f"""## Remote endpoint under load (kserve+http, `scripts/kserve-load.sh`)

`parity bench models/mlp --verify`, closed loop, {remote['concurrency']} workers each with its own session
(its own keep-alive HTTP connection), against MLServer 1.7.1 serving the same `model.onnx` through
onnxruntime 1.31.1 (tests/servers/mlserver_onnx.py, one intra-op thread, models loaded in the server's
main process), both on 127.0.0.1; then the same model in-process. Every response (warm-up included) was
compared with the suite's golden outputs of `test_data_set_0` under its tolerances. Latency is from
sending the request to having read and validated the response, so the remote figures include JSON
encoding, the loopback network, MLServer's queue and decoding. Measured {datetime.date.today()} on
{cpu} ({subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, shared with other work), parity {profile}.

| target | queries | concurrency | duration s | queries/s | latency ms p50 / p90 / p99 / p99.9 / max | responses checked | mismatched | errors (timeouts) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
""" + "\n".join(rows) + f"""

Lost queries: {remote['verify']['errors']} remote, {local['verify']['errors']} in-process; mismatched: {remote['verify']['mismatched']} and {local['verify']['mismatched']}.
The remote p50 is {remote['latency_ms']['p50'] / local['latency_ms']['p50']:.0f}x the in-process one: with {remote['concurrency']} requests in flight
the time is MLServer's (one Python event loop decoding JSON, running the model and encoding the answer),
not the model's. In-process, {local['concurrency']} workers share the machine's cores, so its p99.9 and max
are workers waiting for a core (preemption), not the model.
"""
marker = "## Remote endpoint under load"
text = open(doc).read()
if marker in text:
    text = text[: text.index(marker)].rstrip("\n") + "\n"
open(doc, "w").write(text.rstrip("\n") + "\n\n" + section)
print(section)
sys.exit(1 if bad else 0)
PY
