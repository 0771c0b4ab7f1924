"""Create's adoption is checked: same name and same ask, or a clear failure; a failed system is replaced
only when the task may; two tasks creating one name end with one system and two successes."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airflow_puddle.client import SystemsClient
from airflow_puddle.client.models import System, TagData
from airflow_puddle.operators.puddle import PuddleCreateSystemOperator
from tests.operators.test_operators import run_dag

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.both_clients]
ASK = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}




def _output(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    out, err = capfd.readouterr()
    return caplog.text + out + err


def test_a_same_name_system_that_differs_is_not_adopted(puddle_conn: str, client: SystemsClient,
                                                        caplog: pytest.LogCaptureFixture,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    other = client.create("adopt-diff", **{**ASK, "product": "h2o3", "version": "3.46.0.6",
                                           "instance_type_name": "r5.4xlarge"})
    run, states = run_dag("adopt_diff", False, """
PuddleCreateSystemOperator(task_id="create", name="adopt-diff", **CREATE, **COMMON)
""")
    assert states == {"create": "failed"}
    text = _output(caplog, capfd)
    assert "product is 'h2o3', this task asks for 'dai'" in text
    assert "instance type is 'r5.4xlarge', this task asks for 'm5.2xlarge'" in text
    assert [s.id for s in client.list()] == [other.id]  # nothing created, nothing touched


def test_a_failed_same_name_system_is_replaced_only_with_terminate_on_failure(
    puddle_conn: str, client: SystemsClient, admin: Any, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    failed = client.create("adopt-failed", **ASK)
    admin.fail_next_transition(failed.id)
    client.wait_for_system_failed(failed.id)
    run, states = run_dag("adopt_failed", False, """
keep = PuddleCreateSystemOperator(task_id="keep", name="adopt-failed", **CREATE, **COMMON)
replace = PuddleCreateSystemOperator(task_id="replace", name="adopt-failed", terminate_on_failure=True,
                                     trigger_rule="all_done", **CREATE, **COMMON)
keep >> replace
""")
    assert states == {"keep": "failed", "replace": "success"}
    assert "set terminate_on_failure=True to let this task replace it" in _output(caplog, capfd)
    assert client.get(failed.id).status == System.SYSTEM_STATUS_TERMINATED.code
    (fresh,) = client.list()
    assert fresh.name == "adopt-failed" and fresh.id != failed.id and fresh.status_text == "Started"


class _TaskInstance:
    """What an operator's ``execute`` touches of Airflow's context outside dag.test(): the link's XCom."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def test_two_tasks_creating_one_name_both_succeed_with_one_system(puddle_conn: str, client: SystemsClient,
                                                                  admin: Any) -> None:
    # Slow creates, so that both are in flight at once: one wins, the other is told the name exists and adopts.
    admin.set_latency("CreateSystem", 0.5)
    ops = [PuddleCreateSystemOperator(task_id=f"t{n}", name="adopt-race", poll_interval=0.05, deferrable=False,
                                      **{**ASK, "tags": {"Team": "ml"}}) for n in range(2)]
    results: list[Any] = [None, None]

    def run(n: int) -> None:
        try:
            results[n] = ops[n].execute({"ti": _TaskInstance()})  # type: ignore[arg-type]
        except Exception as err:
            results[n] = err

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    admin.set_latency("CreateSystem", 0)
    assert all(isinstance(r, dict) for r in results), results
    assert results[0]["id"] == results[1]["id"]
    assert [s.name for s in client.list()] == ["adopt-race"]
