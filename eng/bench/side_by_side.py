#!/usr/bin/env python3
"""This SDK and diffusers on the same machine, in one run, on the same weights and prompt (512x512, PNDM, guidance 7.5,
safety checker on): seconds per call (median after warm-up), time to first image from process start, and peak GPU memory
as the driver reports it for the process (nvidia-smi, polled); on the CPU, seconds per image and peak RSS.

Every configuration runs in a process of its own, one after the other, interleaved by batch size (diffusers eager,
diffusers compiled, SDK at batch 1, then at batch 4, ...) so that a slow period of a shared machine hits all systems.
Writes side-by-side.json (docs/performance.md describes it) and prints a table.

Runs that write to the same --out add to its side-by-side.json (a configuration measured again replaces its entry), so
that one comparison can be spread over several commands of a time-limited machine.

Usage: side_by_side.py --diffusers-model DIR --sdbench PATH --sdk-model DIR [--sdk-flags="--cuda-graph ..."] [--onnx-fp32 DIR]
                       [--batches 1 4 8 | --batches (none: CPU only)] [--iterations 9] [--cpu-steps 20] --out DIR
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import targets

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--diffusers-model", required=True, help="the model in the diffusers layout (float16 weights are used on CUDA)")
ap.add_argument("--sdbench", required=True, help="the SDK's benchmark program")
ap.add_argument("--sdk-model", required=True, help="what the SDK loads on CUDA (a diffusers folder or an ONNX folder)")
ap.add_argument("--sdk-flags", default="--cuda-graph", help="sdbench options for the SDK's fastest CUDA setup")
ap.add_argument("--onnx-fp32", help="a float32 ONNX folder both run on the CPU (omit to skip the CPU comparison)")
ap.add_argument("--batches", type=int, nargs="*", default=[1, 4, 8])
ap.add_argument("--iterations", type=int, default=9)
ap.add_argument("--cpu-steps", type=int, default=20)
ap.add_argument("--cpu-iterations", type=int, default=2)
ap.add_argument("--cpu-sdk-flags", default="", help="sdbench options for the SDK's CPU run (the defaults are what users get)")
ap.add_argument("--systems", nargs="+", default=["diffusers_eager", "diffusers_compiled", "sdk"])
ap.add_argument("--diffusers-flags", default="", help="diffusers_bench.py options for the compiled runs (e.g. --inductor-tuning)")
ap.add_argument("--run-timeout", type=float, default=420,
                help="seconds after which one configuration's process is stopped and recorded as timed out, so that one slow "
                     "compilation cannot take the whole run")
ap.add_argument("--out", required=True)
args = ap.parse_args()
OUT = Path(args.out)
OUT.mkdir(parents=True, exist_ok=True)
HERE = Path(__file__).resolve().parent


def gpu_memory_mib(pid: int) -> int | None:
    """The memory the driver reports in use by the process, in MiB (None when it holds none)."""
    try:
        text = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid) and parts[1].isdigit():
            return int(parts[1])
    return None


def run(label: str, command: list, report: Path, gpu: bool) -> dict:
    """Runs one configuration: time from process start to FIRST_IMAGE, peak driver memory (GPU) or peak RSS (CPU)."""
    print(f"== {label}: {' '.join(map(str, command))}", flush=True)
    spawned = time.time()
    process = subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    peak = {"mib": 0}
    done = threading.Event()

    def watch():
        while not done.is_set():
            used = gpu_memory_mib(process.pid)
            if used is not None:
                peak["mib"] = max(peak["mib"], used)
            done.wait(0.25)

    timer = threading.Timer(args.run_timeout, process.kill)
    timer.start()
    watcher = threading.Thread(target=watch, daemon=True)
    if gpu:
        watcher.start()
    first_image = None
    tail = []
    for line in process.stdout:
        if first_image is None and line.startswith("FIRST_IMAGE"):
            first_image = time.time() - spawned
        tail = (tail + [line.rstrip()])[-12:]
        if "call" in line or "run " in line or "median" in line or "loaded" in line:
            print("   " + line.rstrip(), flush=True)
    _, status, usage = os.wait4(process.pid, 0)
    timed_out = not timer.is_alive() and time.time() - spawned >= args.run_timeout
    timer.cancel()
    done.set()
    result = json.loads(report.read_text()) if report.exists() else {}
    result.update(label=label, exit_status=os.waitstatus_to_exitcode(status), time_to_first_image_seconds=first_image,
                  wall_seconds=time.time() - spawned, peak_rss_mib=usage.ru_maxrss / 1024, timed_out=timed_out)
    if gpu:
        result["peak_gpu_memory_mib"] = peak["mib"]
    if result["exit_status"] != 0:
        result["output_tail"] = tail
        print("   failed:\n   " + "\n   ".join(tail), flush=True)
    (OUT / f"{label}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def sdk_summary(report: dict) -> dict:
    totals = [r["Total"] for r in report.get("Runs", [])]
    summary = {"seconds_per_call": totals, "seconds_per_call_median": statistics.median(totals) if totals else None}
    median = report.get("Median") or {}
    onnxruntime = sum(median.get(k, 0) for k in ("UNet", "Decoding", "SafetyChecking", "PromptEncoding"))
    if onnxruntime > 0:
        # The pipeline's own work between ONNX Runtime's calls (scheduler steps, guidance, copies) against the calls' time.
        summary["pipeline_own_work_fraction_of_onnxruntime"] = (median.get("Scheduler", 0) + median.get("LoopOverhead", 0)) / onnxruntime
        summary["stages_median_seconds"] = median
    return summary


summary_path = OUT / "side-by-side.json"
results = json.loads(summary_path.read_text()) if summary_path.exists() else {}
results.setdefault("gpu", {})
for system in ("sdk", "diffusers_eager", "diffusers_compiled"):
    results["gpu"].setdefault(system, {})
results.setdefault("cpu", {})
python = sys.executable
for batch in args.batches:
    for system in args.systems:
        label = f"{system}-b{batch}"
        report = OUT / f"{label}.raw.json"
        if system == "sdk":
            command = [args.sdbench, "--provider", "cuda", "--model", args.sdk_model, "--batch", batch, "--iterations", args.iterations,
                       "--warmup", 2, "--label", label, "--json", report, *args.sdk_flags.split()]
            result = run(label, command, report, gpu=True)
            result.update(sdk_summary(result))
        else:
            mode = system.removeprefix("diffusers_")
            command = [python, HERE / "diffusers_bench.py", "--model", args.diffusers_model, "--mode", mode, "--batch", batch,
                       "--iterations", args.iterations, "--out", report, *(args.diffusers_flags.split() if mode == "compiled" else [])]
            result = run(label, command, report, gpu=True)
        median = result.get("seconds_per_call_median")
        results["gpu"][system][f"batch{batch}"] = {
            "seconds_per_call_median": median,
            "seconds_per_image_median": median / batch if median else None,
            "seconds_per_call": result.get("seconds_per_call"),
            "time_to_first_image_seconds": result.get("time_to_first_image_seconds"),
            "peak_gpu_memory_mib": result.get("peak_gpu_memory_mib"),
            "exit_status": result.get("exit_status"),
            "timed_out": result.get("timed_out"),
        }
        if system == "sdk":
            results["gpu"][system][f"batch{batch}"].update(
                sdk_flags=args.sdk_flags, load_seconds=result.get("LoadSeconds"), bare_unet_ms=result.get("BareUNetMilliseconds"),
                device_memory_mib_by_stage=result.get("DeviceMemoryMiB"),
                **{k: result.get(k) for k in ("pipeline_own_work_fraction_of_onnxruntime", "stages_median_seconds")})
        else:
            results["gpu"][system][f"batch{batch}"].update(
                load_seconds=result.get("load_seconds"), first_call_seconds=result.get("first_call_seconds"),
                torch_peak_allocated_mib=(result.get("torch_peak_allocated_bytes") or 0) / 2**20 or None)

if args.onnx_fp32:
    report = OUT / "cpu-sdk.raw.json"
    sdk = run("cpu-sdk", [args.sdbench, "--provider", "cpu", "--model", args.onnx_fp32, "--steps", args.cpu_steps, "--iterations",
                          args.cpu_iterations, "--warmup", 1, "--bare-calls", 3, "--label", "cpu-sdk", "--json", report, *args.cpu_sdk_flags.split()], report, gpu=False)
    sdk.update(sdk_summary(sdk))
    report = OUT / "cpu-diffusers.raw.json"
    onnx = run("cpu-diffusers-onnx", [python, HERE / "diffusers_bench.py", "--model", args.onnx_fp32, "--mode", "onnx-cpu", "--steps",
                                      args.cpu_steps, "--iterations", args.cpu_iterations, "--warmup", 0, "--out", report], report, gpu=False)
    results["cpu"] = {"steps": args.cpu_steps, "size": 512,
                      "sdk_seconds": sdk.get("seconds_per_call_median"), "diffusers_onnx_seconds": onnx.get("seconds_per_call_median"),
                      "sdk_peak_rss_mib": sdk.get("peak_rss_mib"), "diffusers_onnx_peak_rss_mib": onnx.get("peak_rss_mib"),
                      "sdk_exit_status": sdk.get("exit_status"), "diffusers_exit_status": onnx.get("exit_status"),
                      "sdk_flags": args.cpu_sdk_flags, "sdk_seconds_per_call": sdk.get("seconds_per_call"),
                      "diffusers_onnx_seconds_per_call": onnx.get("seconds_per_call"), "onnxruntime_python": onnx.get("onnxruntime")}

try:
    gpu_name = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
except OSError:
    gpu_name = None
results["machine"] = {"gpu": gpu_name, "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
results["targets"] = targets.evaluate(results)
summary_path.write_text(json.dumps(results, indent=1) + "\n")
print("\nsystem               batch   s/call   s/image   first image   GPU MiB")
for system, batches in results["gpu"].items():
    for batch, r in batches.items():
        fmt = lambda v, f: (f % v) if isinstance(v, (int, float)) else "-"
        print(f"{system:20} {batch:>6} {fmt(r['seconds_per_call_median'], '%8.3f')} {fmt(r['seconds_per_image_median'], '%9.3f')} "
              f"{fmt(r['time_to_first_image_seconds'], '%12.1f')} {fmt(r['peak_gpu_memory_mib'], '%9d')}")
if results["cpu"]:
    print(f"CPU ({args.cpu_steps} steps): SDK {results['cpu']['sdk_seconds']} s, diffusers ONNX {results['cpu']['diffusers_onnx_seconds']} s")
