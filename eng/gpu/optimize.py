#!/usr/bin/env python3
"""Applies ONNX Runtime's Stable Diffusion graph fusions (multi-head attention, GroupNorm, BiasSplitGelu, NHWC
convolutions: the CUDA provider's fast kernels) to each component of a float32 model folder and converts them to float16.
This is how users produce the fused model too (docs/performance.md). A component whose fusion fails is converted to
float16 without it. Runs on the GPU machine.
Usage: optimize.py FP32_DIR OUT_DIR"""
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.transformers.fusion_options import FusionOptions
from onnxruntime.transformers.onnx_model import OnnxModel
from onnxruntime.transformers.optimizer import optimize_model

from convert_fp16 import save_fp16  # same folder: sys.path[0] is this script's folder


def _patch_num_heads_for_numpy2():
    """onnxruntime 1.30's UNet attention fusion calls int() on a one-element array, which numpy 2 refuses; read the value
    with .item() instead (same result)."""
    for name, module in list(sys.modules.items()):
        fusion = getattr(module, "FusionAttentionUnet", None) if name.endswith("fusion_attention_unet") else None
        if fusion is None or getattr(fusion, "_numpy2_patched", False):
            continue
        original = fusion.get_num_heads

        def get_num_heads(self, reshape_q, is_torch2=False, _original=original):
            if not is_torch2:
                return _original(self, reshape_q, is_torch2)
            parent = self.model.get_parent(reshape_q, 1)
            if parent is not None and parent.op_type == "Concat" and len(parent.input) == 4:
                value = self.model.get_constant_value(parent.input[2])
                if value is not None:
                    heads = int(np.asarray(value).reshape(-1)[0])
                    return heads if heads > 0 else 0
            return 0

        fusion.get_num_heads = get_num_heads
        fusion._numpy2_patched = True


import onnxruntime.transformers.onnx_model_unet  # noqa: E402,F401  (loads the fusion modules to patch)
_patch_num_heads_for_numpy2()

fp32, out = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(fp32, out, ignore=shutil.ignore_patterns("*.onnx", "*.pb", "*.data", "*.onnx_data"))
model_types = {"unet": "unet", "text_encoder": "clip", "vae_decoder": "vae", "vae_encoder": "vae", "safety_checker": "clip"}
for component, model_type in model_types.items():
    source = fp32 / component / "model.onnx"
    if not source.exists():
        continue
    try:
        model = optimize_model(str(source), model_type=model_type, num_heads=0, hidden_size=0, opt_level=0,
                               optimization_options=FusionOptions(model_type), use_gpu=True)
        print(component, "fused:", {k: v for k, v in model.get_fused_operator_statistics().items() if v}, flush=True)
    except Exception as error:  # noqa: BLE001 - a component the fusions cannot handle still gets fp16
        print(component, "fusion failed, fp16 only:", repr(error)[:200], flush=True)
        model = OnnxModel(onnx.load(str(source)))
    save_fp16(model, component, out / component / "model.onnx")
print("optimized model written to", out, flush=True)
