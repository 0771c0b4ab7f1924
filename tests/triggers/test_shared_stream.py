"""Many waits, one poll: the trigger through Airflow's own SharedStreamManager against the emulator."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from airflow.triggers.shared_stream import SharedStreamManager

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger
from tests.conftest import client_extra, connection_json

DAI = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}
INTERVAL = 0.2
pytestmark = pytest.mark.both_clients


@pytest.fixture
def client(emulator: Any) -> SystemsClient:
    return SystemsClient(CLOUD_AWS, authorizer=Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))


def count(emulator: Any, monkeypatch: pytest.MonkeyPatch, method: str) -> list[float]:
    calls: list[float] = []
    real = getattr(emulator.backend, method)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(emulator.backend, method, counting)
    return calls


async def as_the_triggerer(manager: SharedStreamManager, trigger_id: int,
                           wait: PuddleSystemStateTrigger) -> dict[str, Any]:
    """What the triggerer's run_trigger does: subscribe, filter in the same step, unsubscribe in ``finally``."""
    key = wait.shared_stream_key()
    assert key is not None
    stream = manager.subscribe(trigger_id=trigger_id, trigger=wait, key=key)
    try:
        async for event in wait.filter_shared_stream(stream):
            return dict(event.payload)
        raise AssertionError("the filter ended without an event")
    finally:
        await manager.unsubscribe(trigger_id, key)


async def through_manager(triggers: list[PuddleSystemStateTrigger], timeout: float = 30) -> list[dict[str, Any]]:
    """Run each trigger as the triggerer does for a shared-stream trigger; the first event of each."""
    manager = SharedStreamManager()
    waits = (as_the_triggerer(manager, n, t) for n, t in enumerate(triggers))
    try:
        return await asyncio.wait_for(asyncio.gather(*waits), timeout)
    finally:
        await manager.stop_all()


def trigger(system_id: str, target: str = "started", seconds: float = 30, **kw: Any) -> PuddleSystemStateTrigger:
    return PuddleSystemStateTrigger(system_id=system_id, target=target, deadline=time.time() + seconds,
                                    poll_interval=INTERVAL, **kw)


def test_the_key_is_the_connection_cloud_and_interval() -> None:
    a = trigger("a", owns_system=True)
    b = trigger("b", "stopped", seconds=99)
    assert a.shared_stream_key() == b.shared_stream_key() == ("puddle-systems", "puddle_default", "", INTERVAL)
    assert trigger("c", cloud="gcp").shared_stream_key() != a.shared_stream_key()
    assert PuddleSystemStateTrigger(system_id="d", target="started", deadline=time.time(),
                                    poll_interval=1).shared_stream_key() != a.shared_stream_key()
    assert trigger("e", shared=False).shared_stream_key() is None


