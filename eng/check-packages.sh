#!/usr/bin/env bash
# Checks that `dotnet pack` produced exactly the SDK packages, each with its README, licence and repository metadata,
# and the dependencies the layout promises: no image library in Core, Safety or Schedulers; the adapters depend on Core
# and their library (ImageSharp as a minimum version, so the application picks it); the Hub client on Schedulers alone; nobody on a native ONNX Runtime.
set -euo pipefail
dir=${1:?usage: check-packages.sh PACKAGE_DIR}
mapfile -t pkgs < <(cd "$dir" && ls -1 *.nupkg | sort)
expected=(StableDiffusion.Core StableDiffusion.Hub StableDiffusion.ImageSharp StableDiffusion.Safety StableDiffusion.Schedulers StableDiffusion.SkiaSharp)
ids=()
for p in "${pkgs[@]}"; do ids+=("$(sed -E 's/\.[0-9]+\.[0-9]+\.[0-9]+(-[^.]+)?\.nupkg$//' <<<"$p")"); done
if [ "${ids[*]}" != "${expected[*]}" ]; then
  echo "expected exactly the packages ${expected[*]}, got: ${pkgs[*]}" >&2; exit 1
fi
# Every listing is read whole into a variable before grep looks at it: with pipefail, `producer | grep -q` fails at
# random when grep stops reading at its first match and the producer dies of SIGPIPE.
# The dependency ids of a nuspec's text, sorted, space-separated.
dependency_ids() { grep -o '<dependency id="[^"]*"' <<<"$1" | sed 's/<dependency id="//;s/"//' | sort -u | tr '\n' ' '; }
declare -A deps specs
for id in "${expected[@]}"; do
  files=$(unzip -Z1 "$dir/$id".*.nupkg)
  spec=$(unzip -p "$dir/$id".*.nupkg "$id.nuspec")
  specs[$id]=$spec
  grep -qx 'README.md' <<<"$files" || { echo "$id has no README.md" >&2; exit 1; }
  grep -q '<license type="expression">MIT</license>' <<<"$spec" || { echo "$id has no MIT licence expression" >&2; exit 1; }
  grep -q '<repository ' <<<"$spec" || { echo "$id has no repository metadata" >&2; exit 1; }
  grep -q "lib/net10.0/$id.xml" <<<"$files" || { echo "$id has no XML documentation" >&2; exit 1; }
  deps[$id]=$(dependency_ids "$spec")
  echo "$id depends on: ${deps[$id]}"
done
fail() { echo "$1" >&2; exit 1; }
schedulers=${deps[StableDiffusion.Schedulers]}; safety=${deps[StableDiffusion.Safety]}; core=${deps[StableDiffusion.Core]}
grep -q 'StableDiffusion\.' <<<"$schedulers" && fail "Schedulers must not depend on another SDK package"
grep -q 'StableDiffusion.Core' <<<"$safety" && fail "Safety must not depend on Core"
grep -qw 'StableDiffusion.Schedulers' <<<"$safety" || fail "Safety must depend on Schedulers (StableDiffusionException lives there)"
hub=${deps[StableDiffusion.Hub]}
grep -Eq 'StableDiffusion\.(Core|Safety)|OnnxRuntime' <<<"$hub" && fail "Hub must not depend on Core, Safety or ONNX Runtime (${hub})"
grep -qw 'StableDiffusion.Schedulers' <<<"$hub" || fail "Hub must depend on Schedulers (StableDiffusionException lives there)"
for d in StableDiffusion.Schedulers StableDiffusion.Safety StableDiffusion.Hub Microsoft.ML.OnnxRuntime.Managed; do
  grep -qw "$d" <<<"$core" || fail "Core must depend on $d"
done
for id in StableDiffusion.Schedulers StableDiffusion.Safety StableDiffusion.Hub StableDiffusion.Core; do
  grep -Eq 'SixLabors|SkiaSharp' <<<"${deps[$id]}" && fail "$id must not depend on an image library (${deps[$id]})"
done
for adapter in StableDiffusion.ImageSharp StableDiffusion.SkiaSharp; do
  grep -qw 'StableDiffusion.Core' <<<"${deps[$adapter]}" || fail "$adapter must depend on StableDiffusion.Core"
done
grep -q '<dependency id="SixLabors.ImageSharp" version="2.1.13"' <<<"${specs[StableDiffusion.ImageSharp]}" \
  || fail "StableDiffusion.ImageSharp must depend on SixLabors.ImageSharp 2.1.13 as a minimum (version=\"2.1.13\", not an exact [2.1.13])"
grep -qw 'SkiaSharp' <<<"${deps[StableDiffusion.SkiaSharp]}" || fail "StableDiffusion.SkiaSharp must depend on SkiaSharp"
grep -q 'NativeAssets' <<<"${deps[StableDiffusion.SkiaSharp]}" && fail "StableDiffusion.SkiaSharp must leave SkiaSharp's native assets to the application"
for id in "${expected[@]}"; do
  grep -Eq 'Microsoft\.ML\.OnnxRuntime( |$)|OnnxRuntime\.Gpu' <<<"${deps[$id]}" && fail "$id must reference only the managed ONNX Runtime package"
done
echo "packages OK: ${pkgs[*]}"
