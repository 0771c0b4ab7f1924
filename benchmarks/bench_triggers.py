"""Many concurrent waits in one triggerer loop: one shared poll per connection vs a poll per trigger.

Run: ``python benchmarks/bench_triggers.py [--quick]`` (``make bench`` runs ``--quick``).
The emulator runs in its own process (``_emulator_proc.py``: call counters, no gRPC traffic of
its own). For each N, N systems are created and Started, then two phases run in turn, each in
a fresh process (``_trigger_load.py``): N waits for ``stopped`` through Airflow's own
``SharedStreamManager`` (``shared``), then N waits with ``shared=False``, each trigger's own
``run()`` (``per-trigger``). Every system is stopped at a random time in the window after
the first interval; it is Stopped one emulator step later. Prints a table per N and the
target lines; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import HERE, Emulator, connection_json, percentile, target

INTERVAL_S = 5.0
STEP_S = 1.0  # a stop takes one step: Stopping, then Stopped
SLACK_S = 30.0  # after the last planned stop, until the waits' deadline
MODES = ("shared", "per-trigger")


def figures(n: int, mode: str, raw: dict[str, Any], calls: dict[str, int], stops: dict[str, Any],
            tcp_peak: int, emulator_cpu_s: float) -> dict[str, Any]:
    """One phase's figures from the load's report, the emulator's call counts and the stop times."""
    duration = raw["duration_s"]
    intervals = max(1, math.ceil(duration / INTERVAL_S))
    statuses = Counter(status for status, _, _ in raw["events"].values())
    detection = [at - stops["stopped_at"][sid] for sid, (status, at, _) in raw["events"].items()
                 if status == "success" and sid in stops["stopped_at"]]
    messages = Counter(msg.split(":")[0][:60] for status, _, msg in raw["events"].values() if status != "success")
    return {
        "n": n, "mode": mode, "duration_s": duration, "created_s": raw["created_s"], "warm_up_s": raw["warm_up_s"],
        "lists": calls["ListSystems"], "gets": calls["GetSystem"], "logins": calls["Login"],
        "calls_per_interval": sum(calls.values()) / intervals, "lists_per_interval": calls["ListSystems"] / intervals,
        "channels": raw["channels"], "tcp_peak": tcp_peak,
        "cpu_per_min": max(0.0, raw["cpu_s"] - raw["idle_cpu_per_s"] * duration) / duration * 60,
        "emulator_cpu_per_min": emulator_cpu_s / duration * 60,
        "lag_ms": [1e3 * percentile(raw["lags"], q) for q in (50, 99, 100)],
        "start_lag_ms": [1e3 * percentile(raw["start_lags"], q) for q in (50, 99, 100)],
        "gc_full": [1e3 * s for gen, s in raw["gc_pauses"] if gen == 2],
        "gc_max_ms": 1e3 * max((s for _gen, s in raw["gc_pauses"]), default=0.0),
        "detect_s": [percentile(detection, q) for q in (50, 99, 100)],
        "rss_kb_per_trigger": (raw["rss_peak_mb"] - raw["rss0_mb"]) * 1024 / n,
        "success": statuses["success"], "errors": n - statuses["success"],
        "error_kinds": dict(statuses - Counter(success=statuses["success"])) | (
            {"raised": len(raw["problems"])} if raw["problems"] else {}) | (
            {"unfinished": raw["unfinished"]} if raw["unfinished"] else {}),
        "error_messages": dict(messages.most_common(3)), "problems": raw["problems"][:3],
        "stop_errors": len(stops["errors"]), "stop_late_s": stops["late_s"],
    }


def _log_lines(path: Path) -> tuple[int, int]:
    """(lines, warning or error lines) of a load's log (structlog's console format)."""
    lines = path.read_text(errors="replace").splitlines()
    return len(lines), sum(1 for line in lines if "[warning" in line or "[error" in line)


