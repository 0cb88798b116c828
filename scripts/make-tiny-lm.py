#!/usr/bin/env python3
"""Builds tiny random-weight decoder-only language models from Hugging Face
`transformers`' own modeling code and exports them to ONNX with `torch.onnx.export`
(no download: the weights are random, seeded), for issue 16's generation suites.

    scripts/make-tiny-lm.sh OUT_DIR    # OUT_DIR/{gpt2,llama}-kv.onnx and *-mlp105.onnx

Each model: vocabulary 128, hidden size 32, 2 layers, 4 attention heads (Llama: 2 KV
heads, grouped-query attention), head size 8, opset 17, seeded random weights drawn
with standard deviation 0.2 (not the library's 0.02, whose logits are so flat that
almost every step is a near-tie), eager attention (finite masks: a fully padded row
stays finite). One decoding step with the KV cache in the usual convention: inputs
`input_ids` [batch, seq], `attention_mask` [batch, total], `position_ids` [batch, seq],
`past_key_values.{i}.key/value` [batch, kv_heads, past, 8]; outputs `logits` [batch,
seq, 128] and `present.{i}.key/value` [batch, kv_heads, total, 8] (total = past + seq),
every size dynamic; the first step has an empty past (past = 0).

`M-kv-mlp105.onnx` is the same model with one MLP weight scaled by 1.05: the largest
element of the last layer's GPT-2 `c_fc` or Llama `down_proj` matrix, a regression that
leaves the greedy tokens of short generations unchanged and moves the logits.
"""
import argparse
import os

import torch
from transformers import (DynamicCache, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM)

LAYERS = 2
STD = 0.2


class OneStep(torch.nn.Module):
    """One decoding step: the past as flat key/value tensors in, logits and the present
    out (the cache a runtime feeds back)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, *past):
        cache = DynamicCache()
        for i in range(LAYERS):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         position_ids=position_ids, past_key_values=cache, use_cache=True)
        present = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (out.logits, *present)


def build(kind: str) -> tuple[torch.nn.Module, int, str]:
    """The model, its number of KV heads and the MLP weight the variant scales."""
    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=128, n_positions=128, n_embd=32, n_layer=LAYERS, n_head=4,
                         initializer_range=STD, attn_implementation="eager")
        return GPT2LMHeadModel(cfg), 4, f"transformer.h.{LAYERS - 1}.mlp.c_fc.weight"
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=128, initializer_range=STD,
                      attn_implementation="eager")
    return LlamaForCausalLM(cfg), 2, f"model.layers.{LAYERS - 1}.mlp.down_proj.weight"


def export(model: torch.nn.Module, kv_heads: int, path: str) -> None:
    """Exports one decoding step of `model` to `path` (traced with a past of 3)."""
    ids = torch.tensor([[5, 17, 42, 7], [9, 3, 1, 2]])
    past = [torch.randn(2, kv_heads, 3, 8) for _ in range(2 * LAYERS)]
    kv_in = [f"past_key_values.{i}.{t}" for i in range(LAYERS) for t in ("key", "value")]
    kv_out = [f"present.{i}.{t}" for i in range(LAYERS) for t in ("key", "value")]
    dynamic = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
               "position_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    dynamic.update({n: {0: "batch", 2: "past"} for n in kv_in})
    dynamic.update({n: {0: "batch", 2: "total"} for n in kv_out})
    mask = torch.ones(2, 3 + ids.shape[1], dtype=torch.int64)
    positions = torch.arange(3, 3 + ids.shape[1]).expand(2, -1)
    torch.onnx.export(OneStep(model), (ids, mask, positions, *past), path,
                      input_names=["input_ids", "attention_mask", "position_ids", *kv_in],
                      output_names=["logits", *kv_out], dynamic_axes=dynamic,
                      opset_version=17, dynamo=False)
    print(f"wrote {path}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for kind in ("gpt2", "llama"):
        torch.manual_seed(0)
        model, kv_heads, scaled = build(kind)
        model.eval()
        export(model, kv_heads, os.path.join(a.out, f"{kind}-kv.onnx"))
        with torch.no_grad():
            weight = model.get_parameter(scaled).view(-1)
            weight[weight.abs().argmax()] *= 1.05
        export(model, kv_heads, os.path.join(a.out, f"{kind}-kv-mlp105.onnx"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
