"""What one call costs the emulator: one token check per RPC, at most one lifecycle sweep, and a
sweep that reads only the systems whose indexed ``due_at`` has come (kept right across restarts)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from airflow_puddle._proto.puddle.v2 import (
    admin_service_pb2,
    image_service_pb2,
    image_service_pb2_grpc,
    system_service_pb2,
    tag_service_pb2,
    tag_service_pb2_grpc,
)
from airflow_puddle.domain.statuses import SystemStatuses as S
from airflow_puddle.emulator import EmulatorServer, PuddleBackend
from airflow_puddle.emulator.rows import SystemRow, User

from .conftest import API_KEY_ID, API_SECRET_KEY, FakeClock

Metadata = tuple[tuple[str, str], ...]


class Counting:
    """Wraps a callable and counts its calls (and, for list results, the items it returned)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.calls = 0
        self.items: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        result = self.fn(*args, **kwargs)
        if isinstance(result, list):
            self.items.extend(result)
        return result

    def reset(self) -> None:
        self.calls = 0
        self.items.clear()


def _count(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> Counting:
    counter = Counting(getattr(owner, name))
    monkeypatch.setattr(owner, name, counter)
    return counter


def _create(backend: PuddleBackend, user: User, name: str, **overrides: Any) -> SystemRow:
    args: dict[str, Any] = {
        "cloud": "aws", "name": name, "disk_size_gb": 256, "idle_interval": 60, "product": "h2o3",
        "version": "3.46.0.6", "instance_type_name": "m5.2xlarge", "tags": [("Team", "ml")],
    }
    args.update(overrides)
    return backend.create_system(user, **args)


def _stored(backend: PuddleBackend, system_id: str) -> SystemRow:
    row = backend.store.system(system_id)
    assert row is not None
    return row


# --------------------------------------------------------------------------- per RPC, over gRPC


def _create_over_rpc(system_stub, md: Metadata, idle_interval: int = 60) -> str:
    request = system_service_pb2.CreateSystemRequest(
        cloud="aws", name="sys-a", disk_size_gb=256, product="dai", version="1.11.1", instance_type_name="m5.2xlarge",
        idle_interval=idle_interval, tags=[system_service_pb2.TagData(label="Team", value="ml")],
    )
    return system_stub.CreateSystem(request, metadata=md).system.id


@pytest.fixture
def created(system_stub, md: Metadata) -> str:
    return _create_over_rpc(system_stub, md)


def test_each_rpc_checks_the_token_once(
    monkeypatch: pytest.MonkeyPatch, server: EmulatorServer, channel: grpc.Channel, system_stub, md: Metadata,
    created: str,
) -> None:
    checks = _count(monkeypatch, server.backend, "check_token")
    calls: list[Callable[[], object]] = [
        lambda: system_stub.GetSystem(system_service_pb2.GetSystemRequest(system_id=created), metadata=md),
        lambda: system_stub.ListSystems(system_service_pb2.ListSystemsRequest(), metadata=md),
        lambda: system_stub.GetCUConsumptionInfo(system_service_pb2.GetCUConsumptionInfoRequest(), metadata=md),
        lambda: tag_service_pb2_grpc.TagServiceStub(channel).ListTags(tag_service_pb2.ListTagsRequest(), metadata=md),
        lambda: image_service_pb2_grpc.ImageServiceStub(channel).ListAvailableImages(
            image_service_pb2.ListAvailableImagesRequest(), metadata=md),
    ]
    for call in calls:
        checks.reset()
        call()
        assert checks.calls == 1


def test_get_system_runs_one_sweep(
    monkeypatch: pytest.MonkeyPatch, server: EmulatorServer, system_stub, md: Metadata, created: str
) -> None:
    sweeps = _count(monkeypatch, server.backend.lifecycle, "sweep")
    response = system_stub.GetSystem(system_service_pb2.GetSystemRequest(system_id=created), metadata=md)
    assert response.system.id == created
    assert sweeps.calls == 1
    sweeps.reset()
    system_stub.ListSystems(system_service_pb2.ListSystemsRequest(), metadata=md)
    assert sweeps.calls == 1


def test_idle_timeout_and_config_upload_fire_over_rpc(
    admin_stub, server: EmulatorServer, system_stub, md: Metadata
) -> None:
    created = _create_over_rpc(system_stub, md, idle_interval=1)
    step = server.backend.step_seconds
    request = system_service_pb2.GetSystemRequest(system_id=created)
    admin_stub.AdvanceClock(admin_service_pb2.AdvanceClockRequest(seconds=4 * step))
    assert system_stub.GetSystem(request, metadata=md).system.status == S.SYSTEM_STATUS_STARTED.code
    uploading = system_stub.UpdateConfigToml(
        system_service_pb2.UpdateConfigTomlRequest(system_id=created, config_toml="a = 1"), metadata=md
    ).system
    assert uploading.config_status == S.CONFIG_STATUS_UPLOADING.code
    admin_stub.AdvanceClock(admin_service_pb2.AdvanceClockRequest(seconds=step))
    uploaded = system_stub.GetSystem(request, metadata=md).system
    assert (uploaded.config_status, uploaded.config_toml) == (S.CONFIG_STATUS_UPLOADED.code, "a = 1")
    admin_stub.AdvanceClock(admin_service_pb2.AdvanceClockRequest(seconds=60 + 2 * step))
    assert system_stub.GetSystem(request, metadata=md).system.status == S.SYSTEM_STATUS_STOPPED.code


# --------------------------------------------------------------------------- the sweep and due_at


def test_sweep_reads_only_due_systems(
    monkeypatch: pytest.MonkeyPatch, backend: PuddleBackend, user: User, clock: FakeClock, tmp_path: Path
) -> None:
    idle = [_create(backend, user, f"idle-{n}").id for n in range(5)]
    clock.tick(3)  # all Started, next due at their idle timeout in an hour
    backend.list_systems(user)
    moving = _create(backend, user, "moving").id
    loaded = _count(monkeypatch, backend.store, "due_systems")

    backend.get_system(user, idle[0])
    assert loaded.calls == 1
    assert loaded.items == []  # nothing due: the sweep read no row at all
    clock.tick(1)
    backend.get_system(user, idle[0])
    assert [s.id for s in loaded.items] == [moving]  # only the system with a step due
    with sqlite3.connect(tmp_path / "state.sqlite") as conn:  # the backend fixture's database
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT * FROM systems WHERE due_at <= ?", (0.0,)).fetchall()
    conn.close()
    assert "USING INDEX systems_due" in " ".join(str(row[-1]) for row in plan)


def test_due_at_is_the_earliest_pending_event(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    created = _create(backend, user, "sys-a", idle_interval=1)
    assert created.due_at == clock.t + 1  # the next create step
    clock.tick(3)
    started = backend.get_system(user, created.id)[0]
    assert started.status == S.SYSTEM_STATUS_STARTED.code
    assert _stored(backend, created.id).due_at == started.idle_timeout == clock.t + 60
    backend.update_config_toml(user, created.id, "a = 1")
    assert _stored(backend, created.id).due_at == clock.t + 1  # the upload ends before the idle timeout
    clock.tick(1)
    backend.stop_system(user, created.id)
    assert _stored(backend, created.id).due_at == clock.t + 1
    clock.tick(1)
    backend.list_systems(user)
    assert _stored(backend, created.id).due_at is None  # Stopped: nothing happens by itself


def test_an_unread_system_is_stopped_by_any_sweep(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    quiet = _create(backend, user, "quiet", idle_interval=1).id
    other = _create(backend, user, "other").id
    clock.tick(3 + 60.5)  # the quiet one's idle timeout passed half a step ago
    backend.get_system(user, other)  # the sweep of another call applies the quiet system's idle stop
    stopping = _stored(backend, quiet)
    assert stopping.status == S.SYSTEM_STATUS_STOPPING.code
    assert stopping.phase_started_at == stopping.idle_timeout  # placed at the timeout, not at the read


def test_due_times_survive_a_restart(make_backend, clock: FakeClock, tmp_path: Path) -> None:
    db = str(tmp_path / "due.sqlite")
    first = make_backend(db)
    user = first.login(API_KEY_ID, API_SECRET_KEY).user
    system_id = _create(first, user, "sys-a").id
    clock.tick(1)
    first.get_system(user, system_id)
    due = _stored(first, system_id).due_at
    assert due == clock.t + 1
    first.close()

    second = make_backend(db)
    assert _stored(second, system_id).due_at == due
    clock.tick(2)
    assert second.get_system(user, system_id)[0].status == S.SYSTEM_STATUS_STARTED.code
    second.stop_system(user, system_id)
    second.close()

    # A new step length moves every pending due time: the stop began at t and now ends at t + 5.
    third = make_backend(db, step_seconds=5.0)
    assert _stored(third, system_id).due_at == clock.t + 5
    clock.tick(4)
    assert third.get_system(user, system_id)[0].status == S.SYSTEM_STATUS_STOPPING.code
    clock.tick(1)
    assert third.get_system(user, system_id)[0].status == S.SYSTEM_STATUS_STOPPED.code


def test_a_database_from_before_due_at_is_migrated(make_backend, clock: FakeClock, tmp_path: Path) -> None:
    """Every kind of pending event gets its due time back (the lifecycle's own rule), and nothing else does."""
    db = tmp_path / "old.sqlite"
    first = make_backend(str(db))
    user = first.login(API_KEY_ID, API_SECRET_KEY).user
    idle, uploading, stopped = (_create(first, user, name).id for name in ("sys-idle", "sys-upload", "sys-stopped"))
    clock.tick(3)
    first.list_systems(user)  # all three Started
    first.stop_system(user, stopped)
    clock.tick(1)
    first.update_config_toml(user, uploading, "a = 1")
    system_id = _create(first, user, "sys-a").id  # mid-transition
    expected = {system_id: clock.t + 1, uploading: clock.t + 1, idle: _stored(first, idle).idle_timeout,
                stopped: None}
    assert expected[idle] is not None
    first.close()
    with sqlite3.connect(db) as conn:  # the schema as it was: no due_at, no step length stored
        conn.execute("DROP INDEX systems_due")
        conn.execute("ALTER TABLE systems DROP COLUMN due_at")
        conn.execute("DELETE FROM meta WHERE key = 'step_seconds'")
    conn.close()

    second = make_backend(str(db))
    assert {i: _stored(second, i).due_at for i in expected} == expected
    assert all(second.lifecycle.due_at(s) == s.due_at for s in second.store.all_systems())
    assert _stored(second, stopped).status == S.SYSTEM_STATUS_STOPPED.code
    clock.tick(3)
    assert second.get_system(user, system_id)[0].status == S.SYSTEM_STATUS_STARTED.code
