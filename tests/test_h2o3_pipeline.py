"""The H2O-3 example DAG in real Airflow (``dag.test()``) against an emulator running real H2O-3 nodes."""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import System
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.emulator.server import EmulatorServer
from tests.conftest import load_dag
from tests.test_example_dags import (  # noqa: F401 (an autouse fixture)
    EXAMPLE_DAGS,
    _airflow_logging_configured,
    assert_secret_absent,
    states,
    xcoms,
)

pytestmark = [pytest.mark.airflow]

TERMINATED = System.SYSTEM_STATUS_TERMINATED.code


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """One emulator with real H2O-3 nodes for the module (each run makes and terminates its own system)."""
    server = EmulatorServer(port=0, db_path=str(tmp_path_factory.mktemp("real") / "puddle.sqlite"),
                            step_seconds=0.5, h2o3="real", h2o3_max_nodes=2)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[SystemsClient]:
    auth = Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    yield SystemsClient(CLOUD_AWS, authorizer=auth)
    auth.close()


def load_pipeline(monkeypatch: pytest.MonkeyPatch, tag: str) -> object:
    monkeypatch.setenv("PUDDLE_POLL_INTERVAL", "0.5")
    name = "puddle_h2o3_train_pipeline"
    source = (EXAMPLE_DAGS / f"{name}.py").read_text().replace(f'dag_id="{name}"', f'dag_id="{name}__{tag}"')
    return load_dag(source, f"{name}__{tag}.py")


@pytest.mark.both_clients
def test_pipeline_trains_a_real_gbm_exports_its_mojo_and_terminates(
    emulator: EmulatorServer, puddle_conn: str, puddle_client: str, airflow_db: str, client: SystemsClient,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    dag = load_pipeline(monkeypatch, f"ok_{puddle_client}")

    run = dag.test(run_conf={"artifacts_dir": str(tmp_path / "artifacts")})  # type: ignore[attr-defined]

    assert str(run.state) == "success", states(run)
    pushed = xcoms(run)
    created = pushed[("create_system", -1, "return_value")]
    trained = pushed[("train", -1, "return_value")]
    assert created["product"] == "h2o3"
    assert created["default_url"].startswith("http://127.0.0.1:")
    assert trained["h2o_version"] == emulator.nodes.runtime.version  # type: ignore[union-attr]
    # A real model: AUC on the held-out split of prostate is well above chance.
    assert 0.6 < trained["auc"] <= 1.0
    assert 0.0 < trained["logloss"] < 1.0
    mojo = Path(trained["mojo_path"])
    assert mojo.parent.parent == tmp_path / "artifacts"
    assert zipfile.is_zipfile(mojo), mojo
    assert "model.ini" in zipfile.ZipFile(mojo).namelist()
    assert f"AUC {trained['auc']:.4f}" in caplog.text
    system = client.get(created["id"])
    assert system is not None and system.status == TERMINATED, system
    assert emulator.nodes.manager.running() == {}  # type: ignore[union-attr]
    assert_secret_absent(system.password, run, caplog.text)


def test_failed_training_still_terminates_the_system(
    emulator: EmulatorServer, puddle_conn: str, airflow_db: str, client: SystemsClient,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    dag = load_pipeline(monkeypatch, "fail")

    run = dag.test(run_conf={"fail_training": True, "artifacts_dir": str(tmp_path)})  # type: ignore[attr-defined]

    assert states(run) == {("create_system", -1): "success", ("train", -1): "failed",
                           ("terminate_system", -1): "success"}
    assert str(run.state) == "failed"
    created = xcoms(run)[("create_system", -1, "return_value")]
    system = client.get(created["id"])
    assert system is not None and system.status == TERMINATED, system
    assert emulator.nodes.manager.running() == {}  # type: ignore[union-attr]
    assert_secret_absent(system.password, run, caplog.text)
