"""One behaviour in every mode (issue 19 §1): how a wait ends decides the task's end, not how it waits.

Each sensor and each waiting operator meets each outcome of a wait in real Airflow
(``dag.test()``), with ``retries=1`` and ``retry_delay=0``, in every mode: the sensors in poke,
reschedule and deferrable mode, the operators in the worker and deferred. One DAG per mode holds
every cell, each on a system of its own. :data:`OPERATOR_EXPECTED` and :data:`SENSOR_EXPECTED`
give one expectation per (task kind, outcome, soft_fail) that names no mode, and every mode is
held to it: the end state, the number of tries, and the exception that ended the first try.

``dag.test()`` runs the tasks one at a time in this process, re-runs a task that is up for retry
(``retry_delay=0``) as a new try (``try_number`` 2), re-runs a rescheduled sensor in the same try,
and runs a deferred task's trigger inline, then resumes the task. The tasks run in no set order,
so every system is stable (or, on the slow emulator, in a step that outlasts the run) until its
own task acts on it.

How each outcome is made:

- reached, failed: the operator's own call starts the transition; a sensor's system is started
  (or its config.toml upload begun) by the task's ``pre_execute``, so the sensor meets the system
  on its way and, deferred, learns the end from the trigger. ``failed`` is the emulator's
  ``fail_next_transition`` on that system (``config_upload=True`` for uploads).
- gone: a system id that does not exist.
- timed out: an operator with ``timeout=0.05`` s, on an emulator whose steps last ten minutes (so
  the retry finds the system still on its way); a sensor with ``timeout=1`` for a state that does
  not come (a started system awaited as stopped; an upload on the slow emulator). The slow
  emulator answers ListSystems late, so a deferred wait there meets its deadline before its first
  poll: still a timeout, as in the worker.
- unavailable: a connection to a loopback port where nothing listens, with fast client retries.
- rejected key: a connection with a wrong secret.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.emulator.server import EmulatorServer
from tests.conftest import Admin, connection_json, load_dag

pytestmark = pytest.mark.usefixtures("airflow_db")

FAST_STEP_S = 0.1
SLOW_STEP_S = 600.0
"""A step on the slow emulator: far longer than a DAG run, so a transition begun there never ends in the test."""
SPEC = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge"}
TAGS = {"Team": "ml"}  # the emulator requires the Team tag
TAG_DATA = [TagData(label, value) for label, value in TAGS.items()]
MISSING_ID = "00000000-0000-4000-8000-000000000000"

OPERATORS = ("create", "start", "stop", "restart", "terminate", "update_config")
SENSORS = ("state", "config")
OUTCOMES = ("reached", "failed", "gone", "timed_out", "unavailable", "rejected_key")

# Combinations that cannot exist, and why:
IMPOSSIBLE = {
    ("create", "gone"): "a create makes the system it waits on; an id that does not exist is not its input",
    ("terminate", "gone"): "terminating a system that does not exist succeeds by design (nothing to do)",
}
# ``create`` / ``failed`` exists through adoption: a stopped system of the same name and spec is
# started by the operator, and that start fails while the operator waits.

# One table, for every mode: (end state, tries, what failed the first try, by class name: the
# exception the verdict chose, which decides whether Airflow retries; None for a skip or a success).
Expected = tuple[str, int, str | None]
OPERATOR_EXPECTED: dict[str, Expected] = {
    "reached": ("success", 1, None),
    "failed": ("failed", 1, "AirflowFailException"),
    "gone": ("failed", 1, "AirflowFailException"),
    "timed_out": ("failed", 2, "PuddleWaitTimeout"),
    "unavailable": ("failed", 2, "PuddleUnavailableError"),
    "rejected_key": ("failed", 1, "AirflowFailException"),
}
SENSOR_EXPECTED: dict[tuple[str, bool], Expected] = {
    ("reached", False): ("success", 1, None),
    ("failed", False): ("failed", 1, "AirflowFailException"),
    ("gone", False): ("failed", 1, "AirflowFailException"),
    ("timed_out", False): ("failed", 1, "AirflowSensorTimeout"),
    ("unavailable", False): ("failed", 2, "PuddleUnavailableError"),
    ("rejected_key", False): ("failed", 1, "AirflowFailException"),
    ("reached", True): ("success", 1, None),
    ("failed", True): ("skipped", 1, None),
    ("gone", True): ("skipped", 1, None),
    ("timed_out", True): ("skipped", 1, None),
    ("unavailable", True): ("failed", 2, "PuddleUnavailableError"),  # an outage is never skipped
    ("rejected_key", True): ("skipped", 1, None),
}

OPERATOR_CLASS = {"create": "PuddleCreateSystemOperator", "start": "PuddleStartSystemOperator",
                  "stop": "PuddleStopSystemOperator", "restart": "PuddleRestartSystemOperator",
                  "terminate": "PuddleTerminateSystemOperator", "update_config": "PuddleUpdateConfigTomlOperator"}
SENSOR_CLASS = {"state": "PuddleSystemStateSensor", "config": "PuddleConfigTomlUploadedSensor"}

SOURCE = '''
import json
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.operators.puddle import *
from airflow_puddle.sensors.puddle import *

RECORD = {record!r}
KICKED = set()


def record(context):
    """Append which exception ended this try (a failure, or one to be retried)."""
    ti, err = context["ti"], context.get("exception")
    with open(RECORD, "a") as out:
        out.write(json.dumps({{"task": ti.task_id, "try": ti.try_number, "exc": type(err).__name__}}) + "\\n")


def started(context):
    """Append that the task started running: once per try, plus once per resumption or reschedule."""
    with open(RECORD, "a") as out:
        out.write(json.dumps({{"task": context["ti"].task_id, "try": context["ti"].try_number}}) + "\\n")


def kick(action, system_id):
    """A pre_execute that begins the transition a sensor waits on, once, just before its first poke."""
    def run(context):
        if context["ti"].task_id in KICKED:
            return
        KICKED.add(context["ti"].task_id)
        with PuddleHook() as hook:  # puddle_default: the fast emulator
            client = hook.get_systems_client()
            client.start(system_id) if action == "start" else client.update_config_toml(system_id, "a = 1")
    return run


COMMON = dict(retries=1, retry_delay=timedelta(0), on_failure_callback=record, on_retry_callback=record,
              on_execute_callback=started)
with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
{tasks}
'''


@dataclass
class Cell:
    """One task of the matrix: what it is, the system it needs, what it must end as.

    ``system``: ``None`` (a create makes its own), ``missing``, ``shared`` (any started system,
    only read), or a system of its own: ``started``, ``stopped``, ``slow-started``,
    ``slow-stopped``, ``slow-uploading``. ``fail``: its next transition (or upload) fails.
    ``kick``: ``start`` or ``upload``, begun by the task's ``pre_execute``.
    """

    task_id: str
    cls: str
    kwargs: dict[str, Any]
    expected: Expected
    system: str | None
    fail: bool = False
    kick: str | None = None
    system_id: str = ""

    def line(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        pre = f"pre_execute=kick({self.kick!r}, {self.system_id!r}), " if self.kick else ""
        return f"    {self.cls}(task_id={self.task_id!r}, {args}, {pre}**COMMON)"


def _dead_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fast(tmp_path: Path) -> Iterator[EmulatorServer]:
    server = EmulatorServer(port=0, db_path=str(tmp_path / "fast.sqlite"), step_seconds=FAST_STEP_S,
                            cu_capacity=100_000)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[EmulatorServer]:
    server = EmulatorServer(port=0, db_path=str(tmp_path / "slow.sqlite"), step_seconds=SLOW_STEP_S,
                            cu_capacity=100_000)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def conns(fast: EmulatorServer, slow: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """puddle_default (fast), puddle_slow, puddle_down (nothing listens) and puddle_badkey (a wrong secret)."""
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(fast.address))
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_SLOW", connection_json(slow.address))
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DOWN", connection_json(f"http://127.0.0.1:{_dead_port()}", retries=1,
                                                                   retry_max_wait=0.02))
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_BADKEY", connection_json(fast.address,
                                                                     secret="not-the-secret-" + "x" * 24))


def operator_cells(deferrable: bool) -> list[Cell]:
    """A cell for each waiting operator and each outcome that can exist for it."""
    cells = []
    for op in OPERATORS:
        for outcome in OUTCOMES:
            if (op, outcome) in IMPOSSIBLE:
                continue
            kw: dict[str, Any] = dict(deferrable=deferrable, poll_interval=0.05, timeout=60)
            if op == "update_config":
                kw["config_toml"] = "a = 1"
            own = "stopped" if op == "start" else "started"
            system: str | None = None if op == "create" else own
            if outcome == "failed" and op == "create":
                system = "stopped"  # adopted, and its start fails while the operator waits
            elif outcome == "gone":
                system = "missing"
            elif outcome == "timed_out":
                kw.update(timeout=0.05, puddle_conn_id="puddle_slow")
                system = None if op == "create" else f"slow-{own}"
            elif outcome in ("unavailable", "rejected_key"):
                kw["puddle_conn_id"] = "puddle_down" if outcome == "unavailable" else "puddle_badkey"
                system = None if op == "create" else "shared"
            cells.append(Cell(f"{op}__{outcome}", OPERATOR_CLASS[op], kw, OPERATOR_EXPECTED[outcome], system,
                              fail=outcome == "failed"))
    return cells


def sensor_cells(mode: str, deferrable: bool) -> list[Cell]:
    """A cell for each system sensor, each outcome, with and without ``soft_fail``."""
    cells = []
    for sensor in SENSORS:
        for outcome in OUTCOMES:
            for soft in (False, True):
                kw: dict[str, Any] = dict(mode=mode, deferrable=deferrable, poke_interval=0.05, soft_fail=soft,
                                          timeout=30)
                if sensor == "state":
                    kw["target_state"] = "started"
                system, kick = "shared", None
                if outcome in ("reached", "failed"):
                    system, kick = ("stopped", "start") if sensor == "state" else ("started", "upload")
                elif outcome == "gone":
                    system = "missing"
                elif outcome == "timed_out":
                    kw["timeout"] = 1
                    if sensor == "state":  # a started system awaited as stopped: it never comes
                        kw["target_state"] = "stopped"
                    else:  # an upload on the slow emulator lasts ten minutes
                        kw["puddle_conn_id"], system = "puddle_slow", "slow-uploading"
                elif outcome == "unavailable":
                    kw.update(timeout=1, puddle_conn_id="puddle_down")
                elif outcome == "rejected_key":
                    kw["puddle_conn_id"] = "puddle_badkey"
                cells.append(Cell(f"{sensor}_sensor__{outcome}__{'soft' if soft else 'hard'}", SENSOR_CLASS[sensor],
                                  kw, SENSOR_EXPECTED[(outcome, soft)], system, fail=outcome == "failed",
                                  kick=kick))
    return cells


def _client(server: EmulatorServer) -> tuple[Authorizer, SystemsClient]:
    auth = Authorizer(server.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    return auth, SystemsClient(CLOUD_AWS, authorizer=auth)


def _settle(client: SystemsClient, ids: list[str], target: str) -> None:
    for system_id in ids:
        outcome = client.wait(system_id, target, timeout_s=30)
        assert outcome.kind == "reached", outcome.message


def prepare(cells: list[Cell], fast: EmulatorServer, slow: EmulatorServer, tag: str) -> None:
    """Give each cell its system, in bulk: created at once, then brought to the state the cell needs.

    Every system is stable when this returns (or, on the slow emulator, in a step that outlasts
    the test), so the order in which ``dag.test()`` runs the tasks does not matter.
    """
    names = iter(f"{tag}-{n}" for n in range(1000))
    (fauth, fc), (sauth, sc) = _client(fast), _client(slow)
    fadmin, sadmin = Admin(fast.address), Admin(slow.address)
    try:
        on_fast = [c for c in cells if c.system in ("started", "stopped")]
        shared, *fast_ids = [fc.create(next(names), **SPEC, tags=TAG_DATA).id for _ in range(len(on_fast) + 1)]
        _settle(fc, [shared, *fast_ids], "started")
        for cell, system_id in zip(on_fast, fast_ids, strict=True):
            cell.system_id = system_id
            if cell.system == "stopped":
                fc.stop(system_id)
        _settle(fc, [c.system_id for c in on_fast if c.system == "stopped"], "stopped")

        on_slow = [c for c in cells if c.system and c.system.startswith("slow-")]
        for cell in on_slow:
            cell.system_id = sc.create(next(names), **SPEC, tags=TAG_DATA).id
        sadmin.advance_clock(3 * SLOW_STEP_S)  # the creates end: started
        _settle(sc, [c.system_id for c in on_slow], "started")
        for cell in on_slow:
            if cell.system == "slow-stopped":
                sc.stop(cell.system_id)
        sadmin.advance_clock(SLOW_STEP_S)  # the stops end; nothing else is moving
        _settle(sc, [c.system_id for c in on_slow if c.system == "slow-stopped"], "stopped")
        for cell in on_slow:
            if cell.system == "slow-uploading":
                sc.update_config_toml(cell.system_id, "a = 1")  # one step: ten minutes
        # On the slow emulator a deferred wait's first list of systems comes after its deadline (an operator's
        # 0.05 s, a sensor's 1 s), always: the deadline is then judged by one look at the system, which Puddle
        # answers: a timeout, not Puddle unavailable.
        sadmin.set_latency("ListSystems", 1.2)

        for cell in cells:
            if cell.system == "shared":
                cell.system_id = shared
            elif cell.system == "missing":
                cell.system_id = MISSING_ID
            if cell.fail:
                fadmin.fail_next_transition(cell.system_id, config_upload=cell.kick == "upload"
                                            or cell.cls == OPERATOR_CLASS["update_config"])
            if cell.cls == OPERATOR_CLASS["create"]:
                name = fc.get(cell.system_id).name if cell.system_id else next(names)  # type: ignore[union-attr]
                cell.kwargs.update(name=name, tags=TAGS, **SPEC)
            else:
                cell.kwargs["system_id"] = cell.system_id
    finally:
        for closable in (fadmin, sadmin, fauth, sauth):
            closable.close()


def read_record(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """Each task's exception on its first try that ended badly, and how often its first try started running."""
    first: dict[str, str] = {}
    runs: dict[str, int] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    for rec in sorted((json.loads(line) for line in lines), key=lambda r: r["try"]):
        if "exc" in rec:
            first.setdefault(rec["task"], rec["exc"])
        elif rec["try"] == 1:
            runs[rec["task"]] = runs.get(rec["task"], 0) + 1
    return first, runs


