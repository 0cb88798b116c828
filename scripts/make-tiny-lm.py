#!/usr/bin/env python3
"""Builds tiny random-weight decoder-only language models from Hugging Face
`transformers`' own modeling code and exports them to ONNX with `torch.onnx.export`
(no download: the weights are random, seeded), for issue 16's generation suites.

    scripts/make-tiny-lm.sh OUT_DIR          # makes OUT_DIR/gpt2.onnx, OUT_DIR/llama.onnx

Each model: vocabulary 128, hidden size 32, 2 layers, 4 attention heads (Llama: 2 KV
heads, grouped-query attention), opset 17; inputs `input_ids` and `attention_mask`
(int64, [1, seq]), output `logits` ([1, seq, 128]), `seq` dynamic. This first version
exports the full-sequence forward pass (`use_cache=False`); the KV-cache form
(`past_key_values.{i}.key/value` in, `present.{i}.key/value` out) is the next step.

Measured 2026-12-07 (torch 2.15.0, transformers 5.25.0): `parity record M --random 2
--dim seq=8 --backend ort-cpu`, then `parity check`: candle-cpu passes both (max abs
err 9e-8); tract-cpu 0.23.9 cannot run them ("Add: Can not broadcast 8 against 2" in
the attention mask arithmetic).
"""
import argparse
import os

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM


class LogitsOnly(torch.nn.Module):
    """The model's forward pass without a cache, returning the logits alone."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def build(kind: str) -> torch.nn.Module:
    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=128, n_positions=64, n_embd=32, n_layer=2, n_head=4)
        return GPT2LMHeadModel(cfg)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(cfg)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for kind in ("gpt2", "llama"):
        torch.manual_seed(0)
        model = build(kind).eval()
        ids = torch.tensor([[5, 17, 42, 7]])
        path = os.path.join(a.out, f"{kind}.onnx")
        torch.onnx.export(LogitsOnly(model), (ids, torch.ones_like(ids)), path,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": {1: "seq"}, "attention_mask": {1: "seq"},
                                        "logits": {1: "seq"}},
                          opset_version=17, dynamo=False)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
