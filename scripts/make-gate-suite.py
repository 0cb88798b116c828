#!/usr/bin/env python3
"""Builds the source of a dataset-level release-gate suite (issue 18): a public float
classifier, real inputs, their true labels and slices.

    .venv/bin/python scripts/make-gate-suite.py --out DIR [--count N] [--list]

writes

    DIR/model.onnx              magika 1.0.3's standard_v3_3 model, a byte-for-byte copy
    DIR/test_data_set_{i}.npz   i = 0..N-1 (N default 160): the model's input only, keyed by
                                input name (`bytes`, int32 [1, 2048]), stored uncompressed
    DIR/labels.csv              `case,label,slice`: `test_data_set_{i}`, the integer index of
                                the file's true content type on the model's output class axis
                                (its position in the config's `target_labels_space`), and
                                `text` or `binary` (the content type's `is_text` in magika's
                                content-type knowledge base)

and prints how many data sets each label and slice got on stderr (with --list, also each
data set's content type, package and file). Record the suite with

    parity record DIR/model.onnx --inputs DIR --backend ort-cpu --out SUITE
    cp DIR/labels.csv SUITE/

Why: a release gate asks dataset-level questions (does an int8 or re-exported copy of a
model still agree with the float golden on the top-1 class of >= 95% of real inputs, and is
its accuracy on labelled data no worse, on every slice?), which random inputs cannot
answer: a classifier's decisions on noise say nothing about its decisions on data. magika
(Apache-2.0, from its pinned PyPI wheel; requirements-test-models.txt, installed into .venv
by scripts/setup.sh --test) is small (3 MB, 214 classes) and its inputs are plain files, so
a real, labelled data set is at hand without downloading one: the files of the pinned wheels
installed in .venv, whose extension names their true content type.

Inputs: magika's own feature extraction (magika/magika.py,
Magika._extract_features_from_seekable, "features extraction v2"), reimplemented here from
the model's config (config.min.json next to model.onnx): read min(block_size, size) bytes
from the beginning and from the end of the file; lstrip() the first block and rstrip() the
last (Python bytes.strip: ASCII whitespace); take the first beg_size / last end_size bytes,
padding with padding_token (256) at the end of `beg` / the start of `end`; the model input
is beg + end (mid_size is 0 in this config). Files that magika would not send to the model
(size below min_file_size_for_dl, or fewer than min_file_size_for_dl bytes left after
stripping) are skipped, as is anything whose config does not match that scheme.

Files: only files of the wheels pinned in requirements.txt, requirements-test-models.txt and
scripts/setup.sh (PACKAGES below), as listed in each installed distribution's RECORD and only
those RECORD gives a sha256 for (so no .pyc compiled at install time); each chosen file's
bytes are checked against that sha256. A file's label comes from its extension through
magika's content-type knowledge base (magika/config/content_types_kb.min.json), restricted
to the model's labels; an extension that maps to several labels is skipped (.m, .pl, .plist,
...), and so is one the knowledge base does not list, except the two in EXTRA_EXTENSIONS
(.so -> elf, .xsd -> xml: the format fixes the content type). .h (C, C++ or Objective-C) is
not used. Selection: each label's candidates in the order of sha256("dist/path") (spreads
the picks over packages and folders), then round-robin over labels in label-space order,
one file per label per round, until N; so every content type is represented and a small
one is used up before a big one (Python) fills the rest.

Deterministic: the same .venv gives the same bytes (sorted listings, no clocks: the .npz
members carry a fixed 1980-01-01 timestamp). Versions other than PACKAGES' pins are warned
about on stderr (a different file set, then a different suite).

Only the standard library, numpy and onnx: the magika package is located with
importlib.util.find_spec, never imported (its dependencies are not installed).
Exit status: 0 done; 1 not enough files, a file that does not match its RECORD sha256, or
magika/its model not found or not as expected.
"""
from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import shutil
import sys
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import onnx

