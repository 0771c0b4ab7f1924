"""Each try's ``Trigger fired event`` lines, wherever the triggerer wrote them.

A trigger's log lines reach the triggerer's supervisor on its log socket; the runner reports the
trigger finished on another socket. When the supervisor reads the report first, it closes the
trigger's log file, and the trigger's last lines (``Trigger fired event``, ``trigger completed``)
go to the triggerer's own output instead (Airflow 3.3.2, ``_process_log_messages_from_subprocess``
falls back when the trigger's logger is gone). It happens when many triggers end in one sync, as
when a shared poll sees many systems start at once. The event is delivered either way, so an
event count reads both places and says how many lines were in the triggerer's output.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from reliability.airflow import log_records

FIRED = "Trigger fired event"
TryKey = tuple[str, str, str, int, int]
"""dag_id, run_id, task_id, map_index (-1 unmapped), try number."""

_NAME = re.compile(r"(?P<dag>[\w.-]+)/(?P<run>[^/'\"\s]+)/(?P<task>[\w.-]+)/(?P<map>-?\d+)/(?P<try>\d+) \(ID \d+\)")


@dataclass
class Fired:
    """One try's events: how many, which triggerer jobs had its log file, how many lines only their output shows."""

    events: int = 0
    jobs: set[int] = field(default_factory=set)
    in_triggerer_output: int = 0


def fired_events(airflow_home: Path) -> dict[TryKey, Fired]:
    """Every try that had a trigger log file or an event line, from ``logs/`` and ``components/triggerer-*.log``."""
    tries: dict[TryKey, Fired] = defaultdict(Fired)
    logs = airflow_home / "logs"
    for path in logs.rglob("*.log.trigger.*.log"):
        fired = tries[_key(path.relative_to(logs))]
        fired.jobs.add(int(path.name.rsplit(".", 2)[-2]))
        fired.events += sum(1 for r in log_records(path) if r.get("event") == FIRED)
    for path in (airflow_home / "components").glob("triggerer-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if FIRED in line and (match := _NAME.search(line)):
                fired = tries[(match["dag"], match["run"], match["task"], int(match["map"]), int(match["try"]))]
                fired.events += 1
                fired.in_triggerer_output += 1
    return dict(tries)


def task_folder(airflow_home: Path, dag_id: str, run_id: str, task_id: str, map_index: int) -> Path:
    """Where Airflow's default log template puts a task's logs (``map_index=`` only when mapped)."""
    folder = airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    return folder / f"map_index={map_index}" if map_index >= 0 else folder


def _key(relative: Path) -> TryKey:
    """``dag_id=D/run_id=R/task_id=T[/map_index=M]/attempt=N.log.trigger.J.log`` as a key."""
    parts = dict(part.split("=", 1) for part in relative.parent.parts)
    attempt = relative.name.split(".log.trigger.")[0].split("=", 1)[1]
    return parts["dag_id"], parts["run_id"], parts["task_id"], int(parts.get("map_index", -1)), int(attempt)
