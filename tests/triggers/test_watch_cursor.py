"""A watcher's cursor in Airflow's asset state store (real Execution API, test DB), against the emulator.

A triggerer restart is a new trigger instance built from ``serialize()``, with a store accessor
of its own, as the triggerer builds them; "nothing runs" is no trigger instance at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.triggers import cursor
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger
from tests.conftest import Admin
from tests.triggers.asset_store import WatchedAsset, watched_asset

DAI = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}
INTERVAL = 0.2
QUIET_S = 3.0  # a watcher that has not fired by then will not: 15 polls, and the claim's settle twice over
pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture
def asset(airflow_db: str) -> Iterator[WatchedAsset]:
    yield from watched_asset()


@pytest.fixture
def client(emulator: Any) -> SystemsClient:
    return SystemsClient(CLOUD_AWS, authorizer=Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))


def rebuilt(trigger: PuddleSystemStateTrigger, asset: WatchedAsset) -> PuddleSystemStateTrigger:
    """What a (re)started triggerer runs: the trigger from its serialized row, with the asset's store set."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    fresh: PuddleSystemStateTrigger = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    fresh.asset_state_store = asset.accessors()
    return fresh


class Running:
    """A trigger running on this loop, its events collected, until stopped (a triggerer that dies)."""

    def __init__(self, trigger: PuddleSystemStateTrigger) -> None:
        self.events: list[dict[str, Any]] = []
        self._fired = asyncio.Event()
        self._run: AsyncIterator[Any] = trigger.run()
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self._run:
            self.events.append(dict(event.payload))
            self._fired.set()

    async def until(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._fired.clear()
                await self._fired.wait()
        return self.events

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._run.aclose()  # type: ignore[attr-defined]


async def until_stored(asset: WatchedAsset, key: str, there: bool, timeout: float = 10.0) -> dict[str, Any]:
    """Wait until the asset's store has a mark at ``key`` with ``there``; the mark."""
    async with asyncio.timeout(timeout):
        while True:
            mark = (await asyncio.to_thread(asset.stored)).get(key)
            if mark is not None and mark["there"] is there:
                return dict(mark)
            await asyncio.sleep(0.1)


def watcher(**kwargs: Any) -> PuddleSystemStateTrigger:
    return PuddleSystemStateTrigger(target="failed", deadline=None, poll_interval=INTERVAL, **kwargs)


async def fail(client: SystemsClient, admin: Admin, system_id: str) -> None:
    """Fail a started system: its stop ends in Failed."""
    await asyncio.to_thread(admin.fail_next_transition, system_id)
    await asyncio.to_thread(client.stop, system_id)
    outcome = await asyncio.to_thread(client.wait, system_id, "failed", timeout_s=10)
    assert outcome.reached, outcome.message


async def started(client: SystemsClient, name: str) -> str:
    system = await asyncio.to_thread(client.create, name, **DAI)
    await asyncio.to_thread(client.wait_for_system_started, system.id)
    return str(system.id)


def key(system_id: str) -> str:
    return f"{cursor.KEY_PREFIX}.failed.{system_id}"


async def test_an_entry_while_no_triggerer_ran_fires_once_after_the_restart(
    puddle_conn: str, client: SystemsClient, admin: Admin, asset: WatchedAsset
) -> None:
    system_id = await started(client, "watched-restart")
    first = Running(rebuilt(watcher(system_id=system_id), asset))
    await until_stored(asset, key(system_id), there=False)  # the first look: Started, nothing to report
    await first.stop()  # every triggerer stops
    await fail(client, admin, system_id)  # the system fails while nothing watches

    second = Running(rebuilt(watcher(system_id=system_id), asset))  # a triggerer starts again
    (event,) = await second.until(1)
    assert (event["status"], event["system_id"], event["system"]["status_text"]) == ("reached", system_id, "Failed")
    await asyncio.sleep(QUIET_S)
    await second.stop()
    assert len(second.events) == 1

    third = Running(rebuilt(watcher(system_id=system_id), asset))  # and again: already reported
    await asyncio.sleep(QUIET_S)
    await third.stop()
    assert third.events == []
    mark = asset.stored()[key(system_id)]
    assert (mark["there"], mark["entries"], mark["reported"]) == (True, 1, True)


async def test_two_triggers_on_one_asset_fire_an_entry_once(
    puddle_conn: str, client: SystemsClient, admin: Admin, asset: WatchedAsset
) -> None:
    system_id = await started(client, "watched-twice")
    one, two = (Running(rebuilt(watcher(system_id=system_id), asset)) for _ in range(2))
    await until_stored(asset, key(system_id), there=False)
    await asyncio.sleep(4 * INTERVAL)  # both have looked
    await fail(client, admin, system_id)
    await until_stored(asset, key(system_id), there=True)
    await asyncio.sleep(QUIET_S)
    await one.stop()
    await two.stop()
    assert len(one.events) + len(two.events) == 1, (one.events, two.events)
    assert asset.stored()[key(system_id)]["entries"] == 1


async def test_a_first_start_does_not_fire_for_a_system_already_in_the_target(
    puddle_conn: str, client: SystemsClient, admin: Admin, asset: WatchedAsset
) -> None:
    system_id = await started(client, "watched-already")
    await fail(client, admin, system_id)
    running = Running(rebuilt(watcher(system_id=system_id), asset))
    mark = await until_stored(asset, key(system_id), there=True)
    await asyncio.sleep(QUIET_S)
    await running.stop()
    assert running.events == [] and mark["entries"] == 0


async def test_a_watcher_by_name_keys_by_id_and_a_new_system_under_the_name_fires(
    puddle_conn: str, client: SystemsClient, admin: Admin, asset: WatchedAsset
) -> None:
    old = await started(client, "reused")
    running = Running(rebuilt(watcher(system_name="reused"), asset))
    await until_stored(asset, key(old), there=False)
    await fail(client, admin, old)
    (event,) = await running.until(1)
    assert event["system_id"] == old
    await running.stop()
    await asyncio.to_thread(client.terminate, old)
    await asyncio.to_thread(client.wait_for_system_terminated, old)
    new = await started(client, "reused")  # the name again, a new system: it fails while nothing watches
    await fail(client, admin, new)

    again = Running(rebuilt(watcher(system_name="reused"), asset))
    (event,) = await again.until(1)
    await asyncio.sleep(QUIET_S)
    await again.stop()
    assert event["system_id"] == new and len(again.events) == 1
    stored = asset.stored()
    assert stored[key(new)]["entries"] == 1 and stored[key(old)]["entries"] == 1
    assert [k for k in stored if "reused" in k] == [f"{cursor.KEY_PREFIX}.failed.watcher.name:reused"]
    text = json.dumps(stored)
    password = (await asyncio.to_thread(client.get, new)).password
    assert password and password not in text and DEFAULT_API_SECRET_KEY not in text


def said(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], text: str) -> int:
    """How many times the trigger's log said ``text`` (Airflow's logging may route it to the output)."""
    out, err = capfd.readouterr()
    return (caplog.text + out + err).count(text)


