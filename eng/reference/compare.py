#!/usr/bin/env python3
"""Compares two references of the same schema array by array (for example a regenerated one with the published one).

Usage: compare.py REFERENCE_DIR OTHER_DIR [--tolerance T]
Prints, per array present in both, the largest absolute difference, and lists arrays present in only one of them.
Exits 1 when a difference exceeds the tolerance (default 1e-5) or a shape differs.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("reference")
ap.add_argument("other")
ap.add_argument("--tolerance", type=float, default=1e-5)
args = ap.parse_args()

a = np.load(Path(args.reference) / "reference.npz")
b = np.load(Path(args.other) / "reference.npz")
common = sorted(set(a.files) & set(b.files))
worst, failed = 0.0, False
for name in common:
    x, y = a[name], b[name]
    if x.shape != y.shape:
        print(f"{name}: shape {x.shape} vs {y.shape}")
        failed = True
        continue
    diff = float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) if x.size else 0.0
    worst = max(worst, diff)
    flag = "  <-- exceeds" if diff > args.tolerance else ""
    failed |= bool(flag)
    print(f"{name}: max abs diff {diff:.3g}{flag}")
only_a, only_b = sorted(set(a.files) - set(b.files)), sorted(set(b.files) - set(a.files))
if only_a:
    print(f"only in {args.reference}: {only_a}")
if only_b:
    print(f"only in {args.other}: {only_b}")
print(f"{len(common)} arrays compared, worst {worst:.3g}")
sys.exit(1 if failed else 0)
