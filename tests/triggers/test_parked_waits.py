"""A shared wait parks on its poll's board: woken by a change of its system, not by every snapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from airflow_puddle.client import SystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.hooks.api import PuddleUnavailableError, WaitTracker
from airflow_puddle.triggers import looks
from airflow_puddle.triggers.snapshots import EVERY, OUTAGE, SystemsSnapshot
from airflow_puddle.triggers.wakeups import WAKE_BATCH, Board
from tests.triggers.test_shared_stream import INTERVAL, through_manager, trigger

DAI = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}


class Listed:
    """The two fields a board compares, as a listed system has them."""

    def __init__(self, status: int, config_status: int = 0) -> None:
        self.status, self.config_status = status, config_status


async def snap(board: Board, systems: dict[str, Any] | None = None, *, error: bool = False,
               permanent: bool = False, queue: asyncio.Queue[SystemsSnapshot] | None = None) -> SystemsSnapshot:
    """What the poll does with one snapshot: number it, have it queued (the manager's fan-out), publish it."""
    board.seq += 1
    failure = PuddleUnavailableError("down") if error else None
    snapshot = SystemsSnapshot(time.time(), systems or {}, error=failure, permanent=permanent, poll=board.serial,
                               seq=board.seq)
    if queue is not None:
        queue.put_nowait(snapshot)
    await board.publish(snapshot)
    await asyncio.sleep(0)  # the woken waits run
    return snapshot


async def parked(board: Board, system_id: str, seen: object, timeout_s: float = 5) -> asyncio.Task[None]:
    task = asyncio.create_task(board.park(system_id, seen, board.seq, timeout_s))
    await asyncio.sleep(0)  # parked now
    return task


def reader(queue: asyncio.Queue[SystemsSnapshot]) -> AsyncIterator[SystemsSnapshot]:
    async def stream() -> AsyncIterator[SystemsSnapshot]:
        while True:
            yield await queue.get()

    return stream()


async def test_a_parked_wait_wakes_when_its_system_changes_and_not_before() -> None:
    board = Board("k")
    await snap(board, {"a": Listed(1), "b": Listed(1)})
    a, b = await parked(board, "a", (1, 0)), await parked(board, "b", (1, 0))
    await snap(board, {"a": Listed(1), "b": Listed(1)})
    await snap(board, {"a": Listed(1), "b": Listed(1, config_status=2)})
    assert not a.done() and b.done()
    await snap(board, {"b": Listed(1)})  # a left the list (terminated)
    assert a.done()


async def test_an_outage_wakes_every_wait_once_and_again_when_puddle_answers() -> None:
    board = Board("k")
    await snap(board, {"a": Listed(1)})
    waits = [await parked(board, "a", (1, 0)) for _ in range(3)]
    await snap(board, error=True)
    assert all(w.done() for w in waits)
    during, every = await parked(board, "a", OUTAGE), await parked(board, "x", EVERY)
    await snap(board, error=True)
    assert not during.done() and every.done()  # the outage goes on: only a wait that asked for each poll
    await snap(board, {"a": Listed(1)})
    assert during.done()
    permanent = await parked(board, "a", (1, 0))
    await snap(board, error=True, permanent=True)
    assert permanent.done()


async def test_thousands_of_changes_are_woken_a_batch_per_loop_turn() -> None:
    board = Board("k")
    await snap(board, {})
    waits = [await parked(board, f"s{n}", EVERY) for n in range(3 * WAKE_BATCH + 1)]
    board.seq += 1
    publishing = asyncio.create_task(board.publish(SystemsSnapshot(time.time(), {}, poll=board.serial, seq=board.seq)))
    woken = []
    for _ in range(6):
        await asyncio.sleep(0)
        woken.append(sum(w.done() for w in waits))
    await publishing
    assert woken[-1] == len(waits)
    steps = [b - a for a, b in zip([0, *woken], woken, strict=False)]
    assert max(steps) <= WAKE_BATCH and len([s for s in steps if s]) >= 4, woken


async def test_the_timer_wakes_a_wait_and_leaves_nothing_parked() -> None:
    board = Board("k")
    await snap(board, {"a": Listed(1)})
    started = time.monotonic()
    await (await parked(board, "a", (1, 0), timeout_s=0.2))
    assert 0.15 <= time.monotonic() - started < 2
    assert board._parked == {}
    cancelled = await parked(board, "a", (1, 0))
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert board._parked == {}


async def test_waits_on_one_system_leave_one_by_one_and_the_rest_stay_parked() -> None:
    board = Board("k")
    await snap(board, {})
    gone = [await parked(board, "a", None) for _ in range(3)]  # the list did not show "a"
    listed = [await parked(board, "a", (1, 0)) for _ in range(2)]
    gone[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone[1]
    await snap(board, {"a": Listed(1)})  # "a" shows up as (1, 0): only the waits that saw it missing wake
    assert gone[0].done() and gone[2].done() and not any(w.done() for w in listed)
    await snap(board, {"a": Listed(2)})
    assert all(w.done() for w in listed) and board._parked == {}


async def test_catching_up_takes_the_newest_queued_snapshot_or_judges_the_last_again() -> None:
    board, queue = Board("k"), asyncio.Queue[SystemsSnapshot]()
    stream = reader(queue)
    first = await snap(board, {"a": Listed(1)}, queue=queue)
    assert await anext(stream) is first  # judged
    for _ in range(3):  # queued while the wait was busy (a GetSystem): it does not park
        await snap(board, {"a": Listed(1)}, queue=queue)
    await asyncio.wait_for(board.park("a", (1, 0), first.seq, timeout_s=60), 1)
    newest = await board.catch_up(stream, first, first.seq)
    assert newest.seq == board.seq == 4 and queue.empty()
    assert await board.catch_up(stream, newest, newest.seq) is newest  # a timer woke it: nothing new
    # A new wait parked before its first snapshot takes the next one.
    waiting = asyncio.create_task(board.catch_up(stream, None, board.seq))
    await asyncio.sleep(0)
    assert not waiting.done()
    fifth = await snap(board, {"a": Listed(1)}, queue=queue)
    assert await waiting is fifth


async def test_a_closed_board_wakes_everyone_and_hands_over_to_the_stream() -> None:
    board = Board.open("closing")
    assert Board.find("closing") is board
    await snap(board, {"a": Listed(1)})
    wait = await parked(board, "a", (1, 0))
    board.close()
    await asyncio.sleep(0)
    assert wait.done() and Board.find("closing") is None
    await asyncio.wait_for(board.park("a", (1, 0), 0, timeout_s=60), 1)  # does not park any more

    async def ended() -> AsyncIterator[SystemsSnapshot]:
        raise RuntimeError("the poll failed")
        yield  # pragma: no cover

    with pytest.raises(RuntimeError, match="the poll failed"):
        await board.catch_up(ended(), None, 0)


# --------------------------------------------------------------------------- through the manager




def count_judgements(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    judged: dict[str, int] = {}
    real = WaitTracker.judge

    def counting(self: WaitTracker, seen: Any, now: float) -> Any:
        judged[self.system_id] = judged.get(self.system_id, 0) + 1
        return real(self, seen, now)

    monkeypatch.setattr(WaitTracker, "judge", counting)
    return judged


async def test_waits_on_unchanging_systems_are_judged_on_the_first_snapshot_and_at_their_deadline(
    puddle_conn: str, client: SystemsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    still = [client.wait_for_system_started(client.create(f"still-{n}", **DAI).id) for n in range(3)]
    booting = client.create("moving", **DAI)
    judged = count_judgements(monkeypatch)
    seconds = 12 * INTERVAL
    started = time.time()
    events = await through_manager([*(trigger(s.id, "stopped", seconds=seconds) for s in still),
                                    trigger(booting.id, seconds=seconds)])
    assert [e["status"] for e in events] == ["timeout"] * 3 + ["success"]
    # About twelve snapshots went by; an unchanged system's wait was judged on the first and at its deadline.
    assert all(judged[s.id] <= 3 for s in still), judged
    assert judged[booting.id] >= 2  # woken by its own changes (Initializing, Starting, Started)
    assert time.time() - started < seconds + 2 * INTERVAL + 1  # the timeout came at the deadline, not later


async def test_a_parked_wait_empties_its_queue_before_the_manager_bound(
    puddle_conn: str, client: SystemsClient, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__TRIGGERER__SHARED_STREAM_SUBSCRIBER_QUEUE_SIZE", "4")
    looks._snapshots_between_drains.cache_clear()
    try:
        system = client.wait_for_system_started(client.create("queued", **DAI).id)

        async def stop_later() -> None:
            await asyncio.sleep(10 * INTERVAL)  # ten snapshots: more than the queue holds
            await asyncio.to_thread(client.stop, system.id)

        from airflow.triggers.shared_stream import SharedStreamManager

        manager = SharedStreamManager(max_subscriber_queue=4)
        wait = trigger(system.id, "stopped", seconds=60)
        key = wait.shared_stream_key()
        assert key is not None
        stopping = asyncio.create_task(stop_later())
        try:
            events = wait.filter_shared_stream(manager.subscribe(trigger_id=1, trigger=wait, key=key))
            event = await asyncio.wait_for(events.__anext__(), 30)
        finally:
            await manager.stop_all()
            await stopping
        assert event.payload["status"] == "success"
    finally:
        looks._snapshots_between_drains.cache_clear()
