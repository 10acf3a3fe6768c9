#!/usr/bin/env python3
"""Copies sections of a generated reference, with their arrays, into another reference (tests/reference).

The generator writes every section of the cases file; a section enters the repository's reference together with the
tests that read it. This adds (or replaces) the named sections of reference.json and the arrays whose names start with
the given prefixes, leaving everything else as it is.

Usage: add_section.py FROM_DIR TO_DIR SECTION [SECTION ...] --arrays PREFIX [PREFIX ...]
Example: add_section.py $OUT/ref tests/reference single_file --arrays single/
"""
import argparse
import json
import zipfile
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("source", help="the generated reference folder (reference.json + reference.npz)")
ap.add_argument("target", help="the reference folder to add the sections to")
ap.add_argument("sections", nargs="+", help="the top-level keys of reference.json to copy")
ap.add_argument("--arrays", nargs="+", required=True, help="name prefixes of the sections' arrays in reference.npz")
args = ap.parse_args()

source, target = Path(args.source), Path(args.target)
generated = json.loads((source / "reference.json").read_text())
reference = json.loads((target / "reference.json").read_text())
for section in args.sections:
    if section not in generated:
        raise SystemExit(f"{source / 'reference.json'} has no section '{section}'")
    reference[section] = generated[section]

wanted = lambda name: any(name.startswith(prefix) for prefix in args.arrays)
with zipfile.ZipFile(source / "reference.npz") as z:
    arrays = {name: z.read(name) for name in z.namelist() if wanted(name)}
if not arrays:
    raise SystemExit(f"{source / 'reference.npz'} has no arrays under {', '.join(args.arrays)}")

# Rewrite the archive without the arrays being replaced, then add them: zip files cannot replace an entry in place.
npz = target / "reference.npz"
with zipfile.ZipFile(npz) as z:
    kept = [(info, z.read(info)) for info in z.infolist() if not wanted(info.filename)]
with zipfile.ZipFile(npz, "w", compression=zipfile.ZIP_DEFLATED) as z:
    for info, data in kept:
        z.writestr(info, data)
    for name, data in sorted(arrays.items()):
        z.writestr(name, data)

(target / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
print(f"{target}: sections {', '.join(args.sections)}; {len(arrays)} arrays")
