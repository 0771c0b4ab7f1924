"""A 60 s backend outage in the middle of waits: worker-mode and deferred waits both ride it out.

The emulator runs as its own process, is stopped while an operator waits in the worker
(``deferrable=False``), a trigger waits as it would in the triggerer and a plain client
``wait_for_*`` waits, all on the default retry policy; it comes back 60 s later on the same
port and database, and every wait finishes.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import System, TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger
from tests.client.test_emulator_restart import free_port, start_emulator
from tests.conftest import connection_json, load_dag

OUTAGE_S = 60.0
DAI = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_puddle.operators.puddle import PuddleStartSystemOperator

with DAG("outage_worker_wait", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    PuddleStartSystemOperator(task_id="start", system_id="{system_id}", deferrable=False, poll_interval=1)
"""


@pytest.mark.usefixtures("airflow_db")
def test_worker_and_deferred_waits_survive_a_60s_outage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, port = tmp_path / "state.sqlite", free_port()
    address = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(address))
    procs = [start_emulator(db, port)]
    client = SystemsClient(CLOUD_AWS, authorizer=Authorizer(address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))
    to_start = client.create("outage-worker", **DAI)
    client.wait_for_system_started(to_start.id, poll_interval_s=0.2, timeout_s=30)
    client.stop(to_start.id)
    client.wait_for_system_stopped(to_start.id, poll_interval_s=0.2, timeout_s=30)
    dag = load_dag(DAG.format(system_id=to_start.id), "outage_worker_wait.py")

    results: dict[str, Any] = {}
    waiters: list[threading.Thread] = []

    def outage() -> None:
        # Once the operator has asked to start (its wait has begun), begin the other two waits on
        # systems that boot for 3 s, then take the backend away for 60 s.
        while client.get(to_start.id).status != System.SYSTEM_STATUS_STARTING.code:
            time.sleep(0.05)
        for name, wait in (("outage-trigger", deferred_wait), ("outage-client", client_wait)):
            waiters.append(threading.Thread(target=wait, args=(client.create(name, **DAI).id,)))
            waiters[-1].start()
        time.sleep(0.5)
        procs[0].send_signal(signal.SIGTERM)
        procs[0].wait(timeout=10)
        results["down_at"] = time.monotonic()
        time.sleep(OUTAGE_S)
        procs.append(start_emulator(db, port))
        results["up_at"] = time.monotonic()

    def deferred_wait(system_id: str) -> None:
        trigger = PuddleSystemStateTrigger(system_id=system_id, target="started", deadline=time.time() + 600,
                                           poll_interval=1)

        async def first() -> Any:
            gen = trigger.run()
            try:
                return (await gen.__anext__()).payload
            finally:
                await gen.aclose()

        results["trigger"] = asyncio.run(first())
        results["trigger_at"] = time.monotonic()

    def client_wait(system_id: str) -> None:
        waiter = SystemsClient(CLOUD_AWS, authorizer=Authorizer(address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))
        results["client"] = waiter.wait_for_system_started(system_id, poll_interval_s=1, timeout_s=600)
        results["client_at"] = time.monotonic()

    outage_thread = threading.Thread(target=outage)
    outage_thread.start()
    try:
        run = dag.test()
        results["worker_at"] = time.monotonic()
    finally:
        outage_thread.join(timeout=OUTAGE_S + 60)
        for thread in waiters:
            thread.join(timeout=60)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=10)

    assert "up_at" in results, "the outage thread did not run to the end"
    # Every wait finished after the backend came back, not with an error during the outage.
    assert run.state == "success", [ti.state for ti in run.get_task_instances()]
    assert results["trigger"]["status"] == "success", results["trigger"]
    assert results["client"].status == System.SYSTEM_STATUS_STARTED.code
    for key in ("worker_at", "trigger_at", "client_at"):
        assert results[key] >= results["up_at"], key
        assert results[key] - results["up_at"] < 30, key  # noticed soon after the backend is back
    assert results["up_at"] - results["down_at"] >= OUTAGE_S
