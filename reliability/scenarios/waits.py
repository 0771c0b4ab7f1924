"""200 deferred waits across two triggerers; one triggerer SIGKILLed mid-wait.

``rel_waits`` defers N-10 creates on an emulator whose systems boot only when the scenario moves
its clock; then ``rel_waits_short`` defers 10 more whose timeout ends soon after the kill. The
triggerer holding the most short waits is SIGKILLed. Observed:

* every wait ends exactly once: one ``Trigger fired event`` over all of a task's trigger logs
  (and the triggerers' own output, where Airflow sometimes writes a trigger's last lines);
* the survivor picks up the orphans: each orphan's trigger log exists for both triggerer jobs;
* the short waits end on their original deadline (taken from the trigger row before the kill):
  a deadline restarted at pickup would end them a whole timeout later.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reliability.dags import SHORT_DAG_ID, SHORT_TIMEOUT_S, WAITS_DAG_ID
from reliability.events import Fired, fired_events, task_folder
from reliability.procs import wait_until
from reliability.report import Row
from reliability.stack import EMULATORS, Stack

RUN = "waits"
DEFER_TIMEOUT_S = 600.0
PICKUP_TIMEOUT_S = 180.0
LATE_TOLERANCE_S = 30.0  # a deadline is checked every poll (2 s); resuming the task takes the rest


@dataclass(frozen=True)
class Wait:
    """A deferred wait as the trigger table held it before the kill."""

    dag_id: str
    map_index: int
    trigger_id: int
    triggerer_id: int
    deadline: float


def _deferred(stack: Stack, dag_id: str) -> list[Wait]:
    rows = stack.deployment.db.query(
        "SELECT ti.map_index, t.id, t.triggerer_id, t.kwargs FROM task_instance ti JOIN trigger t "
        "ON t.id = ti.trigger_id WHERE ti.dag_id = :dag AND ti.run_id = :run AND ti.state = 'deferred'",
        dag=dag_id, run=RUN)
    waits = []
    for map_index, trigger_id, triggerer_id, kwargs in rows:
        if triggerer_id is None:
            continue
        stored = json.loads(stack.deployment.decrypt(kwargs))
        waits.append(Wait(dag_id, int(map_index), int(trigger_id), int(triggerer_id), float(stored["deadline"])))
    return waits


def _all_deferred(stack: Stack, dag_id: str, count: int) -> list[Wait] | None:
    waits = _deferred(stack, dag_id)
    if len(waits) > count:
        raise RuntimeError(f"{len(waits)} waits of {dag_id} deferred, expected {count}")
    return waits if len(waits) == count else None


def _folder(stack: Stack, dag_id: str, map_index: int) -> Path:
    return task_folder(stack.deployment.home, dag_id, RUN, "create", map_index)


Tasks = dict[tuple[str, int], Fired]
"""Each ``create`` task of the run (dag_id, map_index): its events over all tries and triggerers."""


def _tasks(stack: Stack) -> Tasks:
    tasks: Tasks = defaultdict(Fired)
    for (dag_id, run_id, task_id, map_index, _), fired in fired_events(stack.deployment.home).items():
        if run_id == RUN and task_id == "create":
            task = tasks[(dag_id, map_index)]
            task.events += fired.events
            task.jobs |= fired.jobs
            task.in_triggerer_output += fired.in_triggerer_output
    return tasks


def _ended_by(stack: Stack, tasks: Tasks, dag_id: str, map_index: int) -> str:
    """What ended a wait: the trigger's own event, Airflow's trigger timeout (the TI's absolute
    ``trigger_timeout``, set from the same deadline), or neither."""
    if tasks[(dag_id, map_index)].events:
        return "event"
    text = "\n".join(p.read_text(errors="replace") for p in _folder(stack, dag_id, map_index).glob("*.log"))
    return "airflow-timeout" if "TaskDeferralTimeout" in text else "nothing"


def _ended(tis: list[dict[str, Any]]) -> bool:
    return all(ti["state"] in ("success", "failed", "upstream_failed") for ti in tis)


def run(stack: Stack, waits: int, short_waits: int) -> list[Row]:
    """Run the scenario; one row for the waits, one for the short deadlines, one for the pickup."""
    dep, say = stack.deployment, stack.progress
    long_waits = waits - short_waits
    stack.expect("waits", {f"w-{n:03d}" for n in range(long_waits)} | {f"s-{n:03d}" for n in range(short_waits)},
                 terminated=False)
    started = time.monotonic()
    dep.api.trigger(WAITS_DAG_ID, RUN)
    wait_until(f"{long_waits} waits deferred and assigned", lambda: _all_deferred(stack, WAITS_DAG_ID, long_waits),
               DEFER_TIMEOUT_S, 2.0, lambda: str(dep.api.states(WAITS_DAG_ID, RUN)))
    say(f"{long_waits} waits deferred in {time.monotonic() - started:.0f}s")
    dep.api.trigger(SHORT_DAG_ID, RUN)
    wait_until(f"{short_waits} short waits deferred", lambda: _all_deferred(stack, SHORT_DAG_ID, short_waits),
               DEFER_TIMEOUT_S, 1.0, lambda: str(dep.api.states(SHORT_DAG_ID, RUN)))
    before = _deferred(stack, WAITS_DAG_ID) + _deferred(stack, SHORT_DAG_ID)
    split = {name: sum(w.triggerer_id == job for w in before) for name, job in dep.triggerer_jobs.items()}
    shorts = {name: sum(w.triggerer_id == job and w.dag_id == SHORT_DAG_ID for w in before)
              for name, job in dep.triggerer_jobs.items()}
    victim = max(dep.triggerer_jobs, key=lambda n: (shorts[n], split[n]))
    victim_job = dep.triggerer_jobs[victim]
    survivor_job = next(job for name, job in dep.triggerer_jobs.items() if name != victim)
    orphans = [w for w in before if w.triggerer_id == victim_job]
    say(f"{len(before)} waits deferred, per triggerer {split} (short ones {shorts}); SIGKILL {victim}")
    dep.kill(victim)
    killed_at = time.time()

    orphan_ids = {w.trigger_id for w in orphans}

    def picked_up() -> bool | None:
        rows = dep.db.query("SELECT id, triggerer_id FROM trigger")
        held = {row[0]: row[1] for row in rows if row[0] in orphan_ids}
        return True if all(job == survivor_job for job in held.values()) else None

    wait_until("the survivor to take the orphaned triggers", picked_up, PICKUP_TIMEOUT_S, 1.0)
    picked_at = time.time()
    say(f"{len(orphans)} orphans on the survivor {picked_at - killed_at:.0f}s after the kill")

    short_deadline = max(w.deadline for w in before if w.dag_id == SHORT_DAG_ID)
    short_tis = dep.wait_for_ti_states(SHORT_DAG_ID, RUN, _ended, "the short waits to end",
                                       max(60.0, short_deadline - time.time() + 120))
    step, _ = EMULATORS["waits"]
    admin = stack.emulators["waits"].admin()
    try:
        admin.advance_clock(3 * step + 60)  # every remaining system boots now
    finally:
        admin.close()
    long_tis = dep.wait_for_ti_states(WAITS_DAG_ID, RUN, _ended, "the waits to end", 900.0)
    say(f"all waits ended {time.monotonic() - started:.0f}s after the first trigger")
    tasks = _tasks(stack)
    return [
        _once_row(stack, tasks, long_tis, short_tis, split, victim),
        _deadline_row(stack, tasks, before, short_tis, orphans, picked_at),
        _pickup_row(tasks, orphans, victim_job, survivor_job, picked_at - killed_at),
    ]


def _once_row(stack: Stack, tasks: Tasks, long_tis: list[dict[str, Any]], short_tis: list[dict[str, Any]],
              split: dict[str, int], victim: str) -> Row:
    """Each wait ended once: one event fired, or (for a timeout) none and Airflow's trigger timeout ended it."""
    ends = []
    for ti in long_tis + short_tis:
        fired = tasks[(ti["dag_id"], ti["map_index"])].events
        ended_by = _ended_by(stack, tasks, ti["dag_id"], ti["map_index"])
        ends.append(fired == 1 or (fired == 0 and ended_by == "airflow-timeout"))
    once = sum(ends)
    elsewhere = sum(task.in_triggerer_output for task in tasks.values())
    succeeded = sum(ti["state"] == "success" for ti in long_tis)
    names = [s["name"] for s in stack.systems("waits")]
    duplicates = len(names) - len(set(names))
    total = len(long_tis) + len(short_tis)
    observed = (f"{total} waits ({', '.join(f'{n} on {k}' for k, n in split.items())}), {victim} SIGKILLed; "
                f"{once}/{total} ended exactly once ({elsewhere} event lines in a triggerer's own output: Airflow had "
                f"closed the trigger's log file); {succeeded}/{len(long_tis)} long waits succeeded; "
                f"{len(names)} systems, {duplicates} duplicate names")
    holds = once == total and succeeded == len(long_tis) and duplicates == 0 and len(names) == total
    return Row(f"{total} deferred waits, two triggerers, one SIGKILLed",
               "every wait ends exactly once; one system per wait", observed, holds)


