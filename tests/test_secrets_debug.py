"""Secrets at every log level (issue 7 §6): a DAG run at DEBUG with canary secrets, then a hunt for them.

The canaries are the connection's API secret and a started system's DAI password (read from the
emulator). A task calls ``PuddleHook().get_system_credentials()``; the run's stdout/stderr, every file
under ``$AIRFLOW_HOME/logs`` and every column of every table of the metadata DB are searched.

Two ways a task runs, both at DEBUG (``AIRFLOW__LOGGING__LOGGING_LEVEL``), each in a subprocess:

* through Airflow's real supervisor (a forked task process, as under an executor), where the task also
  logs and prints both secrets on purpose: the task log must show ``***`` for them, which proves the
  DAI password still reaches the supervisor's masker;
* through ``airflow dags test`` (``dag.test()``: the in-process supervisor), whose comms log every
  request at DEBUG with its ``repr`` -- the path where ``MaskSecret(value=...)`` lines leaked.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID
from airflow_puddle.emulator.server import EmulatorServer
from tests.conftest import DAGS_FOLDER, STEP_SECONDS, connection_json

pytestmark = pytest.mark.usefixtures("airflow_db")

AIRFLOW_HOME = Path(os.environ["AIRFLOW_HOME"])
REPO = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))

DAG_SOURCE = '''
import logging

import pendulum
from airflow.sdk import DAG, task

from airflow_puddle.hooks.puddle import PuddleHook

log = logging.getLogger("airflow.task")

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:

    @task
    def credentials():
        with PuddleHook() as hook:
            creds = hook.get_system_credentials("{system_id}")
            log.info("DAI at %s as %s", creds.url, creds.username)
            if {log_secrets}:
                log.info("logged by mistake: %s and %s", creds.password, hook.settings.api_secret_key)
                print("printed by mistake:", creds.password, hook.settings.api_secret_key)
        return creds.url

    credentials()
'''

# One task through Airflow's real supervisor: the task runs in a forked process and talks to the
# supervisor over its socket, as under an executor; the Execution API is Airflow's in-process one.
SUPERVISED_RUN = """
import sys
from airflow.cli.commands.task_command import _get_ti
from airflow.sdk.api.datamodels._generated import BundleInfo, TaskInstance
from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor, supervise_task
from airflow.utils.cli import get_bagged_dag, get_db_dag
from airflow.utils.state import TaskInstanceState

dag_id, task_id, rel_path, log_path = sys.argv[1:]
sdk_dag = get_bagged_dag(None, dag_id)
ti, _ = _get_ti(get_db_dag(None, dag_id).get_task(task_id), -1, create_if_necessary="db")
ti.set_state(TaskInstanceState.QUEUED)
sdk_ti = TaskInstance(id=ti.id, task_id=ti.task_id, dag_id=ti.dag_id, run_id=ti.run_id,
                      try_number=ti.try_number, map_index=ti.map_index, dag_version_id=ti.dag_version_id)
sys.exit(supervise_task(ti=sdk_ti, bundle_info=BundleInfo(name="dags-folder", version=None),
                        dag_rel_path=rel_path, token="", log_path=log_path,
                        client=InProcessTestSupervisor._api_client(sdk_dag)))
