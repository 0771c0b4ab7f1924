"""The ``systems`` table held in memory, written through to SQLite by :class:`~airflow_puddle.emulator.store.Store`.

The emulator is the only writer of its database, so reads need not go to SQLite: a
list of 1,000 systems costs a filter over this dict instead of a query and 1,000 rows
decoded. Rows are immutable and replaced on every write, so a reader may keep a row it
was given (and the servicers cache each row's message by its identity). A transaction
that rolls back undoes its writes here too. A heap of due times answers "what is due by
now" without a query: nothing, on almost every call.
"""

from __future__ import annotations

import heapq

from airflow_puddle.domain.statuses import SystemStatuses
from airflow_puddle.emulator.rows import SystemRow

_TERMINATED = SystemStatuses.SYSTEM_STATUS_TERMINATED.code


class RowCache:
    """Every system row by id, with an undo journal for the open transaction."""

    def __init__(self, rows: list[SystemRow]) -> None:
        self._rows = {s.id: s for s in rows}
        self._undo: list[tuple[str, SystemRow | None]] | None = None
        self._due: list[tuple[float, str]] = []
        self._rebuild_due()

    def _rebuild_due(self) -> None:
        self._due = [(s.due_at, s.id) for s in self._rows.values() if s.due_at is not None]
        heapq.heapify(self._due)

    def begin(self) -> None:
        """Start journalling writes, so that :meth:`rollback` can undo them."""
        self._undo = []

    def commit(self) -> None:
        """Keep the transaction's writes."""
        self._undo = None

    def rollback(self) -> None:
        """Undo the transaction's writes, newest first."""
        undo, self._undo = self._undo or [], None
        for system_id, before in reversed(undo):
            if before is None:
                self._rows.pop(system_id, None)
            else:
                self._rows[system_id] = before
                if before.due_at is not None:
                    heapq.heappush(self._due, (before.due_at, system_id))

    def put(self, s: SystemRow) -> None:
        """Insert or replace a row."""
        if self._undo is not None:
            self._undo.append((s.id, self._rows.get(s.id)))
        self._rows[s.id] = s
        if s.due_at is not None:
            heapq.heappush(self._due, (s.due_at, s.id))
            if len(self._due) > 4 * len(self._rows) + 64:  # entries of rows rewritten since: drop them
                self._rebuild_due()

    def get(self, system_id: str) -> SystemRow | None:
        """One row, or None."""
        return self._rows.get(system_id)

    def all(self) -> list[SystemRow]:
        """Every row."""
        return list(self._rows.values())

    def due(self, now: float) -> list[SystemRow]:
        """The rows whose ``due_at`` has come by ``now``, earliest first (they stay due until rewritten)."""
        found: dict[str, SystemRow] = {}
        while self._due and self._due[0][0] <= now:
            at, system_id = heapq.heappop(self._due)
            s = self._rows.get(system_id)
            if s is not None and s.due_at == at:  # else an entry of an older version of the row
                found[system_id] = s
        entries = sorted((s.due_at, s.id) for s in found.values() if s.due_at is not None)
        for entry in entries:
            heapq.heappush(self._due, entry)  # still due until the row is rewritten
        return [found[system_id] for _, system_id in entries]

    def live_of(self, product: str) -> list[SystemRow]:
        """Every owner's systems of ``product`` not terminated, oldest first."""
        found = [s for s in self._rows.values() if s.product == product and s.status != _TERMINATED]
        found.sort(key=lambda s: (s.created, s.id))
        return found

    def live(self, owner_id: str, cloud: str = "", name: str = "") -> list[SystemRow]:
        """The owner's systems not terminated, in ``cloud`` and named ``name`` (either empty: any), oldest first."""
        found = [
            s for s in self._rows.values()
            if s.owner_id == owner_id and s.status != _TERMINATED
            and (not cloud or s.cloud == cloud) and (not name or s.name == name)
        ]
        found.sort(key=lambda s: (s.created, s.id))
        return found
