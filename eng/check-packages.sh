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
# Every listing is read whole into a variable before grep looks at it: with pipefail, `producer | grep -q` fails at
# random when grep stops reading at its first match and the producer dies of SIGPIPE.
# The dependency ids of a nuspec's text, sorted, space-separated.
dependency_ids() { grep -o '<dependency id="[^"]*"' <<<"$1" | sed 's/<dependency id="//;s/"//' | sort -u | tr '\n' ' '; }
declare -A deps
for id in "${expected[@]}"; do
  files=$(unzip -Z1 "$dir/$id".*.nupkg)
  spec=$(unzip -p "$dir/$id".*.nupkg "$id.nuspec")
  grep -qx 'README.md' <<<"$files" || { echo "$id has no README.md" >&2; exit 1; }
  grep -q '<license type="expression">' <<<"$spec" || { echo "$id has no licence expression" >&2; exit 1; }
  grep -q '<repository ' <<<"$spec" || { echo "$id has no repository metadata" >&2; exit 1; }
  deps[$id]=$(dependency_ids "$spec")
  echo "$id depends on: ${deps[$id]}"
done
schedulers=${deps[StableDiffusion.Schedulers]}; safety=${deps[StableDiffusion.Safety]}; core=${deps[StableDiffusion.Core]}
grep -q 'StableDiffusion\.' <<<"$schedulers" && { echo "Schedulers must not depend on another SDK package" >&2; exit 1; }
grep -q 'StableDiffusion.Core' <<<"$safety" && { echo "Safety must not depend on Core" >&2; exit 1; }
for d in StableDiffusion.Schedulers StableDiffusion.Safety Microsoft.ML.OnnxRuntime.Managed; do
  grep -qw "$d" <<<"$core" || { echo "Core must depend on $d" >&2; exit 1; }
done
for id in "${expected[@]}"; do
  grep -Eq 'Microsoft\.ML\.OnnxRuntime( |$)|OnnxRuntime\.Gpu' <<<"${deps[$id]}" && { echo "$id must reference only the managed ONNX Runtime package" >&2; exit 1; }
done
echo "packages OK: ${pkgs[*]}"
