#!/usr/bin/env python3
"""Builds tiny random-weight decoder-only language models from Hugging Face
`transformers`' own modeling code and exports them to ONNX with `torch.onnx.export`
(no download: the weights are random, seeded), for issue 16's generation suites.

    scripts/make-tiny-lm.sh OUT_DIR    # OUT_DIR/{gpt2,llama}.onnx and {gpt2,llama}-kv.onnx

Each model: vocabulary 128, hidden size 32, 2 layers, 4 attention heads (Llama: 2 KV
heads, grouped-query attention), head size 8, opset 17, seeded random weights.
- `M.onnx`, the full-sequence forward pass (`use_cache=False`): inputs `input_ids` and
  `attention_mask` (int64, [1, seq]), output `logits` ([1, seq, 128]).
- `M-kv.onnx`, one decoding step with the KV cache in the usual convention: inputs
  `input_ids` [1, seq], `attention_mask` [1, total], `past_key_values.{i}.key/value`
  [1, kv_heads, past, 8]; outputs `logits` and `present.{i}.key/value` [1, kv_heads,
  total, 8] (total = past + seq), every length dynamic.

Measured 2026-12-07 (torch 2.15.0, transformers 5.25.0), `parity record M --random 2
--dim ... --backend ort-cpu` then `parity check --backend candle-cpu --backend
tract-cpu`: the logits forms pass on candle-cpu (max abs err 9e-8) and cannot run on
tract-cpu 0.23.9 ("Add: Can not broadcast 8 against 2"); gpt2-kv and llama-kv pass on both at a
prefill step (seq 4, past 3) and a decode step (seq 1, past 6).
"""
import argparse
import os

import torch
from transformers import (DynamicCache, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM)

LAYERS = 2


class LogitsOnly(torch.nn.Module):
    """The model's forward pass without a cache, returning the logits alone."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


class OneStep(torch.nn.Module):
    """One decoding step: the past as flat key/value tensors in, logits and the present
    out (the cache a runtime feeds back)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, *past):
        cache = DynamicCache()
        for i in range(LAYERS):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         past_key_values=cache, use_cache=True)
        present = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (out.logits, *present)


def build(kind: str) -> tuple[torch.nn.Module, int]:
    """The model and its number of KV heads."""
    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=LAYERS, n_head=4)
        return GPT2LMHeadModel(cfg), 4
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64)
    return LlamaForCausalLM(cfg), 2


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for kind in ("gpt2", "llama"):
        torch.manual_seed(0)
        model, kv_heads = build(kind)
        model.eval()
        ids = torch.tensor([[5, 17, 42, 7]])
        path = os.path.join(a.out, f"{kind}.onnx")
        torch.onnx.export(LogitsOnly(model), (ids, torch.ones_like(ids)), path,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": {1: "seq"}, "attention_mask": {1: "seq"},
                                        "logits": {1: "seq"}},
                          opset_version=17, dynamo=False)
        print(f"wrote {path}")
        past = [torch.randn(1, kv_heads, 3, 8) for _ in range(2 * LAYERS)]
        kv_in = [f"past_key_values.{i}.{t}" for i in range(LAYERS) for t in ("key", "value")]
        kv_out = [f"present.{i}.{t}" for i in range(LAYERS) for t in ("key", "value")]
        dynamic = {"input_ids": {1: "seq"}, "attention_mask": {1: "total"}, "logits": {1: "seq"}}
        dynamic.update({n: {2: "past"} for n in kv_in})
        dynamic.update({n: {2: "total"} for n in kv_out})
        path = os.path.join(a.out, f"{kind}-kv.onnx")
        mask = torch.ones(1, 3 + ids.shape[1], dtype=torch.int64)
        torch.onnx.export(OneStep(model), (ids, mask, *past), path,
                          input_names=["input_ids", "attention_mask", *kv_in],
                          output_names=["logits", *kv_out], dynamic_axes=dynamic,
                          opset_version=17, dynamo=False)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