def _deadline_row(stack: Stack, tasks: Tasks, before: list[Wait], short_tis: list[dict[str, Any]], orphans: list[Wait],
                  picked_at: float) -> Row:
    deadlines = {w.map_index: w.deadline for w in before if w.dag_id == SHORT_DAG_ID}
    orphaned = {w.map_index for w in orphans if w.dag_id == SHORT_DAG_ID}
    late = []
    by: dict[str, int] = {}
    orphans_by_trigger = 0
    for ti in short_tis:
        ended = datetime.fromisoformat(ti["end_date"]).timestamp()
        late.append(ended - deadlines[ti["map_index"]])
        how = _ended_by(stack, tasks, SHORT_DAG_ID, ti["map_index"]) if ti["state"] == "failed" else str(ti["state"])
        by[how] = by.get(how, 0) + 1
        orphans_by_trigger += how == "event" and ti["map_index"] in orphaned and deadlines[ti["map_index"]] > picked_at
    timed_out = by.get("event", 0) + by.get("airflow-timeout", 0)
    restarted = SHORT_TIMEOUT_S - max(0.0, max(deadlines.values()) - picked_at)
    observed = (f"{len(short_tis)} waits of {SHORT_TIMEOUT_S}s, {len(orphaned)} orphaned; ended by {by}; "
                f"{orphans_by_trigger} orphans timed out by the survivor's trigger after the pickup; ended "
                f"{min(late):+.0f}s..{max(late):+.0f}s from the original deadline (restarted: >= +{restarted:.0f}s)")
    holds = (timed_out == len(short_tis) and orphans_by_trigger > 0
             and all(-1.0 <= x <= LATE_TOLERANCE_S for x in late))
    return Row("short-timeout waits across the kill",
               f"each ends on its original deadline (0..+{LATE_TOLERANCE_S:.0f}s)", observed, holds)


def _pickup_row(tasks: Tasks, orphans: list[Wait], victim_job: int, survivor_job: int, pickup_s: float) -> Row:
    """Orphans: triggers the killed triggerer held. Each must run on the survivor (its trigger log there)."""
    jobs = [tasks[(w.dag_id, w.map_index)].jobs for w in orphans]
    on_survivor = sum(survivor_job in j for j in jobs)
    had_started = sum(victim_job in j for j in jobs)
    observed = (f"{len(orphans)} triggers held by the killed job {victim_job} ({had_started} had started there); "
                f"{on_survivor} ran on the survivor job {survivor_job}; all reassigned {pickup_s:.0f}s after the kill")
    return Row("survivor picks up the orphans", "every orphan resumes on the other triggerer", observed,
               on_survivor == len(orphans) and len(orphans) > 0)
