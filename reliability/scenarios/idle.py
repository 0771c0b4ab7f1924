"""The nightly stop-idle example DAG over 50 systems: exactly the idle ones end stopped.

On the ``puddle_default`` emulator (30 s steps) the scenario makes, through the client:
20 idle systems (idle deadline 20 min away, within the DAG's 30 min margin), 10 training
(``Purpose=training``: an experiment still running), 10 not due (240 min), 5 already stopped
and 5 already stopping when the DAG starts. The emulator's clock is moved on so they boot at once.
"""

from __future__ import annotations

import json

from airflow_puddle.client.models import TagData
from reliability.dags import STOP_IDLE_DAG_ID
from reliability.report import Row
from reliability.scenarios.common import STARTED, STOPPED, STOPPING, status_text, ti
from reliability.stack import EMULATORS, Stack

RUN = "stop-idle"
EMULATOR = "default"
TIMEOUT_S = 400.0
GROUPS = {  # name prefix -> (how many, idle interval in minutes, extra tags)
    "idle": (20, 20, ()),
    "training": (10, 20, (("Purpose", "training"),)),
    "notdue": (10, 240, ()),
    "stopped": (5, 20, ()),
    "stopping": (5, 20, ()),
}


def _make(stack: Stack) -> dict[str, dict[str, str]]:
    """Create the 50 systems and bring each group to its state; returns {group: {id: name}}."""
    emulator = stack.emulators[EMULATOR]
    step, _ = EMULATORS[EMULATOR]
    auth, systems = emulator.client()
    admin = emulator.admin()
    made: dict[str, dict[str, str]] = {}
    try:
        for group, (count, idle_min, tags) in GROUPS.items():
            made[group] = {}
            for n in range(count):
                system = systems.create(f"idle-{group}-{n:02d}", product="dai", version="1.11.1",
                                        instance_type_name="m5.2xlarge", idle_interval=idle_min,
                                        tags=[TagData("Team", "ml"), *(TagData(k, v) for k, v in tags)])
                made[group][system.id] = system.name
        admin.advance_clock(3 * step + 1)  # every create's three steps
        for system_id in made["stopped"]:
            systems.stop(system_id)
        admin.advance_clock(step + 1)  # their stop step
        for system_id in made["stopping"]:
            systems.stop(system_id)  # still Stopping for one step (30 s of wall time) when the DAG looks
        states = {s.id: s.status for s in systems.list()}
        want = {"idle": STARTED, "training": STARTED, "notdue": STARTED, "stopped": STOPPED, "stopping": STOPPING}
        wrong = [f"{made[g][i]} is {status_text(states.get(i, -1))}" for g in made for i in made[g]
                 if states.get(i) != want[g]]
        if wrong:
            raise RuntimeError(f"set-up went wrong: {wrong[:5]}")
    finally:
        admin.close()
        auth.close()
    return made


def run(stack: Stack) -> list[Row]:
    dep = stack.deployment
    made = _make(stack)
    stack.expect(EMULATOR, {name for group in made.values() for name in group.values()}, terminated=False)
    dep.api.trigger(STOP_IDLE_DAG_ID, RUN)
    run_ = dep.api.wait_for_run(STOP_IDLE_DAG_ID, RUN, TIMEOUT_S, lambda: dep.diagnostics(STOP_IDLE_DAG_ID, RUN))
    chosen = dep.api.api("GET", f"/api/v2/dags/{STOP_IDLE_DAG_ID}/dagRuns/{RUN}/taskInstances/find_idle_systems/"
                                "xcomEntries/return_value")["value"]
    chosen = set(json.loads(chosen) if isinstance(chosen, str) else chosen)
    stops = [t for t in dep.api.task_instances(STOP_IDLE_DAG_ID, RUN) if t["task_id"] == "stop_idle_system"]
    final = {s["id"]: s["status"] for s in stack.systems(EMULATOR)}
    by_group = {g: sorted({status_text(final[i]) for i in ids}) for g, ids in made.items()}
    stopped_by_dag = {i for i in chosen if final.get(i) == STOPPED}
    report = ti(dep, STOP_IDLE_DAG_ID, RUN, "report")
    observed = (f"DAG run {run_['state']} (report {report['state'] if report else '?'}); chose {len(chosen)} "
                f"systems, {len(stops)} stop tasks; chosen == the 20 idle: {chosen == set(made['idle'])}; "
                f"{len(stopped_by_dag)} of them stopped; final states by group: {by_group}")
    holds = (run_["state"] == "success" and chosen == set(made["idle"]) and len(stopped_by_dag) == len(chosen)
             and all(final[i] == STARTED for g in ("training", "notdue") for i in made[g])
             and all(final[i] == STOPPED for g in ("stopped", "stopping") for i in made[g]))
    return [Row("nightly stop-idle DAG over 50 systems",
                "exactly the 20 idle are stopped by it; training and not-due stay started", observed, holds)]
