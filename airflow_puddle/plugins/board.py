"""The Puddle page's shared snapshot: one ListSystems and one CU query per connection per refresh.

Every open tab and every JSON caller reads the same :class:`Board`. A connection's snapshot is
kept for one poll interval; while it is being refreshed, later requests wait for that refresh
instead of starting their own, so N tabs never make N polls. The clients are the async twins
(:meth:`PuddleHook.aget_systems_client`): nothing blocks the API server's event loop, and a slow
or unreachable Puddle costs its own connection at most ``timeout_s``, shown as that
connection's error, while the page answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from airflow_puddle.hooks.api import System
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.plugins.rows import Owner, Snapshot, cu_info, system_row
from airflow_puddle.waits import DEFAULT_POLL_INTERVAL

REFRESH_S = DEFAULT_POLL_INTERVAL
"""How long a connection's snapshot is served before the next poll: a wait's poll interval."""
FETCH_TIMEOUT_S = 15.0
"""The longest one refresh of one connection may take; past it, the connection shows as not answering."""

OwnerLookup = Callable[[list[str]], Awaitable[dict[str, Owner]]]
"""Reads the owners of the given system ids (the task state store), off the event loop."""

log = logging.getLogger(__name__)


async def fetch(conn_id: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One connection, now: its systems that are not terminated (one ListSystems) and its CU."""
    client = await PuddleHook(conn_id).aget_systems_client()
    try:
        listed = await client.list()
        cu = await client.get_cu_consumption_info()
    finally:
        await client.authorizer.close()
    rows = [system_row(s) for s in listed if s.status != System.SYSTEM_STATUS_TERMINATED.code]
    return rows, cu_info(cu)


class Board:
    """Snapshots of Puddle connections, each refreshed at most once per ``ttl_s`` whoever asks.

    :param owners: Reads the owners of system ids (may be slow: it runs once per refresh).
    :param ttl_s: How long a snapshot is served.
    :param timeout_s: The longest one connection's refresh may take.
    """

    def __init__(self, owners: OwnerLookup, *, ttl_s: float = REFRESH_S, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self._owners = owners
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._cache: dict[str, tuple[float, Snapshot]] = {}
        self._inflight: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[Snapshot]] = {}

    async def snapshots(self, conn_ids: Iterable[str]) -> list[Snapshot]:
        """The snapshot of each connection, refreshed side by side where stale."""
        return list(await asyncio.gather(*(self.snapshot(c) for c in conn_ids)))

    async def snapshot(self, conn_id: str) -> Snapshot:
        """The connection's snapshot: the cached one if fresh, else the refresh in flight, else a new refresh."""
        cached = self._cache.get(conn_id)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        key = (asyncio.get_running_loop(), conn_id)  # a future belongs to its loop
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._refresh(conn_id))
            self._inflight[key] = future
            future.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(future)  # a caller that goes away does not cancel the others' refresh

    async def _refresh(self, conn_id: str) -> Snapshot:
        started = time.time()
        try:
            rows, cu = await asyncio.wait_for(fetch(conn_id), self.timeout_s)
        except TimeoutError:
            snap = Snapshot(conn_id, started, error=f"Puddle did not answer within {self.timeout_s:g}s")
        except Exception as err:  # any failure of one connection is that connection's error, not the page's
            snap = Snapshot(conn_id, started, error=f"{type(err).__name__}: {err}")
        else:
            snap = Snapshot(conn_id, started, tuple(rows), await self._owners_of(rows), cu)
        self._cache[conn_id] = (time.monotonic() + self.ttl_s, snap)
        return snap

    async def _owners_of(self, rows: list[dict[str, Any]]) -> dict[str, Owner]:
        try:
            return await self._owners([row["id"] for row in rows])
        except Exception as err:  # the systems still show, without their owners
            log.warning("Could not read the owners of Puddle systems: %s: %s", type(err).__name__, err)
            return {}
