"""What a system operator asked Puddle for, kept in Airflow's task state store across tries.

A try writes the record when Puddle accepts its request, before it waits (a create, a restart
and a config upload also just before they are sent); a retry of the same task instance reads it
first. It holds the system's **id**, never only its name (a name
can be reused by another system: apache/airflow#71743), the operation, when it was asked,
and whether this task instance created the system. So a retry after a crash reconnects by
id, keeps ownership of a system it created, never creates a second one, and does not repeat
a restart Puddle already accepted.

A record is ignored (and the operator asks anew) when its system is gone, when it is older
than :data:`RETENTION`, or when the task instance was cleared: Airflow's Clear raises the
task instance's ``max_tries``, which the record keeps. ``keep_task_state=True`` makes a
Clear reconnect too. Without a task state store (an older execution API) the operators act
as before: a retry finds the system by name, without ownership; they say so once in the log.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any, Literal, Protocol, get_args

Operation = Literal["create", "start", "stop", "restart", "terminate", "update_config_toml"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)

KEY = "puddle_request"
"""The task state store key. Renaming it breaks the retries of tasks in flight."""
RETENTION = timedelta(days=7)
"""How long a record counts (and how long Airflow keeps it)."""
CLOCK_SKEW_S = 5.0
"""How far Puddle's clock may trail the worker's when a create's answer is matched by its creation time."""


class Store(Protocol):
    """What the operators use of ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None: ...
    def delete(self, key: str) -> None: ...


class Logs(Protocol):
    def info(self, msg: Any, /, *args: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class Request:
    """One request Puddle accepted for this task instance (a create's may still lack its id)."""

    operation: Operation
    system_id: str
    asked_at: float
    created: bool = False
    """This task instance created the system: ``terminate_on_failure`` covers it on every try."""
    name: str = ""
    """Only for a create whose answer was not recorded yet: the name it asked for."""
    max_tries: int = 0
    try_number: int = 0
    sent: bool = False
    """A restart or config upload sent with no answer recorded yet: Puddle may or may not have accepted it."""

    @property
    def pending(self) -> bool:
        """A create that was sent, with no id recorded: its answer may or may not have come."""
        return self.operation == "create" and not self.system_id


class Requests:
    """The record of one task instance: read once when a try (or a resumption) begins, written as it asks."""

    def __init__(self, context: Mapping[str, Any], log: Logs, *, keep_task_state: bool = False) -> None:
        self._store: Store | None = context.get("task_state_store")
        ti = context.get("ti")
        self._max_tries = int(getattr(ti, "max_tries", 0) or 0)
        self.try_number = int(getattr(ti, "try_number", 0) or 0)
        self._log = log
        self._keep = keep_task_state
        self.current: Request | None = self._read()

    def _read(self) -> Request | None:
        if self._store is None:
            self._log.warning("Airflow's task state store is not available here: a retry after a crash finds the "
                              "system by name and does not own it")
            return None
        raw = self._store.get(KEY)
        request = _parse(raw)
        if raw is not None and request is None:
            self._log.warning("Ignoring an unreadable Puddle request record: %r", raw)
        if request is None:
            return None
        if time.time() - request.asked_at > RETENTION.total_seconds():
            self._log.info("The Puddle request recorded by try %d is older than %s: asking anew",
                           request.try_number, RETENTION)
            return None
        if request.max_tries != self._max_tries and not self._keep:
            self._log.info("This task instance was cleared: starting fresh (keep_task_state=True would reconnect "
                           "to system %s instead)", request.system_id or request.name)
            return None
        return request

    def write(self, operation: Operation, system_id: str, *, created: bool = False, name: str = "",
              sent: bool = False) -> Request:
        """Record that Puddle accepted ``operation`` on ``system_id``; ``sent``: that it is about to be asked
        (a create: with ``name`` and no id)."""
        request = Request(operation, system_id, time.time(), created, name, self._max_tries, self.try_number, sent)
        if self.current is not None and self.current.created and self.current.system_id == system_id:
            request = replace(request, created=True)  # a later step on a system this task created keeps it ours
        self.current = request
        if self._store is not None:
            self._store.set(KEY, asdict(request), retention=RETENTION)
        return request

    def restore(self, earlier: Request | None) -> None:
        """A request Puddle refused made nothing: the record is what it was before it was sent."""
        self.current = earlier
        if self._store is not None:
            if earlier is None:
                self._store.delete(KEY)
            else:
                self._store.set(KEY, asdict(earlier), retention=RETENTION)

    def forget(self) -> None:
        """The recorded system is gone: the next request starts a new record."""
        self.restore(None)

    def owns(self, system_id: str) -> bool:
        """Whether this task instance created ``system_id`` (on this try or an earlier one)."""
        return self.current is not None and self.current.created and self.current.system_id == system_id


def _parse(raw: object) -> Request | None:
    """A record as :meth:`Requests.write` stored it; None for anything else (a store written by hand)."""
    if not isinstance(raw, dict):
        return None
    try:
        request = Request(**raw)
    except TypeError:
        return None
    types_ok = (isinstance(request.system_id, str) and isinstance(request.name, str)
                and isinstance(request.asked_at, int | float) and not isinstance(request.asked_at, bool)
                and isinstance(request.created, bool) and isinstance(request.max_tries, int)
                and isinstance(request.sent, bool))
    return request if types_ok and request.operation in OPERATIONS else None
