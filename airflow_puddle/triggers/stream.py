"""One poll of a Puddle connection's systems, shared by every wait on it in a triggerer.

:func:`poll_systems` lists the systems once per interval over one login and one channel
and yields a :class:`SystemsSnapshot` each time, also when the poll failed, then wakes the
waits it concerns (:class:`~airflow_puddle.triggers.wakeups.Board`). It is what
:meth:`PuddleSystemStateTrigger.open_shared_stream` runs for a whole shared-stream group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent

from airflow_puddle.domain.lifecycle import wait_verdict
from airflow_puddle.hooks.api import AsyncSystemsClient, PuddleError, PuddleUnavailableError, System
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.triggers.wakeups import Board

if TYPE_CHECKING:
    from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

log = logging.getLogger(__name__)

MIN_POLL_TIMEOUT_S = 10.0
"""A list that takes longer than this (or twice the interval, if longer) counts as Puddle unavailable."""


@dataclass(frozen=True)
class SystemsSnapshot:
    """What one poll saw: every listed system by id, or why there is no list this time.

    ``permanent`` marks an error that polling again cannot fix (a rejected key, a broken
    connection): each waiting trigger ends with an error event. ``client`` is the poll's own
    client, for a GetSystem of a system the list no longer shows (terminated systems leave it).
    ``seq`` numbers the poll's snapshots from 1; ``board`` is where its waits park between changes.
    """

    taken_at: float
    systems: Mapping[str, System] = field(default_factory=dict)
    error: PuddleError | None = None
    permanent: bool = False
    client: AsyncSystemsClient | None = field(default=None, repr=False)
    seq: int = 0
    board: Board | None = field(default=None, repr=False)


async def _list_once(client: AsyncSystemsClient, timeout_s: float) -> SystemsSnapshot:
    try:
        systems = await asyncio.wait_for(client.list(), timeout_s)
    except TimeoutError:
        error = PuddleUnavailableError(f"ListSystems: no answer within {timeout_s:.0f}s")
        return SystemsSnapshot(time.time(), error=error, client=client)
    except PuddleUnavailableError as err:
        return SystemsSnapshot(time.time(), error=err, client=client)
    except PuddleError as err:
        return SystemsSnapshot(time.time(), error=err, permanent=True, client=client)
    return SystemsSnapshot(time.time(), {s.id: s for s in systems}, client=client)


def stream_key(conn_id: str, cloud: str | None, poll_interval: float) -> Hashable:
    """The shared-stream key of a poll: waits on one connection, cloud and interval share it."""
    return ("puddle-systems", conn_id, cloud or "", poll_interval)


async def poll_systems(kwargs: Mapping[str, Any], *, shared: bool = True) -> AsyncGenerator[SystemsSnapshot, None]:
    """Yield a snapshot of the connection's systems every ``poll_interval`` seconds, forever.

    Uses only the fields of the shared-stream key: ``puddle_conn_id``, ``cloud``, ``poll_interval``.
    ``shared``: the manager's poll, whose board new waits on the key find; a private one's is unlisted.
    """
    conn_id, interval = str(kwargs["puddle_conn_id"]), float(kwargs["poll_interval"])
    key = stream_key(conn_id, kwargs.get("cloud"), interval)
    board = Board.open(key) if shared else Board(key)  # waits park from now on
    client: AsyncSystemsClient | None = None
    try:
        try:
            client = await PuddleHook(conn_id, cloud=kwargs.get("cloud")).aget_systems_client()
        except Exception as err:  # a broken connection: every subscriber ends with this error
            board.close()
            broken = PuddleError(f"connection {conn_id!r}: {err}")
            while True:
                yield SystemsSnapshot(time.time(), error=broken, permanent=True)
                await asyncio.sleep(interval)
        timeout_s = max(MIN_POLL_TIMEOUT_S, 2 * interval)
        while True:
            started = time.monotonic()
            listed = await _list_once(client, timeout_s)
            board.seq += 1  # only now: a wait that parks while the list is on its way parks for this one
            snapshot = replace(listed, seq=board.seq, board=board)
            if snapshot.error is not None:
                log.warning("Listing Puddle systems on %r failed; polling on: %s", conn_id, snapshot.error)
            yield snapshot  # the manager queues it for every subscriber before it asks for the next
            await board.publish(snapshot)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:  # also when cancelled while logging in: no wait may park on a board nobody publishes to
        board.close()
        if client is not None:
            await client.authorizer.close()


def _find(snapshot: SystemsSnapshot, system_id: str, name: str | None) -> System | None:
    if name is None:
        return snapshot.systems.get(system_id)
    return next((s for s in snapshot.systems.values() if s.name == name), None)


async def watch(trigger: PuddleSystemStateTrigger, stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
    """A watcher's filter: an event each time the system is seen entering the target, for ever.

    Only a change between two snapshots fires, so a triggerer restart does not fire again for a
    system that was already there. Unavailable polls are skipped; a permanent error is logged once.
    """
    was_there: bool | None = None
    said_error = False
    async for snapshot in stream:
        if snapshot.error is not None:
            if snapshot.permanent and not said_error:
                trigger.log.error("Watching Puddle system %s: %s", trigger.system_name or trigger.system_id,
                                  snapshot.error)
                said_error = True
            continue
        system = _find(snapshot, trigger.system_id, trigger.system_name)
        there = system is not None and wait_verdict(trigger.target, system.status, system.config_status) == "reached"
        if there and was_there is False and system is not None:
            trigger.log.info("System %s (%s) is %s", system.name, system.id, system.status_text)
            yield TriggerEvent({"status": "reached", "target": trigger.target, "system_id": system.id,
                                "system_name": system.name, "system": system.to_dict(), "at": snapshot.taken_at})
        was_there = there
