#!/usr/bin/env bash
# Builds the documentation site into docs/_site, offline: the API reference from the five packages' XML docs
# (docfx metadata), a check that every public type and member has a summary, then the site, with docfx's warnings
# (broken links, unresolved cross-references, invalid TOC entries) treated as errors. docfx is a local .NET tool
# (.config/dotnet-tools.json). Serve the result with `dotnet docfx serve docs/_site`.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet tool restore >/dev/null
rm -rf docs/_site docs/api/*.yml docs/api/.manifest
dotnet docfx metadata docs/docfx.json --warningsAsErrors --logLevel warning
bash docs/check-api-docs.sh docs/api
dotnet docfx build docs/docfx.json --warningsAsErrors --logLevel warning
echo "Docs: docs/_site/index.html"
