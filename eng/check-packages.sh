#!/usr/bin/env bash
# Checks that `dotnet pack` produced exactly the three SDK packages, each with its README and the right dependencies.
set -euo pipefail
dir=${1:?usage: check-packages.sh PACKAGE_DIR}
mapfile -t pkgs < <(cd "$dir" && ls -1 *.nupkg | sort)
expected=(StableDiffusion.Core StableDiffusion.Safety StableDiffusion.Schedulers)
ids=()
for p in "${pkgs[@]}"; do ids+=("$(sed -E 's/\.[0-9]+\.[0-9]+\.[0-9]+(-[^.]+)?\.nupkg$//' <<<"$p")"); done
if [ "${ids[*]}" != "${expected[*]}" ]; then
  echo "expected exactly the packages ${expected[*]}, got: ${pkgs[*]}" >&2; exit 1
fi
nuspec() { unzip -p "$dir/$1".*.nupkg "$1.nuspec"; }
deps() { nuspec "$1" | grep -o '<dependency id="[^"]*"' | sed 's/<dependency id="//;s/"//' | sort -u | tr '\n' ' '; }
for id in "${expected[@]}"; do
  unzip -l "$dir/$id".*.nupkg | grep -q ' README.md$' || { echo "$id has no README.md" >&2; exit 1; }
  nuspec "$id" | grep -q '<license type="expression">' || { echo "$id has no licence expression" >&2; exit 1; }
  nuspec "$id" | grep -q '<repository ' || { echo "$id has no repository metadata" >&2; exit 1; }
  echo "$id depends on: $(deps "$id")"
done
deps StableDiffusion.Schedulers | grep -q 'StableDiffusion\.' && { echo "Schedulers must not depend on another SDK package" >&2; exit 1; }
deps StableDiffusion.Safety | grep -q 'StableDiffusion.Core' && { echo "Safety must not depend on Core" >&2; exit 1; }
for d in StableDiffusion.Schedulers StableDiffusion.Safety Microsoft.ML.OnnxRuntime.Managed; do
  deps StableDiffusion.Core | grep -qw "$d" || { echo "Core must depend on $d" >&2; exit 1; }
done
for id in "${expected[@]}"; do
  deps "$id" | grep -Eq 'Microsoft\.ML\.OnnxRuntime( |$)|OnnxRuntime\.Gpu' && { echo "$id must reference only the managed ONNX Runtime package" >&2; exit 1; }
done
echo "packages OK: ${pkgs[*]}"
