"""The emulator's SQLite store: connection, schema, and every query, in and out as typed rows.

The store knows no rules: callers hold the lock and decide what to write. Systems carry
``due_at``, indexed, so the lifecycle sweep reads only the systems with something due.
"""

from __future__ import annotations

import json
import math
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from airflow_puddle.domain.lifecycle import NOT_CONSUMING_STATUSES
from airflow_puddle.domain.statuses import ImageStatuses, TagStatuses
from airflow_puddle.emulator import seed
from airflow_puddle.emulator.dbfile import DatabaseClosedError, FileWatch, check_db_path
from airflow_puddle.emulator.limits import EmulatorConfigError
from airflow_puddle.emulator.rowcache import RowCache
from airflow_puddle.emulator.rows import SYSTEM_COLUMNS, ImageRow, InstanceTypeRow, SystemRow, TagRow, User

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY, cloud TEXT NOT NULL, product TEXT NOT NULL, version TEXT NOT NULL,
    text TEXT NOT NULL, status INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS instance_types (
    id TEXT PRIMARY KEY, cloud TEXT NOT NULL, text TEXT NOT NULL, price REAL NOT NULL,
    cu INTEGER NOT NULL, gpu_count INTEGER NOT NULL, gpu_type TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    id TEXT PRIMARY KEY, label TEXT NOT NULL UNIQUE, default_value TEXT NOT NULL,
    input_type TEXT NOT NULL, required INTEGER NOT NULL, status INTEGER NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, user_name TEXT NOT NULL,
    user_email TEXT NOT NULL, expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS systems (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, owner_id TEXT NOT NULL, owner_name TEXT NOT NULL,
    cloud TEXT NOT NULL, cloud_id TEXT NOT NULL DEFAULT '', product TEXT NOT NULL, version TEXT NOT NULL,
    image_id TEXT NOT NULL, instance_type_id TEXT NOT NULL, instance_type TEXT NOT NULL,
    gpu_count INTEGER NOT NULL, gpu_type TEXT NOT NULL, price REAL NOT NULL, cu INTEGER NOT NULL,
    disk_size_gb INTEGER NOT NULL, tags TEXT NOT NULL,
    status INTEGER NOT NULL, vm_status INTEGER NOT NULL, product_status INTEGER NOT NULL,
    phase TEXT, phase_step INTEGER NOT NULL DEFAULT 0, phase_started_at REAL,
    fail_next_transition INTEGER NOT NULL DEFAULT 0,
    config_status INTEGER NOT NULL, config_toml TEXT NOT NULL DEFAULT '', pending_config_toml TEXT,
    config_started_at REAL, fail_next_config INTEGER NOT NULL DEFAULT 0,
    provisioned INTEGER NOT NULL DEFAULT 0, default_url TEXT NOT NULL DEFAULT '',
    ip_address TEXT NOT NULL DEFAULT '', private_ip TEXT NOT NULL DEFAULT '', public_ip TEXT NOT NULL DEFAULT '',
    username TEXT NOT NULL DEFAULT '', password TEXT NOT NULL DEFAULT '', auth_type TEXT NOT NULL DEFAULT '',
    idle_timeout REAL, idle_timeout_interval INTEGER NOT NULL, session_started_at REAL,
    session_cost REAL NOT NULL DEFAULT 0, previous_sessions_cost REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL, updated REAL NOT NULL,
    due_at REAL, failure_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS systems_owner ON systems (owner_id);
CREATE INDEX IF NOT EXISTS systems_owner_name ON systems (owner_id, name);
"""
# After the migration that adds due_at to a database from before it existed.
_DUE_INDEX = "CREATE INDEX IF NOT EXISTS systems_due ON systems (due_at)"

_BOOLEANS = ("fail_next_transition", "fail_next_config", "provisioned")
_BOOLEAN_AT = tuple(SYSTEM_COLUMNS.index(name) for name in _BOOLEANS)
_TAGS_AT = SYSTEM_COLUMNS.index("tags")
# Named columns in field order: rows convert by position (dict(sqlite3.Row) looks every name up).
_SELECT_SYSTEMS = f"SELECT {', '.join(SYSTEM_COLUMNS)} FROM systems"
_NOT_CONSUMING = ", ".join("?" for _ in NOT_CONSUMING_STATUSES)


def _system(row: sqlite3.Row) -> SystemRow:
    values = [*row]
    values[_TAGS_AT] = tuple((label, value) for label, value in json.loads(values[_TAGS_AT]))
    for at in _BOOLEAN_AT:
        values[at] = bool(values[at])
    return SystemRow(*values)


def _columns(s: SystemRow) -> dict[str, Any]:
    values = {name: getattr(s, name) for name in SYSTEM_COLUMNS}
    values["tags"] = json.dumps([list(tag) for tag in s.tags])
    for name in _BOOLEANS:
        values[name] = int(values[name])
    return values


class Store:
    """One SQLite connection (shared across threads; the caller serialises access).

    Opening checks the path (:func:`~airflow_puddle.emulator.dbfile.check_db_path`) and writes
    once, so a read-only or corrupt database is an :class:`EmulatorConfigError` at start, not
    at the first login. Every transaction first checks the file is still the one opened.
    """

    def __init__(self, db_path: str) -> None:
        path = check_db_path(db_path)
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False)
        except sqlite3.Error as err:
            raise EmulatorConfigError("db_path", f"cannot open {path} as a SQLite database ({err})") from None
        try:
            self._open()
        except sqlite3.Error as err:
            self._conn.close()
            raise EmulatorConfigError("db_path", f"cannot use {path} as the emulator database ({err})") from None
        self.watch = FileWatch(path, self._stamp())
        self._closed = False
        self._rows = RowCache([_system(r) for r in self._conn.execute(_SELECT_SYSTEMS)])
        self._token_users: dict[str, tuple[User, float]] = {}

    def _open(self) -> None:
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        with self._conn:
            self._conn.executescript(_SCHEMA)
            columns = {r["name"] for r in self._conn.execute("PRAGMA table_info(systems)")}
            if "due_at" not in columns:
                self._conn.execute("ALTER TABLE systems ADD COLUMN due_at REAL")
            if "failure_reason" not in columns:
                self._conn.execute("ALTER TABLE systems ADD COLUMN failure_reason TEXT NOT NULL DEFAULT ''")
            self._conn.execute(_DUE_INDEX)
            missing = set(SYSTEM_COLUMNS) - columns - {"due_at", "failure_reason"}
            if missing:
                raise sqlite3.DatabaseError(f"its systems table lacks {', '.join(sorted(missing))}")
            self.set_meta("schema_checked", "1")  # a write: a read-only database fails here, not at a login

    def _stamp(self) -> bytes:
        """Stamp the file's header with a random ``application_id`` and checkpoint it there (the WAL would hold it)."""
        stamp = secrets.randbelow(2**31 - 1) + 1
        self._conn.execute(f"PRAGMA application_id = {stamp}")
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return stamp.to_bytes(4, "big")

    def close(self) -> None:
        """Close the connection (closing twice is harmless); later transactions raise ``DatabaseClosedError``."""
        self._closed = True
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit what the block writes, or roll it all back when it raises.

        ``DatabaseGoneError`` first when the file was deleted or replaced since it was opened,
        ``DatabaseClosedError`` when the store was closed (the emulator is stopping).
        """
        if self._closed:
            raise DatabaseClosedError("the emulator is shutting down")
        self.watch.check()
        self._rows.begin()
        try:
            with self._conn:
                yield
        except BaseException:
            self._rows.rollback()
            raise
        self._rows.commit()

    # ------------------------------------------------------------------ meta

    def meta(self, key: str) -> str | None:
        """A stored setting, or None."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def clock_offset(self) -> float:
        """The stored clock offset (0 when none); ``EmulatorConfigError`` when it is not a finite number."""
        text = self.meta("clock_offset") or "0"
        try:
            offset = float(text)
        except ValueError:
            offset = math.nan
        if not math.isfinite(offset):
            raise EmulatorConfigError(
                "db_path", f"its stored clock offset is {text!r}, not a finite number; start on a new database"
            )
        return offset

    # ------------------------------------------------------------------ tokens

    def add_token(self, token_hash: str, user: User, expires_at: float) -> None:
        """Store a token (by its hash) for ``user``."""
        self._conn.execute(
            "INSERT INTO tokens (token_hash, user_id, user_name, user_email, expires_at) VALUES (?, ?, ?, ?, ?)",
            (token_hash, user.id, user.name, user.email, expires_at),
        )

    def token_user(self, token_hash: str, now: float) -> User | None:
        """The user of a token still valid at ``now``, or None (each token read from SQLite once)."""
        known = self._token_users.get(token_hash)
        if known is None:
            row = self._conn.execute(
                "SELECT user_id, user_name, user_email, expires_at FROM tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            if row is None:
                return None
            known = User(row["user_id"], row["user_name"], row["user_email"]), float(row["expires_at"])
            if len(self._token_users) > 10_000:  # mostly expired ones by then
                self._token_users.clear()
            self._token_users[token_hash] = known
        return known[0] if known[1] > now else None

    def delete_tokens(self, *, token_hash: str | None = None, expired_at: float | None = None) -> int:
        """Delete one token, the tokens expired by ``expired_at``, or (neither given) all; returns how many."""
        if token_hash is not None:
            self._token_users.pop(token_hash, None)
            return self._conn.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,)).rowcount
        if expired_at is not None:  # kept in memory: their expiry already makes them invalid
            return self._conn.execute("DELETE FROM tokens WHERE expires_at <= ?", (expired_at,)).rowcount
        self._token_users.clear()
        return self._conn.execute("DELETE FROM tokens").rowcount

    # ------------------------------------------------------------------ catalogue

    def images(self, cloud: str = "", *, product: str = "", available_only: bool = False) -> list[ImageRow]:
        """Images of ``cloud`` (every cloud when empty), optionally of one product or only available ones."""
        sql = "SELECT * FROM images WHERE 1"
        args: list[object] = []
        for column, value in (("cloud", cloud), ("product", product)):
            if value:
                sql += f" AND {column} = ?"
                args.append(value)
        if available_only:
            sql += " AND status = ?"
            args.append(ImageStatuses.IMAGE_STATUS_AVAILABLE.code)
        rows = self._conn.execute(sql + " ORDER BY cloud, product, version", args)
        return [ImageRow(**dict(r)) for r in rows]

    def image(self, image_id: str, cloud: str) -> ImageRow | None:
        """One image of ``cloud``, or None."""
        row = self._conn.execute("SELECT * FROM images WHERE id = ? AND cloud = ?", (image_id, cloud)).fetchone()
        return None if row is None else ImageRow(**dict(row))

    def instance_types(self, cloud: str = "") -> list[InstanceTypeRow]:
        """Instance types of ``cloud`` (every cloud when empty), smallest first."""
        where, args = ("WHERE cloud = ?", (cloud,)) if cloud else ("", ())
        rows = self._conn.execute(f"SELECT * FROM instance_types {where} ORDER BY cloud, cu, text", args)
        return [InstanceTypeRow(**dict(r)) for r in rows]

    def tags(self, *, ok_only: bool = False) -> list[TagRow]:
        """Tag definitions, required ones first (only usable ones when ``ok_only``)."""
        where, args = ("WHERE status = ?", (TagStatuses.TAG_STATUS_OK.code,)) if ok_only else ("", ())
        rows = self._conn.execute(f"SELECT * FROM tags {where} ORDER BY required DESC, label", args)
        return [TagRow(**{**dict(r), "required": bool(r["required"])}) for r in rows]

    def seed(self, now: float) -> None:
        """Fill each empty catalogue table from :mod:`~airflow_puddle.emulator.seed`."""

        def empty(table: str) -> bool:
            return self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0

        if empty("images"):
            self._conn.executemany(
                "INSERT INTO images (id, cloud, product, version, text, status) VALUES (?, ?, ?, ?, ?, ?)",
                [(i.id, i.cloud, i.product, i.version, i.text, i.status) for i in seed.IMAGES],
            )
        if empty("instance_types"):
            self._conn.executemany(
                "INSERT INTO instance_types (id, cloud, text, price, cu, gpu_count, gpu_type) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(t.id, t.cloud, t.text, t.price, t.cu, t.gpu_count, t.gpu_type) for t in seed.INSTANCE_TYPES],
            )
        if empty("tags"):
            ok = TagStatuses.TAG_STATUS_OK.code
            self._conn.executemany(
                "INSERT INTO tags (id, label, default_value, input_type, required, status, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(t.id, t.label, t.default_value, t.input_type, int(t.required), ok, now, now) for t in seed.TAGS],
            )

    # ------------------------------------------------------------------ systems

    def system(self, system_id: str) -> SystemRow | None:
        """One system, or None (from memory)."""
        return self._rows.get(system_id)

    def systems(self, owner_id: str, cloud: str, name: str = "") -> list[SystemRow]:
        """The owner's systems that are not terminated, in ``cloud`` (every cloud when empty), oldest first.

        ``name`` narrows them to that exact name. From memory: no query, no row decoded.
        """
        return self._rows.live(owner_id, cloud, name)

    def due_systems(self, now: float) -> list[SystemRow]:
        """The systems whose ``due_at`` has come by ``now``, earliest first (a heap in memory, no query)."""
        return self._rows.due(now)

    def live_system_named(self, owner_id: str, name: str) -> str | None:
        """The id of the owner's system called ``name`` that is not terminated, or None."""
        found = self._rows.live(owner_id, name=name)
        return found[0].id if found else None

    def insert_system(self, s: SystemRow) -> None:
        """Store a new system."""
        values = _columns(s)
        self._conn.execute(
            f"INSERT INTO systems ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
            tuple(values.values()),
        )
        self._rows.put(s)

    def save_system(self, s: SystemRow) -> None:
        """Overwrite a stored system with ``s``."""
        values = _columns(s)
        del values["id"]
        self._conn.execute(
            f"UPDATE systems SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?",
            (*values.values(), s.id),
        )
        self._rows.put(s)

    def all_systems(self) -> list[SystemRow]:
        """Every system of every user, terminated ones too (from memory)."""
        return self._rows.all()

    def set_due_times(self, due: Iterable[tuple[float | None, str]]) -> None:
        """Set ``due_at`` of each ``(due_at, system id)``."""
        due = list(due)
        self._conn.executemany("UPDATE systems SET due_at = ? WHERE id = ?", due)
        for due_at, system_id in due:
            s = self._rows.get(system_id)
            if s is not None:
                self._rows.put(replace(s, due_at=due_at))

    def live_systems_of(self, product: str) -> list[SystemRow]:
        """Every user's systems of ``product`` that are not terminated (from memory)."""
        return self._rows.live_of(product)

    def add_images(self, images: Iterable[ImageRow]) -> None:
        """Add catalogue images whose ids are not there yet."""
        self._conn.executemany(
            "INSERT OR IGNORE INTO images (id, cloud, product, version, text, status) VALUES (?, ?, ?, ?, ?, ?)",
            [(i.id, i.cloud, i.product, i.version, i.text, i.status) for i in images],
        )

    def consumed_cu(self) -> int:
        """CU consumed by every system of every user."""
        row = self._conn.execute(
            f"SELECT COALESCE(SUM(cu), 0) AS total FROM systems WHERE status NOT IN ({_NOT_CONSUMING})",
            tuple(NOT_CONSUMING_STATUSES),
        ).fetchone()
        return int(row["total"])

    def cu_consumers(self, owner_id: str) -> list[tuple[str, str, int]]:
        """``(id, name, cu)`` of the owner's systems that consume CU, oldest first."""
        rows = self._conn.execute(
            f"SELECT id, name, cu FROM systems WHERE owner_id = ? AND status NOT IN ({_NOT_CONSUMING}) "
            "ORDER BY created, id",
            (owner_id, *NOT_CONSUMING_STATUSES),
        )
        return [(r["id"], r["name"], r["cu"]) for r in rows]
