"""PuddleSystemStateTrigger: waits, in the triggerer, for a system to reach a state.

In a triggerer with Airflow 3.3's shared streams, every wait on one connection (and cloud
and poll interval) shares one poll: one login, one channel, one ListSystems per interval
(:mod:`airflow_puddle.triggers.stream`), queued for each trigger's
:meth:`~PuddleSystemStateTrigger.filter_shared_stream`, which judges it with the client's wait
engine when the poll wakes it (:mod:`airflow_puddle.triggers.wakeups`). :meth:`~PuddleSystemStateTrigger.run`
judges every snapshot of a private poll, for ``dag.test()`` and triggerers without the manager;
``shared=False`` polls the one system instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Hashable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.configuration import conf
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_puddle.checks import check_flag, exactly_one_target
from airflow_puddle.domain.lifecycle import check_wait_target
from airflow_puddle.hooks.api import (
    PuddleError,
    PuddleUnavailableError,
    WaitOutcome,
    WaitTracker,
    narrator,
    validate_deadline,
    validate_name,
    validate_poll_interval,
    validate_system_id,
)
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.triggers.stream import SystemsSnapshot, poll_systems, stream_key, watch
from airflow_puddle.triggers.wakeups import EVERY, OUTAGE, Board, state_key
from airflow_puddle.waits import DEFAULT_POLL_INTERVAL, DEFER_GRACE_S, WaitEvent, error_event, outcome_event

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator


class PuddleSystemStateTrigger(BaseEventTrigger):
    """Wait for a system to reach ``target``, through the client's wait engine, until ``deadline``.

    It carries only ids, the target, the poll interval and an absolute deadline (a
    Unix timestamp), so nothing secret lands in the trigger table and a restarted
    triggerer resumes the same deadline. It yields one :class:`~airflow_puddle.waits.WaitEvent`:
    ``status`` is ``success``, ``failed`` (the system failed, was terminated, disappeared,
    or the upload failed), ``timeout`` or ``error`` (a permanent error such as a rejected
    key), with the system's public fields under ``system``. Puddle being unavailable does
    not end the wait before its deadline.

    With ``deadline=None`` it is a watcher for an ``AssetWatcher`` (event-driven scheduling):
    it never ends, and yields ``{"status": "reached", ...}`` each time the system, by id or by
    ``system_name``, enters ``target`` (a change seen between two polls; a system already there
    when the watch starts does not fire, so a restarted triggerer does not fire it again).

    :param system_id: The system to watch (a watcher may give ``system_name`` instead).
    :param target: ``started``, ``stopped``, ``terminated``, ``failed``, ``config_uploaded`` or ``settled``.
    :param deadline: Unix timestamp after which the wait gives up; ``None``: watch for ever.
    :param puddle_conn_id: The ``puddle`` connection.
    :param cloud: Cloud id overriding the connection's.
    :param poll_interval: Seconds between polls.
    :param owns_system: The waiting task created this system and should clean it up:
        a user's kill of the deferred task terminates it, and events say so.
    :param shared: Share one poll per connection, cloud and poll interval in the triggerer
        (default); ``False`` polls this one system on its own (one GetSystem per interval).
    """

    def __init__(
        self,
        *,
        system_id: str | None = None,
        target: str,
        deadline: float | None,
        puddle_conn_id: str = PuddleHook.default_conn_name,
        cloud: str | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        owns_system: bool = False,
        shared: bool = True,
        system_name: str | None = None,
    ) -> None:
        super().__init__()
        if deadline is None and system_id == "" and system_name is not None:
            system_id = None  # a watcher by name, as serialize() wrote it (no id: "")
        if deadline is None:  # a watcher: by id or by name
            exactly_one_target(system_id, system_name)
            if system_name is not None:
                validate_name(system_name)
            if target == "terminated":
                raise ValueError("target: a watcher cannot see 'terminated' (terminated systems leave the list)")
        elif system_name is not None:
            raise ValueError("system_name: only a watcher (deadline=None) targets a name; a wait takes system_id")
        if system_id is not None or deadline is not None:
            validate_system_id(system_id)
        self.system_id = system_id or ""
        self.system_name = system_name
        self.target = check_wait_target(target)
        # A past deadline times out at once; None watches for ever.
        self.deadline = None if deadline is None else validate_deadline(deadline, time.time())
        self.puddle_conn_id = puddle_conn_id
        self.cloud = cloud
        self.poll_interval = validate_poll_interval(poll_interval)
        self.owns_system = check_flag("owns_system", owns_system)  # "false" from a tampered row is no False
        self.shared = check_flag("shared", shared)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "system_id": self.system_id,
                "target": self.target,
                "deadline": self.deadline,
                "puddle_conn_id": self.puddle_conn_id,
                "cloud": self.cloud,
                "poll_interval": self.poll_interval,
                "owns_system": self.owns_system,
                "shared": self.shared,
                "system_name": self.system_name,
            },
        )

    def _error(self, message: str) -> TriggerEvent:
        assert self.deadline is not None  # a watcher yields no error events
        return TriggerEvent(error_event(target=self.target, system_id=self.system_id, message=message,
                                        deadline=self.deadline, owns_system=self.owns_system))

    # ------------------------------------------------------------------ shared stream (Airflow 3.3)

    def shared_stream_key(self) -> Hashable | None:
        """Waits on one connection, cloud and poll interval share one poll (``None`` with ``shared=False``)."""
        if not self.shared:
            return None
        return stream_key(self.puddle_conn_id, self.cloud, self.poll_interval)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """One login, one channel, one ListSystems per interval for the whole group; yields snapshots forever."""
        async for snapshot in poll_systems(kwargs):
            yield snapshot

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Judge each snapshot for this trigger's system with the wait engine; yield its one event.

        A watcher (``deadline=None``) yields an event each time the system enters the target, for ever.
        """
        if self.deadline is None:
            async for event in watch(self, shared_stream):
                yield event
            return
        async for event in self._follow(shared_stream, park=True):
            yield event

    async def _follow(self, stream: AsyncIterator[Any], *, park: bool) -> AsyncIterator[TriggerEvent]:
        """Judge snapshots until the wait ends. With ``park``, wait on the poll's board between two changes.

        Parked, a wait is not woken by each snapshot the manager queues for it, only when its
        system changes, Puddle fails or comes back, or its tracker is due (:mod:`.wakeups`).
        The wait ends at its deadline whatever the interval: when the next snapshot is not there
        by then, one GetSystem of this system decides (:meth:`_last_look`).
        """
        assert self.deadline is not None
        tracker = WaitTracker(self.system_id, self.target, self.deadline, time.time(), narrator(self.log))
        key = self.shared_stream_key()
        board = Board.find(key) if park and key is not None else None
        after, seen = (board.seq if board is not None else 0), EVERY
        last: SystemsSnapshot | None = None  # the snapshot judged last
        joined: Board | None = None  # the shared poll this wait is counted on
        try:
            while True:
                snapshot = await _by(self.deadline, self._next(stream, board, tracker, last, after, seen))
                if park and joined is None and snapshot is not None and snapshot.board is not None:
                    joined = self._join(snapshot.board)
                if snapshot is None or snapshot.taken_at < self.deadline <= time.time():
                    # The deadline came first (a poll interval may be far longer than the time left): judge a look
                    # taken now, not the last snapshot (the target may have been reached since) nor the next poll.
                    outcome = await self._last_look(tracker, snapshot or last or (board.latest if board else None))
                    yield TriggerEvent(outcome_event(outcome, deadline=tracker.deadline, owns_system=self.owns_system))
                    return
                if snapshot.permanent and snapshot.error is not None:
                    yield self._error(f"{type(snapshot.error).__name__}: {snapshot.error}")
                    return
                judged, seen = await self._judge(tracker, snapshot)
                if judged is not None:
                    yield TriggerEvent(outcome_event(judged, deadline=tracker.deadline, owns_system=self.owns_system))
                    return
                board, after, last = (snapshot.board if park else None), snapshot.seq, snapshot
        finally:
            if joined is not None:
                joined.waits -= 1

    def _join(self, board: Board) -> Board:
        """Count this wait on the shared poll and say so in its task log: one poll, many waits."""
        board.waits += 1
        self.log.info("On the shared poll of connection %r (one list of systems every %gs), with %d wait(s) "
                      "on it in this triggerer now", self.puddle_conn_id, self.poll_interval, board.waits)
        return board

    async def _next(self, stream: AsyncIterator[Any], board: Board | None, tracker: WaitTracker,
                    last: SystemsSnapshot | None, after: int, seen: object) -> SystemsSnapshot:
        """The next snapshot to judge: the stream's next, or, parked on ``board``, the newest once woken."""
        if board is None:
            snapshot: SystemsSnapshot = await anext(stream)
            return snapshot
        assert self.deadline is not None
        due = self.deadline if last is None else tracker.next_due()
        await board.park(self.system_id, seen, after, min(due - time.time(), self._drain_every_s()))
        return await board.catch_up(stream, last, after)

    async def _last_look(self, tracker: WaitTracker, snapshot: SystemsSnapshot | None) -> WaitOutcome:
        """At the deadline: one GetSystem of this system judged; unavailable only when Puddle does not answer it.

        With no snapshot yet (the deadline came before the first poll answered, as for a wait
        resumed past its deadline), the look takes a client of its own: not having polled yet
        says nothing about Puddle.
        """
        now = time.time()
        client = snapshot.client if snapshot is not None else None
        own = client is None
        try:
            if client is None:
                client = await PuddleHook(self.puddle_conn_id, cloud=self.cloud).aget_systems_client()
            system = await asyncio.wait_for(client.get(self.system_id), LAST_LOOK_S)
        except (PuddleUnavailableError, TimeoutError) as err:
            error = err if isinstance(err, PuddleError) else PuddleUnavailableError(
                f"GetSystem: no answer within {LAST_LOOK_S:.0f}s")
            outcome = tracker.unavailable(error, max(now, tracker.deadline))
        else:
            outcome = tracker.observe(system, max(now, tracker.deadline))
        finally:
            if own and client is not None:
                await client.authorizer.close()
        assert outcome is not None  # judged at the deadline: reached, failed, gone, timed out or unavailable
        return outcome

    def _drain_every_s(self) -> float:
        """A parked wait takes its queued snapshots at least this often: before half the queue's bound."""
        return self.poll_interval * _snapshots_between_drains()

    async def _judge(self, tracker: WaitTracker, snapshot: SystemsSnapshot) -> tuple[WaitOutcome | None, object]:
        """The tracker's verdict on a snapshot, and what of the system it saw (see :meth:`Board.park`)."""
        if snapshot.error is not None:
            return tracker.unavailable(snapshot.error, time.time()), OUTAGE
        system = snapshot.systems.get(self.system_id)
        if system is None and snapshot.client is not None:  # not listed: terminated, or never there
            try:
                system = await snapshot.client.get(self.system_id)
            except PuddleUnavailableError as err:
                return tracker.unavailable(err, time.time()), EVERY
            return tracker.observe(system, time.time()), EVERY
        return tracker.observe(system, time.time()), state_key(system)

    # ------------------------------------------------------------------ standalone

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """The same filter over a private stream (``dag.test()``, no manager); or a per-trigger poll."""
        if not self.shared and self.deadline is not None:
            async for event in self._poll_alone():
                yield event
            return
        stream = poll_systems(self.serialize()[1], shared=False)
        try:
            events = watch(self, stream) if self.deadline is None else self._follow(stream, park=False)
            async for event in events:
                yield event
        finally:
            await stream.aclose()

    async def _poll_alone(self) -> AsyncIterator[TriggerEvent]:
        """One GetSystem per interval for this trigger alone: the baseline the shared poll is measured against."""
        assert self.deadline is not None
        try:
            client = await PuddleHook(self.puddle_conn_id, cloud=self.cloud).aget_systems_client()
        except Exception as err:  # a broken connection is permanent: say so at once
            yield self._error(f"connection {self.puddle_conn_id!r}: {err}")
            return
        event: WaitEvent | None = None
        try:
            outcome = await client.wait(self.system_id, self.target, deadline=self.deadline,
                                        poll_interval_s=self.poll_interval, on_state=narrator(self.log))
            event = outcome_event(outcome, deadline=self.deadline, owns_system=self.owns_system)
        except PuddleError as err:
            self.log.error("Wait for system %s to be %s stopped: %s", self.system_id, self.target, err)
            yield self._error(f"{type(err).__name__}: {err}")
        finally:
            await client.authorizer.close()
        if event is not None:
            yield TriggerEvent(event)

    async def on_kill(self) -> None:
        """A user killed the deferred task: terminate the system if this wait owns it.

        Airflow 3.3.2 re-sends the user-action cancel on every triggerer loop (about 1 s)
        until the trigger ends, which would cancel a longer ``on_kill``. So the termination
        runs as its own task on the triggerer's loop and is only awaited here, shielded.
        """
        if not self.owns_system:
            self.log.info("Task killed; Puddle carries on with system %s", self.system_id)
            return
        task = asyncio.create_task(self._discard(), name=f"puddle-discard-{self.system_id}")
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)
        await asyncio.shield(task)

    async def _discard(self) -> None:
        client = await PuddleHook(self.puddle_conn_id, cloud=self.cloud).aget_systems_client()
        try:
            self.log.warning("Task killed: terminating system %s that this task created", self.system_id)
            await client.discard(self.system_id, timeout_s=120)
            self.log.warning("Task killed: system %s is terminating", self.system_id)
        except PuddleError as err:
            self.log.warning("Task killed; could not terminate system %s: %s", self.system_id, err)
        finally:
            await client.authorizer.close()


