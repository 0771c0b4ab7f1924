"""Auth, token expiry, and transient failures, through both twins over real gRPC."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.domain.errors import AuthError, PuddleUnavailableError
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

DAI = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}


def test_wrong_secret_is_an_auth_error(make_systems: Any) -> None:
    systems = make_systems(secret="not-the-secret")
    with pytest.raises(AuthError, match="invalid API key"):
        systems.list()


def test_expired_token_logs_in_again_once(systems: Any, admin: Any) -> None:
    systems.list()
    first = systems.authorizer.token
    admin.expire_tokens()
    assert systems.list() == []
    assert systems.authorizer.token not in (None, first)


def test_token_rejected_after_fresh_login_is_an_auth_error(systems: Any, admin: Any) -> None:
    systems.list()
    admin.inject_fault("ListSystems", "UNAUTHENTICATED", 2, "token expired")
    with pytest.raises(AuthError, match="token expired"):
        systems.list()


def test_reads_recover_from_an_unavailable_burst(systems: Any, admin: Any) -> None:
    system = systems.create("blip", **DAI)
    admin.inject_fault("GetSystem", "UNAVAILABLE", 3)
    assert systems.get(system.id).id == system.id
    admin.inject_fault("ListSystems", "RESOURCE_EXHAUSTED", 2)
    assert len(systems.list()) == 1
    admin.inject_fault("GetSystem", "UNAVAILABLE", 2)  # also inside a wait
    assert systems.wait_for_system_started(system.id).status_text == "Started"


def test_reads_give_up_after_the_policy(systems: Any, admin: Any) -> None:
    admin.inject_fault("ListSystems", "UNAVAILABLE", 10)
    with pytest.raises(PuddleUnavailableError, match="gave up after 4 attempts"):
        systems.list()


def test_mutations_are_not_retried(systems: Any, admin: Any) -> None:
    admin.inject_fault("CreateSystem", "UNAVAILABLE", 1)
    with pytest.raises(PuddleUnavailableError, match="not retried because CreateSystem changes state"):
        systems.create("once", **DAI)
    assert systems.find_by_name("once") is None  # the failed call created nothing
    assert systems.create("once", **DAI).name == "once"  # the next call goes through


def test_latency_past_the_deadline_is_retried_for_reads(emulator: Any, admin: Any) -> None:
    auth = Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, timeout_s=0.3)
    systems = SystemsClient(CLOUD_AWS, authorizer=auth)
    systems.list()
    admin.set_latency("ListSystems", 1.0)
    with pytest.raises(PuddleUnavailableError, match=r"DEADLINE_EXCEEDED|Deadline"):
        systems.list()
    admin.set_latency("ListSystems", 0)
    assert systems.list() == []


def test_defaults_from_the_environment(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUDDLE_SERVER_ADDRESS", emulator.address)
    monkeypatch.setenv("PUDDLE_API_KEY_ID", DEFAULT_API_KEY_ID)
    monkeypatch.setenv("PUDDLE_API_SECRET_KEY", DEFAULT_API_SECRET_KEY)
    systems = SystemsClient(CLOUD_AWS)
    assert systems.server_address == emulator.address and systems.list() == []
    assert systems.user is not None
    auth = Authorizer()
    auth.login()
    assert auth.token and auth.user is not None
    auth.logout()
    assert auth.token is None and auth.user is None


def test_missing_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PUDDLE_SERVER_ADDRESS", "PUDDLE_API_KEY_ID", "PUDDLE_API_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="server_address: not given and PUDDLE_SERVER_ADDRESS is not set"):
        SystemsClient(CLOUD_AWS)
    with pytest.raises(ValueError, match="api_secret_key: not given and PUDDLE_API_SECRET_KEY"):
        Authorizer("http://127.0.0.1:1", "id")


def test_no_secret_in_logs_or_repr(systems: Any, admin: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    system = systems.create("quiet", **DAI)
    admin.expire_tokens()
    admin.inject_fault("GetSystem", "UNAVAILABLE", 1)
    started = systems.wait_for_system_started(system.id)
    secrets = [DEFAULT_API_SECRET_KEY, started.password, systems.authorizer.token]
    assert all(secrets)
    text = caplog.text + repr(systems.authorizer) + repr(started) + str(os.environ.get("X", ""))
    for secret in secrets:
        assert secret not in text
    assert "Started" in caplog.text  # the wait narrates progress


def _count_logins(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = emulator.backend.login

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(emulator.backend, "login", counting)
    return calls


async def test_concurrent_calls_on_a_fresh_async_client_make_one_login(emulator: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from airflow_puddle.client import CLOUD_AWS, AsyncAuthorizer, AsyncSystemsClient
    from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

    logins = _count_logins(emulator, monkeypatch)
    client = AsyncSystemsClient(CLOUD_AWS, authorizer=AsyncAuthorizer(
        emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))
    # 16 creates (what the emulator's 64 CU hold) and 34 lists, all at once on a client with no token yet.
    creates = [client.create(f"flight-{n}", product="dai", version="1.11.1", instance_type_name="m5.2xlarge",
                             tags=[TagData("Team", "ml")]) for n in range(16)]
    made = await asyncio.gather(*creates, *(client.list() for _ in range(34)))
    assert len({s.id for s in made[:16]}) == 16
    assert len(logins) == 1
    # All tokens expired: the next burst makes one fresh login between them, not fifty.
    emulator.backend.expire_tokens()
    assert len(await asyncio.gather(*(client.list() for _ in range(50)))) == 50
    assert len(logins) == 2
    await client.authorizer.close()


def test_concurrent_threads_on_a_fresh_sync_client_make_one_login(emulator: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
    from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

    logins = _count_logins(emulator, monkeypatch)
    client = SystemsClient(CLOUD_AWS, authorizer=Authorizer(emulator.address, DEFAULT_API_KEY_ID,
                                                            DEFAULT_API_SECRET_KEY))
    with ThreadPoolExecutor(20) as pool:
        assert all(r == [] for r in pool.map(lambda _: client.list(), range(40)))
    assert len(logins) == 1
    emulator.backend.expire_tokens()
    with ThreadPoolExecutor(20) as pool:
        assert all(r == [] for r in pool.map(lambda _: client.list(), range(40)))
    assert len(logins) == 2
