"""A worker SIGKILLed mid-wait; the retry reconnects through Airflow's task state store (issue 20).

Both DAGs wait in the worker (``deferrable=False``), so the worker holds during the wait, on
emulators whose clock moves only when the scenario advances it: nothing settles by itself
before the retry runs.

* ``durable-create``: once the emulator holds the system (the create RPC was answered), the
  hook SIGKILLs the worker. The retry must reconnect by id (its log says so), create no second
  system, and still own it: the scenario then fails the system at the emulator, and the retry's
  failed wait must terminate it (``terminate_on_failure``).
* ``durable-restart``: once the emulator answered the RestartSystem call and the worker narrates
  its wait (the operator writes its record between the two), the hook SIGKILLs the worker. The
  retry must wait for that restart, not ask for another: the emulator answers RestartSystem
  exactly once. (A kill between the answer and the record leaves the retry to find the system by
  name: it waits on a system still rebooting, but would restart one whose restart had ended.)
"""

from __future__ import annotations

import json
from typing import Any

from airflow_puddle.client.models import System, TagData
from reliability.dags import (
    DAI,
    DURABLE_CREATE_CONN,
    DURABLE_CREATE_DAG_ID,
    DURABLE_CREATE_NAME,
    DURABLE_RESTART_CONN,
    DURABLE_RESTART_DAG_ID,
    DURABLE_RESTART_NAME,
)
from reliability.procs import wait_until
from reliability.report import Row
from reliability.scenarios.common import (
    STARTED,
    TERMINATED,
    advance_until,
    count_events,
    failure_message,
    named,
    status_text,
    task_records,
    tries,
    wait_for_state,
    wait_for_try,
)
from reliability.stack import Stack

RUN = "durable"
CREATE_EMULATOR = DURABLE_CREATE_CONN.removeprefix("puddle_")
RESTART_EMULATOR = DURABLE_RESTART_CONN.removeprefix("puddle_")
# LocalExecutor learns of the crash from the missed heartbeat (60 s, stack.py) and its check; then the retry
RECOVERY_TIMEOUT_S = 300.0
RECONNECTED = "reconnecting to it by id"


def _kill_when(stack: Stack, dag_id: str, task_id: str, what: str, ready: Any) -> str:
    """Once ``task_id`` runs and ``ready()`` holds at the emulator, SIGKILL its worker; what was killed."""
    dep = stack.deployment
    running = wait_for_state(dep, dag_id, RUN, task_id, "running")
    wait_until(what, ready, 120.0, 0.2, lambda: dep.diagnostics(dag_id, RUN))
    killed = stack.kill_task_worker(str(running["id"]))
    stack.progress(f"{dag_id}: SIGKILLed {killed}")
    if not killed.gone:
        raise RuntimeError(f"the worker of {dag_id}.{task_id} outlived the SIGKILL: {killed}")
    return f"SIGKILLed under {killed.service} ({what})"


def _reconnected(stack: Stack, dag_id: str, task_id: str) -> list[str]:
    """The task's log lines that say a retry reconnected by id."""
    events = (str(r.get("event", "")) for r in task_records(stack.deployment, dag_id, RUN, task_id))
    return [e for e in events if RECONNECTED in e]


def _waiting(stack: Stack, dag_id: str, task_id: str) -> bool | None:
    """Whether try 1 narrates its wait: the record of what it asked for is written by then."""
    events = (str(r.get("event", "")) for r in task_records(stack.deployment, dag_id, RUN, task_id))
    return True if any("; waiting for started" in e for e in events) else None


def _retry_reconnected(stack: Stack, dag_id: str, task_id: str) -> list[str]:
    """Wait until try 2 runs and has logged its reconnection."""
    dep = stack.deployment
    wait_for_try(dep, dag_id, RUN, task_id, 2, RECOVERY_TIMEOUT_S)
    return wait_until(f"{dag_id} try 2 to reconnect", lambda: _reconnected(stack, dag_id, task_id) or None,
                      120.0, 0.5, lambda: dep.diagnostics(dag_id, RUN))