def run_phase(emulator: Emulator, ids: list[str], mode: str, window: float, tmp: Path, rng: random.Random
              ) -> dict[str, Any]:
    """N waits in a fresh process while the emulator stops each system at a random time."""
    n = len(ids)
    log_path = tmp / f"{mode}-{n}.log"
    ids_file = tmp / f"ids-{n}.json"
    ids_file.write_text(json.dumps(ids))
    env = {**os.environ, "AIRFLOW_HOME": str(tmp / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW_CONN_PUDDLE_DEFAULT": connection_json(emulator.address)}
    deadline_s = INTERVAL_S + window + SLACK_S
    read_fd, write_fd = os.pipe()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "_trigger_load.py"), "--mode", mode, "--ids-file", str(ids_file),
             "--interval", str(INTERVAL_S), "--deadline-s", str(deadline_s), "--cap-s", str(deadline_s + 15),
             "--report-fd", str(write_fd)],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, pass_fds=(write_fd,), env=env, text=True,
        )
    os.close(write_fd)
    with os.fdopen(read_fd) as report:
        if not report.readline():
            raise RuntimeError(f"the {mode} load did not start:\n{log_path.read_text()[-3000:]}")
        launch_at = time.time() + 0.5
        plan = [(sid, launch_at + INTERVAL_S + rng.uniform(0, window)) for sid in ids]
        before, cpu_before = emulator.call("counts"), emulator.cpu_s()
        emulator.call("stop_at", plan=plan)
        assert proc.stdin is not None
        proc.stdin.write(f"{launch_at}\n")
        proc.stdin.flush()
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(report.readline()), daemon=True)
        reader.start()
        tcp_peak = 0
        while reader.is_alive():
            tcp_peak = max(tcp_peak, emulator.connections())
            reader.join(1.0)
    after, emulator_cpu = emulator.call("counts"), emulator.cpu_s() - cpu_before
    proc.wait(30)
    if not lines or not lines[0]:
        raise RuntimeError(f"the {mode} load ended without figures:\n{log_path.read_text()[-3000:]}")
    calls = {k: after[k] - before[k] for k in after}
    result = figures(n, mode, json.loads(lines[0]), calls, emulator.call("stops"), tcp_peak, emulator_cpu)
    result["log_lines"], result["log_warnings"] = _log_lines(log_path)
    return result


def table(results: list[dict[str, Any]]) -> None:
    """The shared and per-trigger figures of one N side by side."""
    rows = [
        ("backend calls per interval", lambda r: f"{r['calls_per_interval']:.1f}"),
        ("ListSystems / GetSystem / Login", lambda r: f"{r['lists']} / {r['gets']} / {r['logins']}"),
        ("channels opened (TCP peak)", lambda r: f"{r['channels']} ({r['tcp_peak']})"),
        ("trigger CPU s per minute", lambda r: f"{r['cpu_per_min']:.2f}"),
        ("emulator CPU s per minute", lambda r: f"{r['emulator_cpu_per_min']:.2f}"),
        ("loop lag p50/p99/max ms", lambda r: "{:.1f} / {:.1f} / {:.0f}".format(*r["lag_ms"])),
        ("  start p50/p99/max ms", lambda r: "{:.1f} / {:.1f} / {:.0f}".format(*r["start_lag_ms"])),
        ("GC pause max ms (full collections)", lambda r: f"{r['gc_max_ms']:.0f} ({len(r['gc_full'])})"),
        ("detection p50/p99/max s", lambda r: "{:.2f} / {:.2f} / {:.2f}".format(*r["detect_s"])),
        ("RSS per trigger KiB", lambda r: f"{r['rss_kb_per_trigger']:.1f}"),
        ("trigger log lines (warnings)", lambda r: f"{r['log_lines']} ({r['log_warnings']})"),
        ("error events", lambda r: f"{r['errors']} {r['error_kinds'] or ''}".strip()),
        ("phase s (triggers created in)", lambda r: f"{r['duration_s']:.1f} ({r['created_s']:.2f})"),
        ("warm-up wait before launch s", lambda r: f"{r['warm_up_s']:.2f}"),
    ]
    print(f"\nN = {results[0]['n']} waits, poll interval {INTERVAL_S:g} s")
    print(f"{'':34}" + "".join(f"{r['mode']:>22}" for r in results))
    for label, cell in rows:
        print(f"{label:34}" + "".join(f"{cell(r):>22}" for r in results))
    for r in results:
        if r["error_messages"] or r["problems"]:
            print(f"  {r['mode']} errors: {r['error_messages']} {r['problems']}")
        if r["stop_errors"] or r["stop_late_s"] > 0.5:
            print(f"  {r['mode']} driver: {r['stop_errors']} stop errors, up to {r['stop_late_s']:.2f} s late")


