"""Real H2O-3 systems, over gRPC: each started H2O-3 system is a real, authenticated H2O-3 node.

These tests boot JVMs (2-5 s each). One emulator with at most one node serves the module;
each test terminates what it made.
"""

from __future__ import annotations

import base64
import os
import signal
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_puddle.client import CLOUD_AWS, PRODUCT_H2O3, Authorizer, SystemsClient
from airflow_puddle.client.models import System, TagData
from airflow_puddle.domain.errors import PreconditionFailedError, SystemFailedError, ValidationFailedError
from airflow_puddle.emulator import EmulatorServer
from airflow_puddle.emulator.h2o3 import find_runtime
from tests.emulator.conftest import API_KEY_ID, API_SECRET_KEY

VERSION = find_runtime().version
_S = System


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    srv = EmulatorServer(db_path=str(tmp_path_factory.mktemp("real") / "db.sqlite"), api_key_id=API_KEY_ID,
                         api_secret_key=API_SECRET_KEY, step_seconds=0.3, h2o3="real", h2o3_max_nodes=1)
    srv.start()
    yield srv
    srv.stop(grace=0)


@pytest.fixture
def systems(real: EmulatorServer) -> Iterator[SystemsClient]:
    auth = Authorizer(real.address, API_KEY_ID, API_SECRET_KEY)
    client = SystemsClient(CLOUD_AWS, authorizer=auth)
    yield client
    for s in client.list():  # leave no node for the next test
        client.wait(s.id, "settled", poll_interval_s=0.2, timeout_s=60)
        client.terminate(s.id)
        client.wait(s.id, "terminated", poll_interval_s=0.2, timeout_s=60)
    auth.close()


def create(systems: SystemsClient, name: str, version: str = VERSION) -> System:
    return systems.create(name, product=PRODUCT_H2O3, version=version, instance_type_name="m5.2xlarge",
                          tags=[TagData("Team", "ml")])


def wait(systems: SystemsClient, system_id: str, target: str) -> System:
    outcome = systems.wait(system_id, target, poll_interval_s=0.2, timeout_s=90)  # type: ignore[arg-type]
    system = outcome.result()
    assert system is not None
    return system


DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str, auth: tuple[str, str] | None = None) -> int | str:
    request = urllib.request.Request(url + "/3/Cloud")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with DIRECT.open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError as err:
        return type(err).__name__


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_a_started_h2o3_system_is_a_real_authenticated_node_through_its_lifecycle(
    real: EmulatorServer, systems: SystemsClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert real.nodes is not None
    # The node's health check (which carries its login) never goes to a proxy; gRPC is told to go direct.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_grpc_proxy", "127.0.0.1")
    created = create(systems, "life")
    assert created.status == _S.SYSTEM_STATUS_INITIALIZING.code

    started = wait(systems, created.id, "started")
    url, login = started.default_url, (started.username, started.password)
    assert url.startswith("http://127.0.0.1:")
    assert started.version == VERSION
    assert started.product_status == _S.PRODUCT_STATUS_READY.code
    assert http_status(url) == 401
    assert http_status(url, (started.username, "wrong-password")) == 401
    assert http_status(url, login) == 200
    pid = real.nodes.manager.running()[created.id]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    home = real.nodes.manager.data_dir / created.id
    for flag in ("-XX:-UsePerfData", "-Dsys.ai.h2o.ext.core.toggle.XGBoost=false", f"-Djava.io.tmpdir={home}/tmp"):
        assert flag in argv
    assert argv[argv.index("-ip") + 1] == argv[argv.index("-web_ip") + 1] == "127.0.0.1"
    assert argv[argv.index("-flatfile") + 1] == f"{home}/flatfile.txt"
    assert stat.S_IMODE((home / "login.conf").stat().st_mode) == 0o600

    systems.stop(created.id)
    assert not alive(pid)  # gone when the stop is accepted: the URL serves only while Started
    wait(systems, created.id, "stopped")
    assert (home / "node.out").is_file()  # a stopped system keeps its node's logs
    assert http_status(url, login) == "URLError"

    systems.start(created.id)
    restarted = wait(systems, created.id, "started")
    assert restarted.default_url == url  # the same URL when its ports are free
    assert http_status(url, login) == 200
    pid = real.nodes.manager.running()[created.id]

    systems.restart(created.id)
    rebooted = wait(systems, created.id, "started")
    assert real.nodes.manager.running()[created.id] != pid  # a restart boots a new node
    assert not alive(pid)
    assert http_status(rebooted.default_url, login) == 200

    pid = real.nodes.manager.running()[created.id]
    systems.terminate(created.id)
    assert not alive(pid)
    wait(systems, created.id, "terminated")
    assert real.nodes.manager.running() == {}
    assert not home.exists()


def test_create_and_start_past_the_cap_or_of_another_version_are_refused_before_anything_changes(
    real: EmulatorServer, systems: SystemsClient,
) -> None:
    with pytest.raises(ValidationFailedError, match=rf"version: .*can only be version {VERSION}.*'3\.44\.0\.3'"):
        create(systems, "old", version="3.44.0.3")
    first = wait(systems, create(systems, "first").id, "started")

    with pytest.raises(PreconditionFailedError, match=r"at most 1 \(--h2o3-max-nodes\)"):
        create(systems, "second")
    assert [s.name for s in systems.list()] == ["first"]

    pid = real.nodes.manager.running()[first.id]  # type: ignore[union-attr]
    real.backend.advance_clock(first.idle_timeout_interval * 60 + 1)  # its idle timeout stops it
    wait(systems, first.id, "stopped")
    assert gone_within(pid, 10)
    second = create(systems, "second")
    with pytest.raises(PreconditionFailedError, match="--h2o3-max-nodes"):
        systems.start(first.id)
    assert systems.get(first.id).status == _S.SYSTEM_STATUS_STOPPED.code  # type: ignore[union-attr]
    wait(systems, second.id, "started")


def test_a_node_killed_from_outside_fails_its_system_with_the_reason(
    real: EmulatorServer, systems: SystemsClient,
) -> None:
    assert real.nodes is not None
    created = create(systems, "victim")
    wait(systems, created.id, "started")
    pid = real.nodes.manager.running()[created.id]

    os.kill(pid, signal.SIGKILL)

    outcome = systems.wait(created.id, "failed", poll_interval_s=0.2, timeout_s=30)
    failed = outcome.result()
    assert failed is not None
    assert failed.status == _S.SYSTEM_STATUS_FAILED.code
    assert "the H2O-3 node exited (code" in failed.failure_reason
    assert real.nodes.manager.running() == {}
    assert not (real.nodes.manager.data_dir / created.id).exists()
    # A failed system can be stopped and started again: a new node.
    systems.stop(created.id)
    wait(systems, created.id, "stopped")
    systems.start(created.id)
    again = wait(systems, created.id, "started")
    assert again.failure_reason == ""
    assert http_status(again.default_url, (again.username, again.password)) == 200


def test_a_node_not_healthy_in_time_fails_its_system_and_leaves_no_jvm(tmp_path: Path) -> None:
    with EmulatorServer(db_path=str(tmp_path / "db.sqlite"), api_key_id=API_KEY_ID, api_secret_key=API_SECRET_KEY,
                        step_seconds=0.3, h2o3="real", h2o3_boot_timeout=0.3) as srv:
        auth = Authorizer(srv.address, API_KEY_ID, API_SECRET_KEY)
        systems = SystemsClient(CLOUD_AWS, authorizer=auth)
        created = create(systems, "slow")
        with pytest.raises(SystemFailedError, match=r"not healthy within 0\.3 s"):
            wait(systems, created.id, "started")
        failed = systems.get(created.id)
        assert failed is not None and "not healthy within 0.3 s" in failed.failure_reason
        assert srv.nodes is not None and srv.nodes.manager.running() == {}
        auth.close()
