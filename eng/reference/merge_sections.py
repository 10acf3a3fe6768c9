#!/usr/bin/env python3
"""Copies sections of a generated reference into another (the repository's tests/reference), with their arrays.

    python3 eng/reference/merge_sections.py SOURCE_FOLDER TARGET_FOLDER SECTION [SECTION ...]

A section enters tests/reference only with the tests that read it (a section no test reads fails the run), so a
reference generated with every section is merged one section at a time. The section's entry in reference.json is
replaced, and the arrays under the prefixes it uses (the first path part of each array it names, such as ti/ or
clip_skip/) are replaced in reference.npz. Weight files the cases name must already be in the target folder
(make_test_weights.py writes them, identical in both).
"""
import json
import sys
import zipfile
from pathlib import Path

PREFIXES = {"textual_inversion": "ti/", "clip_skip": "clip_skip/", "prompt_weighting": "lpw/", "lora": "lora/"}


def main(source: Path, target: Path, sections: list[str]) -> None:
    source_json = json.loads((source / "reference.json").read_text())
    target_json = json.loads((target / "reference.json").read_text())
    prefixes = []
    for section in sections:
        if section not in source_json:
            sys.exit(f"{source}: no section '{section}'")
        if section not in PREFIXES:
            sys.exit(f"no array prefix known for '{section}': add it to PREFIXES")
        target_json[section] = source_json[section]
        prefixes.append(PREFIXES[section])
        for case in source_json[section].get("cases", []):
            for embedding in case.get("embeddings", []) + case.get("loras", []):
                if not (target / embedding["file"]).is_file():
                    sys.exit(f"{target / embedding['file']} is missing: run make_test_weights.py or copy it from {source}")

    with zipfile.ZipFile(source / "reference.npz") as src, zipfile.ZipFile(target / "reference.npz") as old:
        kept = [(info, old.read(info)) for info in old.infolist() if not info.filename.startswith(tuple(prefixes))]
        added = [(info, src.read(info)) for info in src.infolist() if info.filename.startswith(tuple(prefixes))]
    with zipfile.ZipFile(target / "reference.npz", "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in kept + added:
            out.writestr(info.filename, data)
    (target / "reference.json").write_text(json.dumps(target_json, indent=1))
    print(f"merged {', '.join(sections)}: {len(added)} arrays")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
