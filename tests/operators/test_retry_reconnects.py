"""A retry after a crash reconnects by id through the task state store, in real Airflow (``dag.test()``).

A crash is simulated by failing the first try right after Puddle accepted its request, before the wait.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_puddle.client import SystemsClient
from airflow_puddle.client.models import System, TagData
from airflow_puddle.emulator.server import EmulatorServer
from tests.operators.test_operators import run_dag

pytestmark = [pytest.mark.usefixtures("airflow_db")]

CRASHES = '''
import os
from tests.conftest import Admin

RETRY = dict(retries=1, retry_delay=timedelta(0))


class CrashAfterCreate(PuddleCreateSystemOperator):
    """Try 1 dies once Puddle accepted the create; its system is then set to fail on its way up."""

    def _crash(self, system_id):
        if os.environ.get("FAIL_IT"):
            Admin(os.environ["EMULATOR"]).fail_next_transition(system_id)
        raise RuntimeError("worker lost")

    def _create(self, context, deadline):
        if context["ti"].try_number == 1 and os.environ.get("LOSE_ANSWER"):
            write = self._requests.write

            def lose_answer(operation, system_id, **kw):  # dies between the create's answer and its record
                if system_id:
                    self._crash(system_id)
                return write(operation, system_id, **kw)

            self._requests.write = lose_answer
        return super()._create(context, deadline)

    def _wait(self, context, system, target, deadline, **kw):
        if context["ti"].try_number == 1:
            self._crash(system.id)
        return super()._wait(context, system, target, deadline, **kw)


class CrashAfterRestart(PuddleRestartSystemOperator):
    def _wait(self, context, system, target, deadline, **kw):
        if context["ti"].try_number == 1:
            raise RuntimeError("worker lost")
        return super()._wait(context, system, target, deadline, **kw)
'''






def systems_named(tmp_path: Path, name: str) -> list[tuple[str, int]]:
    """Every system the test's emulator ever made with ``name`` (terminated ones too): (id, status)."""
    with sqlite3.connect(tmp_path / "puddle.sqlite") as db:  # the emulator fixture's database
        return list(db.execute("SELECT id, status FROM systems WHERE name = ?", (name,)))


