#!/usr/bin/env python3
"""Sums the kernel times of an Nsight Compute CSV (ncu --csv --metrics gpu__time_duration.sum) by kind of kernel and by
kernel, to show where a generation's GPU time goes. Usage: kernel_summary.py NCU.csv"""
import collections
import csv
import re
import sys

KINDS = [("attention", r"fmha|flash|attention|mha|sdpa"), ("convolution", r"conv|xmma_fprop|implicit|dgrad|fprop|winograd|cudnn"),
         ("matrix product", r"gemm|cutlass|cublas|matmul|sm90_xmma"), ("group norm", r"group_?norm|groupnorm"),
         ("layer norm", r"layer_?norm|layernorm"), ("transpose / copy", r"transpose|copy|memcpy|concat|slice|split|pad"),
         ("elementwise / other", r".")]

rows = []
with open(sys.argv[1], newline="") as handle:
    lines = [line for line in handle if line.startswith('"')]
for row in csv.DictReader(lines):
    if row.get("Metric Name") != "gpu__time_duration.sum":
        continue
    value = float(row["Metric Value"].replace(",", ""))
    unit = row.get("Metric Unit", "ns")
    microseconds = value / 1000 if unit == "nsecond" or unit == "ns" else value * 1000 if unit in ("msecond", "ms") else value
    rows.append((row["Kernel Name"], microseconds))

total = sum(us for _, us in rows)
print(f"{len(rows)} kernels, {total / 1000:.1f} ms of kernel time (serialised by the profiler)")
by_kind = collections.Counter()
for name, us in rows:
    kind = next(k for k, pattern in KINDS if re.search(pattern, name, re.IGNORECASE))
    by_kind[kind] += us
for kind, us in by_kind.most_common():
    print(f"  {kind:22} {us / 1000:8.2f} ms  {100 * us / total:5.1f}%")
by_name = collections.defaultdict(lambda: [0, 0.0])
for name, us in rows:
    short = re.sub(r"\(.*", "", name)[:110]
    by_name[short][0] += 1
    by_name[short][1] += us
print("top kernels: count, total ms, mean us, name")
for short, (count, us) in sorted(by_name.items(), key=lambda item: -item[1][1])[:45]:
    print(f"  {count:5d} {us / 1000:8.2f} {us / count:8.1f}  {short}")
