#!/usr/bin/env python3
"""Writes the small adapter and checkpoint files the tests load: LoRAs (diffusers/PEFT and kohya forms, LoCon),
textual-inversion embeddings (diffusers and web-UI forms, safetensors and torch.save) and torch.save checkpoints for
the pickle reader, all for the tiny model of the fixtures (hidden size 32). Run once; the files are committed under
tests/reference/weights and the reference generator reads them from there (regenerating them changes every image made
with them). Random values with fixed seeds; nothing here comes from a real model.

Usage: make_test_weights.py OUT_DIR [--fixtures DIR]
Needs torch and safetensors (no diffusers).
"""
import argparse
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("out")
ap.add_argument("--fixtures", default=os.environ.get("SD_FIXTURES", str(Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures")))
args = ap.parse_args()
OUT = Path(args.out)
FIXTURES = Path(args.fixtures)
unet = load_file(str(FIXTURES / "tiny-sd" / "unet" / "diffusion_pytorch_model.safetensors"))
text = load_file(str(FIXTURES / "tiny-sd" / "text_encoder" / "model.safetensors"))
generator = torch.Generator().manual_seed(1234)


def randn(*shape, std):
    return (torch.randn(shape, generator=generator) * std).contiguous()


def layers(state: dict, prefix: str, suffixes: tuple) -> list:
    """Module names (without '.weight') of the model whose weight ends with one of the suffixes."""
    return sorted(k[: -len(".weight")] for k in state if k.startswith(prefix) and k.endswith(".weight") and any(k[: -len(".weight")].endswith(s) for s in suffixes))


def lora_pair(weight: torch.Tensor, rank: int, std: float):
    """down/A [rank, in(, kh, kw)] and up/B [out, rank(, 1, 1)] for a Linear or Conv2d weight."""
    if weight.dim() == 4:
        out_c, in_c, kh, kw = weight.shape
        return randn(rank, in_c, kh, kw, std=std), randn(out_c, rank, 1, 1, std=std)
    out_f, in_f = weight.shape
    return randn(rank, in_f, std=std), randn(out_f, rank, std=std)


def make_adapter(modules: dict, rank: int, std: float) -> dict:
    """{model: {module: (A, B)}} for the named modules of each model ('unet' or 'text_encoder')."""
    adapter = {}
    for model, names in modules.items():
        state = unet if model == "unet" else text
        adapter[model] = {name: lora_pair(state[name + ".weight"], rank, std) for name in names}
    return adapter


def save_peft(adapter: dict, path: Path) -> None:
    """diffusers' format (save_lora_weights): unet.<module>.lora_A.weight / lora_B.weight, text_encoder.<module>...."""
    tensors = {}
    for model, modules in adapter.items():
        for name, (a, b) in modules.items():
            tensors[f"{model}.{name}.lora_A.weight"] = a
            tensors[f"{model}.{name}.lora_B.weight"] = b
    save_file(tensors, str(path), metadata={"format": "pt"})


def save_kohya(adapter: dict, alpha: float, path: Path) -> None:
    """kohya / web-UI form: lora_unet_<module with _>.lora_down.weight / lora_up.weight / alpha, lora_te_ likewise."""
    tensors = {}
    for model, modules in adapter.items():
        prefix = "lora_unet_" if model == "unet" else "lora_te_"
        for name, (a, b) in modules.items():
            key = prefix + name.replace(".", "_")
            tensors[f"{key}.lora_down.weight"] = a
            tensors[f"{key}.lora_up.weight"] = b
            tensors[f"{key}.alpha"] = torch.tensor(alpha, dtype=torch.float32)
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora", "ss_network_dim": str(next(iter(next(iter(adapter.values())).values()))[0].shape[0]), "ss_network_alpha": str(alpha)})


(OUT / "lora").mkdir(parents=True, exist_ok=True)
(OUT / "embeddings").mkdir(parents=True, exist_ok=True)
(OUT / "torch").mkdir(parents=True, exist_ok=True)
attention = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0",
             "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
text_layers = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")

# "style": UNet attention blocks and the whole text encoder, rank 4 with alpha 4 (scale 1), in both file forms.
style = make_adapter({"unet": layers(unet, "", attention), "text_encoder": layers(text, "text_model.encoder", text_layers)}, rank=4, std=0.08)
save_peft(style, OUT / "lora" / "style.peft.safetensors")
save_kohya(style, 4.0, OUT / "lora" / "style.kohya.safetensors")
# "detail": self-attention queries and values and the text encoder's queries, rank 2 with alpha 1 (scale 0.5), kohya form.
detail = make_adapter({"unet": layers(unet, "", ("attn1.to_q", "attn1.to_v")), "text_encoder": layers(text, "text_model.encoder", ("self_attn.q_proj",))}, rank=2, std=0.15)
save_kohya(detail, 1.0, OUT / "lora" / "detail.kohya.safetensors")
# "locon": the resnets' 3x3 convolutions and time projections (LoCon), rank 2 with alpha 2, kohya form.
locon = make_adapter({"unet": layers(unet, "", ("conv1", "conv2", "time_emb_proj"))}, rank=2, std=0.05)
save_kohya(locon, 2.0, OUT / "lora" / "locon.kohya.safetensors")

# Textual inversion: diffusers' learned_embeds (one token -> a vector, or several vectors), web UI's emb_params and .pt.
hidden = text["text_model.embeddings.token_embedding.weight"].shape[1]
save_file({"<cat-toy>": randn(hidden, std=0.5)}, str(OUT / "embeddings" / "cat-toy.safetensors"))
save_file({"<my-style>": randn(3, hidden, std=0.5)}, str(OUT / "embeddings" / "my-style.safetensors"))
save_file({"emb_params": randn(2, hidden, std=0.5)}, str(OUT / "embeddings" / "webui-style.safetensors"))
torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": randn(2, hidden, std=0.5).requires_grad_()},
            "name": "webui-pt", "step": 500, "sd_checkpoint": "0123456789", "sd_checkpoint_name": "tiny"},
           str(OUT / "embeddings" / "webui-pt.pt"))
torch.save({"<bin-token>": randn(hidden, std=0.5)}, str(OUT / "embeddings" / "learned_embeds.bin"))

# torch.save checkpoints for the pickle reader: what real files hold, and the values the tests expect.
base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
checkpoint = {
    "state_dict": {
        "model.diffusion_model.input_blocks.0.0.weight": randn(4, 3, 3, 3, std=1).half(),
        "model.diffusion_model.input_blocks.0.0.bias": randn(4, std=1).half(),
        "first_stage_model.encoder.conv_in.weight": randn(2, 3, 1, 1, std=1).to(torch.bfloat16),
        "cond_stage_model.transformer.text_model.embeddings.position_ids": torch.arange(77).unsqueeze(0),
        "shared.full": base,
        "shared.row": base[1],
        "shared.transposed": base.t(),
        "shared.column": base[:, 2],
        "double": torch.linspace(-1, 1, 5, dtype=torch.float64),
    },
    "global_step": 1234,
    "epoch": 3,
}
torch.save(checkpoint, str(OUT / "torch" / "checkpoint.ckpt"))
torch.save(dict(checkpoint["state_dict"]), str(OUT / "torch" / "pytorch_model.bin"))
expected = {}
for name, tensor in checkpoint["state_dict"].items():
    values = tensor.double().reshape(-1)
    expected[name] = {"dtype": str(tensor.dtype).replace("torch.", ""), "shape": list(tensor.shape), "sum": float(values.sum()),
                      "first": [float(v) for v in values[:4]], "contiguous": tensor.is_contiguous()}
(OUT / "torch" / "expected.json").write_text(json.dumps({"tensors": expected, "global_step": 1234, "epoch": 3}, indent=1) + "\n")
print("wrote", sorted(str(p.relative_to(OUT)) for p in OUT.rglob("*") if p.is_file()))
