"""``extra.client``: builtin or puddle, the errors of a wrong choice, and the adapter's own behaviour.

The provider tests run with both clients (marker ``both_clients``); here is what is particular
to the choice: its errors, and what the adapter does that those runs do not show by themselves.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from airflow.sdk import Connection
from grpc_health.v1 import health, health_pb2_grpc

from airflow_puddle.client import Authorizer
from airflow_puddle.client._ops import SystemsOps
from airflow_puddle.client.clients import SystemsClient
from airflow_puddle.client.models import System, TagData
from airflow_puddle.domain.errors import (
    AlreadyExistsError,
    AuthError,
    NotAnEmulatorError,
    NotFoundError,
    PreconditionFailedError,
    PuddleError,
    PuddleUnavailableError,
    SystemFailedError,
    ValidationFailedError,
)
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.hooks import adapter
from airflow_puddle.hooks import settings as hook_settings
from airflow_puddle.hooks.adapter import map_official_error
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.hooks.settings import PuddleConnectionError, PuddleSettings
from airflow_puddle.hooks.translate import OfficialSystem
from tests.conftest import STANDIN, connection_json, forget_standin
from tests.official.standin_build import StandInRpcError

DAI = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}


def conn(**extra: Any) -> Connection:
    return Connection(conn_id="p", conn_type="puddle", host="http://127.0.0.1", port=50051, login="key",
                      password="s3cr3t-value", extra=json.dumps(extra))


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(STANDIN))
    yield
    forget_standin()


@pytest.fixture
def official_conn(emulator: Any, monkeypatch: pytest.MonkeyPatch, standin: None) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(emulator.address, client="puddle"))
    return "puddle_default"


# --------------------------------------------------------------------------- the choice


def test_builtin_is_the_default_and_a_wrong_choice_names_the_choices() -> None:
    assert PuddleSettings.from_connection(conn()).client == "builtin"
    assert PuddleSettings.from_connection(conn(client="builtin")).client == "builtin"
    with pytest.raises(PuddleConnectionError, match=r"extra\.client: must be one of builtin, puddle, got 'h2o'"):
        PuddleSettings.from_connection(conn(client="h2o"))


def test_a_missing_package_names_the_extra_and_the_package() -> None:
    forget_standin()
    with pytest.raises(PuddleConnectionError) as raised:
        PuddleSettings.from_connection(conn(client="puddle"))
    message = str(raised.value)
    assert "extra.client=puddle" in message and "'puddle.client'" in message and "extra.client=builtin" in message
    assert "s3cr3t" not in message


def test_builtin_only_extras_are_refused_with_puddle_unless_defaults(standin: None) -> None:
    assert PuddleSettings.from_connection(conn(client="puddle", timeout=30, retries=4, retry_max_wait="5")).client \
        == "puddle"  # what the UI form saves
    for extra in ({"timeout": 5}, {"retries": 0}, {"retry_max_wait": 1},
                  {"ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}):
        name = next(iter(extra))
        with pytest.raises(PuddleConnectionError, match=rf"extra\.{name}: not supported with extra\.client=puddle"):
            PuddleSettings.from_connection(conn(client="puddle", **extra))


# --------------------------------------------------------------------------- builtin client, wrong server


@pytest.fixture
def not_puddle() -> Iterator[str]:
    """A real gRPC server on loopback that implements none of our services (only gRPC health)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop(None)


NOT_AN_EMULATOR = "this server is not a Puddle emulator"


def test_builtin_client_on_a_server_without_our_contract_says_so(
    not_puddle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(not_puddle))
    with PuddleHook() as hook:
        with pytest.raises(NotAnEmulatorError, match=f"{NOT_AN_EMULATOR}.*set extra.client=puddle"):
            hook.get_systems_client().list()
        ok, message = hook.test_connection()
    assert not ok and NOT_AN_EMULATOR in message and "extra.client=puddle" in message

    async def wait() -> None:
        client = await PuddleHook().aget_systems_client()
        try:
            await client.wait("some-id", "started", timeout_s=5)
        finally:
            await client.authorizer.close()

    with pytest.raises(NotAnEmulatorError, match=NOT_AN_EMULATOR):  # permanent: the wait does not poll on
        asyncio.run(wait())


