#!/usr/bin/env bash
# The graphs the SDK builds from diffusers weights at load against ONNX Runtime's offline-fused export of the same
# weights, on a fresh GPU machine, in the background like session.sh (docs/performance.md, "The graphs built at load"):
# the models, the CUDA tests (the fused graphs against the plain ones, on tiny-sd and on the full-size UNet), then the SDK
# at batch 1 on the export and on the diffusers folder in turn, twice, the export at batch 8, the export's operators,
# and a kernel profile (ncu) of a short generation on each. SD_FIXTURES must name a copy of the fixtures
# (tiny-sd, tiny-sd-onnx) for the tests that need them. Results in $RESULTS (default /root/results): cuda-tests.txt,
# builder.tgz (each run's side-by-side.json and sdbench report), export-operators.txt, kernels-*.txt, and "done".
#   setsid nohup bash eng/gpu/builder_session.sh > /root/log 2>&1 < /dev/null &
# FLAGS: the SDK's sdbench options (the fastest setup of the 2026-12-02 run, with the SDK's default memory settings).
# MODELS=built measures the diffusers folder alone (no ONNX export is made: four minutes less). ROUNDS (1 2) and
# LARGE_BATCH (8) choose the SDK's own runs (empty: none). SIDE=batches (such as "1 4") then runs the SDK on the first
# model and compiled diffusers side by side in one run (side-by-side.json; about 7 minutes for 1 and 4).
set -uo pipefail
cd "$(dirname "$0")/../.."
R=${RESULTS:-/root/results}; mkdir -p "$R"
FLAGS=${FLAGS:---cuda-graph --cuda-options sdpa_kernel=8 --vae-slicing}
stamp() { echo "=== $(date +%T) $*"; }
sdk() { bash eng/gpu/device.sh side --systems sdk --diffusers-flags= --sdk-flags="$FLAGS" "$@" 2>&1 | grep -E "median|failed|error|GPU memory" | tail -4; }

MODELS=${MODELS:-export built}
declare -A path=([export]=/root/mopt [built]=/root/full/diffusers)
stamp models
if [ "$MODELS" = built ]; then [ -d /root/full/diffusers ] || ONNX= bash eng/gpu/device.sh models; else [ -d /root/mopt ] || bash eng/gpu/device.sh models; fi
stamp "CUDA tests"
# Without the export, the fused graphs against the plain ones only (the other CUDA tests load the export).
[ -d /root/mopt ] || export TESTS="-class StableDiffusion.Core.Tests.Gpu.FusedGraphTests"
SD_CUDA_MODEL=/root/mopt SD_CUDA_DIFFUSERS_UNET=/root/full/diffusers/unet timeout 420 bash eng/gpu/device.sh tests > "$R/cuda-tests.txt" 2>&1
tail -8 "$R/cuda-tests.txt"
for round in ${ROUNDS-1 2}; do
  for model in $MODELS; do
    stamp "round $round: $model, batch 1"
    sdk --batches 1 --sdk-model "${path[$model]}" --run-timeout 240 --out "/root/builder/$model-b1-$round"
  done
done
first=${MODELS%% *}
if [ -n "${LARGE_BATCH-8}" ]; then
  stamp "$first, batch ${LARGE_BATCH-8}"
  sdk --batches "${LARGE_BATCH-8}" --iterations 3 --sdk-model "${path[$first]}" --run-timeout 300 --out "/root/builder/$first-b${LARGE_BATCH-8}"
fi
[ -d /root/builder ] && tar czf "$R/builder.tgz" -C /root builder
if [ -n "${SIDE:-}" ]; then
  stamp "side by side with compiled diffusers, batches $SIDE, the SDK on $first"
  # shellcheck disable=SC2086
  bash eng/gpu/device.sh side --systems diffusers_compiled sdk --batches $SIDE --diffusers-flags= --sdk-flags="$FLAGS" \
    --sdk-model "${path[$first]}" --run-timeout 300 --out /root/side > "$R/side.log" 2>&1; tail -8 "$R/side.log"
  cp /root/side/side-by-side.json "$R/" 2>/dev/null; tar czf "$R/side-raw.tgz" -C /root side
fi
if [ -d /root/mopt ]; then
  stamp "the export's operators"
  python3 - > "$R/export-operators.txt" <<'PY'
import collections
import onnx
for component in ["unet", "vae_decoder", "text_encoder", "safety_checker"]:
    model = onnx.load(f"/root/mopt/{component}/model.onnx", load_external_data=False)
    print(component, dict(collections.Counter(node.op_type for node in model.graph.node).most_common()))
PY
  cut -c1-400 "$R/export-operators.txt"
fi
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
if [ -n "$ncu" ]; then
  # Two PNDM steps (three UNet calls), CUDA graph off so that each kernel is seen, cuDNN's heuristic choice (an exhaustive
  # search would add thousands of trial kernels). ncu serialises kernels: it measures kernel times, not speed.
  nv=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
  for model in $MODELS; do
    stamp "kernel profile: $model"
    LD_LIBRARY_PATH="/root/app:/usr/local/cuda-13.0/targets/x86_64-linux/lib:$nv/cu13/lib:$nv/cudnn/lib:$nv/cublas/lib" timeout 200 \
      "$ncu" --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --log-file "/root/ncu-$model.csv" \
      /root/app/sdbench --provider cuda --model "${path[$model]}" --static --cudnn-search HEURISTIC --steps 2 --iterations 1 --warmup 0 \
      --bare-calls 0 --cuda-options sdpa_kernel=8 --label "profile-$model" > "/root/ncu-$model.log" 2>&1
    tail -2 "/root/ncu-$model.log"
    python3 eng/gpu/kernel_summary.py "/root/ncu-$model.csv" > "$R/kernels-$model.txt" 2>&1; head -12 "$R/kernels-$model.txt"
    gzip -c "/root/ncu-$model.csv" > "$R/ncu-$model.csv.gz"
  done
else
  stamp "no ncu on this machine: kernel profiles skipped"
fi
stamp done; touch "$R/done"