MODEL_DIR = "models/standard_v3_3"
MAGIKA_VERSION = "1.0.3"
# Distributions whose files are the data: the pinned wheels of requirements.txt,
# requirements-test-models.txt and scripts/setup.sh --test.
PACKAGES = {
    "numpy": "2.4.6",
    "onnxruntime": "1.31.1",
    "onnx": "1.23.2",
    "PyYAML": "6.0.3",
    "xmlschema": "4.3.2",
    "magika": MAGIKA_VERSION,
    "silero-vad": "6.2.3",
    "prometheus-client": "0.23.1",
    "nvidia-cuda-nvrtc": "13.0.88",
}
# Extensions the knowledge base does not list whose content type the format fixes.
EXTRA_EXTENSIONS = {"so": "elf", "xsd": "xml"}
NPZ_TIME = (1980, 1, 1, 0, 0, 0)


def fail(msg: str) -> None:
    print(f"make-gate-suite: {msg}", file=sys.stderr)
    sys.exit(1)


def magika_dir() -> Path:
    spec = importlib.util.find_spec("magika")  # locates, does not import
    if spec is None or not spec.submodule_search_locations:
        fail("the magika package is not installed (run scripts/setup.sh --test)")
    return Path(list(spec.submodule_search_locations)[0])


def features(head: bytes, tail: bytes, size: int, cfg: dict) -> list[int] | None:
    """magika's features extraction v2 of a file of `size` bytes whose first and last
    min(block_size, size) bytes are `head` and `tail`; None when magika would not run the
    model on it (too small, or too little left after stripping)."""
    if size == 0 or size < cfg["min_file_size_for_dl"]:
        return None
    beg_size, end_size, pad = cfg["beg_size"], cfg["end_size"], cfg["padding_token"]
    beg = list(head.lstrip()[:beg_size])
    beg += [pad] * (beg_size - len(beg))
    end_content = tail.rstrip()
    end = list(end_content[len(end_content) - end_size:]) if len(end_content) > end_size \
        else list(end_content)
    end = [pad] * (end_size - len(end)) + end
    if beg[cfg["min_file_size_for_dl"] - 1] == pad:
        return None
    return beg + end