async def test_a_trigger_on_a_server_without_our_contract_ends_with_that_error(
    not_puddle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(not_puddle))
    trigger = PuddleSystemStateTrigger(system_id="s-1", target="started", deadline=time.time() + 20,
                                       poll_interval=0.05)
    gen = trigger.run()
    event = (await asyncio.wait_for(gen.__anext__(), 15)).payload
    await gen.aclose()
    assert event["status"] == "error" and NOT_AN_EMULATOR in event["message"]


# --------------------------------------------------------------------------- the adapter


def test_official_errors_map_to_ours_by_documented_name() -> None:
    def theirs(name: str) -> type[Exception]:
        return type(name, (Exception,), {})

    assert isinstance(map_official_error(theirs("PreconditionFailedError")("no")), PreconditionFailedError)
    assert isinstance(map_official_error(theirs("SystemFailedError")("no")), SystemFailedError)
    assert isinstance(map_official_error(theirs("AuthError")("no")), AuthError)
    sub = type("StrictAuthError", (theirs("AuthError"),), {})  # a subclass of a documented one
    assert isinstance(map_official_error(sub("no")), AuthError)
    bad = map_official_error(theirs("ValidationFailedError")("name: too long"))
    assert isinstance(bad, ValidationFailedError) and (bad.field, bad.rule) == ("name", "too long")
    assert isinstance(map_official_error(StandInRpcError(grpc.StatusCode.UNAVAILABLE, "down")),
                      PuddleUnavailableError)
    assert isinstance(map_official_error(StandInRpcError(grpc.StatusCode.NOT_FOUND, "x")), NotFoundError)
    assert isinstance(map_official_error(ConnectionResetError("reset")), PuddleUnavailableError)
    unimplemented = map_official_error(StandInRpcError(grpc.StatusCode.UNIMPLEMENTED, "GetSystem"))
    assert isinstance(unimplemented, PuddleError) and "extra.client" not in str(unimplemented)
    odd = KeyError("x")
    assert map_official_error(odd) is odd


def test_the_hook_gives_our_interface_over_the_official_client(official_conn: str) -> None:
    with PuddleHook() as hook:
        systems = hook.get_systems_client()
        assert isinstance(systems, SystemsClient) and type(systems).__name__ == "OfficialSystemsClient"
        created = systems.create("adapted", **DAI)
        assert isinstance(created, OfficialSystem)
        outcome = systems.wait(created.id, "started", timeout_s=20, poll_interval_s=0.05)
        # The stand-in numbers its statuses differently: translated by name, not by number.
        assert outcome.reached and outcome.system is not None
        assert outcome.system.status == System.SYSTEM_STATUS_STARTED.code
        assert outcome.system.status_text == "Started"
        data = outcome.system.to_dict()
        assert "tags" not in data and "cu" not in data and "password" not in data
        with pytest.raises(AttributeError, match=r"not part of the documented puddle\.client API"):
            outcome.system.tags  # noqa: B018
        # A duplicate name: the documents name no such error; the adapter looks and says so.
        with pytest.raises(AlreadyExistsError, match="adapted"):
            systems.create("adapted", **DAI)
        # Our rules run before anything is sent, as with the builtin client.
        with pytest.raises(ValidationFailedError, match="config_toml"):
            systems.update_config_toml(created.id, "not = [toml")
        assert [i.id for i in hook.get_images_client().list_available()]
        assert systems.discard(created.id) is not None


