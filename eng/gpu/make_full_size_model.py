#!/usr/bin/env python3
"""Builds Stable Diffusion 1.5's architecture with random weights (speed and memory do not depend on the values; images
it makes are noise) in the layouts the benchmarks load:

  OUT/diffusers   the diffusers layout: safetensors in float32 plus the fp16 variant (*.fp16.safetensors), what
                  `from_pretrained` and this SDK's diffusers loader read (a published SD 1.5 repository has the same files)
  OUT/onnx32      (with --onnx) diffusers' float32 ONNX export of the same weights, through diffusers' own conversion script

After ../shared/tools/make_full_size_model.py, which writes only the ONNX export. Needs torch, transformers, onnx and a
diffusers source tree on DIFFUSERS_SRC (src/ and scripts/). Usage:
    DIFFUSERS_SRC=/path/to/diffusers python3 make_full_size_model.py OUT --tokenizer DIR [--onnx]
"""
import argparse
import os
import sys
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("out")
ap.add_argument("--tokenizer", required=True, help="a CLIP tokenizer folder (vocab.json, merges.txt, ...)")
ap.add_argument("--onnx", action="store_true", help="also export the float32 ONNX folder")
ap.add_argument("--opset", type=int, default=17)
args = ap.parse_args()
src = Path(os.environ["DIFFUSERS_SRC"])
sys.path[:0] = [str(src / "src"), str(src / "scripts")]

import torch  # noqa: E402
from transformers import CLIPConfig, CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker  # noqa: E402

# Stable Diffusion 1.5's scheduler_config.json and component sizes.
SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
             "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None, "clip_sample": False}
started = time.time()
torch.manual_seed(0)
pipe = StableDiffusionPipeline(
    unet=UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8,
                              block_out_channels=(320, 640, 1280, 1280), layers_per_block=2),
    vae=AutoencoderKL(block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
                      up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=2, latent_channels=4, sample_size=512),
    text_encoder=CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                              num_hidden_layers=12, max_position_embeddings=77, hidden_act="quick_gelu",
                                              bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, projection_dim=768)),
    tokenizer=CLIPTokenizer.from_pretrained(args.tokenizer),
    scheduler=PNDMScheduler.from_config(SCHEDULER),
    safety_checker=StableDiffusionSafetyChecker(CLIPConfig(
        text_config=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12),
        vision_config=dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24,
                           image_size=224, patch_size=14, hidden_act="quick_gelu"), projection_dim=768)),
    feature_extractor=CLIPImageProcessor(crop_size={"height": 224, "width": 224}, size={"shortest_edge": 224}),
    image_encoder=None, requires_safety_checker=True)
folder = Path(args.out) / "diffusers"
pipe.save_pretrained(str(folder), safe_serialization=True)
pipe.to(torch.float16).save_pretrained(str(folder), safe_serialization=True, variant="fp16")
del pipe
print(f"diffusers layout (float32 + fp16 variant) in {folder}, {time.time() - started:.0f} s", flush=True)

if args.onnx:
    _export = torch.onnx.export

    def export(*a, **k):  # the conversion script expects the TorchScript-based exporter
        k.setdefault("dynamo", False)
        return _export(*a, **k)

    torch.onnx.export = export
    import convert_stable_diffusion_checkpoint_to_onnx as conversion  # noqa: E402
    from diffusers import OnnxRuntimeModel  # noqa: E402
    # The conversion script reloads the export without provider options, which onnxruntime's Python API then refuses.
    _load = OnnxRuntimeModel.from_pretrained.__func__
    OnnxRuntimeModel.from_pretrained = classmethod(lambda cls, mid, **kw: _load(cls, mid, **{"provider_options": None, **kw}))
    conversion.export = export
    conversion.convert_models(str(folder), str(Path(args.out) / "onnx32"), args.opset, False)
    print(f"float32 ONNX export in {Path(args.out) / 'onnx32'}, {time.time() - started:.0f} s", flush=True)
