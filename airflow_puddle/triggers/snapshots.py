"""What the shared poll of a connection's systems hands its waits: data, with no I/O and no live objects.

The poll (:mod:`~airflow_puddle.triggers.stream`), its board (:mod:`~airflow_puddle.triggers.wakeups`)
and a wait's looks (:mod:`~airflow_puddle.triggers.looks`) all use these; they import each
other in that order only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from airflow_puddle.hooks.api import PuddleError, System


class StreamKey(NamedTuple):
    """The shared-stream key of a poll: waits on one connection, cloud and interval share it."""

    kind: str
    conn_id: str
    cloud: str
    poll_interval: float


def stream_key(conn_id: str, cloud: str | None, poll_interval: float) -> StreamKey:
    """The key of the poll of ``conn_id`` (and ``cloud``) every ``poll_interval`` seconds."""
    return StreamKey("puddle-systems", conn_id, cloud or "", poll_interval)


@dataclass(frozen=True)
class SystemsSnapshot:
    """What one poll saw: every listed system by id, or why there is no list this time.

    ``permanent`` marks an error that polling again cannot fix (a rejected key, a broken
    connection). ``poll`` tells the polls of one key apart (the serial of the poll's
    :class:`~airflow_puddle.triggers.wakeups.Board`); ``seq`` numbers its snapshots from 1.
    """

    taken_at: float
    systems: Mapping[str, System] = field(default_factory=dict)
    error: PuddleError | None = None
    permanent: bool = False
    poll: int = 0
    seq: int = 0


EVERY: Final = object()
"""A ``seen`` state that any snapshot differs from: wake on the next snapshot."""

OUTAGE: Final = object()
"""What a wait saw in a failed poll: it wakes when Puddle answers again, not on each failed poll."""


def state_key(system: System | None) -> object:
    """What a wait's verdict depends on: status and config status (``None``: the list does not show it)."""
    return None if system is None else (system.status, system.config_status)
