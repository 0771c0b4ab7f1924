"""``make reliability``: start the deployment, run the scenarios, print one table and ``N/M scenarios hold``.

Progress goes to stderr; the table to stdout and to ``artifacts/reliability/latest.md``. Exits 0
only when every scenario holds. ``--keep`` keeps the run's home (logs, databases) for a look.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from reliability import stack as deployment
from reliability.report import Progress, Row, failed_row, table
from reliability.scenarios import waits

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

Scenario = tuple[str, str, Callable[[deployment.Stack], list[Row]]]


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    """(name, expected-if-it-cannot-finish, run) in the order they run."""
    return [
        ("waits", "every wait ends exactly once, on its deadline; the survivor picks up the orphans",
         lambda s: waits.run(s, args.waits, args.short_waits)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--waits", type=int, default=200, help="concurrent deferred waits (default 200)")
    parser.add_argument("--short-waits", type=int, default=10, help="of which with a short timeout (default 10)")
    parser.add_argument("--only", action="append", default=[], help="run only this scenario (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the run's home directory")
    args = parser.parse_args(argv)
    progress = Progress()
    chosen = [s for s in scenarios(args) if not args.only or s[0] in args.only]
    rows: list[Row] = []
    stack = deployment.start(args.waits, args.short_waits, progress)
    try:
        for name, expected, run in chosen:
            progress(f"scenario {name}")
            started = time.monotonic()
            try:
                rows += run(stack)
            except Exception as err:  # a scenario that breaks is a row that does not hold, not the end of the run
                rows.append(failed_row(name, expected, err))
                progress(f"scenario {name} did not finish: {err}")
            progress(f"scenario {name} took {time.monotonic() - started:.0f}s")
    finally:
        killed = deployment.stop(stack)
        progress(f"stopped everything; SIGKILLed: {killed or 'nothing'}")
        if args.keep:
            progress(f"kept {stack.home}")
        else:
            deployment.remove(stack)
    report = table(rows)
    print(report)
    (ARTIFACTS / "reliability").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "reliability" / "latest.md").write_text(report + "\n")
    return 0 if rows and all(r.holds for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