def output(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    out, err = capfd.readouterr()
    return caplog.text + out + err


def tries(run: Any, task_id: str) -> int:
    return next(ti.try_number for ti in run.get_task_instances() if ti.task_id == task_id)


@pytest.mark.parametrize("lose_answer", [False, True], ids=["answer-recorded", "answer-lost"])
def test_a_retried_create_reconnects_by_id_and_still_owns_its_system(
    puddle_conn: str, emulator: EmulatorServer, tmp_path: Path, deferrable: bool, lose_answer: bool,
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("EMULATOR", emulator.address)
    monkeypatch.setenv("FAIL_IT", "1")
    if lose_answer:
        monkeypatch.setenv("LOSE_ANSWER", "1")
    dag_id = f"durable_create_{int(deferrable)}_{int(lose_answer)}"
    run, states = run_dag(dag_id, deferrable, CRASHES + """
CrashAfterCreate(task_id="create", name="durable", terminate_on_failure=True, **CREATE, **COMMON, **RETRY)
""")
    assert states == {"create": "failed"} and tries(run, "create") == 2
    made = systems_named(tmp_path, "durable")
    assert len(made) == 1, made  # the retry created no second system
    # Terminating or gone: the retry kept ownership, so its failed wait cleaned the system up.
    assert made[0][1] in (System.SYSTEM_STATUS_TERMINATING.code, System.SYSTEM_STATUS_TERMINATED.code)
    text = output(capfd, caplog)
    assert "reconnecting to it by id (created by this task instance)" in text
    assert ("sent a create and stopped before its answer" in text) == lose_answer  # matched by name and time
    assert "Terminating system" in text


def test_a_retried_create_that_succeeds_returns_the_first_tries_system(
    puddle_conn: str, tmp_path: Path, client: SystemsClient, deferrable: bool,
) -> None:
    run, states = run_dag(f"durable_create_ok_{int(deferrable)}", deferrable, CRASHES + """
CrashAfterCreate(task_id="create", name="durable-ok", **CREATE, **COMMON, **RETRY)
""")
    assert states == {"create": "success"} and tries(run, "create") == 2
    made = systems_named(tmp_path, "durable-ok")
    assert len(made) == 1 and client.get(made[0][0]).status_text == "Started"


def test_a_retried_restart_waits_for_the_restart_already_accepted(
    puddle_conn: str, client: SystemsClient, deferrable: bool, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    system = client.wait_for_system_started(client.create("durable-restart", product="dai", version="1.11.1",
                                                          instance_type_name="m5.2xlarge",
                                                          tags=[TagData("Team", "ml")]).id)
    run, states = run_dag(f"durable_restart_{int(deferrable)}", deferrable, CRASHES + f"""
CrashAfterRestart(task_id="restart", system_id="{system.id}", **COMMON, **RETRY)
""")
    assert states == {"restart": "success"} and tries(run, "restart") == 2
    text = output(capfd, caplog)
    assert text.count("Asked Puddle to restart system durable-restart") == 1  # not restarted again
    assert "Try 1 asked Puddle to restart system durable-restart" in text


EACH = '''
class CrashAfterRequest:
    """Try 1 dies once Puddle accepted the request, before the wait for the goal."""

    def _wait(self, context, system, target, deadline, **kw):
        if context["ti"].try_number == 1 and kw.get("then", "execute_complete") == "execute_complete":
            raise RuntimeError("worker lost")
        return super()._wait(context, system, target, deadline, **kw)


class Start(CrashAfterRequest, PuddleStartSystemOperator): pass
class Stop(CrashAfterRequest, PuddleStopSystemOperator): pass
class Terminate(CrashAfterRequest, PuddleTerminateSystemOperator): pass
class UpdateConfig(CrashAfterRequest, PuddleUpdateConfigTomlOperator): pass
'''

CASES = {  # operator, its extra arguments, the state it starts from, what it asks for, the state it ends in
    "start": ("Start", "", "stopped", ["start"], "Started"),
    "stop": ("Stop", "", "started", ["stop"], "Stopped"),
    "terminate": ("Terminate", "", "started", ["terminate"], "Terminated"),
    "update-config-toml": ("UpdateConfig", 'config_toml="max_runtime_minutes = 5", restart=True,', "started",
                           ["update config toml", "restart"], "Started"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_retry_after_a_crash_asks_puddle_once_and_ends_in_the_goal(
    case: str, puddle_conn: str, client: SystemsClient, deferrable: bool, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    operator, extra, start, asks, goal = CASES[case]
    name = f"durable-{case}"
    system = client.wait_for_system_started(client.create(name, product="dai", version="1.11.1",
                                                          instance_type_name="m5.2xlarge",
                                                          tags=[TagData("Team", "ml")]).id)
    if start == "stopped":
        client.wait_for_system_stopped(client.stop(system.id).id)
    run, states = run_dag(f"durable_{case.replace('-', '_')}_{int(deferrable)}", deferrable, CRASHES + EACH + f"""
{operator}(task_id="op", system_id="{system.id}", {extra} **COMMON, **RETRY)
""")
    assert states == {"op": "success"} and tries(run, "op") == 2
    text = output(capfd, caplog)
    for action in asks:  # each request once, over both tries
        assert text.count(f"Asked Puddle to {action} system {name}") == 1, action
    found = client.get(system.id)
    assert (found.status_text if found is not None else "Terminated") == goal


AROUND = '''
class CrashAroundRestart(PuddleRestartSystemOperator):
    """Try 1 dies just before its restart is sent, or between Puddle's answer and its record."""

    def _begin(self, context):
        super()._begin(context)
        if context["ti"].try_number != 1:
            return
        write, point = self._requests.write, os.environ["CRASH_POINT"]

        def crash(operation, system_id, **kw):
            if point == "before-send" and kw.get("sent"):
                write(operation, system_id, **kw)
                raise RuntimeError("worker lost before the restart was sent")
            if point == "after-answer" and not kw.get("sent"):
                raise RuntimeError("worker lost before the answer was recorded")
            return write(operation, system_id, **kw)

        self._requests.write = crash
'''


@pytest.mark.parametrize(("point", "said"), [("before-send", "did not change since: asking again"),
                                             ("after-answer", "changed since: it went through")])
def test_a_restart_sent_without_a_recorded_answer_is_asked_again_only_if_it_did_not_happen(
    point: str, said: str, puddle_conn: str, client: SystemsClient, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("CRASH_POINT", point)
    name = f"sent-{point}"
    system = client.wait_for_system_started(client.create(name, product="dai", version="1.11.1",
                                                          instance_type_name="m5.2xlarge",
                                                          tags=[TagData("Team", "ml")]).id)
    time.sleep(1.1)  # the restart is sent in a later second than the system's last change
    run, states = run_dag(f"sent_{point.replace('-', '_')}", False, CRASHES + AROUND + f"""
CrashAroundRestart(task_id="restart", system_id="{system.id}", **COMMON, **RETRY)
""")
    assert states == {"restart": "success"} and tries(run, "restart") == 2
    text = output(capfd, caplog)
    assert text.count(f"Asked Puddle to restart system {name}") == 1  # restarted exactly once
    assert f"Try 1 sent a restart to system {name} and stopped before its answer; the system {said}" in text
