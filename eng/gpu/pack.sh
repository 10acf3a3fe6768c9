#!/usr/bin/env bash
# Packs what the GPU benchmark needs into git-ignored .device-upload/ (see docs/performance.md, "Reproducing"):
# a self-contained linux-x64 publish of sdbench and the CUDA tests with ONNX Runtime's CUDA package, in parts small
# enough for one transfer each, plus the model-building inputs (diffusers source, the shared model script, tokenizer).
# Usage: eng/gpu/pack.sh [PART_MB]   (run from the repository root; ../shared and a diffusers checkout are needed)
# TESTS=0 publishes sdbench alone (no CUDA tests): one part fewer to upload when a session only measures.
set -euo pipefail
mb=${1:-48}
root=$(git rev-parse --show-toplevel)
out="$root/.device-upload"
diffusers=${DIFFUSERS_GIT:-/work/.mirror/huggingface+diffusers/repo}
rm -rf "$out"; mkdir -p "$out/bin" "$out/parts" "$out/inputs/tokenizer"
projects=(benchmarks/StableDiffusion.PipelineBenchmark)
[ "${TESTS:-1}" = 0 ] || projects+=(tests/StableDiffusion.Core.Tests)
for p in "${projects[@]}"; do
  dotnet publish "$root/$p" -c Release -r linux-x64 --self-contained -p:UseCuda=true -p:InvariantGlobalization=true -o "$out/app" >/dev/null
done
tar -C "$out/app" -cf - . | zstd -T0 "-${ZSTD_LEVEL:-19}" -q -o "$out/app.tar.zst"
split -b "${mb}M" -d "$out/app.tar.zst" "$out/parts/part"
rm -rf "$out/app" "$out/app.tar.zst"
cp /usr/bin/zstd "$out/bin/"
git --git-dir="$diffusers" archive HEAD src scripts/convert_stable_diffusion_checkpoint_to_onnx.py | zstd -19 -q -o "$out/inputs/diffusers.tar.zst"
cp "$root"/../shared/fixtures/tiny-sd-onnx/tokenizer/{vocab.json,merges.txt,special_tokens_map.json,tokenizer_config.json} "$out/inputs/tokenizer/"
echo "parts: $(ls "$out/parts" | wc -l) x ${mb} MB ($(du -sh "$out/parts" | cut -f1)); inputs: $(du -sh "$out/inputs" | cut -f1)"
