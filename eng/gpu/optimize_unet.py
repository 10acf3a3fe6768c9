#!/usr/bin/env python3
"""Applies ONNX Runtime's Stable Diffusion graph fusions (multi-head attention, GroupNorm, BiasSplitGelu, NHWC
convolutions: the CUDA provider's fast kernels) to a float32 UNet and converts it to float16, into a copy of an fp16
model folder. This is how users produce the fused model too (docs/performance.md). Runs on the GPU machine.
Usage: optimize_unet.py FP32_DIR FP16_DIR OUT_DIR"""
import shutil
import sys
from pathlib import Path

from onnxruntime.transformers.fusion_options import FusionOptions
from onnxruntime.transformers.optimizer import optimize_model

fp32, fp16, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(fp16, out, ignore=shutil.ignore_patterns("unet"))
(out / "unet").mkdir()
options = FusionOptions("unet")
model = optimize_model(str(fp32 / "unet" / "model.onnx"), model_type="unet", num_heads=0, hidden_size=0,
                       opt_level=0, optimization_options=options, use_gpu=True)
print("fused operators:", model.get_fused_operator_statistics(), flush=True)
model.convert_float_to_float16(keep_io_types=False, op_block_list=["RandomNormalLike", "Resize"])
model.save_model_to_file(str(out / "unet" / "model.onnx"), use_external_data_format=True)
print("optimized unet written to", out, flush=True)
