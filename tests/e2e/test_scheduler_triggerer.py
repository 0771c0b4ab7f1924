"""End to end with Airflow's components as separate processes: api-server, scheduler, dag-processor, triggerer.

The deployment (:mod:`tests.e2e.deployment`, the ``stack`` fixture) runs them through the
reliability harness on SQLite with one triggerer, against in-process emulators on loopback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_puddle.client import SystemsClient
from airflow_puddle.client.models import System
from airflow_puddle.emulator import DEFAULT_API_SECRET_KEY
from airflow_puddle.emulator.server import EmulatorServer
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger
from reliability.procs import wait_until
from tests.e2e.deployment import (
    FAILED,
    H2O3_DAG_ID,
    INITIALIZING,
    KILL_DAG_ID,
    KILL_SYSTEM_NAME,
    KILL_TIMEOUT_S,
    OFFICIAL_DAG_ID,
    PIPELINE_DAG_ID,
    RUN_TIMEOUT_S,
    SHARED_DAG_ID,
    SHARED_WAITS,
    TERMINATED,
    TERMINATING,
    Stack,
    by_task,
)

pytestmark = pytest.mark.e2e


def test_deferred_pipeline_through_scheduler_and_triggerer(
    stack: Stack, client_for: Callable[[EmulatorServer], SystemsClient]
) -> None:
    af, dag_id, run_id = stack.airflow, PIPELINE_DAG_ID, "e2e_pipeline"
    af.api.trigger(dag_id, run_id)  # DAGs start unpaused (the harness's settings)

    triggers: dict[int, tuple[str, str]] = {}  # every trigger row seen while the run went on

    def finished() -> dict[str, Any] | None:
        for trigger_id, classpath, kwargs in af.db.query("SELECT id, classpath, kwargs FROM trigger"):
            triggers.setdefault(trigger_id, (classpath, kwargs))
        run = af.api.dag_run(dag_id, run_id)
        return run if run["state"] in ("success", "failed") else None

    started = time.monotonic()
    run = wait_until(f"{dag_id}/{run_id} to end", finished, RUN_TIMEOUT_S,
                     diagnostics=lambda: af.diagnostics(dag_id, run_id))
    tis = by_task(af.api.task_instances(dag_id, run_id))
    tries = {task_id: ti["try_number"] for task_id, ti in tis.items()}
    print(f"\n{dag_id} ran in {time.monotonic() - started:.0f}s, tries {tries}")
    states = {task_id: ti["state"] for task_id, ti in tis.items()}
    assert states == {"create": "success", "use": "success", "terminate": "success"}, af.diagnostics(dag_id, run_id)
    assert run["state"] == "success"

    # The system the setup created is the one the teardown terminated.
    client = client_for(stack.fast)
    (system_id,) = [row[0] for row in af.db.query(
        "SELECT value FROM xcom WHERE dag_id = :dag AND run_id = :run AND task_id = 'use' AND key = 'return_value'",
        dag=dag_id, run=run_id)]
    system_id = json.loads(system_id)
    system = client.get(system_id)
    assert system is not None and system.name == "e2e-pipeline"
    assert system.status == TERMINATED, system.status_text
    assert ("Team", "ml") in [(t.label, t.value) for t in system.tags]

    # Both waits ran in the triggerer: each deferring task has a trigger log.
    for task_id in ("create", "terminate"):
        logs = list((af.home / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/*.log.trigger.*.log"))
        assert logs, f"no trigger log for {task_id}: its wait did not run in the triggerer"

    # What the trigger table held. On 3.3.2 a task's deferral stores the kwargs as plain JSON
    # (the Execution API encrypts only kwargs a client sends pre-encrypted), so they must hold
    # nothing secret: only what serialize() emits, the ids and the connection *id*.
    password = system.password
    assert password, "the emulator gave the system no DAI password to look for"
    ours = {i: row for i, row in triggers.items() if row[0].endswith("PuddleSystemStateTrigger")}
    assert ours, f"never caught a PuddleSystemStateTrigger row in the trigger table (saw {triggers})"
    expected_keys = set(PuddleSystemStateTrigger(system_id="x", target="started", deadline=0).serialize()[1])
    targets = {}
    for trigger_id, (_, stored) in ours.items():
        plain = af.decrypt(stored)
        for secret in (DEFAULT_API_SECRET_KEY, password):
            assert secret not in plain and secret not in stored, f"trigger {trigger_id} kwargs hold a secret"
        kwargs = json.loads(plain)
        assert set(kwargs) == expected_keys, f"trigger {trigger_id}: unexpected kwargs {sorted(kwargs)}"
        assert kwargs["system_id"] == system_id and kwargs["puddle_conn_id"] == "puddle_default"
        targets[kwargs["target"]] = kwargs["owns_system"]
    assert targets.get("started") is True, f"caught no create trigger owning its system: {targets}"

    # The event payloads (resumed as next_kwargs) and the XComs carry public fields only.
    stored_values = [str(v) for row in af.db.query(
        "SELECT next_kwargs FROM task_instance WHERE dag_id = :dag AND run_id = :run UNION ALL "
        "SELECT value FROM xcom WHERE dag_id = :dag AND run_id = :run", dag=dag_id, run=run_id) for v in row]
    assert any(system_id in v for v in stored_values)
    assert not [v for v in stored_values if password in v or DEFAULT_API_SECRET_KEY in v]


def test_the_h2o3_example_trains_a_real_model_through_scheduler_and_triggerer(
    stack: Stack, client_for: Callable[[EmulatorServer], SystemsClient]
) -> None:
    af, dag_id, run_id = stack.airflow, H2O3_DAG_ID, "e2e_h2o3"
    af.api.trigger(dag_id, run_id)

    def finished() -> dict[str, Any] | None:
        run = af.api.dag_run(dag_id, run_id)
        return run if run["state"] in ("success", "failed") else None

    run = wait_until(f"{dag_id}/{run_id} to end", finished, RUN_TIMEOUT_S,
                     diagnostics=lambda: af.diagnostics(dag_id, run_id))
    tis = by_task(af.api.task_instances(dag_id, run_id))
    states = {task_id: ti["state"] for task_id, ti in tis.items()}
    assert states == {"create_system": "success", "train": "success", "terminate_system": "success"}, \
        af.diagnostics(dag_id, run_id)
    assert run["state"] == "success"
    (value,) = [row[0] for row in af.db.query(
        "SELECT value FROM xcom WHERE dag_id = :dag AND run_id = :run AND task_id = 'train' AND key = 'return_value'",
        dag=dag_id, run=run_id)]
    trained = json.loads(value)
    assert 0.6 < trained["auc"] <= 1.0
    assert Path(trained["mojo_path"]).is_file()
    assert Path(trained["mojo_path"]).is_relative_to(af.home / "puddle-artifacts")
    system = client_for(stack.fast).get(trained["system_id"])
    assert system is not None and system.status == TERMINATED, system
    assert stack.fast.nodes is not None and stack.fast.nodes.manager.running() == {}
    # The create's wait for the node ran in the triggerer.
    logs = list((af.home / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/task_id=create_system/*.log.trigger.*.log"))
    assert logs, "no trigger log for create_system: its wait did not run in the triggerer"
    assert system.password not in value


def test_killing_a_deferred_create_terminates_the_system_it_created(
    stack: Stack, client_for: Callable[[EmulatorServer], SystemsClient]
) -> None:
    af, dag_id, run_id = stack.airflow, KILL_DAG_ID, "e2e_kill"
    client = client_for(stack.slow)
    af.api.trigger(dag_id, run_id)

    def deferred() -> dict[str, Any] | None:
        ti = by_task(af.api.task_instances(dag_id, run_id)).get("create")
        if ti and ti["state"] in ("success", "failed", "upstream_failed", "skipped"):
            pytest.fail(f"create ended {ti['state']} before it could be killed\n{af.diagnostics(dag_id, run_id)}")
        return ti if ti and ti["state"] == "deferred" else None

    diagnostics = lambda: af.diagnostics(dag_id, run_id, trigger_logs_of="create")  # noqa: E731
    wait_until("create to be deferred", deferred, RUN_TIMEOUT_S, diagnostics=diagnostics)
    # on_kill reaches only a trigger already running in the triggerer: a task marked failed before
    # the triggerer picked its trigger up never runs it. The trigger's first log line says it runs.
    wait_until("the create's trigger to run in the triggerer",
               lambda: True if "Initializing" in af.trigger_log(dag_id, run_id, "create") else None, 30.0,
               diagnostics=diagnostics)
    system = client.find_by_name(KILL_SYSTEM_NAME)
    assert system is not None
    assert system.status == INITIALIZING, f"system already {system.status_text}: the kill would prove nothing"

    af.api.api("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/create", {"new_state": "failed"})
    killed = time.monotonic()

    failed_at: float | None = None

    def going() -> System | None:
        nonlocal failed_at
        current = client.get(system.id)
        assert current is not None
        if current.status in (TERMINATING, TERMINATED):
            return current
        # discard() marks it failed, polls (every 5 s) until it is Failed, then terminates it:
        # Failed for much longer means on_kill stopped half way. No use waiting the whole timeout.
        if current.status != FAILED:
            failed_at = None
        elif failed_at is None:
            failed_at = time.monotonic()
        elif time.monotonic() - failed_at > 15:
            pytest.fail(f"system {system.id} stayed Failed: on_kill marked it failed but never terminated it "
                        "(3.3.2 re-sends the user-action cancel every triggerer loop, ~1 s, which cancels a "
                        f"longer on_kill)\n{diagnostics()}")
        return None

    gone = wait_until("the killed create's system to be terminated", going, KILL_TIMEOUT_S, 0.5,
                      diagnostics=diagnostics)
    print(f"\nsystem {gone.status_text} {time.monotonic() - killed:.0f}s after the task was marked failed")
    assert by_task(af.api.task_instances(dag_id, run_id))["create"]["state"] == "failed"


def test_deferred_waits_in_a_real_triggerer_share_one_poll(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six deferred creates on one connection: the triggerer polls once per interval for all of them."""
    polls: list[float] = []  # ListSystems without a name filter: the shared poll (operators look up by name)
    gets: list[float] = []
    backend = stack.slow.backend
    list_systems, get_system = backend.list_systems, backend.get_system

    def counting_list(user: Any, cloud: str = "", name: str = "") -> Any:
        if not name:
            polls.append(time.monotonic())
        return list_systems(user, cloud, name)

    def counting_get(*args: Any, **kwargs: Any) -> Any:
        gets.append(time.monotonic())
        return get_system(*args, **kwargs)

    monkeypatch.setattr(backend, "list_systems", counting_list)
    monkeypatch.setattr(backend, "get_system", counting_get)
    af, dag_id, run_id = stack.airflow, SHARED_DAG_ID, "e2e_shared"
    af.api.trigger(dag_id, run_id)

    deferred: list[tuple[float, int]] = []  # (when, how many of our tasks were deferred then)

    def finished() -> dict[str, Any] | None:
        tis = af.api.task_instances(dag_id, run_id)
        deferred.append((time.monotonic(), sum(ti["state"] == "deferred" for ti in tis)))
        run = af.api.dag_run(dag_id, run_id)
        return run if run["state"] in ("success", "failed") else None

    run = wait_until(f"{dag_id}/{run_id} to end", finished, RUN_TIMEOUT_S,
                     diagnostics=lambda: af.diagnostics(dag_id, run_id))
    assert run["state"] == "success", af.diagnostics(dag_id, run_id)
    together = [t for t, n in deferred if n >= 2]
    assert together, f"never saw two of the waits deferred at once: {deferred}"
    start, end = min(together), max(together)
    window = end - start
    in_window = [t for t in polls if start <= t <= end]
    print(f"\n{SHARED_WAITS} deferred waits: {len(in_window)} ListSystems polls in {window:.1f}s "
          f"with >= 2 waits deferred; {len(gets)} GetSystem calls in the whole run")
    # One poll per 1 s interval for the whole group (a per-trigger poll would make one GetSystem each).
    assert window >= 3, f"the waits overlapped only {window:.1f}s: too short to measure"
    assert len(in_window) <= window / 1.0 + 2, (len(in_window), window)
    assert gets == [], "a wait polled its own system instead of reading the shared snapshot"


