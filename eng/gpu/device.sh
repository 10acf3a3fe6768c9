#!/usr/bin/env bash
# Runs on the GPU machine (docs/performance.md, "Reproducing"). Stages:
#   models  build the full-size random-weight SD 1.5 model: diffusers layout, fp32 ONNX, fp16 with ONNX Runtime's fusions
#   side    the side-by-side comparison with diffusers (eng/bench/side_by_side.py)
#   bench   run sdbench configurations, JSON into $OUT
#   lora    two random LoRAs for the full-size UNet, then sdbench switching between them (ARGS: sdbench options)
#   tests   run the CUDA provider tests
set -euo pipefail
stage=${1:?usage: device.sh models|side ARGS...|bench CONFIG...|lora ARGS...|tests}; shift
nv=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="/root/app:/usr/local/cuda-13.0/targets/x86_64-linux/lib:$nv/cu13/lib:$nv/cudnn/lib:$nv/cublas/lib:${LD_LIBRARY_PATH:-}"
if [ ! -x /root/app/sdbench ]; then
  [ "$(ls /root/up/part* | wc -l)" -gt 0 ] || { echo "no parts in /root/up: the machine is fresh, upload again"; exit 3; }
  mkdir -p /root/app && cat /root/up/part* | /root/up/zstd -dc | tar -x -C /root/app
fi
case "$stage" in
  models)
    # The full-size model with random weights: the diffusers layout (float32 + fp16 variant) in /root/full/diffusers,
    # its float32 ONNX export (/root/m32) and ONNX Runtime's fused float16 version of it (/root/mopt); FP16_EXPORT=1
    # also writes the plain float16 export (/root/m16); ONNX= (empty) builds the diffusers layout alone.
    in=${INPUTS:-.device-upload/inputs}
    mkdir -p /root/diffusers && /root/up/zstd -dc "$in/diffusers.tar.zst" | tar -x -C /root/diffusers
    t0=$(date +%s)
    DIFFUSERS_SRC=/root/diffusers python3 eng/gpu/make_full_size_model.py /root/full --tokenizer "$in/tokenizer" ${ONNX---onnx} 2>&1 | grep -v Warning | tail -3
    if [ -d /root/full/onnx32 ]; then
      ln -sfn /root/full/onnx32 /root/m32
      [ "${FP16_EXPORT:-0}" = 1 ] && python3 eng/gpu/convert_fp16.py /root/m32 /root/m16 2>&1 | tail -6
      python3 eng/gpu/optimize.py /root/m32 /root/mopt 2>&1 | grep -E "fused|failed|written|Error" | tail -8
    fi
    du -shL /root/full/* /root/m* 2>/dev/null; echo "models built in $(( $(date +%s) - t0 )) s"
    ;;
  side)
    # This SDK and diffusers side by side (eng/bench/side_by_side.py); arguments after the stage go to the harness.
    DIFFUSERS_SRC=/root/diffusers python3 eng/bench/side_by_side.py --diffusers-model /root/full/diffusers --sdbench /root/app/sdbench "$@"
    ;;
  bench)
    for config in "$@"; do
      IFS=: read -r label model extra <<<"$config"
      # shellcheck disable=SC2086
      /root/app/sdbench --provider cuda --model "/root/$model" --label "$label" --json "$OUT/$label.json" $extra 2>&1 | tail -22 || true
    done
    ;;
  lora)
    for seed in 1 2; do python3 eng/gpu/make_random_lora.py /root/full/diffusers/unet "/root/lora$seed.safetensors" --rank "${RANK:-8}" --seed "$seed"; done
    /root/app/sdbench --provider cuda --model /root/full/diffusers --loras /root/lora1.safetensors,/root/lora2.safetensors \
      --label "lora-rank${RANK:-8}" --json "$OUT/lora-rank${RANK:-8}.json" "$@" 2>&1 | tail -12 || true
    ;;
  tests)
    # The published test executable runs xunit's own runner, whose filter option is -trait (not dotnet test's --filter-trait).
    # ONNX Runtime's session warnings left out, so that a failure's message and stack fit in what is kept. TESTS: other
    # runner options (-class NAME).
    SD_CUDA_MODEL=${SD_CUDA_MODEL:-/root/m16} /root/app/StableDiffusion.Core.Tests ${TESTS:--trait Category=Gpu} 2>&1 | grep -v "W:onnxruntime" | tail -80
    ;;
esac
