"""``PuddleHook.h2o_session``: the h2o client on a Started H2O-3 system, with both ``extra.client`` values."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import System, TagData
from airflow_puddle.domain.errors import ValidationFailedError
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.emulator.server import EmulatorServer
from airflow_puddle.hooks.h2o import H2OSessionError
from airflow_puddle.hooks.puddle import PuddleHook
from tests.conftest import client_extra, connection_json

pytestmark = pytest.mark.both_clients


def make(systems: SystemsClient, name: str, product: str, version: str) -> System:
    created = systems.create(name, product=product, version=version, instance_type_name="m5.2xlarge",
                             tags=[TagData("Team", "ml")])
    started = systems.wait(created.id, "started", poll_interval_s=0.1, timeout_s=60).result()
    assert started is not None
    return started


def test_a_session_needs_a_started_h2o3_system_and_says_which_rule_failed(puddle_conn: str, emulator: Any) -> None:
    hook = PuddleHook()
    systems = hook.get_systems_client()
    dai = make(systems, "dai-one", "dai", "1.11.1")
    h2o3 = make(systems, "h2o3-one", "h2o3", "3.46.0.6")
    systems.stop(h2o3.id)
    systems.wait(h2o3.id, "stopped", poll_interval_s=0.1, timeout_s=60)

    with pytest.raises(H2OSessionError, match=r"runs 'dai'; an H2O-3 session needs an h2o3 system"):
        hook.h2o_session(dai.id).__enter__()
    with pytest.raises(H2OSessionError, match=r"is Stopped; an H2O-3 session needs it Started"):
        hook.h2o_session(h2o3.id).__enter__()
    with pytest.raises(H2OSessionError, match=r"system_id: no system 'nope'"):
        hook.h2o_session("nope").__enter__()
    with pytest.raises(ValidationFailedError, match="system_id"):
        hook.h2o_session("").__enter__()
    hook.close()


def test_without_the_h2o_package_the_error_names_the_extra(
    puddle_conn: str, emulator: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "h2o", None)  # what Python does for a package that is not installed
    with pytest.raises(H2OSessionError, match=r"pip install 'airflow-provider-puddle\[h2o\]'"):
        PuddleHook().h2o_session("any-id").__enter__()


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    srv = EmulatorServer(port=0, db_path=str(tmp_path_factory.mktemp("real") / "db.sqlite"), step_seconds=0.3,
                         h2o3="real", h2o3_max_nodes=1)
    srv.start()
    yield srv
    srv.stop()


def test_a_session_connects_with_the_systems_login_masks_it_and_disconnects(
    real: EmulatorServer, puddle_client: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact

    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(real.address, **client_extra(puddle_client)))
    auth = Authorizer(real.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    systems = SystemsClient(CLOUD_AWS, authorizer=auth)
    assert real.nodes is not None
    system = make(systems, f"session-{puddle_client}", "h2o3", real.nodes.runtime.version)
    try:
        with PuddleHook() as hook, hook.h2o_session(system.id) as h2o:
            connection = h2o.connection()
            assert connection.connected
            assert h2o.cluster().version == real.nodes.runtime.version
            frame = h2o.H2OFrame({"x": [1, 2, 3]})
            assert frame.nrows == 3
            assert system.password not in str(redact(f"oops {system.password}"))
        assert not connection.connected
        assert system.password not in json.dumps(repr(connection))
    finally:
        systems.terminate(system.id)
        systems.wait(system.id, "terminated", poll_interval_s=0.2, timeout_s=60)
        auth.close()
