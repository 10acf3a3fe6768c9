#!/usr/bin/env python3
"""Makes the fp16 twin of a float32 diffusers ONNX Stable Diffusion folder, the way published fp16 ONNX weights are made
(onnxruntime's float16 converter, inputs and outputs in float16 too). Runs on the GPU machine, for the benchmarks.
Usage: convert_fp16.py FP32_DIR FP16_DIR"""
import shutil
import sys
from pathlib import Path

import onnx
from onnxruntime.transformers.onnx_model import OnnxModel


def save_fp16(model, component, path):
    """Converts an onnxruntime OnnxModel to float16 (inputs and outputs too, RandomNormalLike and Resize left in float32)
    and saves it to path; the UNet's weights go to an external data file."""
    model.convert_float_to_float16(keep_io_types=False, op_block_list=["RandomNormalLike", "Resize"])
    model.save_model_to_file(str(path), use_external_data_format=(component == "unet"))


def main():
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.onnx", "*.pb", "*.data", "*.onnx_data"))
    for sub in ["text_encoder", "unet", "vae_encoder", "vae_decoder", "safety_checker"]:
        source = src / sub / "model.onnx"
        if not source.exists():
            continue
        save_fp16(OnnxModel(onnx.load(str(source))), sub, dst / sub / "model.onnx")
        print("fp16:", sub, flush=True)


if __name__ == "__main__":
    main()
