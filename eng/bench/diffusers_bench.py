#!/usr/bin/env python3
"""One diffusers configuration, timed in its own process (side_by_side.py starts it and watches its memory).

Modes:
  eager     StableDiffusionPipeline in float16 on CUDA (PyTorch's SDPA attention)
  compiled  the same with torch.compile on the UNet and the VAE decoder (channels-last, --compile-mode)
  onnx-cpu  OnnxStableDiffusionPipeline on the CPU over an ONNX folder (the onnxruntime installed)

The same prompt, PNDM (the model's scheduler), guidance 7.5 and the safety checker as the SDK's sdbench. Prints
"FIRST_IMAGE" when the first image is done (compilation included) and writes a JSON report.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--model", required=True, help="a diffusers folder (eager, compiled) or an ONNX folder (onnx-cpu)")
ap.add_argument("--mode", choices=["eager", "compiled", "onnx-cpu"], required=True)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--steps", type=int, default=50)
ap.add_argument("--size", type=int, default=512)
ap.add_argument("--iterations", type=int, default=9)
ap.add_argument("--warmup", type=int, default=2, help="calls after the first (CUDA graphs are recorded on the second)")
ap.add_argument("--compile-mode", default="reduce-overhead")
ap.add_argument("--inductor-tuning", action="store_true",
                help="also diffusers' inductor tuning flags (coordinate-descent tuning): slower to compile; on 2026-12-01 batch 1 "
                     "had not compiled after 550 s with them")
ap.add_argument("--out", required=True)
args = ap.parse_args()
if os.environ.get("DIFFUSERS_SRC"):
    sys.path.insert(0, str(Path(os.environ["DIFFUSERS_SRC"]) / "src"))

import torch  # noqa: E402

PROMPT = "a photo of an astronaut riding a horse on mars"
report = {"mode": args.mode, "batch": args.batch, "steps": args.steps, "size": args.size, "torch": torch.__version__}
started = time.time()

if args.mode == "onnx-cpu":
    import numpy as np
    import onnxruntime
    from diffusers import OnnxStableDiffusionPipeline
    report["onnxruntime"] = onnxruntime.__version__
    pipe = OnnxStableDiffusionPipeline.from_pretrained(args.model, provider="CPUExecutionProvider")

    def generate():
        return pipe(PROMPT, num_inference_steps=args.steps, height=args.size, width=args.size, guidance_scale=7.5,
                    num_images_per_prompt=args.batch, generator=np.random.RandomState(42))

    def sync():
        pass
else:
    import diffusers
    from diffusers import StableDiffusionPipeline
    report["diffusers"] = diffusers.__version__
    torch.backends.cuda.matmul.allow_tf32 = True
    pipe = StableDiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float16).to("cuda")
    pipe.set_progress_bar_config(disable=True)
    if args.mode == "compiled":
        # diffusers' documented recipe: channels-last weights, the UNet and the VAE decoder compiled whole.
        torch._inductor.config.conv_1x1_as_mm = True
        if args.inductor_tuning:
            torch._inductor.config.coordinate_descent_tuning = True
            torch._inductor.config.epilogue_fusion = False
            torch._inductor.config.coordinate_descent_check_all_directions = True
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
        pipe.unet = torch.compile(pipe.unet, mode=args.compile_mode, fullgraph=True)
        pipe.vae.decode = torch.compile(pipe.vae.decode, mode=args.compile_mode, fullgraph=True)
        report["compile_mode"] = args.compile_mode
        report["inductor_tuning"] = args.inductor_tuning

    def generate():
        return pipe(PROMPT, num_inference_steps=args.steps, height=args.size, width=args.size, guidance_scale=7.5,
                    num_images_per_prompt=args.batch, generator=torch.Generator("cuda").manual_seed(42))

    def sync():
        torch.cuda.synchronize()

report["load_seconds"] = time.time() - started
first = time.time()
generate()
sync()
print("FIRST_IMAGE", flush=True)
report["first_call_seconds"] = time.time() - first
report["warmup_seconds"] = []
for _ in range(args.warmup):
    t = time.time()
    generate()
    sync()
    report["warmup_seconds"].append(time.time() - t)
calls = []
for i in range(args.iterations):
    t = time.time()
    out = generate()
    sync()
    calls.append(time.time() - t)
    print(f"[{args.mode} b{args.batch}] call {i + 1}: {calls[-1]:.3f} s", flush=True)
report["seconds_per_call"] = calls
report["seconds_per_call_median"] = statistics.median(calls)
report["seconds_per_image_median"] = statistics.median(calls) / args.batch
report["nsfw"] = [bool(f) for f in (out.nsfw_content_detected or [])]
if args.mode != "onnx-cpu":
    report["torch_peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
    report["torch_peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
print(f"[{args.mode} b{args.batch}] median {report['seconds_per_call_median']:.3f} s per call", flush=True)
