"""``make reliability``: start the deployment, run the scenarios, print one table and ``N/M scenarios hold``.

Phases run one after another; the scenarios of a phase run side by side (each on emulators of
its own). Progress goes to stderr; the table to stdout and to ``artifacts/reliability/latest.md``.
Exits 0 only when every scenario holds. ``--keep`` keeps the run's home (logs, databases).
"""

from __future__ import annotations

import argparse
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
from reliability.scenarios import accounting, adopt, faults, idle, waits

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

Scenario = tuple[str, str, Callable[[deployment.Stack], list[Row]]]


def phases(args: argparse.Namespace, sampler: Callable[[], secrets.TriggerSampler]) -> list[list[Scenario]]:
    """The scenarios, phase by phase: (name, what it expects if it cannot finish, run)."""
    return [
        [("waits", "every wait ends exactly once, on its deadline; the survivor picks up the orphans",
          lambda s: waits.run(s, args.waits, args.short_waits))],
        [("faults", "each fault survived", faults.run),
         ("adopt", "a cleared create adopts its system", adopt.run),
         ("idle", "exactly the idle systems stopped", idle.run)],
        [("ui", "the browser checks hold", lambda s: ui.run(s, ARTIFACTS)),
         ("ui-puddle-page", "the Puddle page checks hold", lambda s: ui_page.run(s, ARTIFACTS))],
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
    services = len(stack.deployment.services) + len(stack.emulators) + 1
    observed = (f"{services} services (Airflow's components, {len(stack.emulators)} emulators, PostgreSQL), "
                f"{len(before)} processes in their trees, stopped by pid; SIGKILLed after the grace period: "
                f"{killed or 'none'}; processes left: {len(left)}; ports still bound: {ports or 'none'}")
    return Row("nothing left behind", "every process stopped; none left", observed, not left and not ports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--waits", type=int, default=200, help="concurrent deferred waits (default 200)")
    parser.add_argument("--short-waits", type=int, default=10, help="of which with a short timeout (default 10)")
    parser.add_argument("--only", action="append", default=[], help="run only this scenario (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the run's home directory")
    args = parser.parse_args(argv)
    progress = Progress()
    rows: list[Row] = []
    stack = deployment.start(args.waits, args.short_waits, progress)
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
        progress(f"stopped everything; SIGKILLed: {killed or 'nothing'}")
        rows.append(_cleanup_row(stack, before, killed))
        if args.keep:
            progress(f"kept {stack.home}")
        else:
            deployment.remove(stack)
    report = table(rows)
    print(report)
    (ARTIFACTS / "reliability").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "reliability" / "latest.md").write_text(report + "\n")
    return 0 if all(r.holds for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
