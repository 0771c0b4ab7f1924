"""The example DAGs, run end to end through a real Airflow (``dag.test()``) against the emulator.

Each DAG runs with its waits in the triggerer and in the worker: the operators read
``[operators] default_deferrable`` when they are built, so the env var is set before the
DAG file is loaded. Each mode gets its own copy of the file with its own dag_id, since
dag_ids must be unique in the dags folder ``dag.test()`` syncs to the metadata DB.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_puddle.client import SystemsClient
from airflow_puddle.client.models import System, TagData
from airflow_puddle.emulator.server import EmulatorServer
from tests.conftest import Admin, load_dag

pytestmark = [pytest.mark.airflow, pytest.mark.both_clients]

EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "example_dags"
MODES = ["deferrable", "worker"]
STARTED = System.SYSTEM_STATUS_STARTED.code
STOPPED = System.SYSTEM_STATUS_STOPPED.code
TERMINATED = System.SYSTEM_STATUS_TERMINATED.code


@pytest.fixture(scope="module", autouse=True)
def _airflow_logging_configured() -> None:
    """Import Airflow (which configures logging) before any test body runs.

    Airflow replaces the root logger's handlers when it first configures logging; if
    that happened inside a test, that test's ``caplog`` would see none of the run's logs
    and the secret-in-logs check would pass vacuously.
    """
    import airflow.sdk  # noqa: F401




def load_example(name: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Load ``example_dags/<name>.py`` as ``<name>__<mode>``, with fast polls and the mode's deferrability."""
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", str(mode == "deferrable"))
    monkeypatch.setenv("PUDDLE_POLL_INTERVAL", "0.2")
    monkeypatch.setenv("PUDDLE_TRAIN_STEPS", "2")
    source = (EXAMPLE_DAGS / f"{name}.py").read_text()
    dag_id = f"{name}__{mode}"
    renamed = source.replace(f'dag_id="{name}"', f'dag_id="{dag_id}"')
    assert renamed.count(dag_id) == 1, f"expected exactly one dag_id={name!r} in {name}.py"
    dag = load_dag(renamed, f"{dag_id}.py")
    assert dag.dag_id == dag_id
    # Mapped operators are built (and read the default) only when each map index runs.
    built = [t for t in dag.tasks if hasattr(t, "deferrable")]
    assert all(t.deferrable is (mode == "deferrable") for t in built)
    return dag


def deferrals(output: str) -> int:
    """How many times ``dag.test()`` ran a trigger: once per wait handed to the triggerer."""
    return output.count("[DAG TEST] running trigger in line")


def status_of(client: SystemsClient, system_id: str) -> int:
    system = client.get(system_id)
    assert system is not None, f"system {system_id} not found"
    return system.status


def states(run: Any) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}


