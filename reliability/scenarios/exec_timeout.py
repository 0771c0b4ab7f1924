"""``execution-timeout``: a deferred wait ends at the task's ``execution_timeout``, not at its longer ``timeout``.

Airflow does not enforce ``execution_timeout`` while a task is deferred (apache/airflow#69734), so
the operator's wait does: its deadline is the sooner of the two, set before it defers. The create
waits on an emulator where nothing boots unless the clock is advanced, which no one does here.

The try's start and end come from the REST API. The wait's end is its trigger's ``Trigger fired
event`` line: it must come at ``execution_timeout`` from the try's start, within one poll
interval. The try ends when the resumed task has failed, which adds Airflow's resume (the
scheduler, the executor, a worker starting the task again): 1 to 9 s on two busy cores, so the
try's whole length is held to ``execution_timeout`` plus one poll interval plus
:data:`RESUME_ALLOWANCE_S`, far below ``timeout``. The task must fail naming ``execution_timeout``.
"""

from __future__ import annotations

from datetime import datetime

from reliability.airflow import log_records
from reliability.dags import (
    EXEC_TIMEOUT_CONN,
    EXEC_TIMEOUT_DAG_ID,
    EXEC_TIMEOUT_NAME,
    EXEC_TIMEOUT_POLL_S,
    EXEC_TIMEOUT_S,
    EXEC_TIMEOUT_WAIT_TIMEOUT_S,
)
from reliability.events import FIRED, fired_events, task_folder
from reliability.report import Row
from reliability.scenarios.common import failure_message, named, status_text
from reliability.stack import Stack

RUN = "exec-timeout"
RUN_TIMEOUT_S = 300.0
RESUME_ALLOWANCE_S = 30.0
EMULATOR = EXEC_TIMEOUT_CONN.removeprefix("puddle_")


def run(stack: Stack) -> list[Row]:
    dep, dag_id = stack.deployment, EXEC_TIMEOUT_DAG_ID
    stack.expect(EMULATOR, {EXEC_TIMEOUT_NAME}, terminated=False)
    dep.api.trigger(dag_id, RUN)
    final = dep.api.wait_for_run(dag_id, RUN, RUN_TIMEOUT_S, lambda: dep.diagnostics(dag_id, RUN))
    body = dep.api.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{RUN}/taskInstances/create/tries")
    (attempt,) = body["task_instances"]
    began = datetime.fromisoformat(attempt["start_date"])
    took = (datetime.fromisoformat(attempt["end_date"]) - began).total_seconds()
    fired = [datetime.fromisoformat(str(r["timestamp"]).replace("Z", "+00:00"))
             for path in task_folder(dep.home, dag_id, RUN, "create", -1).glob("attempt=1.log.trigger.*.log")
             for r in log_records(path) if r.get("event") == FIRED and r.get("timestamp")]
    # the event's own line; if Airflow wrote it to the triggerer's output instead, the try's end stands in
    wait_end = (fired[0] - began).total_seconds() if fired else took
    message = failure_message(dep, dag_id, RUN, "create")
    deferrals = sum(f.events for key, f in fired_events(dep.home).items() if key[:3] == (dag_id, RUN, "create"))
    systems = named(stack, EMULATOR, EXEC_TIMEOUT_NAME)
    observed = (f"execution_timeout {EXEC_TIMEOUT_S}s, timeout {EXEC_TIMEOUT_WAIT_TIMEOUT_S}s, poll "
                f"{EXEC_TIMEOUT_POLL_S}s: the try ran {took:.1f}s (start to end over REST, "
                f"{took - EXEC_TIMEOUT_S:+.1f}s; the wait's trigger fired at {wait_end:.1f}s"
                f"{'' if fired else ' (no event line: the try end)'}, the rest is the resume); "
                f"{deferrals} trigger event(s); ended {attempt['state']} with "
                f"{message[:200]!r}; system {', '.join(status_text(s['status']) for s in systems)}")
    holds = (final["state"] == "failed" and attempt["state"] == "failed" and deferrals == 1
             and abs(wait_end - EXEC_TIMEOUT_S) <= EXEC_TIMEOUT_POLL_S
             and wait_end <= took <= EXEC_TIMEOUT_S + EXEC_TIMEOUT_POLL_S + RESUME_ALLOWANCE_S
             and message.startswith("AirflowTaskTimeout") and "execution_timeout" in message)
    return [Row("execution-timeout: a deferred wait with execution_timeout shorter than timeout",
                f"the wait ends at execution_timeout ±1 poll interval ({EXEC_TIMEOUT_S}±{EXEC_TIMEOUT_POLL_S}s from "
                f"the try's start), the try soon after (<= +{EXEC_TIMEOUT_POLL_S + RESUME_ALLOWANCE_S:.0f}s, "
                f"not at timeout); fails naming execution_timeout", observed, holds)]
