"""The system operators through real Airflow (``dag.test()``) against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import System
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.emulator.server import EmulatorServer
from airflow_puddle.links.puddle import PuddleSystemLink
from tests.conftest import client_extra, connection_json, load_dag

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.both_clients]

HEADER = """
import pendulum
from datetime import timedelta
from airflow.sdk import DAG
from airflow_puddle.operators.puddle import *

COMMON = dict(poll_interval=0.05, deferrable={deferrable})
CREATE = dict(product="dai", version="1.11.1", instance_type_name="m5.2xlarge", tags={{"Team": "ml"}})
"""


def dag_source(dag_id: str, deferrable: bool, body: str) -> str:
    return (HEADER.format(deferrable=deferrable)
            + f'\nwith DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:\n'
            + "\n".join("    " + line for line in body.strip().splitlines()) + "\n")


def run_dag(dag_id: str, deferrable: bool, body: str, **run_kw: Any) -> tuple[Any, dict[str, str]]:
    dag = load_dag(dag_source(dag_id, deferrable, body), f"{dag_id}.py")
    run = dag.test(**run_kw)
    return run, {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def xcoms(run: Any) -> list[Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.run_id == run.run_id, XComModel.dag_id == run.dag_id).all()
        return [(r.task_id, r.key, r.value) for r in rows]






def test_every_operator_is_idempotent(puddle_conn: str, client: SystemsClient, deferrable: bool) -> None:
    dag_id = f"ops_all_{int(deferrable)}"
    run, states = run_dag(dag_id, deferrable, """
create = PuddleCreateSystemOperator(task_id="create", name="ops-all", **CREATE, **COMMON)
create_again = PuddleCreateSystemOperator(task_id="create_again", name="ops-all", **CREATE, **COMMON)
stop = PuddleStopSystemOperator(task_id="stop", system_name="ops-all", **COMMON)
stop_again = PuddleStopSystemOperator(task_id="stop_again", system_id="{{ ti.xcom_pull('create')['id'] }}", **COMMON)
start = PuddleStartSystemOperator(task_id="start", system_name="ops-all", **COMMON)
start_again = PuddleStartSystemOperator(task_id="start_again", system_name="ops-all", **COMMON)
config = PuddleUpdateConfigTomlOperator(task_id="config", system_name="ops-all", restart=True,
                                        config_toml="max_runtime_minutes = {{ 6 * 10 }}", **COMMON)
refresh = PuddleRefreshIdleTimeoutOperator(task_id="refresh", system_name="ops-all", **COMMON)
terminate = PuddleTerminateSystemOperator(task_id="terminate", system_name="ops-all", **COMMON)
terminate_again = PuddleTerminateSystemOperator(task_id="terminate_again", system_name="ops-all", **COMMON)
(create >> create_again >> stop >> stop_again >> start >> start_again >> config >> refresh >> terminate
 >> terminate_again)
""")
    assert run.state == "success", states
    assert set(states.values()) == {"success"}
    (system_id,) = {v["id"] for t, k, v in xcoms(run) if k == "return_value" and isinstance(v, dict)}
    final = client.get(system_id)
    assert final.status == System.SYSTEM_STATUS_TERMINATED.code
    assert final.config_status == System.CONFIG_STATUS_OK.code and "max_runtime_minutes = 60" in final.config_toml
    values = xcoms(run)
    assert final.password and final.password not in json.dumps([v for _, _, v in values], default=str)
    urls = {t: v for t, k, v in values if k == PuddleSystemLink().xcom_key}
    assert urls.pop("terminate_again") == ""  # no system left to link to
    assert set(urls) == set(states) - {"terminate_again"} and set(urls.values()) == {final.default_url}
    # Airflow calls PuddleSystemLink.get_link when a task ends and keeps the result for the UI.
    links = {t: v for t, k, v in values if k == "_link_PuddleSystemLink"}
    assert links.pop("terminate_again") == ""  # the system was gone: nothing to link to
    assert set(links.values()) == {final.default_url}, links


def test_create_run_twice_leaves_one_system(puddle_conn: str, client: SystemsClient, deferrable: bool) -> None:
    body = 'PuddleCreateSystemOperator(task_id="create", name="only-one", **CREATE, **COMMON)'
    dag = load_dag(dag_source(f"twice_{int(deferrable)}", deferrable, body), f"twice_{int(deferrable)}.py")
    first, second = dag.test(), dag.test()
    assert first.state == second.state == "success"
    matches = [s for s in client.list() if s.name == "only-one"]
    assert len(matches) == 1 and matches[0].status_text == "Started"


def test_adopting_a_stopped_system_starts_it(puddle_conn: str, client: SystemsClient) -> None:
    from airflow_puddle.client.models import TagData

    system = client.create("adopt-me", product="dai", version="1.11.1", instance_type_name="m5.2xlarge",
                           tags=[TagData("Team", "ml")])
    client.wait_for_system_started(system.id)
    client.stop(system.id)
    run, states = run_dag("adopt", False, """
PuddleCreateSystemOperator(task_id="create", name="adopt-me", terminate_on_failure=True, **CREATE, **COMMON)
""")
    assert run.state == "success", states
    assert [s.id for s in client.list()] == [system.id]
    assert client.get(system.id).status_text == "Started"


def test_failed_create_terminates_only_what_it_created(
    airflow_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deferrable: bool, puddle_client: str,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    # A slow emulator: each transition step lasts 2 s, so a 1 s timeout always expires mid-create.
    with EmulatorServer(port=0, db_path=str(tmp_path / "slow.sqlite"), step_seconds=2) as slow:
        monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(slow.address, **client_extra(puddle_client)))
        run, states = run_dag(f"cleanup_{int(deferrable)}", deferrable, """
