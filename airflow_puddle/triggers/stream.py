"""One poll of a Puddle connection's systems, shared by every wait on it in a triggerer.

:func:`poll_systems` lists the systems once per interval over one login and one channel and
yields a :class:`~airflow_puddle.triggers.snapshots.SystemsSnapshot` each time, also when the
poll failed, then wakes the waits it concerns on its :class:`~airflow_puddle.triggers.wakeups.Board`,
which also holds its client. It is what :meth:`PuddleSystemStateTrigger.open_shared_stream` runs
for a whole shared-stream group, and what :meth:`PuddleSystemStateTrigger.run` runs for one trigger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from typing import Any

from airflow_puddle.hooks.api import AsyncSystemsClient, PuddleError, PuddleUnavailableError
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.triggers.snapshots import SystemsSnapshot, stream_key
from airflow_puddle.triggers.wakeups import Board

log = logging.getLogger(__name__)

MIN_POLL_TIMEOUT_S = 10.0
"""A list that takes longer than this (or twice the interval, if longer) counts as Puddle unavailable."""


async def _list_once(client: AsyncSystemsClient, timeout_s: float) -> SystemsSnapshot:
    try:
        systems = await asyncio.wait_for(client.list(), timeout_s)
    except TimeoutError:
        error = PuddleUnavailableError(f"ListSystems: no answer within {timeout_s:.0f}s")
        return SystemsSnapshot(time.time(), error=error)
    except PuddleUnavailableError as err:
        return SystemsSnapshot(time.time(), error=err)
    except PuddleError as err:
        return SystemsSnapshot(time.time(), error=err, permanent=True)
    return SystemsSnapshot(time.time(), {s.id: s for s in systems})


async def poll_systems(kwargs: Mapping[str, Any], board: Board | None = None
                       ) -> AsyncGenerator[SystemsSnapshot, None]:
    """Yield a snapshot of the connection's systems every ``poll_interval`` seconds, forever.

    Uses only the fields of the shared-stream key: ``puddle_conn_id``, ``cloud``, ``poll_interval``.
    ``board``: a private poll's (a trigger's own); by default the poll opens the key's shared board,
    which new waits on the key find. It is closed when the poll ends.
    """
    conn_id, interval = str(kwargs["puddle_conn_id"]), float(kwargs["poll_interval"])
    board = board or Board.open(stream_key(conn_id, kwargs.get("cloud"), interval))  # waits park from now on
    client: AsyncSystemsClient | None = None
    try:
        try:
            client = board.client = await PuddleHook(conn_id, cloud=kwargs.get("cloud")).aget_systems_client()
        except Exception as err:  # a broken connection: every subscriber ends with this error
            board.close()
            broken = PuddleError(f"connection {conn_id!r}: {err}")
            while True:
                yield SystemsSnapshot(time.time(), error=broken, permanent=True, poll=board.serial)
                await asyncio.sleep(interval)
        timeout_s = max(MIN_POLL_TIMEOUT_S, 2 * interval)
        while True:
            started = time.monotonic()
            listed = await _list_once(client, timeout_s)
            board.seq += 1  # only now: a wait that parks while the list is on its way parks for this one
            snapshot = replace(listed, poll=board.serial, seq=board.seq)
            if snapshot.error is not None:
                log.warning("Listing Puddle systems on %r failed; polling on: %s", conn_id, snapshot.error)
            yield snapshot  # the manager queues it for every subscriber before it asks for the next
            await board.publish(snapshot)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:  # also when cancelled while logging in: no wait may park on a board nobody publishes to
        board.close()
        if client is not None:  # a look at the deadline may still use it: a closed channel reopens on demand
            await client.authorizer.close()
