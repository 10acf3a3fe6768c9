#!/usr/bin/env python3
"""The performance issue's targets (docs/performance.md, "Side by side") evaluated on a side-by-side.json: each target's
text, what was measured, and whether it is met (null where the run lacks a figure it needs).

side_by_side.py adds them to every side-by-side.json it writes; run this to add or refresh them on an existing one:
  targets.py side-by-side.json
"""
import json
import sys
from pathlib import Path

OWN_WORK_LIMIT = 0.02
FIRST_IMAGE_LIMIT_S = 10


def _median(results, system, batch):
    return results.get("gpu", {}).get(system, {}).get(f"batch{batch}", {}).get("seconds_per_call_median")


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


def _at_most(value, limit):
    return None if value is None else value <= limit


def evaluate(results):
    """The targets for the figures in results (side_by_side.py's shape)."""
    gpu = results.get("gpu", {})
    sdk = gpu.get("sdk", {})
    compiled = gpu.get("diffusers_compiled", {})
    b1, b4 = _median(results, "sdk", 1), _median(results, "sdk", 4)
    b1_ratio = _ratio(b1, _median(results, "diffusers_compiled", 1))
    b4_ratio = _ratio(b4, _median(results, "diffusers_compiled", 4))
    first = [r["time_to_first_image_seconds"] for r in sdk.values() if r.get("time_to_first_image_seconds") is not None]
    memory = {batch: [sdk[batch].get("peak_gpu_memory_mib"), compiled.get(batch, {}).get("peak_gpu_memory_mib")]
              for batch in sdk if batch in compiled}
    memory_met = [s <= c for s, c in memory.values() if s is not None and c is not None]
    own = {batch: round(r["pipeline_own_work_fraction_of_onnxruntime"], 4) for batch, r in sdk.items()
           if r.get("pipeline_own_work_fraction_of_onnxruntime") is not None}
    cpu = results.get("cpu", {})
    cpu_pair = [cpu.get("sdk_seconds"), cpu.get("diffusers_onnx_seconds")]
    return {
        "batch1_seconds": {"target": "<= 0.37 s", "measured": b1, "met": _at_most(b1, 0.37)},
        "batch1_vs_compiled": {"target": "<= 0.75x", "measured": b1_ratio, "met": _at_most(b1_ratio, 0.75)},
        "batch4_seconds": {"target": "<= 1.08 s", "measured": b4, "met": _at_most(b4, 1.08)},
        "batch4_vs_compiled": {"target": "<= 0.85x", "measured": b4_ratio, "met": _at_most(b4_ratio, 0.85)},
        "time_to_first_image": {"target": f"<= {FIRST_IMAGE_LIMIT_S} s", "measured": max(first) if first else None,
                                "met": all(t <= FIRST_IMAGE_LIMIT_S for t in first) if first else None},
        "peak_gpu_memory_vs_compiled": {"target": "<= compiled diffusers'", "measured": memory,
                                        "met": all(memory_met) if memory_met else None},
        "pipeline_own_work": {"target": f"<= {OWN_WORK_LIMIT:.0%} of ONNX Runtime's time", "measured": own,
                              "met": all(v <= OWN_WORK_LIMIT for v in own.values()) if own else None},
        "cpu_vs_diffusers_onnx": {"target": "SDK no slower", "measured": cpu_pair,
                                  "met": cpu_pair[0] <= cpu_pair[1] if None not in cpu_pair else None},
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = Path(sys.argv[1])
    results = json.loads(path.read_text())
    results["targets"] = evaluate(results)
    path.write_text(json.dumps(results, indent=1) + "\n")
    for name, target in results["targets"].items():
        print(f"{name:28} {target['target']:28} {'met' if target['met'] else 'NOT met' if target['met'] is False else '-':8} {target['measured']}")
