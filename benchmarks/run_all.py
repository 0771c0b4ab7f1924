"""Run every benchmark, then print one summary of their target lines and how many hold.

Run: ``python benchmarks/run_all.py [--quick]`` (``make bench`` is ``--quick``). Each benchmark
runs in its own process, one after another, its output passed through as it comes; their
``target NAME: FIGURE (goal GOAL) holds|misses`` lines are repeated at the end, then
``N/M targets hold``. A benchmark that fails is reported and the others still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("bench_client.py", "bench_emulator.py", "bench_triggers.py", "bench_h2o3.py")


def run(script: str, quick: bool) -> tuple[list[str], int]:
    """Run one benchmark, echoing its output; its target lines and exit code."""
    print(f"=== {script}{' --quick' if quick else ''}", flush=True)
    proc = subprocess.Popen([sys.executable, str(HERE / script), *(["--quick"] if quick else [])],
                            stdout=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        if line.startswith("target "):
            lines.append(line.rstrip("\n"))
    return lines, proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the short runs of each benchmark")
    args = parser.parse_args()
    targets: list[str] = []
    failed = []
    for script in BENCHMARKS:
        lines, code = run(script, args.quick)
        targets += lines
        if code != 0:
            failed.append(f"{script} exited with {code}")
        print(flush=True)
    print("=== targets")
    for line in targets:
        print(line)
    for failure in failed:
        print(f"benchmark failed: {failure}")
    holding = sum(line.endswith(" holds") for line in targets)
    print(f"{holding}/{len(targets)} targets hold")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
