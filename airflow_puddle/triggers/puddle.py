"""PuddleSystemStateTrigger: waits, in the triggerer, for a system to reach a state.

A trigger's wait is the client's one wait loop (:meth:`WaitTracker.follow`) over looks from a
poll. In a triggerer with Airflow 3.3's shared streams, every wait on one connection (and
cloud and poll interval) shares one poll: one login, one channel, one ListSystems per interval
(:mod:`airflow_puddle.triggers.stream`), queued for each trigger's
:meth:`~PuddleSystemStateTrigger.filter_shared_stream`, which parks on the poll's board until its
system changes (:mod:`airflow_puddle.triggers.looks`, :mod:`airflow_puddle.triggers.wakeups`).
:meth:`~PuddleSystemStateTrigger.run` follows a private poll, for ``dag.test()`` and triggerers
without the manager; ``shared=False`` runs the client's own wait instead (one GetSystem per interval).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Hashable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, get_args

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_puddle.checks import check_flag, exactly_one_target
from airflow_puddle.domain.defaults import DISCARD_TIMEOUT_S
from airflow_puddle.domain.lifecycle import check_wait_target
from airflow_puddle.hooks.api import (
    PuddleError,
    WaitOutcome,
    WaitTracker,
    narrator,
    validate_deadline,
    validate_name,
    validate_poll_interval,
    validate_system_id,
)
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.triggers.cursor import WatchCursor
from airflow_puddle.triggers.looks import PollLooks, Watch, drive
from airflow_puddle.triggers.snapshots import SystemsSnapshot, stream_key
from airflow_puddle.triggers.stream import poll_systems
from airflow_puddle.triggers.wakeups import Board
from airflow_puddle.waits import DEFAULT_POLL_INTERVAL, DEFER_GRACE_S, DeadlineOf, error_event, outcome_event

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
    ``system_name``, enters ``target``. In a triggerer, what it saw and reported is kept per
    system id in the watched asset's state store (:mod:`airflow_puddle.triggers.cursor`): an entry
    while no triggerer ran fires once when one starts, an entry already reported never again, and
    two triggers watching one asset fire an entry once. A system already in the target when the
    watch first starts does not fire.

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
    :param deadline_of: ``timeout`` or ``execution_timeout``: which limit set ``deadline``; events say it.
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
        deadline_of: str = "timeout",
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
        if deadline_of not in get_args(DeadlineOf):
            raise ValueError(f"deadline_of: must be one of {', '.join(get_args(DeadlineOf))}, got {deadline_of!r}")
        self.deadline_of: DeadlineOf = deadline_of  # type: ignore[assignment]  # one of the choices

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
                "deadline_of": self.deadline_of,
            },
        )

    def _error(self, message: str) -> TriggerEvent:
        assert self.deadline is not None  # a watcher yields no error events
        return TriggerEvent(error_event(target=self.target, system_id=self.system_id, message=message,
                                        deadline=self.deadline, owns_system=self.owns_system,
                                        deadline_of=self.deadline_of))

    # ------------------------------------------------------------------ shared stream (Airflow 3.3)

    def shared_stream_key(self) -> Hashable | None:
        """Waits on one connection, cloud and poll interval share one poll (``None`` with ``shared=False``)."""
        return stream_key(self.puddle_conn_id, self.cloud, self.poll_interval) if self.shared else None

    @classmethod
    def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[SystemsSnapshot]:
        """One login, one channel, one ListSystems per interval for the whole group; yields snapshots forever."""
        return poll_systems(kwargs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """The same over a private poll (``dag.test()``, no manager); with ``shared=False``, the client's own wait."""
        if not self.shared and self.deadline is not None:
            async for event in self._wait_alone():
                yield event
            return
        board = Board(stream_key(self.puddle_conn_id, self.cloud, self.poll_interval))  # found by no other wait
        stream = poll_systems(self.serialize()[1], board)
        try:
            async for event in self.filter_shared_stream(stream, board):
                yield event
        finally:
            await stream.aclose()

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any], board: Board | None = None
                                   ) -> AsyncIterator[TriggerEvent]:
        """Follow this trigger's system in the poll's snapshots with the one wait loop; yield its one event.

        A permanent error (a rejected key, a broken connection) is an ``error`` event. A watcher
        (``deadline=None``) runs the loop again after each entry into the target: an event each
        time, for ever. ``board``: a private poll's (:meth:`run`), whose stream is read, not parked on.
        """
        key = stream_key(self.puddle_conn_id, self.cloud, self.poll_interval)
        looks = PollLooks(shared_stream, key, self.system_id, self.system_name, board=board,
                          look_up=self.deadline is not None, log=self.log)
        try:
            if self.deadline is None:
                async for event in self._watch(looks):
                    yield event
                return  # a watch never ends
            tracker = WaitTracker(self.system_id, self.target, self.deadline, time.time(), narrator(self.log))
            try:
                outcome = await drive(tracker.follow(looks))
            except PuddleError as err:
                yield self._error(f"{type(err).__name__}: {err}")
                return
            yield await self._ended(outcome)
        finally:
            looks.close()

    async def _watch(self, looks: PollLooks) -> AsyncIterator[TriggerEvent]:
        """A watcher: an event at each entry into the target, as the cursor in the asset state store judges."""
        watch = Watch(self.system_id, self.target, math.inf, time.time(), narrator(self.log),
                      heartbeat_s=math.inf, name=self.system_name or "")
        watcher = f"name:{self.system_name}" if self.system_name is not None else f"id:{self.system_id}"
        cursor = WatchCursor(self.asset_state_store, self.target, watcher, self.log)
        while True:
            system = (await drive(watch.follow(looks))).system
            if not await cursor.entered(watch.seen_id, bool(watch.there), watch.prior, watch.seen_at):
                continue
            assert system is not None  # an entry is a system seen in the target
            self.log.info("System %s (%s) entered %s: an event", system.name, system.id, self.target)
            yield TriggerEvent({"status": "reached", "target": self.target, "system_id": system.id,
                                "system_name": system.name, "system": system.to_dict(), "at": time.time()})

    async def _wait_alone(self) -> AsyncIterator[TriggerEvent]:
        """The client's wait, one GetSystem per interval for this trigger alone: the shared poll's baseline."""
        assert self.deadline is not None
        try:
            client = await PuddleHook(self.puddle_conn_id, cloud=self.cloud).aget_systems_client()
        except Exception as err:  # a broken connection is permanent: say so at once
            yield self._error(f"connection {self.puddle_conn_id!r}: {err}")
            return
        try:
            outcome = await client.wait(self.system_id, self.target, deadline=self.deadline,
                                        poll_interval_s=self.poll_interval, on_state=narrator(self.log))
        except PuddleError as err:
            self.log.error("Wait for system %s to be %s stopped: %s", self.system_id, self.target, err)
            yield self._error(f"{type(err).__name__}: {err}")
            return
        finally:
            await client.authorizer.close()
        yield await self._ended(outcome)

    async def _ended(self, outcome: WaitOutcome) -> TriggerEvent:
        """The wait's event. A wait that failed on a system this task owns terminates it here first, so the
        task's cleanup never waits in a worker; the event says how that went (``cleanup``)."""
        assert self.deadline is not None
        event = outcome_event(outcome, deadline=self.deadline, owns_system=self.owns_system,
                              deadline_of=self.deadline_of)
        if self.owns_system and event["status"] != "success":
            event["cleanup"] = await self._terminate_owned(f"its wait failed ({outcome.message})")
        return TriggerEvent(event)

    async def on_kill(self) -> None:
        """A user killed the deferred task: terminate the system if this wait owns it.

        Airflow 3.3.2 re-sends the user-action cancel on every triggerer loop (about 1 s)
        until the trigger ends, which would cancel a longer ``on_kill``. So the termination
        runs as its own task on the triggerer's loop and is only awaited here, shielded.
        """
        if not self.owns_system:
            self.log.info("Task killed; Puddle carries on with system %s", self.system_id)
            return
        task = asyncio.create_task(self._terminate_owned("the task was killed"),
                                   name=f"puddle-discard-{self.system_id}")
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)
        await asyncio.shield(task)

    async def _terminate_owned(self, why: str) -> str:
        """Terminate the system this task created (``discard``: a system mid-boot is failed first); say how it went."""
        self.log.warning("Terminating system %s for the task that created it: %s", self.system_id, why)
        try:
            client = await PuddleHook(self.puddle_conn_id, cloud=self.cloud).aget_systems_client()
        except Exception as err:  # a broken connection: say so, the task's verdict stands
            said = f"could not terminate it: connection {self.puddle_conn_id!r}: {err}"
            self.log.warning("System %s: %s", self.system_id, said)
            return said
        try:
            await client.discard(self.system_id, timeout_s=DISCARD_TIMEOUT_S)
            said = "it is terminating"
        except PuddleError as err:
            said = f"could not terminate it: {err}"
        finally:
            await client.authorizer.close()
        self.log.warning("System %s: %s", self.system_id, said)
        return said