def targets(by: dict[tuple[int, str], dict[str, Any]]) -> None:
    """The issue's trigger targets, from the figures."""
    for n in sorted({n for n, _ in by}):
        s = by[n, "shared"]
        target(f"triggers-N{n}-shared-lists-per-interval", f"{s['lists_per_interval']:.2f} ListSystems, "
               f"{s['gets']} GetSystem in {s['duration_s']:.0f} s", "<= 1 ListSystems per interval",
               s["lists_per_interval"] <= 1)
        target(f"triggers-N{n}-shared-logins-channels", f"{s['logins']} login, {s['channels']} channel",
               "1 login, 1 channel", s["logins"] == 1 and s["channels"] == 1)
        target(f"triggers-N{n}-shared-error-events", f"{s['errors']}", "0", s["errors"] == 0)
    if (1000, "shared") in by and (1000, "per-trigger") in by:
        s, p = by[1000, "shared"], by[1000, "per-trigger"]
        ratio = p["calls_per_interval"] / max(s["calls_per_interval"], 1e-9)
        target("triggers-N1000-backend-calls", f"{s['calls_per_interval']:.2f} per interval, {ratio:.0f}x fewer "
               "than per-trigger", "<= 2 per interval, >= 100x fewer",
               s["calls_per_interval"] <= 2 and ratio >= 100)
        share = s["cpu_per_min"] / max(p["cpu_per_min"], 1e-9)
        target("triggers-N1000-cpu", f"{s['cpu_per_min']:.2f} vs {p['cpu_per_min']:.2f} CPU s per minute "
               f"({share:.3f} of per-trigger)", "<= 1/10 of per-trigger", share <= 0.1)
        lag = s["lag_ms"]  # the whole phase, the start included
        target("triggers-N1000-shared-loop-lag", f"p99 {lag[1]:.1f} ms, max {lag[2]:.0f} ms (start max "
               f"{s['start_lag_ms'][2]:.0f} ms)", "p99 < 20 ms, max < 100 ms incl. the start",
               lag[1] < 20 and lag[2] < 100)
        target("triggers-N1000-shared-detection", f"p99 {s['detect_s'][1]:.2f} s",
               f"<= {INTERVAL_S + 0.5:g} s (interval + 0.5 s)", s["detect_s"][1] <= INTERVAL_S + 0.5)
    if (5000, "shared") in by:
        s = by[5000, "shared"]
        target("triggers-N5000-shared-loop-lag", f"p99 {s['lag_ms'][1]:.1f} ms (max {s['lag_ms'][2]:.0f} ms, "
               f"start max {s['start_lag_ms'][2]:.0f} ms)", "p99 < 20 ms", s["lag_ms"][1] < 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 100 and 1,000, 10 s window (make bench)")
    parser.add_argument("--sizes", type=int, nargs="*", help="override the N values")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="run only these phases (targets that compare the two need both)")
    args = parser.parse_args()
    sizes = args.sizes or ((100, 1000) if args.quick else (100, 1000, 5000))
    window = 10.0 if args.quick else 30.0
    rng = random.Random(8)
    by: dict[tuple[int, str], dict[str, Any]] = {}
    print(f"trigger waits: N = {', '.join(map(str, sizes))}; stops spread over {window:g} s; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="puddle-bench-triggers-") as tmp, Emulator(step_seconds=STEP_S) as emu:
        created: list[str] = []
        for n in sizes:
            if len(created) < n:
                created += emu.call("create", n=n - len(created))["ids"]
            ids = created[:n]
            for mode in args.modes:
                emu.call("start", ids=ids)
                by[n, mode] = run_phase(emu, ids, mode, window, Path(tmp), rng)
            table([by[n, mode] for mode in args.modes])
    print()
    targets(by)


if __name__ == "__main__":
    main()
