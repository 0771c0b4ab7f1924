"""The systems held in memory stay equal to the database, and each row's encoded message to a fresh mapping."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from airflow_puddle.domain.errors import AuthError
from airflow_puddle.emulator import PuddleBackend
from airflow_puddle.emulator.mapping import SystemMessages, system_to_proto
from airflow_puddle.emulator.rows import SystemRow, User
from airflow_puddle.emulator.store import Store

from .conftest import API_KEY_ID, API_SECRET_KEY, FakeClock


def _create(backend: PuddleBackend, user: User, name: str) -> SystemRow:
    return backend.create_system(
        user, cloud="aws", name=name, disk_size_gb=256, idle_interval=60, product="h2o3",
        version="3.46.0.6", instance_type_name="m5.2xlarge", tags=[("Team", "ml")],
    )


def _busy(backend: PuddleBackend, user: User, clock: FakeClock) -> list[str]:
    """Systems in every kind of state: started, stopping, uploading config, terminated, creating."""
    ids = [_create(backend, user, f"sys-{n}").id for n in range(5)]
    clock.tick(30)
    backend.stop_system(user, ids[1])
    backend.update_config_toml(user, ids[2], "a = 1")
    backend.terminate_system(user, ids[3])
    clock.tick(1.5)
    ids.append(_create(backend, user, "late").id)
    backend.get_system(user, ids[0])  # a sweep
    return ids


def _all(store: Store, ids: list[str]) -> dict[str, Any]:
    return {i: store.system(i) for i in ids}


def test_memory_equals_what_a_fresh_open_reads(make_backend: Any, clock: FakeClock) -> None:
    backend = make_backend()
    user = _user(backend)
    ids = _busy(backend, user, clock)
    in_memory = _all(backend.store, ids)
    backend.close()

    reopened = make_backend()
    assert _all(reopened.store, ids) == in_memory
    live = sorted((s for s in in_memory.values() if s.id != ids[3]), key=lambda s: (s.created, s.id))
    assert reopened.list_systems(user) == live  # oldest first, the terminated one left out


def test_a_rolled_back_transaction_leaves_memory_as_the_database(make_backend: Any, clock: FakeClock) -> None:
    backend = make_backend()
    user = _user(backend)
    system = _create(backend, user, "keep")

    def write_then_fail() -> None:
        with backend.store.transaction():
            backend.store.save_system(replace(system, name="changed"))
            backend.store.insert_system(replace(system, id="not-kept", name="other"))
            raise RuntimeError("the method failed after writing")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert backend.store.system(system.id) == system
    assert backend.store.system("not-kept") is None
    backend.close()
    assert make_backend().store.system(system.id) == system


def test_encoded_messages_equal_a_fresh_mapping_as_rows_change(make_backend: Any, clock: FakeClock) -> None:
    backend = make_backend()
    user = _user(backend)
    messages = SystemMessages(backend.now)
    ids = _busy(backend, user, clock)
    for _ in range(3):  # the same rows again (kept encodings), then changed rows, then time moving on
        for system_id in ids:
            s = backend.store.system(system_id)
            assert s is not None
            assert messages.one(s) == system_to_proto(s, backend.now())
        clock.tick(7)
        backend.get_system(user, ids[0])
    running = backend.store.system(ids[0])
    assert running is not None and running.session_started_at is not None
    assert messages.one(running).current_session_cost > 0  # the cost at now, not at encoding time


def _user(backend: PuddleBackend) -> User:
    return backend.login(API_KEY_ID, API_SECRET_KEY).user


def test_a_token_in_memory_is_forgotten_by_logout_and_expiry(make_backend: Any, clock: FakeClock) -> None:
    backend = make_backend(token_ttl_seconds=60)
    first, second, third = (backend.login(API_KEY_ID, API_SECRET_KEY).token for _ in range(3))
    for token in (first, second, third):
        backend.check_token(token)  # each now held in memory
    backend.logout(first)
    with pytest.raises(AuthError):
        backend.check_token(first)
    backend.expire_tokens()
    with pytest.raises(AuthError):
        backend.check_token(second)
    fresh = backend.login(API_KEY_ID, API_SECRET_KEY).token
    backend.check_token(fresh)
    backend.close()
    reopened = make_backend(token_ttl_seconds=60)
    assert reopened.check_token(fresh).id  # still valid after a restart (read from SQLite once)
    with pytest.raises(AuthError):
        reopened.check_token(third)  # expired by ExpireTokens before the restart
    clock.tick(61)
    with pytest.raises(AuthError):
        reopened.check_token(fresh)  # its expiry ends it, held in memory or not