LAST_LOOK_S = 10.0
"""How long the one GetSystem at a wait's deadline may take before the wait times out without it."""


async def _by(deadline: float, step: Awaitable[SystemsSnapshot]) -> SystemsSnapshot | None:
    """``step``'s snapshot, or None when the deadline passes first (``step`` is then cancelled)."""
    task = asyncio.ensure_future(step)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - time.time()))
    finally:  # also when the trigger is cancelled: nothing may go on reading the stream after
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await task
    return task.result() if task in done else None


@functools.cache
def _snapshots_between_drains() -> int:
    """How many snapshots a parked wait lets the manager queue before it takes them: half the queue's bound."""
    return max(1, conf.getint("triggerer", "shared_stream_subscriber_queue_size", fallback=1024) // 2)


_BACKGROUND: set[asyncio.Task[None]] = set()
"""Terminations started by :meth:`PuddleSystemStateTrigger.on_kill`, kept referenced until they end."""


def defer_wait(task: BaseOperator, *, system_id: str, target: str, deadline: float, puddle_conn_id: str,
               cloud: str | None, poll_interval: float, owns_system: bool = False,
               method_name: str = "execute_complete") -> None:
    """Hand the wait to the triggerer until ``deadline``; the task resumes in ``method_name`` with its event.

    Everything the resumption needs is in the trigger and its event, not in ``defer`` kwargs
    (``dag.test()`` drops those).
    """
    task.defer(
        trigger=PuddleSystemStateTrigger(
            system_id=system_id, target=target, deadline=deadline, puddle_conn_id=puddle_conn_id, cloud=cloud,
            poll_interval=poll_interval, owns_system=owns_system,
        ),
        method_name=method_name,
        timeout=timedelta(seconds=max(1.0, deadline - time.time()) + DEFER_GRACE_S),
    )
