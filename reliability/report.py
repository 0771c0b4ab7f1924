"""The report: one row per scenario (expected, observed, holds), printed as one table."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One scenario's verdict; ``observed`` states the figures, ``holds`` whether they meet ``expected``;
    ``executor`` the executor the run used (``local`` or ``celery``)."""

    scenario: str
    expected: str
    observed: str
    holds: bool
    executor: str = ""


def failed_row(scenario: str, expected: str, error: BaseException) -> Row:
    """The row of a scenario that could not finish: what went wrong, first line only."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return Row(scenario, expected, f"did not finish: {type(error).__name__}: {first}"[:400], False)


def table(rows: list[Row]) -> str:
    """A Markdown table of the rows, and the last line ``N/M scenarios hold``."""
    lines = ["| executor | scenario | expected | observed | holds |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        cells = [row.executor, row.scenario, row.expected, row.observed, "yes" if row.holds else "**NO**"]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |")
    lines += ["", f"{sum(r.holds for r in rows)}/{len(rows)} scenarios hold"]
    return "\n".join(lines)


class Progress:
    """Progress lines on stderr, with the seconds since the run began (stdout keeps the table)."""

    def __init__(self) -> None:
        self._started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self._started:6.0f}s] {message}", file=sys.stderr, flush=True)