def create_row(stack: Stack) -> list[Row]:
    dep, dag_id, emulator = stack.deployment, DURABLE_CREATE_DAG_ID, CREATE_EMULATOR
    stack.expect(emulator, {DURABLE_CREATE_NAME}, terminated=True)
    dep.api.trigger(dag_id, RUN)
    killed = _kill_when(stack, dag_id, "create", "the emulator holds the system",
                        lambda: named(stack, emulator, DURABLE_CREATE_NAME) or None)
    lines = _retry_reconnected(stack, dag_id, "create")
    system = named(stack, emulator, DURABLE_CREATE_NAME)[0]  # a second one would show in the count below
    # The forced failure: the system fails at its next step, while the retry waits on it.
    admin = stack.emulators[emulator].admin()
    try:
        admin.fail_next_transition(system["id"])
        advance_until(stack, emulator, system["id"], {System.SYSTEM_STATUS_FAILED.code,
                                                      System.SYSTEM_STATUS_TERMINATING.code, TERMINATED})
        final = dep.api.wait_for_run(dag_id, RUN, RECOVERY_TIMEOUT_S, lambda: dep.diagnostics(dag_id, RUN))
        advance_until(stack, emulator, system["id"], {TERMINATED})  # the terminate the retry asked for ends
        creates = admin.call_counts().get("CreateSystem", 0)
    finally:
        admin.close()
    systems = named(stack, emulator, DURABLE_CREATE_NAME)
    states = tries(dep, dag_id, RUN, "create")
    by_id = [line for line in lines if system["id"] in line]
    terminated_by_retry = count_events(dep, dag_id, RUN, "create",
                                       lambda e: e.startswith(f"Terminating system {system['id']}"))
    observed = (f"{killed}; tries {states}; try 2 logged {len(by_id)} reconnection(s) by id {system['id']} "
                f"(e.g. {lines[0][:160]!r}); {len(systems)} system(s) named {DURABLE_CREATE_NAME}, CreateSystem "
                f"answered {creates}x; failed at the emulator; try 2 failed with "
                f"{failure_message(dep, dag_id, RUN, 'create')[:120]!r}, logged its terminate {terminated_by_retry}x; "
                f"system {status_text(systems[-1]['status'])}")
    holds = (bool(by_id) and len(systems) == 1 and creates == 1 and terminated_by_retry >= 1
             and systems[0]["status"] == TERMINATED and final["state"] == "failed"
             and states.get(1) in ("failed", "up_for_retry") and states.get(2) == "failed")
    return [Row("durable-create: worker SIGKILLed after the create RPC, mid-wait",
                "the retry reconnects by id; 0 duplicate systems; a forced failure of the retry terminates it "
                "(still owned)", observed, holds)]


def restart_row(stack: Stack) -> list[Row]:
    dep, dag_id, emulator = stack.deployment, DURABLE_RESTART_DAG_ID, RESTART_EMULATOR
    stack.expect(emulator, {DURABLE_RESTART_NAME}, terminated=False)
    system_id = _started_system(stack, emulator, DURABLE_RESTART_NAME)
    admin = stack.emulators[emulator].admin()
    try:
        dep.api.trigger(dag_id, RUN)
        killed = _kill_when(stack, dag_id, "restart", "the emulator answered RestartSystem and try 1 waits",
                            lambda: admin.call_counts().get("RestartSystem") and _waiting(stack, dag_id, "restart"))
        lines = _retry_reconnected(stack, dag_id, "restart")
        advance_until(stack, emulator, system_id, {STARTED})  # the restart try 1 asked for ends, not before
        final = dep.api.wait_for_run(dag_id, RUN, RECOVERY_TIMEOUT_S, lambda: dep.diagnostics(dag_id, RUN))
        restarts = admin.call_counts().get("RestartSystem", 0)
    finally:
        admin.close()
    (system,) = named(stack, emulator, DURABLE_RESTART_NAME)
    states = tries(dep, dag_id, RUN, "restart")
    asked = count_events(dep, dag_id, RUN, "restart", lambda e: e.startswith("Asked Puddle to restart system"))
    observed = (f"{killed}; tries {states}; try 2: {lines[0][:160]!r}; RestartSystem answered {restarts}x at the "
                f"emulator; 'Asked Puddle to restart' logged {asked}x; system {status_text(system['status'])}; "
                f"run {final['state']}")
    holds = (restarts == 1 and asked == 1 and final["state"] == "success" and system["status"] == STARTED
             and states.get(1) in ("failed", "up_for_retry") and states.get(2) == "success")
    return [Row("durable-restart: worker SIGKILLed during a restart's wait",
                "the retry waits for the restart already asked for: restarted exactly once (counted at the emulator)",
                observed, holds)]


def _started_system(stack: Stack, emulator: str, name: str) -> str:
    """Create a started system on a held emulator (its clock advanced through the boot); its id."""
    auth, client = stack.emulators[emulator].client()
    try:
        dai = json.loads(DAI)
        system = client.create(name, product=dai["product"], version=dai["version"],
                               instance_type_name=dai["instance_type_name"], idle_interval=240,
                               tags=[TagData(label, value) for label, value in dai["tags"].items()])
    finally:
        auth.close()
    advance_until(stack, emulator, system.id, {STARTED})
    return system.id
