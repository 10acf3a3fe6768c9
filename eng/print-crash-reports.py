#!/usr/bin/env python3
"""Prints the crashing thread's stack from each .NET crash report (DOTNET_EnableCrashReport) in a folder."""
import json
import pathlib
import sys

reports = sorted(pathlib.Path(sys.argv[1]).glob("*.crashreport.json"))
if not reports:
    print("no crash reports: the tests failed without a native crash")
for report in reports:
    document = json.loads(report.read_text(errors="replace"))
    payload = document.get("payload", {})
    print(f"=== {report.name}: {document.get('parameters', {}).get('ExceptionType', 'crash')} in {payload.get('process_name', '?')}")
    for thread in payload.get("threads", []):
        if thread.get("crashed") in (True, "true"):
            if thread.get("managed_exception_type"):
                print(f"managed exception: {thread['managed_exception_type']}")
            for frame in thread.get("stack_frames", [])[:60]:
                name = frame.get("method_name") or frame.get("unmanaged_name") or frame.get("native_address", "?")
                print(f"  {frame.get('module_name') or frame.get('native_module', '?')}!{name}")
