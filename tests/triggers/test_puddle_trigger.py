"""PuddleSystemStateTrigger against the emulator, on the test's event loop."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import System, TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.triggers import puddle as trigger_module
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

pytestmark = pytest.mark.both_clients

DAI = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}


@pytest.fixture
def client(emulator: Any) -> SystemsClient:
    return SystemsClient(CLOUD_AWS, authorizer=Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))


def trigger(system_id: str, target: str, seconds: float = 20, **kw: Any) -> PuddleSystemStateTrigger:
    return PuddleSystemStateTrigger(system_id=system_id, target=target, deadline=time.time() + seconds,
                                    poll_interval=0.05, **kw)


async def first_event(t: PuddleSystemStateTrigger, timeout: float = 20) -> dict[str, Any]:
    gen = t.run()
    event = await asyncio.wait_for(gen.__anext__(), timeout)
    await gen.aclose()
    return dict(event.payload)


async def test_success_carries_public_fields_only(puddle_conn: str, client: SystemsClient) -> None:
    system = client.create("trig-ok", **DAI)
    event = await first_event(trigger(system.id, "started"))
    assert event["status"] == "success" and event["target"] == "started"
    assert event["system"]["status_text"] == "Started" and event["system"]["default_url"]
    password = client.get(system.id).password
    assert password and password not in json.dumps(event)


async def test_failed_at_once(puddle_conn: str, client: SystemsClient, admin: Any) -> None:
    system = client.create("trig-fail", **DAI)
    admin.fail_next_transition(system.id)
    started = time.monotonic()
    event = await first_event(trigger(system.id, "started"))
    assert event["status"] == "failed" and "Failed" in event["message"]
    assert time.monotonic() - started < 5  # no waiting out the deadline


async def test_terminated_while_waiting_for_started(puddle_conn: str, client: SystemsClient) -> None:
    system = client.create("trig-term", **DAI)
    client.wait_for_system_started(system.id)
    client.stop(system.id)
    client.wait_for_system_stopped(system.id)
    waiting = asyncio.ensure_future(first_event(trigger(system.id, "started")))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    client.terminate(system.id)
    event = await waiting
    assert event["status"] == "failed" and "Terminated" in event["message"]


async def test_timeout_at_the_absolute_deadline(puddle_conn: str, client: SystemsClient) -> None:
    system = client.create("trig-slow", **DAI)
    client.wait_for_system_started(system.id)
    event = await first_event(trigger(system.id, "stopped", seconds=0.3))
    assert event["status"] == "timeout" and "still Started" in event["message"]
    assert event["system"]["id"] == system.id


async def test_transient_errors_are_polled_through(puddle_conn: str, client: SystemsClient, admin: Any) -> None:
    system = client.create("trig-blip", **DAI)
    # Seven failures: more than one call's five attempts absorb, so a poll gives up and the trigger polls on.
    admin.inject_fault("GetSystem", "UNAVAILABLE", 7)
    event = await first_event(trigger(system.id, "started"), timeout=30)
    assert event["status"] == "success"


async def test_config_upload_target(puddle_conn: str, client: SystemsClient, admin: Any) -> None:
    system = client.wait_for_system_started(client.create("trig-cfg", **DAI).id)
    client.update_config_toml(system.id, "a = 1")
    assert (await first_event(trigger(system.id, "config_uploaded")))["status"] == "success"
    admin.fail_next_transition(system.id, config_upload=True)
    client.update_config_toml(system.id, "a = 2")
    event = await first_event(trigger(system.id, "config_uploaded"))
    assert event["status"] == "failed" and "Upload failed" in event["message"]


async def test_missing_system_and_broken_connection(puddle_conn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (await first_event(trigger("no-such-id", "started")))["status"] == "failed"
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", json.dumps({"conn_type": "puddle", "host": ""}))
    event = await first_event(trigger("x", "started"))
    assert event["status"] == "error" and "host is required" in event["message"]


async def test_wrong_secret_is_a_permanent_error(emulator: Any, monkeypatch: pytest.MonkeyPatch,
                                                 puddle_client: str) -> None:
    from tests.conftest import client_extra, connection_json

    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(emulator.address, secret="nope",
                                                                      **client_extra(puddle_client)))
    event = await first_event(trigger("x", "started"))
    assert event["status"] == "error" and "AuthError" in event["message"] and "nope" not in event["message"]


def test_serialize_round_trip_holds_no_secret() -> None:
    deadline = time.time() + 600
    original = PuddleSystemStateTrigger(system_id="sys-1", target="stopped", deadline=deadline,
                                        puddle_conn_id="my_puddle", cloud="gcp", poll_interval=2, owns_system=True)
    classpath, kwargs = original.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {"system_id": "sys-1", "target": "stopped", "deadline": deadline, "puddle_conn_id": "my_puddle",
                      "cloud": "gcp", "poll_interval": 2.0, "owns_system": True, "shared": True, "system_name": None,
                      "deadline_of": "timeout"}
    json.dumps(kwargs)  # plain JSON values only
    text = json.dumps(kwargs).lower()
    assert not any(word in text for word in ("secret", "password", "token", DEFAULT_API_SECRET_KEY))


@pytest.mark.parametrize("watched", [{"system_name": "nightly-dai"}, {"system_id": "sys-1"}])
def test_a_watcher_survives_its_serialization(watched: dict[str, str]) -> None:
    """What a triggerer does with an AssetWatcher's trigger: build it again from serialize()."""
    original = PuddleSystemStateTrigger(target="failed", deadline=None, **watched)
    classpath, kwargs = original.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert (rebuilt.system_id, rebuilt.system_name) == (watched.get("system_id", ""), watched.get("system_name"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"system_id": "", "target": "started"}, "system_id: is required"),
    ({"system_id": "x", "target": "running"}, "target: must be one of started, stopped"),
    ({"system_id": "x", "target": "started", "poll_interval": 0}, "poll_interval: must be more than 0 seconds"),
    ({"system_id": "x", "target": "started", "poll_interval": -1}, "poll_interval: must be more than 0 seconds"),
    ({"system_id": "x", "target": "started", "poll_interval": float("nan")}, "poll_interval: must be a finite"),
    ({"system_id": "x", "target": "started", "poll_interval": float("inf")}, "poll_interval: must be a finite"),
    ({"system_id": "x", "target": "started", "poll_interval": True}, "poll_interval: must be a number"),
    ({"system_id": "x", "target": "started", "poll_interval": "5"}, "poll_interval: must be a number"),
    ({"system_id": "x", "target": "started", "deadline": float("nan")}, "deadline: must be a finite"),
])
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PuddleSystemStateTrigger(**{"deadline": time.time() + 60, **kwargs})