"""

# Airflow's own line, not ours: dag.test()'s in-process comms log each request at DEBUG, including the
# MaskSecret that Airflow itself sends for a fetched connection's password (see README).
AIRFLOW_IN_PROCESS_MASK_LINE = re.compile(r"Sending request .*loc=supervisor\.py:\d+ msg=MaskSecret\(value=")


@dataclass(frozen=True)
class Canaries:
    address: str
    system_id: str
    api_secret: str
    dai_password: str

    def named(self) -> dict[str, str]:
        return {"API secret": self.api_secret, "DAI password": self.dai_password}


@pytest.fixture
def canaries(tmp_path: Path) -> Iterator[Canaries]:
    api_secret = f"canary-api-secret-{uuid.uuid4().hex}"
    server = EmulatorServer(port=0, db_path=str(tmp_path / "puddle.sqlite"), api_key_id=DEFAULT_API_KEY_ID,
                            api_secret_key=api_secret, step_seconds=STEP_SECONDS)
    server.start()
    try:
        auth = Authorizer(server.address, DEFAULT_API_KEY_ID, api_secret)
        systems = SystemsClient(CLOUD_AWS, authorizer=auth)
        created = systems.create("canary", product="dai", version="1.11.1", instance_type_name="m5.2xlarge",
                                 tags=[TagData("Team", "ml")])
        started = systems.wait_for_system_started(created.id)
        auth.close()
        assert started.password and len(started.password) >= 5, "the DAI password must be long enough to mask"
        yield Canaries(server.address, started.id, api_secret, started.password)
    finally:
        server.stop()


def _write_dag(dag_id: str, canaries: Canaries, log_secrets: bool) -> str:
    file_name = f"{dag_id}.py"
    (DAGS_FOLDER / file_name).write_text(
        DAG_SOURCE.format(dag_id=dag_id, system_id=canaries.system_id, log_secrets=log_secrets))
    return file_name


def _run_at_debug(cmd: list[str], canaries: Canaries) -> str:
    env = dict(os.environ, AIRFLOW__LOGGING__LOGGING_LEVEL="DEBUG",
               AIRFLOW_CONN_PUDDLE_DEFAULT=connection_json(canaries.address, canaries.api_secret))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def _log_files() -> dict[str, str]:
    return {str(p.relative_to(AIRFLOW_HOME)): p.read_text(errors="replace")
            for p in (AIRFLOW_HOME / "logs").rglob("*") if p.is_file()}


def _db_hits(secret: str) -> list[str]:
    """``table.column`` of every value in the metadata DB (any type, bytes decoded) holding ``secret``."""
    from airflow.configuration import conf

    url = conf.get("database", "sql_alchemy_conn")
    assert url.startswith("sqlite:///"), url
    hits = []
    with sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert "task_instance" in tables and "xcom" in tables
        for table in tables:
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if secret in text:
                        hits.append(f"{table}.{column}")
    return hits


PLACES = ("output", "log files", "metadata DB")
NO_HITS = {f"{name} in {place}": 0 for name in ("API secret", "DAI password") for place in PLACES}


def _hits(canaries: Canaries, output: str, known_airflow_line: re.Pattern[str] | None = None) -> dict[str, int]:
    """Hits of each canary in the run's output, the log files and the DB, as ``{"<canary> in <place>": n}``.

    Lines matching ``known_airflow_line`` are not counted for the API secret (Airflow's own doing).
    Every hit is printed, with the secret replaced by CANARY, so a failure shows where it leaked.
    """
    counts = {}
    files = _log_files()
    for name, secret in canaries.named().items():
        lines = [line for line in output.splitlines() if secret in line]
        if known_airflow_line is not None and name == "API secret":
            lines = [line for line in lines if not known_airflow_line.search(line)]
        in_files = {path: text.count(secret) for path, text in files.items() if secret in text}
        in_db = _db_hits(secret)
        for where in [*lines, *(f"log file {p}: {n} hit(s)" for p, n in in_files.items()), *in_db]:
            print(f"LEAK {name}: {where.replace(secret, 'CANARY')[:400]}")
        counts[f"{name} in output"] = len(lines)
        counts[f"{name} in log files"] = sum(in_files.values())
        counts[f"{name} in metadata DB"] = len(in_db)
    return counts


def test_real_supervisor_at_debug_masks_both_secrets_everywhere(canaries: Canaries) -> None:
    dag_id = f"secrets_debug_supervised_{uuid.uuid4().hex[:8]}"
    rel_path = _write_dag(dag_id, canaries, log_secrets=True)
    log_path = AIRFLOW_HOME / "logs" / f"dag_id={dag_id}" / "task_id=credentials" / "attempt=1.log"
    output = _run_at_debug([sys.executable, "-c", SUPERVISED_RUN, dag_id, "credentials", rel_path, str(log_path)],
                           canaries)
    task_log = log_path.read_text()

    # DEBUG really is on, in the supervisor's output and in the task log, and the secrets were registered.
    assert "Received message from task runner (body omitted)" in output
    assert '"level":"debug"' in task_log
    assert "final_state=success" in output

    assert _hits(canaries, output) == NO_HITS
    # The task logged and printed both secrets on purpose: the task log shows them masked.
    assert "logged by mistake: *** and ***" in task_log
    assert "printed by mistake: *** ***" in task_log


def test_dag_test_at_debug_never_echoes_the_dai_password(canaries: Canaries) -> None:
    dag_id = f"secrets_debug_dag_test_{uuid.uuid4().hex[:8]}"
    _write_dag(dag_id, canaries, log_secrets=False)
    output = _run_at_debug([AIRFLOW, "dags", "test", dag_id], canaries)

    # DEBUG really is on: the in-process comms log each request, MaskSecret ones included.
    assert re.search(r"\[debug\s*\] Sending request .*msg=MaskSecret\(", output)
    assert "DAI at " in output

    # Zero hits of both canaries, except Airflow's own DEBUG echo of the connection password it
    # registers on fetch (the API secret), which no provider code can avoid; see the README.
    assert _hits(canaries, output, AIRFLOW_IN_PROCESS_MASK_LINE) == NO_HITS