def record_hash(hash_field) -> bytes | None:
    if hash_field is None or hash_field.mode != "sha256":
        return None
    value = hash_field.value
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz (what np.savez writes) with fixed member timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=NPZ_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o600 << 16
            z.writestr(info, member.getvalue())
    return buf.getvalue()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="directory to write (created)")
    p.add_argument("--count", type=int, default=160, help="data sets (default 160)")
    p.add_argument("--list", action="store_true",
                   help="also print each data set's label, package and file on stderr")
    a = p.parse_args()
    if a.count < 1:
        fail("--count must be at least 1")

    mdir = magika_dir()
    model_path = mdir / MODEL_DIR / "model.onnx"
    cfg_path = mdir / MODEL_DIR / "config.min.json"
    kb_path = mdir / "config" / "content_types_kb.min.json"
    for f in (model_path, cfg_path, kb_path):
        if not f.is_file():
            fail(f"{f} not found (magika {MAGIKA_VERSION} expected)")
    cfg = json.loads(cfg_path.read_text())
    kb = json.loads(kb_path.read_text())
    if cfg.get("mid_size") != 0 or cfg.get("use_inputs_at_offsets"):
        fail(f"{cfg_path}: mid features or inputs at offsets are not implemented here")
    if not (cfg["beg_size"] < cfg["block_size"] and cfg["end_size"] < cfg["block_size"]):
        fail(f"{cfg_path}: beg_size/end_size must be below block_size")
    labels = cfg["target_labels_space"]
    width = cfg["beg_size"] + cfg["end_size"]

    model = onnx.load(str(model_path), load_external_data=False)
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    if len(inputs) != 1:
        fail(f"{model_path}: expected one input, found {len(inputs)}")
    inp = inputs[0]
    ttype = inp.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type)
    dims = [d.dim_value if d.HasField("dim_value") else 1 for d in ttype.shape.dim]
    if int(np.prod(dims)) != width or dims[-1] != width:
        fail(f"{model_path}: input {inp.name} {dims} does not hold {width} byte tokens")
    out_dims = model.graph.output[0].type.tensor_type.shape.dim
    if out_dims[-1].dim_value != len(labels):
        fail(f"{model_path}: output class axis is not the config's {len(labels)} labels")

    ext_labels: dict[str, set[str]] = defaultdict(set)
    for label, info in kb.items():
        if label in labels:
            for e in info.get("extensions", []):
                ext_labels[e.lower()].add(label)
    ext_label = {e: next(iter(s)) for e, s in ext_labels.items() if len(s) == 1}
    for e, label in EXTRA_EXTENSIONS.items():
        ext_label.setdefault(e, label)

    # Candidates per label: (order key, dist, path, expected sha256, features).
    cands: dict[str, list] = defaultdict(list)
    versions = {}
    for dist_name in sorted(PACKAGES):
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            print(f"make-gate-suite: warning: {dist_name} not installed; its files are not used",
                  file=sys.stderr)
            continue
        versions[dist_name] = dist.version
        if dist.version != PACKAGES[dist_name]:
            print(f"make-gate-suite: warning: {dist_name} {dist.version} installed, "
                  f"{PACKAGES[dist_name]} pinned: the suite differs from the pinned one",
                  file=sys.stderr)
        for f in sorted(dist.files or [], key=lambda f: str(f)):
            rel = str(f)
            digest = record_hash(f.hash)
            name = rel.rsplit("/", 1)[-1]
            if digest is None or "." not in name or rel.startswith(".."):
                continue
            label = ext_label.get(name.rsplit(".", 1)[-1].lower())
            if label is None:
                continue
            path = Path(f.locate())
            if not path.is_file() or path.is_symlink():
                continue
            size = path.stat().st_size
            with open(path, "rb") as fh:
                n = min(cfg["block_size"], size)
                head = fh.read(n)
                fh.seek(size - n)
                tail = fh.read(n)
            feats = features(head, tail, size, cfg)
            if feats is None:
                continue
            key = hashlib.sha256(f"{dist_name}/{rel}".encode()).hexdigest()
            cands[label].append((key, dist_name, rel, path, digest, feats))

    order = [label for label in labels if cands.get(label)]
    for label in order:
        cands[label].sort()
    chosen = []
    rnd = 0
    while len(chosen) < a.count:
        took = False
        for label in order:
            if rnd < len(cands[label]) and len(chosen) < a.count:
                chosen.append((label, cands[label][rnd]))
                took = True
        if not took:
            fail(f"only {len(chosen)} usable files, --count {a.count} asked")
        rnd += 1

    a.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path, a.out / "model.onnx")
    rows = []
    for i, (label, (_, dist_name, rel, path, digest, feats)) in enumerate(chosen):
        if hashlib.sha256(path.read_bytes()).digest() != digest:
            fail(f"{path} does not match its sha256 in {dist_name}'s RECORD (modified?)")
        arr = np.asarray(feats, dtype=dtype).reshape(dims)
        (a.out / f"test_data_set_{i}.npz").write_bytes(npz_bytes({inp.name: arr}))
        slc = "text" if kb[label].get("is_text") else "binary"
        rows.append((f"test_data_set_{i}", labels.index(label), slc, label, dist_name, rel))
    with open(a.out / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["case", "label", "slice"])
        for r in rows:
            w.writerow(r[:3])

    per_label = Counter(r[3] for r in rows)
    per_slice = Counter(r[2] for r in rows)
    print(f"make-gate-suite: {len(rows)} data sets in {a.out} (model {model_path}; "
          + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ")", file=sys.stderr)
    print("  per label: " + ", ".join(
        f"{lab} (class {labels.index(lab)}) {per_label[lab]}" for lab in order if per_label[lab]),
        file=sys.stderr)
    print("  per slice: " + ", ".join(f"{s} {per_slice[s]}" for s in sorted(per_slice)),
          file=sys.stderr)
    if a.list:
        for case, _, slc, label, dist_name, rel in rows:
            print(f"  {case} {label} {slc} {dist_name} {rel}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