async def test_on_kill_terminates_only_an_owned_system(puddle_conn: str, client: SystemsClient) -> None:
    mine = client.wait_for_system_started(client.create("trig-mine", **DAI).id)
    theirs = client.wait_for_system_started(client.create("trig-theirs", **DAI).id)
    await trigger(mine.id, "stopped", owns_system=True).on_kill()
    await trigger(theirs.id, "stopped").on_kill()
    assert client.get(mine.id).status in (System.SYSTEM_STATUS_TERMINATING.code, System.SYSTEM_STATUS_TERMINATED.code)
    assert client.get(theirs.id).status == System.SYSTEM_STATUS_STARTED.code


async def test_restarted_triggerer_resumes_the_same_deadline(puddle_conn: str, client: SystemsClient) -> None:
    system = client.wait_for_system_started(client.create("trig-resume", **DAI).id)
    first = trigger(system.id, "stopped", seconds=1.5)
    with pytest.raises(asyncio.TimeoutError):  # the first triggerer polls a while, then dies
        await asyncio.wait_for(first.run().__anext__(), 1.0)
    classpath, kwargs = first.serialize()
    module, _, name = classpath.rpartition(".")
    resumed = getattr(importlib.import_module(module), name)(**kwargs)  # what a new triggerer builds
    started = time.monotonic()
    event = await first_event(resumed)
    assert event["status"] == "timeout"
    assert time.monotonic() - started < 1.0  # only what was left of 1.5 s, not a fresh 1.5 s


async def test_on_kill_survives_airflows_repeated_cancel(puddle_conn: str, client: SystemsClient) -> None:
    # Airflow 3.3.2 cancels a killed trigger again about every second while on_kill runs.
    booting = client.create("trig-cancelled", **DAI)  # must be failed first: takes a transition step
    kill = asyncio.ensure_future(trigger(booting.id, "started", owns_system=True).on_kill())
    await asyncio.sleep(0.02)
    kill.cancel()
    with pytest.raises(asyncio.CancelledError):
        await kill
    (termination,) = trigger_module._BACKGROUND  # goes on after the cancel: fail, wait until Failed, terminate
    await asyncio.wait_for(asyncio.shield(termination), 30)
    final = await asyncio.to_thread(client.wait_for_system_terminated, booting.id)
    assert final.status_text == "Terminated"