def test_bad_input_never_reaches_the_official_client(official_conn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ops check their input (once, for both clients) before the adapter calls the official client."""
    called: list[str] = []
    with PuddleHook() as hook:
        systems = hook.get_systems_client()
        official = type(systems._official)  # type: ignore[attr-defined]  # the stand-in's SystemsClient

        def spy(name: str) -> Any:
            real = getattr(official, name)

            def call(self: Any, *args: Any, **kwargs: Any) -> Any:
                called.append(name)
                return real(self, *args, **kwargs)
            return call

        for name in ("get", "stop", "update_config_toml", "find_by_name"):
            monkeypatch.setattr(official, name, spy(name))
        for call in (systems.get, systems.stop, lambda bad: systems.update_config_toml(bad, "a = 1")):
            with pytest.raises(ValidationFailedError, match="system_id: got 'None'"):
                call("None")
        with pytest.raises(ValidationFailedError, match="config_toml: is not valid TOML"):
            systems.update_config_toml("some-id", "not = [toml")
        with pytest.raises(ValidationFailedError, match="name: must contain only lowercase"):
            systems.find_by_name("Not_A_Name")
        assert called == []
        assert systems.get("no-such-system") is None and systems.find_by_name("no-such-name") is None
        assert called == ["get", "find_by_name"]


def test_an_op_that_needs_our_wire_contract_fails_clearly_with_the_official_client(official_conn: str) -> None:
    with PuddleHook() as hook:
        systems = hook.get_systems_client()
        with pytest.raises(TypeError, match=r"SystemService\.GetSystem is an RPC of the builtin client"):
            systems._run(SystemsOps._fetch(systems, "some-id"))  # the builtin op, not the adapter's


def test_gcp_without_a_documented_constant(official_conn: str) -> None:
    with PuddleHook(cloud="gcp") as hook:
        assert hook.get_systems_client().list() == []


def test_the_async_client_never_calls_the_official_client_on_the_event_loop(
    official_conn: str, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[tuple[str, bool]] = []
    real_get = SystemsClient.get

    def on_the_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def get(self: SystemsClient, system_id: str) -> Any:  # ours, under the stand-in
        threads.append((threading.current_thread().name, on_the_loop()))
        return real_get(self, system_id)

    monkeypatch.setattr(SystemsClient, "get", get)
    imports: list[bool] = []
    real_import = hook_settings.import_official

    def import_official() -> Any:  # the first import of the package does file I/O
        imports.append(on_the_loop())
        return real_import()

    monkeypatch.setattr(hook_settings, "import_official", import_official)
    monkeypatch.setattr(adapter, "import_official", import_official)
    builtin = SystemsClient("aws", authorizer=Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))
    created = builtin.create("async-adapted", **DAI)

    async def wait() -> Any:
        client = await PuddleHook().aget_systems_client()
        assert type(client).__name__ == "AsyncOfficialSystemsClient"
        try:
            return await client.wait(created.id, "started", timeout_s=20, poll_interval_s=0.05)
        finally:
            await client.authorizer.close()

    assert asyncio.run(wait()).reached
    assert threads, "the wait polled through the official get"
    assert not any(on_loop for _, on_loop in threads)
    assert {name.split("_")[0] for name, _ in threads} == {"puddle-call"}
    assert imports and not any(imports), "puddle.client was imported on the event loop"


class _Proxy:
    """What a package might return: an object that answers the documented properties, on a class without
    the status constants (a proxy, or a subclass that does not carry them)."""

    def __init__(self, inner: Any, **overrides: Any) -> None:
        self._inner = inner
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides[name] if name in self._overrides else getattr(self._inner, name)


def test_status_codes_are_read_from_the_documented_model_class_and_unknown_ones_are_loud(
    official_conn: str, caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow_puddle.hooks import translate

    with PuddleHook() as hook:
        systems = hook.get_systems_client()
        created = systems.create("proxied", **DAI)
        started = systems.wait(created.id, "started", timeout_s=20, poll_interval_s=0.05).system
        assert started is not None
        raw = hook.official.official("SystemsClient").get(created.id)
    assert not hasattr(_Proxy, "SYSTEM_STATUS_STARTED")
    assert translate.to_system(_Proxy(raw)).status_text == "Started"

    caplog.set_level("WARNING", logger="airflow_puddle.hooks.translate")
    odd = translate.to_system(_Proxy(raw, status=987))
    translate.to_system(_Proxy(raw, status=987))
    assert odd.status_text == "Unknown"
    said = [r.getMessage() for r in caplog.records if "987" in r.getMessage()]
    assert said == ["puddle.client returned System.SYSTEM_STATUS_* code 987, which no documented "
                    "System.SYSTEM_STATUS_* constant names; it reads as Unknown"]  # once, naming code and family

    from airflow_puddle.client.waiting import WaitTracker

    lines: list[str] = []
    tracker = WaitTracker(created.id, "started", deadline=1e12, started_at=0.0,
                          on_state=lambda p: lines.append(p.message))
    tracker.observe(odd, now=0.0)
    tracker.observe(odd, now=61.0)
    assert lines and all("status code this client has no name for" in line for line in lines), lines
