"""The README's "Use it in your own Airflow" DAG, run as written through real Airflow (``dag.test()``).

The block after the ``readme-dag`` marker is taken from README.md, with only faster polls, and
run against the emulator with the README's connection. The run must succeed with both waits
deferred and the system terminated.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import System
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.emulator.server import EmulatorServer
from tests.conftest import load_dag
from tests.test_example_dags import xcoms

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module", autouse=True)
def _airflow_logging_configured() -> None:
    """Import Airflow (which replaces the root logger's handlers) before ``caplog`` attaches."""
    import airflow.sdk  # noqa: F401


def readme_dag() -> str:
    """The python block after the ``readme-dag`` marker, dedented."""
    found = re.search(r"<!-- readme-dag:.*?-->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert found, "README.md has no readme-dag block"
    return textwrap.dedent(found.group(1))


def test_the_readme_dag_runs_with_deferred_waits(
    emulator: EmulatorServer, airflow_db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    source = readme_dag()
    assert source.count("deferrable=True,") == 2
    source = source.replace("deferrable=True,", "deferrable=True, poll_interval=0.2,")
    host, _, port = emulator.address.rpartition(":")
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", json.dumps({
        "conn_type": "puddle", "host": host, "port": int(port),
        "login": DEFAULT_API_KEY_ID, "password": DEFAULT_API_SECRET_KEY}))
    caplog.set_level("INFO")
    dag = load_dag(source, "my_puddle_job.py")

    run = dag.test()

    assert {ti.task_id: str(ti.state) for ti in run.get_task_instances()} == {
        "create_system": "success", "work": "success", "terminate_system": "success"}
    assert caplog.text.count("[DAG TEST] running trigger in line") == 2
    auth = Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    try:
        systems = SystemsClient(CLOUD_AWS, authorizer=auth).list()
    finally:
        auth.close()
    assert [s.name for s in systems if s.status != System.SYSTEM_STATUS_TERMINATED.code] == []
    assert xcoms(run)[("work", -1, "return_value")].startswith("https://my-dai.")  # the system's URL
