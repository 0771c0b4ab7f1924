"""Wake a shared wait when its system changes, not on every snapshot, and a few hundred at a time.

Airflow's ``SharedStreamManager`` puts each snapshot into every subscriber's queue. A
subscriber that sits on its queue is woken for each one: with 5,000 waits that is 5,000 task
wake-ups per interval, about 40 ms in one stretch of the event loop on a 2-core machine, for
snapshots where almost nothing changed. So a wait parks on its poll's :class:`Board` instead,
from before its first snapshot on: the poll wakes it when its system's state differs from the
one it judged (or on the first snapshot it has not judged yet), on the first failed poll and
the first good one after failures; its own timer wakes it when its tracker is due (deadline,
heartbeat) or before the manager's queue bound. The manager's puts meanwhile only append to the
queue; a woken wait takes what is queued without suspending and judges the newest snapshot.

The poll yields a snapshot (the manager's fan-out queues it everywhere, synchronously), then
publishes it: :data:`WAKE_BATCH` waits per turn of the event loop, so that a snapshot in which
thousands of systems changed, or the first one of thousands of new waits, does not hold the
loop for the whole lot.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Hashable

from airflow_puddle.hooks.api import AsyncSystemsClient
from airflow_puddle.triggers.snapshots import EVERY, OUTAGE, SystemsSnapshot, state_key

__all__ = ["EVERY", "OUTAGE", "WAKE_BATCH", "Board"]

WAKE_BATCH = 50
"""Waits woken per turn of the event loop: a woken wait judges, narrates or ends (up to ~0.1 ms each here)."""

_OPEN: dict[Hashable, Board] = {}
"""The board of each running poll in this process, by shared-stream key."""

_SERIALS = itertools.count(1)


class Board:
    """One running poll as its waits see it: the waits parked on its snapshots, by system id, the
    number of its newest snapshot, and its client (for a look at one system)."""

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.serial = next(_SERIALS)
        """Tells this poll's snapshots (:attr:`SystemsSnapshot.poll`) from those of another poll of the key."""
        self.client: AsyncSystemsClient | None = None
        """The poll's client once it has logged in: a wait's GetSystem of one system goes through it."""
        self.seq = 0
        self.closed = False
        self._parked: dict[str, dict[asyncio.Future[None], object]] = {}
        """By system id: each parked wait's future and the state it saw (a dict: O(1) to unpark one)."""
        self._healthy = True
        self.waits = 0
        """Waits that follow this poll (counted from their first snapshot until they end)."""

    @classmethod
    def open(cls, key: Hashable) -> Board:
        """A poll's board, found by the waits that subscribe to ``key`` from now on."""
        board = _OPEN[key] = cls(key)
        return board

    @staticmethod
    def find(key: Hashable) -> Board | None:
        """The running poll's board for ``key``, if there is one in this process."""
        board = _OPEN.get(key)
        return None if board is None or board.closed else board

    async def publish(self, snapshot: SystemsSnapshot) -> None:
        """Wake the waits ``snapshot`` concerns, :data:`WAKE_BATCH` per loop turn. Call it right after the yield."""
        failed = snapshot.error is not None
        if failed and not snapshot.permanent and not self._healthy:
            due = self._take(lambda system_id, seen: seen is EVERY)  # an outage goes on: nothing new to say
        elif failed or not self._healthy:  # the first failed poll, a permanent error, or Puddle back
            self._healthy = not failed
            due = self._take(lambda system_id, seen: True)
        else:
            systems = snapshot.systems
            due = self._take(lambda system_id, seen: seen is EVERY or state_key(systems.get(system_id)) != seen)
        for start in range(0, len(due), WAKE_BATCH):
            if start:
                await asyncio.sleep(0)
            for future in due[start:start + WAKE_BATCH]:
                _wake(future)

    def close(self) -> None:
        """The poll ended: wake every parked wait, which then finds the manager's verdict in its queue."""
        self.closed = True
        if _OPEN.get(self.key) is self:
            del _OPEN[self.key]
        for future in self._take(lambda system_id, seen: True):
            _wake(future)

    def _take(self, due: Callable[[str, object], bool]) -> list[asyncio.Future[None]]:
        """Unpark the waits for which ``due(system_id, seen)`` holds; their futures."""
        taken: list[asyncio.Future[None]] = []
        for system_id, parked in list(self._parked.items()):
            for future, seen in list(parked.items()):
                if due(system_id, seen):
                    taken.append(future)
                    del parked[future]
            if not parked:
                del self._parked[system_id]
        return taken

    async def park(self, system_id: str, seen: object, after_seq: int, timeout_s: float) -> None:
        """Return when a snapshot after ``after_seq`` shows the system other than ``seen``, or after ``timeout_s``.

        Returns at once if such snapshots were queued meanwhile (the wait was busy with a GetSystem).
        """
        if self.closed or self.seq > after_seq:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._parked.setdefault(system_id, {})[future] = seen
        timer = loop.call_later(max(0.0, timeout_s), _wake, future)
        try:
            await future
        finally:
            timer.cancel()
            parked = self._parked.get(system_id)
            if parked is not None:
                parked.pop(future, None)  # ``seen`` may be None: the list did not show the system
                if not parked:
                    del self._parked[system_id]

    async def catch_up(self, stream: AsyncIterator[SystemsSnapshot], last: SystemsSnapshot | None,
                       after_seq: int) -> SystemsSnapshot:
        """The newest snapshot for a wait that was parked after ``after_seq``.

        Snapshots after ``after_seq`` are already queued (the manager queued them when they were
        yielded); without any, ``last`` again (a timer woke the wait), or the next one if there is
        no ``last``. After :meth:`close` it reads on: the manager ends the stream with the poll's error.
        """
        if self.closed or (last is None and self.seq <= after_seq):
            return await anext(stream)
        snapshot = last if last is not None else await anext(stream)
        while snapshot.poll == self.serial and snapshot.seq < self.seq:
            snapshot = await anext(stream)
        return snapshot


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
