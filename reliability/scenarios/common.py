"""What several scenarios read: a task's state and failure, its trigger events, system statuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_puddle.client.models import System
from reliability.airflow import Deployment, log_records
from reliability.procs import wait_until
from reliability.stack import Stack

TERMINATED = System.SYSTEM_STATUS_TERMINATED.code
STOPPED = System.SYSTEM_STATUS_STOPPED.code
STARTED = System.SYSTEM_STATUS_STARTED.code
STOPPING = System.SYSTEM_STATUS_STOPPING.code


def ti(dep: Deployment, dag_id: str, run_id: str, task_id: str) -> dict[str, Any] | None:
    """One unmapped task instance of a run, or None before the run has it."""
    for found in dep.api.task_instances(dag_id, run_id):
        if found["task_id"] == task_id:
            return found
    return None


def wait_for_state(dep: Deployment, dag_id: str, run_id: str, task_id: str, state: str,
                   timeout: float = 300.0) -> dict[str, Any]:
    """Until the task is in ``state``; fails early when it ends in another one."""

    def check() -> dict[str, Any] | None:
        found = ti(dep, dag_id, run_id, task_id)
        if found is None:
            return None
        if found["state"] in ("success", "failed", "upstream_failed", "skipped") and found["state"] != state:
            raise RuntimeError(f"{dag_id}/{run_id}/{task_id} ended {found['state']} instead of reaching {state}")
        return found if found["state"] == state else None

    return wait_until(f"{dag_id}/{run_id}/{task_id} to be {state}", check, timeout, 0.5,
                      lambda: dep.diagnostics(dag_id, run_id))


def wait_for_try(dep: Deployment, dag_id: str, run_id: str, task_id: str, try_number: int,
                 timeout: float = 300.0) -> dict[str, Any]:
    """Until try ``try_number`` (or a later one) of the task runs, or has ended."""

    def check() -> dict[str, Any] | None:
        found = ti(dep, dag_id, run_id, task_id)
        if found is None or int(found["try_number"]) < try_number:
            return None
        return found if found["state"] in ("running", "success", "failed") else None

    return wait_until(f"{dag_id}/{run_id}/{task_id} try {try_number} to run", check, timeout, 0.5,
                      lambda: dep.diagnostics(dag_id, run_id))


def tries(dep: Deployment, dag_id: str, run_id: str, task_id: str) -> dict[int, str]:
    """Each try of an unmapped task and its state, over REST."""
    body = dep.api.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
    return {int(t["try_number"]): str(t["state"]) for t in body["task_instances"]}


def advance_until(stack: Stack, emulator: str, system_id: str, statuses: set[int], steps: int = 8) -> int:
    """Advance a held emulator's clock one lifecycle step at a time until the system is in one of
    ``statuses``; returns that status. Fails after ``steps`` steps."""
    step = stack.emulators[emulator].step_seconds
    admin = stack.emulators[emulator].admin()
    try:
        for _ in range(steps + 1):
            (system,) = [s for s in stack.systems(emulator) if s["id"] == system_id]
            if system["status"] in statuses:
                return int(system["status"])
            admin.advance_clock(step)
    finally:
        admin.close()
    raise RuntimeError(f"system {system_id} on {emulator} is {status_text(system['status'])} after {steps} steps, "
                       f"not one of {sorted(status_text(s) for s in statuses)}")


def task_records(dep: Deployment, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
    """Every log record of a task (all tries, worker and trigger logs)."""
    folder = dep.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    records: list[dict[str, Any]] = []
    for path in sorted(folder.rglob("*.log")):
        records += log_records(path)
    return records


def failure_message(dep: Deployment, dag_id: str, run_id: str, task_id: str) -> str:
    """The exception a task failed with (its last ``Task failed with exception`` record), or ''."""
    message = ""
    for record in task_records(dep, dag_id, run_id, task_id):
        if record.get("event") == "Task failed with exception":
            details = record.get("error_detail") or [{}]
            message = f"{details[0].get('exc_type')}: {details[0].get('exc_value')}"
    return message


def count_events(dep: Deployment, dag_id: str, run_id: str, task_id: str, predicate: Callable[[str], bool]) -> int:
    """How many of a task's log records have an ``event`` text that ``predicate`` accepts."""
    return sum(1 for r in task_records(dep, dag_id, run_id, task_id) if predicate(str(r.get("event", ""))))


def named(stack: Stack, emulator: str, name: str) -> list[dict[str, Any]]:
    """The systems of that name the emulator holds (terminated ones too)."""
    return [s for s in stack.systems(emulator) if s["name"] == name]


def status_text(code: int) -> str:
    """A system status code as its text."""
    from airflow_puddle.domain.statuses import system_status_text

    return system_status_text(code)
