"""Writes a random kohya-format LoRA for a diffusers SD 1.x UNet, for timing LoRA switches (docs/lora.md).

Every linear layer of the transformer blocks (attention q/k/v/out of attn1 and attn2, the feed-forward's two) gets a
rank-R pair; the values are random, so the file only serves to measure what applying it costs.
Usage: python3 make_random_lora.py UNET_FOLDER OUT.safetensors [--rank 8] [--seed 1]
"""
import argparse
import json
import struct

import torch
from safetensors.torch import save_file

parser = argparse.ArgumentParser()
parser.add_argument("unet")
parser.add_argument("out")
parser.add_argument("--rank", type=int, default=8)
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()

with open(f"{args.unet}/diffusion_pytorch_model.safetensors", "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
suffixes = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v",
            "attn2.to_out.0", "ff.net.0.proj", "ff.net.2")
generator = torch.Generator().manual_seed(args.seed)
tensors = {}
for key, info in sorted(header.items()):
    if key == "__metadata__" or not key.endswith(".weight") or len(info["shape"]) != 2:
        continue
    module = key[: -len(".weight")]
    if ".transformer_blocks." not in module or not module.endswith(suffixes):
        continue
    out_features, in_features = info["shape"]
    name = "lora_unet_" + module.replace(".", "_")
    tensors[f"{name}.lora_down.weight"] = torch.randn(args.rank, in_features, generator=generator) / in_features ** 0.5
    tensors[f"{name}.lora_up.weight"] = torch.randn(out_features, args.rank, generator=generator) * 0.01
    tensors[f"{name}.alpha"] = torch.tensor(float(args.rank))
save_file(tensors, args.out)
print(f"{args.out}: {len(tensors) // 3} layers, rank {args.rank}")
