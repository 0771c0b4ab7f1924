"""What the Puddle page shows of a system, a connection and an owner: JSON-safe dicts, no I/O, no secret.

Only documented properties of the client's models are read (``hooks/api.py``), so the page
works over either client. A system's row never carries its password, username, IP addresses
or tags: it is built field by field, not from :meth:`System.to_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from airflow_puddle.hooks.api import System


@dataclass(frozen=True)
class Snapshot:
    """One connection as the last refresh saw it: its systems (not terminated), their owners, its CU, or an error."""

    conn_id: str
    fetched_at: float
    systems: tuple[dict[str, Any], ...] = ()
    owners: dict[str, Owner] = field(default_factory=dict)
    cu: dict[str, int] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Owner:
    """The task instance that created (or adopted) a system, read from the task state store."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int

    def ui_path(self, base_path: str) -> str:
        """The task instance's page in the Airflow UI (``base_path`` is ``[api] base_url``'s path)."""
        path = f"{base_path.rstrip('/')}/dags/{quote(self.dag_id, safe='')}/runs/{quote(self.run_id, safe='')}" \
               f"/tasks/{quote(self.task_id, safe='')}"
        return path + (f"/mapped/{self.map_index}" if self.map_index >= 0 else "")

    def to_dict(self, base_path: str) -> dict[str, Any]:
        return {"dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id, "map_index": self.map_index,
                "url": self.ui_path(base_path)}


def web_url(url: str) -> str | None:
    """``url`` if it is an ``http(s)`` address, else None: the page never links to ``javascript:`` or the like."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def stops_in(system: dict[str, Any], now: float) -> str | None:
    """The idle countdown of a Started system, as "stops in 23 min"; None when no idle timer runs."""
    if system["status"] != System.SYSTEM_STATUS_STARTED.text or not system["idle_timeout"]:
        return None
    left = system["idle_timeout"] - now
    if left <= 0:
        return "stops now"
    return f"stops in {math.ceil(left / 60)} min"


def system_row(system: System) -> dict[str, Any]:
    """The page's row of a system, as listed: documented fields only, nothing secret."""
    current, previous = float(system.current_session_cost), float(system.previous_sessions_cost)
    return {
        "id": system.id,
        "name": system.name,
        "product": system.product,
        "version": system.version,
        "status": system.status_text,  # the words of a wait's narration
        "instance_type": system.instance_type,
        "gpu": bool(system.gpu),
        "gpu_count": int(system.gpu_count),
        "gpu_type": system.gpu_type,
        "current_session_cost": round(current, 4),
        "total_cost": round(current + previous, 4),
        "idle_timeout": int(system.idle_timeout),
        "idle_timeout_minutes": int(system.idle_timeout_interval),
        "url": web_url(system.default_url),
    }


def cu_info(info: Any) -> dict[str, int]:
    """CU available against consumed (a ``CUConsumptionInfo``)."""
    return {"available": int(info.available_cu), "consumed": int(info.consumed_cu)}


def connection_view(snap: Snapshot, readable_dags: set[str], now: float, base_path: str) -> dict[str, Any]:
    """One connection for the page: each row with its countdown as of ``now`` and its owner if the user may see
    that DAG (the snapshot itself is shared by every user and tab)."""
    systems = []
    for row in snap.systems:
        owner = snap.owners.get(row["id"])
        visible = owner is not None and owner.dag_id in readable_dags
        systems.append({**row, "stops_in": stops_in(row, now),
                        "owner": owner.to_dict(base_path) if visible and owner else None})
    return {"conn_id": snap.conn_id, "ok": snap.error is None, "error": snap.error, "cu": snap.cu,
            "fetched_at": snap.fetched_at, "systems": systems}
