"""A worker SIGKILLed mid-create, through real separate Airflow components: the retry reconnects by id.

The create waits in the worker (``deferrable=False``) on the emulator whose clock the test holds,
so the worker is mid-wait when the reliability harness's hook SIGKILLs it, right after the
emulator answered the create. The scheduler fails the task on its missed heartbeat and Airflow
retries it. The retry must read the task state store's record, reconnect to that system by id,
create no second one, and still own it: failed at the emulator, the system is terminated by the
retry's failed wait (``terminate_on_failure``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_puddle.client import SystemsClient
from airflow_puddle.emulator.server import EmulatorServer
from reliability.airflow import log_records
from reliability.procs import tree, wait_until
from reliability.workers import kill_task_worker
from tests.conftest import Admin
from tests.e2e.deployment import (
    FAILED,
    HELD_STEP_S,
    RETRY_DAG_ID,
    RETRY_SYSTEM_NAME,
    RUN_TIMEOUT_S,
    TERMINATED,
    TERMINATING,
    Stack,
    by_task,
)

pytestmark = pytest.mark.e2e

RECOVERY_TIMEOUT_S = 120.0  # the 15 s heartbeat timeout, its check, the retry's start
RECONNECTED = "reconnecting to it by id (created by this task instance)"


def test_a_create_whose_worker_died_retries_reconnecting_by_id_and_still_owns_its_system(
    stack: Stack, client_for: Callable[[EmulatorServer], SystemsClient]
) -> None:
    af, dag_id, run_id = stack.airflow, RETRY_DAG_ID, "e2e_retry"
    client, admin = client_for(stack.held), Admin(stack.held.address)
    diagnostics = lambda: af.diagnostics(dag_id, run_id)  # noqa: E731
    began = time.monotonic()
    af.api.trigger(dag_id, run_id)

    def running() -> dict[str, Any] | None:
        ti = by_task(af.api.task_instances(dag_id, run_id)).get("create")
        if ti and ti["state"] in ("success", "failed"):
            pytest.fail(f"create ended {ti['state']} before its worker was killed\n{diagnostics()}")
        return ti if ti and ti["state"] == "running" else None

    ti = wait_until("create to run", running, RUN_TIMEOUT_S, 0.2, diagnostics)
    system = wait_until("the emulator to answer the create", lambda: client.find_by_name(RETRY_SYSTEM_NAME),
                        60.0, 0.1, diagnostics)
    killed = kill_task_worker(lambda: tree([s.pid for s in af.services.values() if s.running()]), str(ti["id"]),
                              {name: s.pid for name, s in af.services.items()})
    assert killed.gone and killed.service == "scheduler", killed
    crashed = time.monotonic()

    retry_log = af.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / "task_id=create" / "attempt=2.log"

    def reconnected() -> list[str] | None:
        if not retry_log.exists():
            return None
        return [str(r.get("event")) for r in log_records(retry_log) if RECONNECTED in str(r.get("event"))] or None

    lines = wait_until("the retry to reconnect by id", reconnected, RECOVERY_TIMEOUT_S, 0.2, diagnostics)
    assert system.id in lines[0], lines
    retried = time.monotonic()

    # The forced failure: the system fails at its next steps while the retry waits on it.
    admin.fail_next_transition(system.id)
    for _ in range(6):
        status = client.get(system.id).status  # type: ignore[union-attr]
        if status in (FAILED, TERMINATING, TERMINATED):
            break
        admin.advance_clock(HELD_STEP_S)

    def ended() -> dict[str, Any] | None:
        run = af.api.dag_run(dag_id, run_id)
        return run if run["state"] in ("success", "failed") else None

    run = wait_until(f"{dag_id}/{run_id} to end", ended, RUN_TIMEOUT_S, 0.5, diagnostics)
    tries = af.api.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/create/tries")
    states = {t["try_number"]: t["state"] for t in tries["task_instances"]}
    print(f"\ncrash-and-retry: killed {crashed - began:.0f}s after the trigger, try 2 reconnected "
          f"{retried - crashed:.0f}s after the kill, run {run['state']} {time.monotonic() - began:.0f}s in all")
    assert run["state"] == "failed" and states == {1: "failed", 2: "failed"}, (states, diagnostics())
    assert admin.call_counts().get("CreateSystem") == 1  # no second create
    assert [s.id for s in client.list() if s.name == RETRY_SYSTEM_NAME] in ([system.id], [])  # [] once terminated
    gone = client.get(system.id)
    # Owned by the retry: its failed wait terminated the system the first try created.
    assert gone is None or gone.status in (TERMINATING, TERMINATED), gone.status_text
    admin.close()
