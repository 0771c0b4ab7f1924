"""No "Skipping masking for a secret as it's too short" WARNING in a task's log (issue 22 §3).

Airflow 3.3's masker warns (once per process) for any string under 5 characters in a connection's
extra, even under a key that is not secret: ``_get_connection`` caches ``conn.get_uri()``, which
reads ``extra_dejson`` and so registers every extra value. ``"cloud": "aws"`` did it in the README,
the demo and every test connection. A run through real Airflow (``dag.test()``: deferred create and
terminate, a task that fetches the DAI password through the hook) must log no such warning with the
README's connection or with what the connection form pre-fills; ``"cloud": "aws"`` is the control
that shows the check sees the warning when it is there.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import System
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.emulator.server import EmulatorServer
from airflow_puddle.hooks.form import CONN_FIELDS
from tests.conftest import load_dag

WARNING = "Skipping masking for a secret as it's too short"

DAG_SOURCE = '''
import logging

import pendulum
from airflow.sdk import DAG, task

from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.operators.puddle import PuddleCreateSystemOperator, PuddleTerminateSystemOperator

with DAG("short_secret_{case}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    create = PuddleCreateSystemOperator(
        task_id="create_system", name="masking-{name}", product="dai", version="1.11.1",
        instance_type_name="m5.2xlarge", tags={{"Team": "ds"}}, deferrable=True, poll_interval=0.2,
    )

    @task
    def credentials(system):
        with PuddleHook() as hook:
            creds = hook.get_system_credentials(system["id"])
        logging.getLogger("airflow.task").info("DAI password of %d characters masked", len(creds.password))

    terminate = PuddleTerminateSystemOperator(
        task_id="terminate_system", system_id="{{{{ ti.xcom_pull(task_ids='create_system')['id'] }}}}",
        deferrable=True, poll_interval=0.2,
    )
    credentials(create.output) >> terminate
'''


@pytest.fixture(scope="module", autouse=True)
def _airflow_logging_configured() -> None:
    """Import Airflow (which replaces the root logger's handlers) before ``caplog`` attaches."""
    import airflow.sdk  # noqa: F401


def form_defaults() -> dict[str, Any]:
    """The extra the connection form pre-fills: every field's schema default."""
    return {name: f["schema"]["default"] for name, f in CONN_FIELDS.items() if "default" in f["schema"]}


def reset_warn_once() -> None:
    """Airflow warns once per process: forget an earlier test's warning, or the check passes vacuously."""
    from airflow._shared.secrets_masker.secrets_masker import SecretsMasker as CoreMasker
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker as SdkMasker

    CoreMasker._has_warned_short_secret = False
    SdkMasker._has_warned_short_secret = False


@pytest.mark.parametrize(("case", "extra", "warns"), [
    ("readme", None, False),               # the README's connection: no extra at all
    ("form", form_defaults(), False),      # a connection saved from the form as it opens
    ("cloud_aws", {"cloud": "aws"}, True), # control: Airflow's own warning, for a non-secret extra
])
def test_task_logs_have_no_short_secret_warning(
    case: str, extra: dict[str, Any] | None, warns: bool, emulator: EmulatorServer, airflow_db: str,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    host, _, port = emulator.address.rpartition(":")
    conn: dict[str, Any] = {"conn_type": "puddle", "host": host, "port": int(port),
                            "login": DEFAULT_API_KEY_ID, "password": DEFAULT_API_SECRET_KEY}
    if extra is not None:
        conn["extra"] = extra
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", json.dumps(conn))
    dag = load_dag(DAG_SOURCE.format(case=case, name=case.replace("_", "-")), f"short_secret_{case}.py")
    caplog.set_level(logging.INFO)
    reset_warn_once()

    run = dag.test()

    assert str(run.state) == "success"
    output = caplog.text
    assert "[DAG TEST] running trigger in line" in output  # the waits did defer
    assert "DAI password of 16 characters masked" in output  # the hook did fetch and mask it
    assert (WARNING in output) is warns, output[-3000:]
    auth = Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    try:
        left = [s for s in SystemsClient(CLOUD_AWS, authorizer=auth).list()
                if s.status != System.SYSTEM_STATUS_TERMINATED.code]
    finally:
        auth.close()
    assert left == []
