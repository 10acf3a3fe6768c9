#!/usr/bin/env python3
"""Applies ONNX Runtime's Stable Diffusion graph fusions (multi-head attention, GroupNorm, BiasSplitGelu, NHWC
convolutions: the CUDA provider's fast kernels) to a float32 UNet and converts it to float16, into a copy of an fp16
model folder. This is how users produce the fused model too (docs/performance.md). Runs on the GPU machine.
Usage: optimize_unet.py FP32_DIR FP16_DIR OUT_DIR"""
import shutil
import sys
from pathlib import Path

import numpy as np
from onnxruntime.transformers.fusion_options import FusionOptions
from onnxruntime.transformers.optimizer import optimize_model


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
