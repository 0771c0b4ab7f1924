"""A succeeded create, cleared through the REST API and run again, adopts the system it made."""

from __future__ import annotations

import json

from reliability.dags import ADOPT_CONN, ADOPT_DAG_ID, ADOPT_NAME
from reliability.procs import wait_until
from reliability.report import Row
from reliability.scenarios.common import STARTED, named, ti
from reliability.stack import Stack

RUN = "adopt"
TIMEOUT_S = 300.0
EMULATOR = ADOPT_CONN.removeprefix("puddle_")


def _pushed_id(stack: Stack) -> str:
    """The system id the create task returned (its XCom, read over REST)."""
    body = stack.deployment.api.api(
        "GET", f"/api/v2/dags/{ADOPT_DAG_ID}/dagRuns/{RUN}/taskInstances/create/xcomEntries/return_value")
    value = body["value"]
    return str((json.loads(value) if isinstance(value, str) else value)["id"])


def run(stack: Stack) -> list[Row]:
    dep = stack.deployment
    stack.expect(EMULATOR, {ADOPT_NAME}, terminated=False)
    dep.api.trigger(ADOPT_DAG_ID, RUN)
    first_run = dep.api.wait_for_run(ADOPT_DAG_ID, RUN, TIMEOUT_S, lambda: dep.diagnostics(ADOPT_DAG_ID, RUN))
    first = ti(dep, ADOPT_DAG_ID, RUN, "create")
    assert first is not None
    first_id, first_try = _pushed_id(stack), int(first["try_number"])
    dep.api.clear(ADOPT_DAG_ID, RUN, ["create"])

    def rerun_done() -> dict[str, object] | None:
        again = ti(dep, ADOPT_DAG_ID, RUN, "create")
        if again is None or int(again["try_number"]) <= first_try:
            return None
        return again if again["state"] in ("success", "failed") else None

    second = wait_until("the cleared create to run again", rerun_done, TIMEOUT_S, 1.0,
                        lambda: dep.diagnostics(ADOPT_DAG_ID, RUN))
    second_id = _pushed_id(stack)
    systems = named(stack, EMULATOR, ADOPT_NAME)
    adopted = any("adopting it" in line for line in _lines(stack))
    observed = (f"first run {first_run['state']} (try {first_try}) made {first_id}; cleared via REST; "
                f"try {second['try_number']} {second['state']} with {second_id}; "
                f"{len(systems)} system(s) named {ADOPT_NAME}; adoption logged: {adopted}")
    holds = (first_run["state"] == "success" and second["state"] == "success" and first_id == second_id
             and len(systems) == 1 and systems[0]["status"] == STARTED)
    return [Row("succeeded create cleared via REST and re-run", "adopts the same system; 1 system", observed, holds)]


def _lines(stack: Stack) -> list[str]:
    from reliability.scenarios.common import task_records

    return [str(r.get("event", "")) for r in task_records(stack.deployment, ADOPT_DAG_ID, RUN, "create")]