_BACKGROUND: set[asyncio.Task[Any]] = set()
"""Terminations started by :meth:`PuddleSystemStateTrigger.on_kill`, kept referenced until they end."""


def defer_wait(task: BaseOperator, *, system_id: str, target: str, deadline: float, puddle_conn_id: str,
               cloud: str | None, poll_interval: float, owns_system: bool = False,
               method_name: str = "execute_complete", deadline_of: DeadlineOf = "timeout") -> None:
    """Hand the wait to the triggerer until ``deadline``; the task resumes in ``method_name`` with its event.

    Everything the resumption needs is in the trigger and its event, not in ``defer`` kwargs
    (``dag.test()`` drops those).
    """
    task.defer(
        trigger=PuddleSystemStateTrigger(
            system_id=system_id, target=target, deadline=deadline, puddle_conn_id=puddle_conn_id, cloud=cloud,
            poll_interval=poll_interval, owns_system=owns_system, deadline_of=deadline_of,
        ),
        method_name=method_name,
        # An owned system's wait may end by terminating it (up to DISCARD_TIMEOUT_S) before its event.
        timeout=timedelta(seconds=max(1.0, deadline - time.time()) + DEFER_GRACE_S
                          + (DISCARD_TIMEOUT_S if owns_system else 0.0)),
    )
