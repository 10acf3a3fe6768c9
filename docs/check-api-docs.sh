#!/usr/bin/env bash
# Fails when a public type or member in the generated API reference (docs/api/*.yml, written by `docfx metadata`) has no
# summary: the compiler's CS1591 catches members with no XML comment at all; this also catches empty summaries and an
# <inheritdoc/> that found nothing to inherit.
set -euo pipefail
dir=${1:-"$(dirname "$0")/api"}
counted=$(mktemp)
trap 'rm -f "$counted"' EXIT
missing=$(awk '
  FNR == 1 { flush(); section = "" }
  /^items:/ { section = "items"; next }
  /^[a-z]/ { flush(); section = ""; next }
  section == "items" && /^- uid: / { flush(); uid = substr($0, 8); type = ""; summary = 0; count++; next }
  section == "items" && /^  type: / { type = substr($0, 9) }
  section == "items" && /^  summary: *[^ ]/ { summary = 1 }
  function flush() { if (uid != "" && type != "Namespace" && !summary) print uid " (" type ")"; uid = "" }
  END { flush(); print count > "/dev/stderr" }
' "$dir"/*.yml 2>"$counted")
if [ -n "$missing" ]; then
  echo "Public API without a summary in the XML docs:" >&2
  echo "$missing" >&2
  exit 1
fi
echo "API docs: every public type and member has a summary ($(cat "$counted") items)."