def test_deferred_waits_in_a_real_triggerer_with_the_sync_only_official_client(
    stack: Stack, client_for: Callable[[EmulatorServer], SystemsClient]
) -> None:
    """``extra.client=puddle``: the triggerer runs the (sync-only) stand-in's calls in its thread pool."""
    af, dag_id, run_id = stack.airflow, OFFICIAL_DAG_ID, "e2e_official"
    af.api.trigger(dag_id, run_id)

    def finished() -> dict[str, Any] | None:
        run = af.api.dag_run(dag_id, run_id)
        return run if run["state"] in ("success", "failed") else None

    run = wait_until(f"{dag_id}/{run_id} to end", finished, RUN_TIMEOUT_S,
                     diagnostics=lambda: af.diagnostics(dag_id, run_id))
    states = {task_id: ti["state"] for task_id, ti in by_task(af.api.task_instances(dag_id, run_id)).items()}
    assert states == {"create": "success", "terminate": "success"}, af.diagnostics(dag_id, run_id)
    assert run["state"] == "success"
    (system,) = [s for s in client_for(stack.fast).list() if s.name == "e2e-official"] or [None]
    assert system is None or system.status == TERMINATING, system  # terminated systems leave the list
    for task_id in ("create", "terminate"):
        logs = list((af.home / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/*.log.trigger.*.log"))
        assert logs, f"no trigger log for {task_id}: its wait did not run in the triggerer"
        assert any("e2e-official" in log.read_text() for log in logs), f"{task_id}: no narration of the system"
