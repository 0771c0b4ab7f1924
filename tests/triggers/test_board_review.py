"""Review of the parked waits (4f74c7f): cases where a wait parks on a board that will never publish."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from airflow.triggers.shared_stream import SharedStreamManager

from airflow_puddle.client import SystemsClient
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.triggers import wakeups
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger
from airflow_puddle.triggers.wakeups import Board
from tests.triggers.test_parked_waits import DAI
from tests.triggers.test_shared_stream import as_the_triggerer, trigger


@pytest.fixture(autouse=True)
def _no_stale_boards() -> Any:
    """A board a test leaves registered must not reach the next test's waits."""
    yield
    wakeups._OPEN.clear()




def slow_logins(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The first poll's connection lookup and login take ``seconds``; later ones are quick."""
    real = PuddleHook.aget_systems_client
    calls: list[float] = []

    async def slow(self: PuddleHook) -> Any:
        calls.append(time.monotonic())
        if len(calls) == 1:
            await asyncio.sleep(seconds)
        return await real(self)

    monkeypatch.setattr(PuddleHook, "aget_systems_client", slow)


async def test_a_poll_cancelled_while_logging_in_closes_its_board(
    puddle_conn: str, client: SystemsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The only wait leaves while its poll logs in; the next wait on the key must not park on that dead board."""
    booting = client.create("after-cancel", **DAI)
    slow_logins(monkeypatch, 0.5)
    manager = SharedStreamManager()
    try:
        first = asyncio.create_task(as_the_triggerer(manager, 1, trigger(booting.id, seconds=60)))
        await asyncio.sleep(0.2)  # the group's poll is logging in
        first.cancel()  # e.g. the user marked the task; the group is stopped, its poll cancelled
        with pytest.raises(asyncio.CancelledError):
            await first
        key = trigger(booting.id).shared_stream_key()
        assert Board.find(key) is None, "the cancelled poll left its board open and registered"
    finally:
        await manager.stop_all()


async def test_a_wait_after_a_poll_cancelled_while_logging_in_gets_its_event(
    puddle_conn: str, client: SystemsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same, seen from the next wait: its system boots to Started in about a second, well before the deadline."""
    other = client.create("cancelled-wait", **DAI)
    slow_logins(monkeypatch, 0.5)
    manager = SharedStreamManager()
    try:
        first = asyncio.create_task(as_the_triggerer(manager, 1, trigger(other.id, seconds=60)))
        await asyncio.sleep(0.2)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        booting = await asyncio.to_thread(client.create, "after-cancel", **DAI)
        started = time.monotonic()
        event = await asyncio.wait_for(as_the_triggerer(manager, 2, trigger(booting.id, seconds=6)), 15)
        assert event["status"] == "success", event
        assert time.monotonic() - started < 4
    finally:
        await manager.stop_all()


async def test_a_target_reached_between_the_last_snapshot_and_the_deadline_is_not_a_timeout(
    puddle_conn: str, client: SystemsClient
) -> None:
    """The wait is judged on a snapshot taken at or after its deadline, as before: not on the stale one before it.

    Polls every 2 s; the system is Started in the first snapshot, stopped a moment later (Stopped well
    before the 1 s deadline), and the next snapshot (2 s) shows it Stopped: the wait succeeded.
    """
    system = client.wait_for_system_started(client.create("stopped-in-time", **DAI).id)
    manager = SharedStreamManager()
    wait = PuddleSystemStateTrigger(system_id=system.id, target="stopped", deadline=time.time() + 1.0,
                                    poll_interval=2.0)

    async def stop_soon() -> float:
        await asyncio.sleep(0.15)  # after the first snapshot
        await asyncio.to_thread(client.stop, system.id)
        await asyncio.to_thread(client.wait_for_system_stopped, system.id)
        return time.time()

    try:
        stopping = asyncio.create_task(stop_soon())
        event = await asyncio.wait_for(as_the_triggerer(manager, 1, wait), 15)
        assert await stopping < wait.deadline  # Stopped before the deadline
        assert event["status"] == "success", event["message"]
    finally:
        await manager.stop_all()
