"""A trigger's looks at its system, from a poll of the connection's systems, for the one wait loop.

:class:`PollLooks` is the source (:class:`~airflow_puddle.client.waiting.Looks`) that the client's
wait loop, :meth:`WaitTracker.follow`, runs over in a trigger: each look is the poll's newest
list, or one GetSystem through the poll's client for a system the list does not show
(terminated systems leave it) and for the look that decides at the deadline. Between two looks
a wait parks on the poll's :class:`~airflow_puddle.triggers.wakeups.Board` until its system
changes (:mod:`.wakeups`). Its steps are awaitables; :func:`drive` runs the loop over them.

:class:`Watch` is the judge of a watcher: a wait with no deadline that ends at each change of what
it sees, so that a watch is the same loop, entered again after each change.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow.configuration import conf

from airflow_puddle.domain.lifecycle import wait_verdict
from airflow_puddle.hooks.api import PuddleError, PuddleUnavailableError, System, WaitOutcome, WaitTracker
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.triggers.snapshots import EVERY, OUTAGE, StreamKey, SystemsSnapshot, state_key
from airflow_puddle.triggers.wakeups import Board

T = TypeVar("T")
Step = Awaitable[Any]
Seen = System | PuddleError | None

LAST_LOOK_S = 10.0
"""How long one GetSystem (at the deadline, or of a system the list does not show) may take: then Puddle is
unavailable for this look."""


class PollLooks:
    """A trigger's looks at one system (by id, or a watcher's by name) from the poll behind ``stream``.

    :param stream: The poll's snapshots: the manager's queue for this trigger, or a private poll.
    :param key: The poll's shared-stream key: its board is found by it.
    :param board: A private poll's board, for its client: its stream is read, not parked on (a private
        poll runs only while it is read). ``None``: the shared poll's, found by ``key``; the wait parks
        on it between two changes of its system.
    :param look_up: Look up a system the list does not show with a GetSystem (a wait; a watcher
        does not: a system not listed is not in the target).
    :param log: The trigger's logger: it says when the wait joins the shared poll.
    """

    def __init__(self, stream: AsyncIterator[SystemsSnapshot], key: StreamKey, system_id: str,
                 system_name: str | None, *, board: Board | None, look_up: bool, log: Any) -> None:
        self._stream, self._key, self._id, self._name = stream, key, system_id, system_name
        self._park, self._look_up, self._log = board is None, look_up, log
        # A parked wait takes its queued snapshots at least this often: before half the manager's queue bound.
        self._drain_s = key.poll_interval * _snapshots_between_drains()
        self._board = board or Board.find(key)
        self._after = self._board.seq if self._board is not None else 0  # snapshots up to this one are old
        self._seen: object = EVERY  # what the last look showed of the system: the board wakes on a change
        self._last: SystemsSnapshot | None = None
        self._joined: Board | None = None

    def next(self, tracker: WaitTracker) -> Generator[Step, Any, tuple[Seen, float] | None]:
        """Park until the system changes (or the tracker is due), then judge the newest snapshot."""
        snapshot = yield self._snapshot(tracker.deadline, tracker.next_due())
        if snapshot is None:
            return None
        if self._park and (self._board is None or self._board.serial != snapshot.poll):
            board = Board.find(self._key)  # the poll that took it, if it still runs here
            self._board = board if board is not None and board.serial == snapshot.poll else None
        if self._park and self._board is not None and self._joined is None:  # one poll, many waits: say so
            self._joined, self._board.waits = self._board, self._board.waits + 1
            self._log.info("On the shared poll of connection %r (one list of systems every %gs), with %d wait(s) "
                           "on it in this triggerer now", self._key.conn_id, self._key.poll_interval, self._board.waits)
        self._after, self._last = snapshot.seq, snapshot
        if snapshot.error is not None:
            self._seen = OUTAGE
            return snapshot.error, snapshot.taken_at
        if self._name is not None:
            self._seen = EVERY
            return next((s for s in snapshot.systems.values() if s.name == self._name), None), snapshot.taken_at
        system = snapshot.systems.get(self._id)
        self._seen = state_key(system)
        if system is None and self._look_up:  # not listed: terminated, or never there
            self._seen = EVERY
            return (yield self._get()), time.time()
        return system, snapshot.taken_at

    def now(self, tracker: WaitTracker) -> Generator[Step, Any, Seen]:
        """One GetSystem of the system through the poll's client."""
        seen: Seen = yield self._get()
        return seen

    def close(self) -> None:
        """The wait ended: it no longer counts on the shared poll."""
        if self._joined is not None:
            self._joined.waits -= 1
            self._joined = None

    async def _snapshot(self, deadline: float, due: float) -> SystemsSnapshot | None:
        """The next snapshot to judge, or ``None`` when the deadline passes first (nothing reads on after it)."""
        left = None if math.isinf(deadline) else max(0.0, deadline - time.time())
        try:
            async with asyncio.timeout(left):
                board = self._board if self._park else None
                if board is None:
                    return await anext(self._stream)
                wake = min((deadline if self._last is None else due) - time.time(), self._drain_s)
                await board.park(self._id, self._seen, self._after, wake)
                return await board.catch_up(self._stream, self._last, self._after)
        except TimeoutError:
            return None

    async def _get(self) -> Seen:
        """One GetSystem, through the poll's client; with none yet (the deadline came before the first poll
        answered, as for a wait resumed past its deadline), through a client of its own: not having polled
        yet says nothing about Puddle."""
        board = self._board or (Board.find(self._key) if self._park else None)  # any poll of the key will do
        client = board.client if board is not None else None
        own = client is None
        try:
            async with asyncio.timeout(LAST_LOOK_S):
                if client is None:
                    client = await PuddleHook(self._key.conn_id, cloud=self._key.cloud or None).aget_systems_client()
                return await client.get(self._id)
        except TimeoutError:
            return PuddleUnavailableError(f"GetSystem: no answer within {LAST_LOOK_S:.0f}s")
        except PuddleUnavailableError as err:
            return err
        finally:
            if own and client is not None:
                await client.authorizer.close()


