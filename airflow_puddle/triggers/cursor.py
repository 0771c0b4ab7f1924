"""A watcher's memory of what it saw and reported, per system id, in Airflow 3.3's asset state store.

A watcher (:class:`~airflow_puddle.triggers.puddle.PuddleSystemStateTrigger` with ``deadline=None``)
fires when a system *enters* its target. Which looks count as an entry is decided here, by
:meth:`WatchCursor.entered`, each time what the watcher sees of a system changes:

- With the asset state store (``self.asset_state_store``, which the triggerer sets on a trigger
  that watches exactly one asset), each system id has a :class:`Mark`: in the target or not at
  the last look, and the entries reported. A new trigger (a restarted triggerer, or the trigger
  moved to another one) reads it at its first look: a system that entered the target while no
  triggerer ran fires once; one already reported does not fire again.
- Without it (``dag.test()``, a trigger outside a triggerer, a trigger shared by several assets,
  a store that fails), the memory is this trigger's life only, as before the store existed, and
  the log says so once.

The store has no compare-and-set: a write is an upsert, the last writer wins. Two triggers that
see the same entry (two watchers of one asset on two triggerers) both *claim* it, wait
:data:`CLAIM_SETTLE_S`, and read the mark again: only the last claim stands, and only its writer
fires. A claim whose writer died before reporting is taken over once it is :data:`STALE_CLAIM_S` old.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

KEY_PREFIX = "puddle.watch"
"""A mark's key is ``puddle.watch.<target>.<system id>``; a watcher's own, ``puddle.watch.<target>.watcher.<...>``."""

CLAIM_SETTLE_S = 1.0
"""How long a claim stands before its writer reads it back: two triggers fire the same entry only if one's
read and write of the mark are further apart than this."""

STALE_CLAIM_S = 10.0
"""A claim not reported after this long belongs to a trigger that died between claiming and firing."""


class AsyncStore(Protocol):
    """What the watcher uses of Airflow's ``AssetStateStoreAccessors``: the async get and set."""

    async def aget(self, key: str, default: Any = None) -> Any: ...

    async def aset(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class Mark:
    """What the store holds for one system: ids, flags, times and counts only (nothing secret).

    :param there: In the target at the last look recorded.
    :param at: Unix time of that look.
    :param entries: Entries into the target claimed so far.
    :param claim: The token of the trigger that claimed the last entry (``""``: none).
    :param claimed_at: Unix time of that claim.
    :param reported: The last claim's writer fired its event.
    """

    system_id: str
    there: bool
    at: float
    entries: int = 0
    claim: str = ""
    claimed_at: float = 0.0
    reported: bool = False

    @property
    def pending(self) -> bool:
        """An entry claimed, and not yet reported."""
        return self.there and bool(self.claim) and not self.reported

    @classmethod
    def from_stored(cls, value: Any) -> Mark | None:
        """The mark a stored value holds; ``None`` for none (or one this version cannot read)."""
        if not isinstance(value, dict):
            return None
        try:
            return cls(system_id=str(value["system_id"]), there=bool(value["there"]), at=float(value["at"]),
                       entries=int(value.get("entries", 0)), claim=str(value.get("claim", "")),
                       claimed_at=float(value.get("claimed_at", 0.0)), reported=bool(value.get("reported", False)))
        except (KeyError, TypeError, ValueError):
            return None


class WatchCursor:
    """Decides, at each change a watcher sees, whether it is an entry to report.

    :param store: The trigger's ``asset_state_store`` (``None`` outside a triggerer).
    :param target: The watcher's target.
    :param watcher: Who watches: ``id:<system id>`` or ``name:<system name>``.
    :param log: The trigger's logger.
    """

    def __init__(self, store: AsyncStore | None, target: str, watcher: str, log: Any) -> None:
        self._store, self._target, self._watcher, self._log = store, target, watcher, log
        self._said = False

    @property
    def durable(self) -> bool:
        """Whether the asset state store backs this cursor (until it fails)."""
        return self._store is not None

    async def entered(self, system_id: str, there: bool, prior: bool | None, at: float) -> bool:
        """Whether this look, a change of what the watcher sees, is an entry into the target to report.

        :param system_id: The system the look showed (``""``: none).
        :param there: Whether it is in the target.
        :param prior: Whether it was, as this trigger saw it: ``None`` at the trigger's first look,
            ``False`` for a system new to it.
        :param at: Unix time of the look.
        """
        local = there and prior is False  # what one trigger's life can tell on its own
        if self._store is None:
            self._say("not available here")
            return local
        try:
            return await self._decide(system_id, there, prior, at)
        except Exception as err:  # the store's backend and transport are pluggable: any error is its own
            self._store = None
            self._say(f"failed ({type(err).__name__}: {err})")
            return local

    def _say(self, why: str) -> None:
        if not self._said:
            self._said = True
            self._log.warning(
                "Airflow's asset state store is %s: this watcher remembers what it saw only while this triggerer "
                "runs; a system that enters %s while no triggerer runs is not reported", why, self._target)

    def _key(self, system_id: str) -> str:
        return f"{KEY_PREFIX}.{self._target}.{system_id}"

    async def _read(self, key: str) -> Mark | None:
        assert self._store is not None
        return Mark.from_stored(await self._store.aget(key))

    async def _write(self, key: str, mark: Mark) -> None:
        assert self._store is not None
        await self._store.aset(key, asdict(mark))

    async def _decide(self, system_id: str, there: bool, prior: bool | None, at: float) -> bool:
        if prior is None:
            prior = await self._watched_before()
        if not system_id:
            return False
        key = self._key(system_id)
        mark = await self._read(key)
        if mark is None:  # a system new to the store: an entry only if the watch saw it arrive
            if there and prior is False:
                return await self._claim(key, system_id, at, 1)
            await self._write(key, Mark(system_id, there, at))
            return False
        if mark.at >= at:  # another trigger recorded a later look
            return False
        if not there:
            if mark.there:
                await self._write(key, replace(mark, there=False, at=at))  # keeps a pending claim's token
            return False
        if not mark.there:  # entered since the last look recorded: also while no triggerer ran
            return await self._claim(key, system_id, at, mark.entries + 1)
        if mark.pending:  # claimed, never reported: its writer may have died
            return await self._take_over(key, mark, at)
        return False  # reported already

    async def _watched_before(self) -> bool | None:
        """``False`` when this watcher ran before (a system it has no mark for is new since); ``None`` the first time.

        The watcher's own key names what it watches (a name, for a watcher by name): it says only that
        the watch ran, never what a system was, so a reused name inherits no system's mark.
        """
        assert self._store is not None
        key = f"{KEY_PREFIX}.{self._target}.watcher.{self._watcher}"
        if await self._store.aget(key) is not None:
            return False
        await self._store.aset(key, {"since": time.time()})
        return None

    async def _claim(self, key: str, system_id: str, at: float, entries: int) -> bool:
        """Claim entry ``entries``, let the claim settle, read it back: fire only if it still stands."""
        token = uuid.uuid4().hex
        await self._write(key, Mark(system_id, True, at, entries, token, time.time()))
        await asyncio.sleep(CLAIM_SETTLE_S)
        back = await self._read(key)
        if back is None or back.claim != token:
            self._log.info("System %s entered %s: another trigger reported it", system_id, self._target)
            return False
        await self._write(key, replace(back, reported=True))
        return True

    async def _take_over(self, key: str, mark: Mark, at: float) -> bool:
        """A pending claim: once it is stale and still pending, claim the entry anew."""
        await asyncio.sleep(max(0.0, mark.claimed_at + STALE_CLAIM_S - time.time()))
        again = await self._read(key)
        if again is None or again.claim != mark.claim or not again.pending:
            return False
        self._log.warning("System %s: entry %d into %s was claimed and never reported; reporting it",
                          mark.system_id, mark.entries, self._target)
        return await self._claim(key, mark.system_id, at, mark.entries)