def xcoms(run: Any) -> dict[tuple[str, int, str], Any]:
    """Every XCom the run pushed, deserialized, by (task_id, map_index, key)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows: list[Any] = list(session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id)))
        return {(r.task_id, r.map_index, r.key): XComModel.deserialize_value(r) for r in rows}


def rendered_fields(run: Any) -> list[Any]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(session.scalars(
            select(RTIF.rendered_fields).where(RTIF.dag_id == run.dag_id, RTIF.run_id == run.run_id)
        ))


def assert_secret_absent(secret: str, run: Any, output: str) -> None:
    """The secret is in no XCom, no rendered template field and no log line of the run."""
    assert len(secret) >= 8, "the check needs a real secret"
    for key, value in xcoms(run).items():
        assert secret not in json.dumps(value, default=str), f"secret in XCom {key}"
    for fields in rendered_fields(run):
        assert secret not in json.dumps(fields, default=str), "secret in rendered template fields"
    assert secret not in output, "secret in the run's log output"


# --------------------------------------------------------------------------- puddle_train_pipeline


@pytest.mark.parametrize("mode", MODES)
def test_train_pipeline_creates_trains_and_terminates(
    mode: str, emulator: EmulatorServer, puddle_conn: str, airflow_db: str, client: SystemsClient,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    dag = load_example("puddle_train_pipeline", mode, monkeypatch)

    run = dag.test()

    assert states(run) == {("create_system", -1): "success", ("train_model", -1): "success",
                           ("terminate_system", -1): "success"}
    assert str(run.state) == "success"
    output = caplog.text
    assert "Training step 2/2" in output  # the task's own log lines are in what the check reads
    assert deferrals(output) == (2 if mode == "deferrable" else 0)  # create and terminate waited
    pushed = xcoms(run)
    created = pushed[("create_system", -1, "return_value")]
    assert created["status_text"] == "Started"
    assert created["name"] == f"train-{run_system_suffix(run.run_id)}"
    assert "password" not in created
    trained = pushed[("train_model", -1, "return_value")]
    assert trained["system_id"] == created["id"]
    assert trained["url"] == created["default_url"] != ""
    assert trained["experiment"]["steps"] == 2

    system = client.get(created["id"])
    assert system is not None
    assert system.status == TERMINATED, system.status_text
    # Training kept the idle deadline fresh: refreshed after the system came up.
    assert system.idle_timeout >= created["idle_timeout"]
    assert_secret_absent(system.password, run, output)


@pytest.mark.parametrize("mode", MODES)
def test_train_pipeline_teardown_terminates_after_failed_training(
    mode: str, emulator: EmulatorServer, puddle_conn: str, airflow_db: str, client: SystemsClient,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    dag = load_example("puddle_train_pipeline", mode, monkeypatch)

    run = dag.test(run_conf={"fail_training": True})

    assert states(run) == {("create_system", -1): "success", ("train_model", -1): "failed",
                           ("terminate_system", -1): "success"}
    # The teardown's success does not hide the failed training.
    assert str(run.state) == "failed"
    created = xcoms(run)[("create_system", -1, "return_value")]
    system = client.get(created["id"])
    assert system is not None
    assert system.status == TERMINATED, system.status_text
    assert client.list() == []
    assert_secret_absent(system.password, run, caplog.text)


# --------------------------------------------------------------------------- puddle_stop_idle_systems


def make_started(client: SystemsClient, specs: list[tuple[str, int, str]]) -> dict[str, System]:
    """Create (name, idle_interval minutes, Team tag) systems and wait until all are started."""
    made = [client.create(name, product="dai", version="1.11.1", instance_type_name="m5.2xlarge",
                          idle_interval=idle, tags=[TagData("Team", team.split("+")[0])]
                          + ([TagData("Purpose", "training")] if team.endswith("+training") else []))
            for name, idle, team in specs]
    return {s.name: client.wait_for_system_started(s.id, poll_interval_s=0.05, timeout_s=30) for s in made}


@pytest.mark.parametrize("mode", MODES)
def test_stop_idle_systems_stops_exactly_the_idle_ones(
    mode: str, emulator: EmulatorServer, puddle_conn: str, airflow_db: str, client: SystemsClient,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, puddle_client: str,
) -> None:
    # The documented puddle.client API has no system tags: with it, the run filters by name only.
    by_tag = puddle_client == "builtin"
    # With a 120 min margin an idle interval of 60 min is "idle", one of 240 min is not.
    systems = make_started(client, [
        ("nightly-a", 60, "ds"),        # idle: stop
        ("nightly-b", 60, "ds"),        # idle: stop
        ("nightly-busy", 240, "ds"),    # deadline beyond the margin: spared
        ("adhoc-c", 60, "ds"),          # idle but the prefix does not match: spared
        ("nightly-ops", 60, "ops"),     # idle but the tag does not match: spared
        ("nightly-off", 60, "ds"),      # stopped already: not considered
        ("nightly-train", 60, "ds+training"),  # idle deadline near, but an experiment runs: spared
    ])
    off = systems["nightly-off"].id
    client.stop(off)
    client.wait_for_system_stopped(off, poll_interval_s=0.05, timeout_s=30)
    # The emulator keeps one experiment running on a system tagged Purpose=training.
    running = {s.name for s in systems.values() if any(m.progress < 1 for m in client.get(s.id).models or [])}
    assert running == {"nightly-train"}
    caplog.set_level(logging.DEBUG)
    dag = load_example("puddle_stop_idle_systems", mode, monkeypatch)

    run = dag.test(run_conf={"name_prefix": "nightly-", "tag_filter": "Team=ds" if by_tag else "",
                             "idle_margin_minutes": 120})

    assert str(run.state) == "success"
    idle_names = {"nightly-a", "nightly-b"} | (set() if by_tag else {"nightly-ops"})
    assert deferrals(caplog.text) == (len(idle_names) if mode == "deferrable" else 0)
    assert states(run) == {("find_idle_systems", -1): "success", ("report", -1): "success",
                           **{("stop_idle_system", i): "success" for i in range(len(idle_names))}}
    idle = {systems[n].id for n in idle_names}
    pushed = xcoms(run)
    assert set(pushed[("find_idle_systems", -1, "return_value")]) == idle
    spared = {s["name"]: s["reason"] for s in pushed[("find_idle_systems", -1, "spared")]}
    assert spared.keys() == {"nightly-busy", "adhoc-c", "nightly-train"} | ({"nightly-ops"} if by_tag else set())
    assert "still running" in spared["nightly-train"]
    assert "margin" in spared["nightly-busy"]
    assert "nightly-" in spared["adhoc-c"]
    assert not by_tag or "Team=ds" in spared["nightly-ops"]
    stopped_by_map = {pushed[("stop_idle_system", i, "return_value")]["id"] for i in range(len(idle_names))}
    assert stopped_by_map == idle
    result = pushed[("report", -1, "return_value")]
    assert {s["id"] for s in result["stopped"]} == idle
    assert {s["name"] for s in result["spared"]} == spared.keys()

    now = {s.name: status_of(client, s.id) for s in systems.values()}
    assert now == {"nightly-a": STOPPED, "nightly-b": STOPPED, "nightly-busy": STARTED, "adhoc-c": STARTED,
                   "nightly-ops": STARTED if by_tag else STOPPED, "nightly-off": STOPPED, "nightly-train": STARTED}


def test_stop_idle_systems_tag_filter_says_it_needs_the_builtin_client(
    emulator: EmulatorServer, puddle_conn: str, airflow_db: str, client: SystemsClient,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], puddle_client: str,
) -> None:
    systems = make_started(client, [("idle-tagged", 60, "ds")])
    dag = load_example("puddle_stop_idle_systems", "worker", monkeypatch)

    run = dag.test(run_conf={"tag_filter": "Team=ds", "idle_margin_minutes": 120})

    if puddle_client == "builtin":
        assert str(run.state) == "success"
        assert status_of(client, systems["idle-tagged"].id) == STOPPED
        return
    assert states(run)[("find_idle_systems", -1)] == "failed"
    output = capsys.readouterr()
    assert "System.tags is not part of the documented puddle.client API" in output.out + output.err
    assert status_of(client, systems["idle-tagged"].id) == STARTED  # failed before stopping anything


def test_stop_idle_systems_with_nothing_idle_skips_the_stops(
    emulator: EmulatorServer, puddle_conn: str, airflow_db: str, client: SystemsClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    systems = make_started(client, [("busy-a", 240, "ds")])
    dag = load_example("puddle_stop_idle_systems", "worker", monkeypatch)

    run = dag.test(run_conf={"idle_margin_minutes": 30})

    assert str(run.state) == "success"
    got = states(run)
    assert got[("find_idle_systems", -1)] == "success"
    assert got[("report", -1)] == "success"
    # Expanding over no ids leaves the mapped task skipped, not failed.
    assert [s for (task, _), s in got.items() if task == "stop_idle_system"] == ["skipped"]
    result = xcoms(run)[("report", -1, "return_value")]
    assert result["stopped"] == []
    assert [s["name"] for s in result["spared"]] == ["busy-a"]
    assert status_of(client, systems["busy-a"].id) == STARTED


def test_stop_idle_systems_report_fails_the_run_when_a_stop_fails(
    emulator: EmulatorServer, admin: Admin, puddle_conn: str, airflow_db: str, client: SystemsClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    systems = make_started(client, [("idle-ok", 60, "ds"), ("idle-bad", 60, "ds")])
    admin.fail_next_transition(systems["idle-bad"].id)  # its stop ends in Failed
    dag = load_example("puddle_stop_idle_systems", "deferrable", monkeypatch)

    run = dag.test(run_conf={"idle_margin_minutes": 120})

    got = states(run)
    mapped = {i: s for (task, i), s in got.items() if task == "stop_idle_system"}
    assert sorted(mapped.values()) == ["failed", "success"]
    # The report still runs, and fails so that the run does not look successful.
    assert got[("report", -1)] == "failed"
    assert str(run.state) == "failed"
    assert status_of(client, systems["idle-ok"].id) == STOPPED
    assert status_of(client, systems["idle-bad"].id) == System.SYSTEM_STATUS_FAILED.code


def run_system_suffix(run_id: str) -> str:
    import hashlib

    return hashlib.sha256(f"puddle_train_pipeline/{run_id}".encode()).hexdigest()[:12]


def test_two_runs_of_the_train_pipeline_never_share_a_system_name() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "example_dags" / "puddle_train_pipeline.py"
    spec = importlib.util.spec_from_file_location("train_pipeline_names", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    same_second = ["manual__2026-11-24T12:00:00+00:00", "manual__2026-11-24T12:00:00.000001+00:00",
                   "scheduled__2026-11-24T12:00:00+00:00"]
    names = {f"train-{module.run_system_suffix(r)}" for r in same_second}
    assert len(names) == 3
    assert module.run_system_suffix(same_second[0]) == module.run_system_suffix(same_second[0])  # stable on retry
    from airflow_puddle.domain.validation import validate_name

    for name in names:
        validate_name(name)