PuddleCreateSystemOperator(task_id="create", name="too-slow", terminate_on_failure=True,
                           timeout=timedelta(seconds=1), **CREATE, **COMMON)
PuddleCreateSystemOperator(task_id="keep", name="kept", timeout=timedelta(seconds=1), **CREATE, **COMMON)
""")
        assert states == {"create": "failed", "keep": "failed"}
        client = SystemsClient(CLOUD_AWS, authorizer=Authorizer(slow.address, DEFAULT_API_KEY_ID,
                                                                 DEFAULT_API_SECRET_KEY))
        by_name = {s.name: s for s in client.list()}
        # Initializing cannot be terminated: the operator marks it failed first, then terminates it.
        assert "too-slow" not in by_name or by_name["too-slow"].status_text == "Terminating", by_name
        assert by_name["kept"].status_text == "Initializing"  # no terminate_on_failure: left alone
        # Deferred, the triggerer terminates it before its event: the worker that resumes does not wait.
        text = caplog.text + "".join(capfd.readouterr())
        assert ("that this task created, in the triggerer (its wait failed): it is terminating" in text) == deferrable
        assert text.count("that this task created") == 1  # one cleanup, said once in the task's own words


def test_operator_errors_are_clear(puddle_conn: str, client: SystemsClient) -> None:
    run, states = run_dag("errors", False, """
PuddleStopSystemOperator(task_id="stop_missing", system_name="never-made", **COMMON)
PuddleRestartSystemOperator(task_id="restart_missing", system_id="nope", **COMMON)
PuddleCreateSystemOperator(task_id="bad_name", name="Bad_Name", **CREATE, **COMMON)
""")
    assert states == {"stop_missing": "failed", "restart_missing": "failed", "bad_name": "failed"}
    assert client.list() == []


def test_target_must_be_given_once() -> None:
    from airflow_puddle.operators.puddle import PuddleStopSystemOperator

    with pytest.raises(ValueError, match="system_id, system_name: give exactly one of them"):
        PuddleStopSystemOperator(task_id="t", system_id="a", system_name="b")
    with pytest.raises(ValueError, match="system_id, system_name: give exactly one of them"):
        PuddleStopSystemOperator(task_id="t", cloud="aws")
    for n, bad in enumerate([0, -1, float("nan"), float("inf"), True, "5"]):
        with pytest.raises(ValueError, match="poll_interval: must be"):
            PuddleStopSystemOperator(task_id=f"p{n}", system_id="a", poll_interval=bad)
        with pytest.raises(ValueError, match="timeout: must be"):
            PuddleStopSystemOperator(task_id=f"t{n}", system_id="a", timeout=bad)


def test_execution_timeout_kills_the_create_and_cleans_up(
    airflow_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, puddle_client: str
) -> None:
    # Airflow calls on_kill when execution_timeout fires; the wait runs in the worker here.
    with EmulatorServer(port=0, db_path=str(tmp_path / "slow.sqlite"), step_seconds=2) as slow:
        monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(slow.address, **client_extra(puddle_client)))
        _, states = run_dag("exec_timeout", False, """
PuddleCreateSystemOperator(task_id="create", name="killed", terminate_on_failure=True,
                           execution_timeout=timedelta(seconds=1), **CREATE, **COMMON)
PuddleCreateSystemOperator(task_id="adopter", name="not-mine", execution_timeout=timedelta(seconds=1),
                           **CREATE, **COMMON)
""")
        assert states == {"create": "failed", "adopter": "failed"}
        client = SystemsClient(CLOUD_AWS, authorizer=Authorizer(slow.address, DEFAULT_API_KEY_ID,
                                                                 DEFAULT_API_SECRET_KEY))
        by_name = {s.name: s.status_text for s in client.list()}
        assert by_name.get("killed", "gone") in ("Terminating", "gone"), by_name
        assert by_name["not-mine"] == "Initializing"  # no terminate_on_failure: the kill leaves it be


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tags": "Team=ml"}, "tags: must be a dict of label to value or a list of TagData"),
    ({"tags": [("Team", "ml")]}, "tags: must be a dict of label to value or a list of TagData"),
    ({"tags": 5}, "tags: must be a dict of label to value or a list of TagData"),
    ({"poll_interval": float("nan")}, "poll_interval: must be a finite number"),
    ({"poll_interval": True}, "poll_interval: must be a number of seconds"),
    ({"timeout": float("inf")}, "timeout: must be a finite number"),
    ({"timeout": -1}, "timeout: must be more than 0 seconds"),
])
def test_create_refuses_hostile_arguments_when_built(kwargs: dict[str, Any], message: str) -> None:
    from airflow_puddle.operators.puddle import PuddleCreateSystemOperator

    with pytest.raises(ValueError, match=message):
        PuddleCreateSystemOperator(task_id="c", name="n", product="dai", version="1.11.1",
                                   instance_type_name="m5.2xlarge", **kwargs)


def test_create_takes_tags_as_a_dict_a_list_of_tag_data_or_a_template() -> None:
    from airflow_puddle.client.models import TagData
    from airflow_puddle.operators.puddle import PuddleCreateSystemOperator, tag_data

    base = {"name": "n", "product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge"}
    for n, tags in enumerate(({"Team": "ml"}, [TagData("Team", "ml")], "{{ params.tags }}", None)):
        PuddleCreateSystemOperator(task_id=f"ok{n}", tags=tags, **base)  # type: ignore[arg-type]
    assert tag_data({"Team": "ml"}) == tag_data([TagData("Team", "ml")]) == [TagData("Team", "ml")]
