#!/usr/bin/env bash
# Installs the freshly packed SDK packages from a local folder into new console projects, as applications would, and runs
# each (eng/package-smoke/*/Program.cs):
#   smoke-core             StableDiffusion.Core + the CPU native ONNX Runtime: generate, save a PNG with its parameters, read them back
#   imagesharp-*     StableDiffusion.ImageSharp with each SixLabors.ImageSharp the registry serves: 2.1.13 by name, and the
#                    version an add without a version takes (the adapter is compiled against 2.1.13 and must run on both)
#   skiasharp        StableDiffusion.SkiaSharp + SkiaSharp's Linux native assets: convert, encode, decode with limits
#   hub              StableDiffusion.Hub alone (no pipelines, no ONNX Runtime): a file from a cache, offline
#   no-native        StableDiffusion.Core alone: loading must fail with an exception naming the native package to add
# Usage: eng/package-smoke-test.sh PACKAGE_DIR
set -euo pipefail
pkgdir=$(cd "${1:?usage: package-smoke-test.sh PACKAGE_DIR}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
fixtures=${SD_FIXTURES:-$root/../shared/fixtures}
version=$(ls "$pkgdir"/StableDiffusion.Core.*.nupkg | sed -E 's/.*StableDiffusion\.Core\.(.*)\.nupkg/\1/')
onnxruntime=$(sed -nE 's:.*<OnnxRuntimeVersion>([^<]+)</OnnxRuntimeVersion>.*:\1:p' "$root/Directory.Packages.props" | head -1)
skiasharp=$(sed -nE 's:.*"SkiaSharp" Version="([^"]+)".*:\1:p' "$root/Directory.Packages.props")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A package of the same version restored earlier would shadow the new build.
rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}"/stablediffusion.{core,hub,safety,schedulers,imagesharp,skiasharp}

cat > "$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$pkgdir" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML

# app NAME PROGRAM CONFIGURATION PACKAGE[@VERSION]...: a fresh console project with those packages (no @VERSION: what
# an add without a version takes) and the program, built in CONFIGURATION; prints what was resolved.
app() {
  local name=$1 program=$2 configuration=$3; shift 3
  local strict=-warnaserror
  # ImageSharp 3 and later check for a Six Labors licence key at build time: a Release build without one fails, a Debug
  # build continues with a warning. This repository has no key, so such an application is built in Debug.
  [ "$configuration" = Debug ] && strict=''
  apps[$name]=$configuration
  echo "--- $name: $*"
  # Each step's output is kept and shown only when the step fails.
  quiet() { "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; echo "failed: $*" >&2; return 1; }; }
  (cd "$work" && quiet dotnet new console -n "$name" -o "$name" --framework net10.0)
  for package in "$@"; do
    if [[ $package == *@* ]]; then
      (cd "$work/$name" && quiet dotnet add package "${package%@*}" --version "${package#*@}")
    else
      (cd "$work/$name" && quiet dotnet add package "$package")
    fi
  done
  cp "$root/eng/package-smoke/$program/Program.cs" "$work/$name/Program.cs"
  (cd "$work/$name" && quiet dotnet build -c "$configuration" --nologo $strict -p:NoWarn=NU1603)
  local resolved
  resolved=$(cd "$work/$name" && dotnet list package --include-transitive)
  grep -E 'StableDiffusion|SixLabors|SkiaSharp|OnnxRuntime' <<<"$resolved" | sed 's/^ */    /'
}
run() { local name=$1; shift; (cd "$work/$name" && dotnet run -c "${apps[$name]}" --no-build -- "$@"); }
declare -A apps

app smoke-core Core Release StableDiffusion.Core@"$version" Microsoft.ML.OnnxRuntime@"$onnxruntime"
run smoke-core "$fixtures" "$work/out"

# Every ImageSharp version the registry serves that an application could pick: 2.1.13 named, and the newest.
app smoke-imagesharp-2.1.13 ImageSharp Release StableDiffusion.ImageSharp@"$version" SixLabors.ImageSharp@2.1.13 Microsoft.ML.OnnxRuntime@"$onnxruntime"
run smoke-imagesharp-2.1.13 "$fixtures" "$work/out"
app smoke-imagesharp-newest ImageSharp Debug StableDiffusion.ImageSharp@"$version" SixLabors.ImageSharp Microsoft.ML.OnnxRuntime@"$onnxruntime"
newest=$(cd "$work/smoke-imagesharp-newest" && dotnet list package | sed -nE 's/.*> SixLabors.ImageSharp +[^ ]+ +([^ ]+).*/\1/p')
if [ "$newest" = "2.1.13" ]; then
  echo "note: an add without a version took SixLabors.ImageSharp 2.1.13 here, so only that version was tested"
fi
run smoke-imagesharp-newest "$fixtures" "$work/out"

app smoke-skiasharp SkiaSharp Release StableDiffusion.SkiaSharp@"$version" SkiaSharp.NativeAssets.Linux.NoDependencies@"$skiasharp" Microsoft.ML.OnnxRuntime@"$onnxruntime"
run smoke-skiasharp "$fixtures" "$work/out"

app smoke-hub Hub Release StableDiffusion.Hub@"$version"
run smoke-hub

app smoke-no-native NoNativeRuntime Release StableDiffusion.Core@"$version"
run smoke-no-native "$fixtures"

echo "package smoke test OK (StableDiffusion $version from $pkgdir; ONNX Runtime $onnxruntime; SixLabors.ImageSharp 2.1.13 and $newest; SkiaSharp $skiasharp)"