def waits_away(cell: Cell) -> bool:
    """Whether the cell's first try waits beyond its first run (deferred or rescheduled), not failing before."""
    outcome = cell.task_id.split("__")[1]
    if cell.cls in SENSOR_CLASS.values():
        return outcome in ("reached", "failed", "timed_out", "unavailable")
    return outcome in ("reached", "failed", "timed_out")


MODES = [  # (sensor mode, deferrable, whether the operators run in this DAG)
    pytest.param("poke", False, True, id="poke+worker"),
    pytest.param("reschedule", False, False, id="reschedule"),
    pytest.param("poke", True, True, id="deferred"),
]


@pytest.mark.usefixtures("conns")
@pytest.mark.parametrize(("mode", "deferrable", "operators"), MODES)
def test_one_verdict_in_every_mode(fast: EmulatorServer, slow: EmulatorServer, tmp_path: Path, mode: str,
                                   deferrable: bool, operators: bool) -> None:
    tag = f"{mode[0]}{int(deferrable)}"
    cells = sensor_cells(mode, deferrable) + (operator_cells(deferrable) if operators else [])
    prepare(cells, fast, slow, f"mx{tag}")
    dag_id = f"verdict_matrix_{tag}"
    record = tmp_path / "tries.jsonl"
    source = SOURCE.format(record=str(record), dag_id=dag_id, tasks="\n".join(c.line() for c in cells))
    run = load_dag(source, f"{dag_id}.py").test()
    first, runs = read_record(record)
    got = {ti.task_id: (str(ti.state), ti.try_number, first.get(ti.task_id)) for ti in run.get_task_instances()}
    want = {c.task_id: c.expected for c in cells}
    wrong = {t: f"got {got.get(t)}, want {want[t]}" for t in want if got.get(t) != want[t]}
    assert not wrong, "\n".join(f"{t}: {w}" for t, w in sorted(wrong.items()))
    # The modes did differ on the way: a deferred or rescheduled wait ran its first try more than once
    # (execute, then the resumption or each reschedule); in poke mode and in the worker, once.
    away = mode == "reschedule" or deferrable
    ran = {c.task_id: runs.get(c.task_id, 0) > 1 for c in cells}
    assert ran == {c.task_id: away and waits_away(c) for c in cells}
