#!/usr/bin/env bash
# Installs the freshly packed SDK packages from a local folder into a new console project, with the CPU native
# ONNX Runtime package an application would choose, and runs it (eng/package-smoke/Program.cs).
# Usage: eng/package-smoke-test.sh PACKAGE_DIR
set -euo pipefail
pkgdir=$(cd "${1:?usage: package-smoke-test.sh PACKAGE_DIR}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(ls "$pkgdir"/StableDiffusion.Core.*.nupkg | sed -E 's/.*StableDiffusion\.Core\.(.*)\.nupkg/\1/')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A package of the same version restored earlier would shadow the new build.
rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}"/stablediffusion.{core,safety,schedulers}

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
cd "$work"
dotnet new console -n SmokeApp -o app --framework net10.0 >/dev/null
cd app
dotnet add package StableDiffusion.Core --version "$version" >/dev/null
dotnet add package Microsoft.ML.OnnxRuntime --version 1.31.1 >/dev/null
cp "$root/eng/package-smoke/Program.cs" Program.cs
dotnet run -c Release -- "${SD_FIXTURES:-$root/../shared/fixtures}" "$work/out"
echo "package smoke test OK (StableDiffusion.Core $version from $pkgdir)"