async def test_thirty_waits_share_one_login_and_one_list_per_interval(
    puddle_conn: str, client: SystemsClient, emulator: Any, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    ids = [client.create(f"shared-{n}", **DAI).id for n in range(10)]  # 10 systems booting (64 CU)
    lists = count(emulator, monkeypatch, "list_systems")
    gets = count(emulator, monkeypatch, "get_system")
    logins = count(emulator, monkeypatch, "login")
    triggers = [trigger(ids[n % 10]) for n in range(30)]
    started = time.monotonic()
    events = await through_manager(triggers)
    elapsed = time.monotonic() - started
    assert [e["status"] for e in events] == ["success"] * 30
    assert {e["system_id"] for e in events} == set(ids)
    assert len(logins) == 1 and gets == []
    # One ListSystems per interval for all thirty waits (a per-trigger poll would make 30 GetSystem each).
    assert len(lists) <= elapsed / INTERVAL + 2, (len(lists), elapsed)
    # Each wait's log says it is on the shared poll, and how many waits share it (what a user looks for).
    said = "".join(capfd.readouterr())
    counts = [int(m) for m in re.findall(r"with (\d+) wait\(s\) on it in this triggerer now", said)]
    assert len(counts) == 30 and max(counts) == 30, counts


async def test_a_late_subscriber_joins_the_running_poll(puddle_conn: str, client: SystemsClient, emulator: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = client.create("late-1", **DAI), client.create("late-2", **DAI)
    logins = count(emulator, monkeypatch, "login")
    manager = SharedStreamManager()
    early, late = trigger(first.id, "failed", seconds=1.5), trigger(second.id)  # early outlives late's join
    key = early.shared_stream_key()
    assert key is not None

    async def run(n: int, t: PuddleSystemStateTrigger, delay: float) -> str:
        await asyncio.sleep(delay)
        stream = manager.subscribe(trigger_id=n, trigger=t, key=key)
        try:
            async for event in t.filter_shared_stream(stream):
                return str(event.payload["status"])
            return "no event"
        finally:
            await manager.unsubscribe(n, key)

    results = await asyncio.gather(run(1, early, 0), run(2, late, 3 * INTERVAL))
    await manager.stop_all()
    assert results == ["timeout", "success"] and len(logins) == 1


async def test_outcomes_through_the_shared_path(puddle_conn: str, client: SystemsClient, admin: Any) -> None:
    booting = client.create("outcome-boot", **DAI)
    failing = client.create("outcome-fail", **DAI)
    admin.fail_next_transition(failing.id)
    terminated = client.wait_for_system_started(client.create("outcome-term", **DAI).id)
    client.terminate(terminated.id)  # a terminated system leaves the list: one GetSystem tells
    events = await through_manager([
        trigger(booting.id), trigger(failing.id), trigger(terminated.id, "terminated"),
        trigger(booting.id, "stopped", seconds=1), trigger("no-such-system"),
    ])
    assert [e["status"] for e in events] == ["success", "failed", "success", "timeout", "failed"]
    assert "Failed" in events[1]["message"] and "not found" in events[4]["message"]


async def test_an_unavailable_backend_does_not_end_the_waits_before_their_deadline(
    client: SystemsClient, admin: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch, puddle_client: str
) -> None:
    # The official client has no retry settings (the stand-in retries as our client does by default).
    retries = {"retries": 1, "retry_max_wait": 0.02} if puddle_client == "builtin" else client_extra(puddle_client)
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(emulator.address, **retries))
    booting = client.create("flaky", **DAI)
    admin.inject_fault("ListSystems", "UNAVAILABLE", 16)  # eight polls' worth (two attempts each)
    events = await through_manager([trigger(booting.id), trigger(booting.id, "stopped", seconds=1.5)])
    # The short wait's deadline: one GetSystem of the booting system decides, and Puddle answers it (the
    # failures are on ListSystems only): "timeout", with one quick retry per list or the official stand-in's
    # five, which leave no list answered by then ("unavailable" is for a Puddle that does not answer the look).
    assert [e["status"] for e in events] == ["success", "timeout"]


async def test_a_rejected_key_ends_every_wait_with_an_error(emulator: Any, monkeypatch: pytest.MonkeyPatch,
                                                            puddle_client: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(emulator.address, secret="wrong-secret",
                                                                      **client_extra(puddle_client)))
    events = await through_manager([trigger("a"), trigger("b", "stopped")], timeout=15)
    assert [e["status"] for e in events] == ["error", "error"]
    assert all("AuthError" in e["message"] and "wrong-secret" not in e["message"] for e in events)


async def test_run_is_the_same_filter_over_a_private_stream(puddle_conn: str, client: SystemsClient) -> None:
    booting = client.create("private", **DAI)
    for shared in (True, False):
        gen = trigger(booting.id, shared=shared).run()
        event = await asyncio.wait_for(gen.__anext__(), 20)
        await gen.aclose()
        assert event.payload["status"] == "success"


async def test_a_watcher_fires_each_time_the_named_system_enters_the_target(
    puddle_conn: str, client: SystemsClient, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiter_system = client.create("waited-on", **DAI)  # the test's own client logs in here
    logins = count(emulator, monkeypatch, "login")
    manager = SharedStreamManager()
    watcher = PuddleSystemStateTrigger(system_name="watched", target="started", deadline=None, poll_interval=INTERVAL)
    waiter = trigger(waiter_system.id)
    assert watcher.shared_stream_key() == waiter.shared_stream_key()  # one poll for waits and watchers
    events: list[dict[str, Any]] = []

    async def follow(n: int, t: PuddleSystemStateTrigger, into: list[dict[str, Any]], stop_after: int) -> None:
        key = t.shared_stream_key()
        stream = manager.subscribe(trigger_id=n, trigger=t, key=key)
        try:
            async for event in t.filter_shared_stream(stream):
                into.append(dict(event.payload))
                if len(into) == stop_after:
                    return
        finally:
            await manager.unsubscribe(n, key)

    async def drive() -> None:
        await asyncio.sleep(3 * INTERVAL)  # the watch has seen "no such system" by now
        system = await asyncio.to_thread(client.create, "watched", **DAI)
        await asyncio.to_thread(client.wait_for_system_started, system.id)
        await asyncio.sleep(3 * INTERVAL)
        await asyncio.to_thread(client.stop, system.id)
        await asyncio.to_thread(client.wait_for_system_stopped, system.id)
        await asyncio.sleep(3 * INTERVAL)
        await asyncio.to_thread(client.start, system.id)

    waited: list[dict[str, Any]] = []
    await asyncio.wait_for(asyncio.gather(follow(1, watcher, events, 2), follow(2, waiter, waited, 1), drive()), 30)
    await manager.stop_all()
    assert [e["status"] for e in events] == ["reached", "reached"]
    assert {e["system_name"] for e in events} == {"watched"} and events[0]["system"]["status_text"] == "Started"
    assert waited[0]["status"] == "success" and len(logins) == 1


def test_watcher_arguments() -> None:
    with pytest.raises(ValueError, match="a watcher cannot see 'terminated'"):
        PuddleSystemStateTrigger(system_name="x", target="terminated", deadline=None)
    with pytest.raises(ValueError, match="system_name: only a watcher"):
        PuddleSystemStateTrigger(system_name="x", target="started", deadline=time.time())
    with pytest.raises(ValueError, match="system_id, system_name: give exactly one of them"):
        PuddleSystemStateTrigger(system_id="a", system_name="x", target="started", deadline=None)
    with pytest.raises(ValueError, match="name: must start and end with a letter or digit"):
        PuddleSystemStateTrigger(system_name="-x", target="started", deadline=None)
    classpath, kwargs = PuddleSystemStateTrigger(system_name="x", target="failed", deadline=None).serialize()
    assert kwargs["deadline"] is None and kwargs["system_name"] == "x"


def test_the_event_driven_example_dag_parses_with_its_asset_watcher() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "example_dags" / "puddle_on_system_failed.py"
    spec = importlib.util.spec_from_file_location("puddle_on_system_failed", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (watcher,) = module.system_failed.watchers
    assert isinstance(watcher.trigger, PuddleSystemStateTrigger)
    assert watcher.trigger.deadline is None and watcher.trigger.system_name == "nightly-dai"
    assert watcher.trigger.shared_stream_key() is not None