@dataclass
class Watch(WaitTracker):
    """A watcher's judge: a wait with no deadline that ends at each change of what it sees.

    A change is the first look, a system entering or leaving the target, or (for a watcher by
    name) another system under the name. Whether a change is an entry to report is the cursor's
    call (:class:`~airflow_puddle.triggers.cursor.WatchCursor`), from ``seen_id``, ``there`` and
    ``prior``. Unavailable polls are skipped; a permanent error is said once, and the watch goes on.
    """

    there: bool | None = None
    """Whether the last look showed the system in the target (``None``: no look yet)."""
    seen_id: str = ""
    """The system the last look showed (``""``: none)."""
    prior: bool | None = None
    """Whether the system was in the target before the last change, as this watch saw it: ``None`` at
    its first look, ``False`` for a system new to it."""
    seen_at: float = 0.0
    """Unix time of the last change."""
    told: bool = False
    """Whether a permanent error was said."""
    name: str = ""
    """The system's name, for a watcher by name."""

    def judge(self, seen: Seen, now: float) -> WaitOutcome | None:
        if isinstance(seen, PuddleError):
            if not isinstance(seen, PuddleUnavailableError) and not self.told:
                self.told = True
                self._say("unavailable", "error", f"Watching system {self.name or self.system_id}: {seen}", now)
            return None
        there = seen is not None and wait_verdict(self.target, seen.status, seen.config_status) == "reached"
        seen_id = seen.id if seen is not None else ""
        if self.there is not None and (seen_id, there) == (self.seen_id, self.there):
            return None
        self.prior = None if self.there is None else (self.there if seen_id == self.seen_id else False)
        self.seen_id, self.there, self.seen_at, self.system = seen_id, there, now, seen
        state = "not listed" if seen is None else seen.status_text
        return self._end("reached" if there else "gone", f"{self._label()} is {state}", now)


async def drive(loop: Generator[Step, Any, T]) -> T:
    """Run a wait loop whose steps are awaitables: await each, send its result back in."""
    value: Any = None
    try:
        while True:
            try:
                step = loop.send(value)
            except StopIteration as stop:
                return stop.value
            value = await step
    finally:
        loop.close()


@functools.cache
def _snapshots_between_drains() -> int:
    """How many snapshots a parked wait lets the manager queue before it takes them: half the queue's bound."""
    return max(1, conf.getint("triggerer", "shared_stream_subscriber_queue_size", fallback=1024) // 2)
