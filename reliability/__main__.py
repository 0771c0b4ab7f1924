"""``make reliability``: start the deployment, run the scenarios, print one table and ``N/M scenarios hold``.

``--executor local|celery|both`` (default both): each executor gets a deployment of its own, one
after the other, and every scenario runs on each; a row names its executor. Phases run one after
another; the scenarios of a phase run side by side (each on emulators of its own). Progress goes to
stderr; the table and each executor's wall time to stdout and to ``artifacts/reliability/latest.md``.
Exits 0 only when every scenario holds. ``--keep`` keeps the runs' homes (logs, databases).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from reliability import secrets, ui, ui_page
from reliability import stack as deployment
from reliability.procs import alive, bound, leftovers, tree
from reliability.report import Progress, Row, failed_row, table
from reliability.scenarios import accounting, adopt, durable, exec_timeout, faults, idle, waits, watch, worker_kill
from reliability.workers import EXECUTORS

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

Scenario = tuple[str, str, Callable[[deployment.Stack], list[Row]]]


def phases(args: argparse.Namespace, sampler: Callable[[], secrets.TriggerSampler]) -> list[list[Scenario]]:
    """The scenarios, phase by phase: (name, what it expects if it cannot finish, run)."""
    return [
        [("waits", "every wait ends exactly once, on its deadline; the survivor picks up the orphans",
          lambda s: waits.run(s, args.waits, args.short_waits))],
        [("faults", "each fault survived", faults.run),
         ("adopt", "a cleared create adopts its system", adopt.run),
         ("idle", "exactly the idle systems stopped", idle.run),
         ("worker-kill", "the killed worker's task retries and succeeds", worker_kill.run),
         ("durable-create", "the retry reconnects by id, makes no second system and still owns it", durable.create_row),
         ("durable-restart", "the retry does not restart again", durable.restart_row),
         ("execution-timeout", "the deferred wait ends at execution_timeout", exec_timeout.run)],
        [("ui", "the browser checks hold", lambda s: ui.run(s, ARTIFACTS)),
         ("ui-puddle-page", "the Puddle page checks hold", lambda s: ui_page.run(s, ARTIFACTS))],
        # stops every triggerer: a phase of its own
        [("watcher-downtime", "one asset event after the downtime, none more", watch.run)],
        [("accounting", "systems, waits and retries add up", accounting.run)],
        [("secrets", "0 hits", lambda s: secrets.run(s, sampler()))],
    ]


def _run_phase(stack: deployment.Stack, phase: list[Scenario], progress: Progress) -> list[Row]:
    def one(scenario: Scenario) -> list[Row]:
        name, expected, run = scenario
        started = time.monotonic()
        progress(f"scenario {name}")
        try:
            rows = run(stack)
        except Exception as err:  # a scenario that breaks is a row that does not hold, not the end of the run
            progress(f"scenario {name} did not finish: {err}")
            rows = [failed_row(name, expected, err)]
        progress(f"scenario {name} took {time.monotonic() - started:.0f}s")
        return rows

    with ThreadPoolExecutor(max_workers=len(phase)) as pool:
        return [row for rows in pool.map(one, phase) for row in rows]


def _cleanup_row(stack: deployment.Stack, before: list[psutil.Process], killed: list[str]) -> Row:
    """After the stop: no process of the trees seen before it, none with the run's marker, no port bound."""
    left = {p.pid for p in alive(before)} | {p.pid for p in leftovers(stack.run_id)}
    ports = bound(stack.ports())
    servers = "PostgreSQL" + (", Redis" if stack.redis is not None else "")
    services = len(stack.deployment.services) + len(stack.emulators) + 1 + (stack.redis is not None)
    observed = (f"{services} services (Airflow's components, {len(stack.emulators)} emulators, {servers}), "
                f"{len(before)} processes in their trees, stopped by pid; SIGKILLed after the grace period: "
                f"{killed or 'none'}; processes left: {len(left)}; ports still bound: {ports or 'none'}")
    return Row("nothing left behind", "every process stopped; none left", observed, not left and not ports)


def run_on(executor: str, args: argparse.Namespace, progress: Progress) -> list[Row]:
    """One deployment on ``executor``: every chosen scenario, then the stop; the rows name the executor."""
    progress(f"executor {executor}: starting the deployment")
    rows: list[Row] = []
    stack = deployment.start(args.waits, args.short_waits, progress, executor)
    sampler = secrets.TriggerSampler(stack).start()
    try:
        for phase in phases(args, lambda: sampler):
            chosen = [s for s in phase if not args.only or s[0] in args.only]
            if chosen:
                rows += _run_phase(stack, chosen, progress)
    finally:
        sampler.stop()
        before = tree(stack.pids())
        killed = deployment.stop(stack)
        progress(f"executor {executor}: stopped everything; SIGKILLed: {killed or 'nothing'}")
        rows.append(_cleanup_row(stack, before, killed))
        if args.keep:
            progress(f"kept {stack.home}")
        else:
            deployment.remove(stack)
    return [dataclasses.replace(row, executor=executor) for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--executor", choices=[*EXECUTORS, "both"], default="both",
                        help="run on LocalExecutor, on CeleryExecutor (Redis, two Celery workers), or both "
                             "one after the other (default)")
    parser.add_argument("--waits", type=int, default=200, help="concurrent deferred waits (default 200)")
    parser.add_argument("--short-waits", type=int, default=10, help="of which with a short timeout (default 10)")
    parser.add_argument("--only", action="append", default=[], help="run only this scenario (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the run's home directory")
    args = parser.parse_args(argv)
    progress = Progress()
    rows: list[Row] = []
    took: dict[str, float] = {}
    for executor in list(EXECUTORS) if args.executor == "both" else [args.executor]:
        started = time.monotonic()
        rows += run_on(executor, args, progress)
        took[executor] = time.monotonic() - started
    timings = ", ".join(f"{name} {int(s) // 60} min {int(s) % 60} s" for name, s in took.items())
    report = table(rows) + f"\n\nWall time by executor (start to stop): {timings}"
    print(report)
    (ARTIFACTS / "reliability").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "reliability" / "latest.md").write_text(report + "\n")
    return 0 if all(r.holds for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
