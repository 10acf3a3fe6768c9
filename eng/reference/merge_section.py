#!/usr/bin/env python3
"""Copies held sections of a generated reference into the repository's own (tests/reference).

The generator writes every section, but a section enters tests/reference only together with the tests that read it
(see README.md). This moves one or more sections at a time: their entry in reference.json, their arrays in
reference.npz (entries under "<npz prefix>/"), and the weight files their cases name. Standard library only (an .npz is
a zip of .npy files), so it runs where numpy is missing.

    python3 eng/reference/merge_section.py /path/to/generated/ref tests/reference lora:lora
"""
import json
import os
import shutil
import sys
import zipfile


def file_fields(value):
    """Every "file" string inside a section (LoRA and embedding files), relative to the reference folder."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "file" and isinstance(item, str):
                yield item
            else:
                yield from file_fields(item)
    elif isinstance(value, list):
        for item in value:
            yield from file_fields(item)


def main(source, target, specs):
    with open(os.path.join(source, "reference.json"), encoding="utf-8") as f:
        generated = json.load(f)
    with open(os.path.join(target, "reference.json"), encoding="utf-8") as f:
        repo = json.load(f)

    prefixes = []
    for spec in specs:
        section, _, prefix = spec.partition(":")
        if section not in generated:
            sys.exit(f"{source} has no section '{section}'")
        repo[section] = generated[section]
        prefixes.append((prefix or section) + "/")
        for name in sorted(set(file_fields(generated[section]))):
            destination = os.path.normpath(os.path.join(target, name))
            if not destination.startswith(os.path.normpath(target) + os.sep):
                sys.exit(f"'{name}' leaves the reference folder")
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.copyfile(os.path.join(source, name), destination)

    target_npz = os.path.join(target, "reference.npz")
    merged = target_npz + ".tmp"
    with zipfile.ZipFile(target_npz) as old, zipfile.ZipFile(os.path.join(source, "reference.npz")) as new, \
            zipfile.ZipFile(merged, "w", zipfile.ZIP_DEFLATED) as out:
        for info in old.infolist():
            if not info.filename.startswith(tuple(prefixes)):
                out.writestr(info, old.read(info))
        added = [i for i in new.infolist() if i.filename.startswith(tuple(prefixes))]
        if not added:
            sys.exit(f"{source}/reference.npz has no arrays under {', '.join(prefixes)}")
        for info in added:
            out.writestr(info, new.read(info))
    os.replace(merged, target_npz)

    with open(os.path.join(target, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(repo, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