async def test_without_a_store_the_watch_is_as_before_and_says_so_once(
    puddle_conn: str, client: SystemsClient, admin: Admin, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    system_id = await started(client, "watched-memory")
    caplog.set_level(logging.WARNING)
    running = Running(watcher(system_id=system_id))  # no asset_state_store: dag.test(), or no triggerer
    await asyncio.sleep(4 * INTERVAL)
    await fail(client, admin, system_id)
    (event,) = await running.until(1)
    await running.stop()
    assert event["system_id"] == system_id
    assert said(caplog, capfd, "Airflow's asset state store is not available here: this watcher remembers what it "
                "saw only while this triggerer runs; a system that enters failed while no triggerer runs is not "
                "reported") == 1


async def test_a_store_that_fails_falls_back_once(
    puddle_conn: str, client: SystemsClient, admin: Admin, asset: WatchedAsset, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    system_id = await started(client, "watched-broken")
    caplog.set_level(logging.WARNING)
    trigger = rebuilt(watcher(system_id=system_id), asset)
    trigger.asset_state_store = WatchedAsset("not-registered", "puddle://nowhere").accessors()
    running = Running(trigger)
    await asyncio.sleep(4 * INTERVAL)
    await fail(client, admin, system_id)
    (event,) = await running.until(1)
    await running.stop()
    assert event["system_id"] == system_id
    assert said(caplog, capfd, "Airflow's asset state store is failed (") == 1


async def test_an_entry_claimed_by_a_trigger_that_died_before_firing_is_reported_once(
    puddle_conn: str, client: SystemsClient, admin: Admin, asset: WatchedAsset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cursor, "STALE_CLAIM_S", 1.0)
    system_id = await started(client, "watched-claimed")
    await fail(client, admin, system_id)
    died = cursor.Mark(system_id, there=True, at=time.time() - 5, entries=1, claim="dead", claimed_at=time.time())
    await asset.accessors().aset(key(system_id), dataclasses.asdict(died))  # claimed, then the triggerer died
    running = Running(rebuilt(watcher(system_id=system_id), asset))
    (event,) = await running.until(1)
    await asyncio.sleep(QUIET_S)
    await running.stop()
    mark = asset.stored()[key(system_id)]
    assert event["system_id"] == system_id and len(running.events) == 1
    assert (mark["entries"], mark["reported"]) == (1, True) and mark["claim"] != "dead"
