"""The emulator's state model: every SQLite access and the lifecycle table live here.

:class:`PuddleBackend` keeps systems, tokens and catalogue data in SQLite. The
lifecycle is driven by timestamps, lazily: each system stores which transition
(``phase``) it is in, which step, and when that transition started; every
public method first moves every system through the steps that have elapsed
since (each lasts ``step_seconds``). Because only timestamps are stored, a
system mid-transition carries on after the emulator process restarts.

Errors are the shared :mod:`airflow_puddle.client.errors` classes; the servicer
layer turns them into gRPC statuses.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from airflow_puddle._proto.puddle.v2 import (
    image_service_pb2,
    instance_type_service_pb2,
    system_service_pb2,
    tag_service_pb2,
)
from airflow_puddle.client.errors import (
    AuthError,
    NotFoundError,
    PreconditionFailedError,
    ValidationFailedError,
)
from airflow_puddle.client.validation import (
    validate_config_toml,
    validate_create,
    validate_system_id,
)
from airflow_puddle.domain.clouds import ALL_CLOUDS, cloud_by_id
from airflow_puddle.domain.lifecycle import (
    ALLOWED_FROM,
    NOT_CONSUMING_STATUSES,
    STABLE_SYSTEM_STATUSES,
    TRANSITIONS,
    Action,
    Phase,
    Step,
)
from airflow_puddle.domain.products import ALL_PRODUCTS, PRODUCT_DAI
from airflow_puddle.domain.statuses import (
    BaseStatus,
    ImageStatuses,
    SystemStatuses,
    TagStatuses,
    image_status_text,
    system_status_text,
)
from airflow_puddle.emulator import seed

_S = SystemStatuses

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
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    cloud TEXT NOT NULL,
    cloud_id TEXT NOT NULL DEFAULT '',
    product TEXT NOT NULL,
    version TEXT NOT NULL,
    image_id TEXT NOT NULL,
    instance_type_id TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    gpu_count INTEGER NOT NULL,
    gpu_type TEXT NOT NULL,
    price REAL NOT NULL,
    cu INTEGER NOT NULL,
    disk_size_gb INTEGER NOT NULL,
    tags TEXT NOT NULL,
    status INTEGER NOT NULL,
    vm_status INTEGER NOT NULL,
    product_status INTEGER NOT NULL,
    phase TEXT,
    phase_step INTEGER NOT NULL DEFAULT 0,
    phase_started_at REAL,
    fail_next_transition INTEGER NOT NULL DEFAULT 0,
    config_status INTEGER NOT NULL,
    config_toml TEXT NOT NULL DEFAULT '',
    pending_config_toml TEXT,
    config_started_at REAL,
    fail_next_config INTEGER NOT NULL DEFAULT 0,
    provisioned INTEGER NOT NULL DEFAULT 0,
    default_url TEXT NOT NULL DEFAULT '',
    ip_address TEXT NOT NULL DEFAULT '',
    private_ip TEXT NOT NULL DEFAULT '',
    public_ip TEXT NOT NULL DEFAULT '',
    username TEXT NOT NULL DEFAULT '',
    password TEXT NOT NULL DEFAULT '',
    auth_type TEXT NOT NULL DEFAULT '',
    idle_timeout REAL,
    idle_timeout_interval INTEGER NOT NULL,
    session_started_at REAL,
    session_cost REAL NOT NULL DEFAULT 0,
    previous_sessions_cost REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS systems_owner ON systems (owner_id);
"""


@dataclass(frozen=True)
class User:
    """The user an API key pair logs in as."""

    id: str
    name: str
    email: str


class LoginResult(NamedTuple):
    """What :meth:`PuddleBackend.login` returns."""

    token: str
    expires_at: int
    user: User


@dataclass(frozen=True)
class SystemCU:
    """One system consuming compute units."""

    system_id: str
    system_name: str
    cu: int


@dataclass(frozen=True)
class CUInfo:
    """Compute units: consumed by every system, still available, and the user's consumers."""

    available_cu: int
    consumed_cu: int
    systems: list[SystemCU]


P = ParamSpec("P")
R = TypeVar("R")


def _public(fn: Callable[Concatenate[PuddleBackend, P], R]) -> Callable[Concatenate[PuddleBackend, P], R]:
    """Run a public method under the lock, after moving every system up to now, in one transaction."""

    @functools.wraps(fn)
    def wrapper(self: PuddleBackend, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            with self._conn:
                self._advance(self.now())
            with self._conn:
                return fn(self, *args, **kwargs)

    return wrapper


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _choices(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "none"


def _needs(statuses: Sequence[BaseStatus]) -> str:
    texts = [s.text for s in statuses]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"


class PuddleBackend:
    """The emulated Puddle: systems, their lifecycle, catalogue, tokens and CU accounting.

    Thread-safe: every public method runs under one lock (the gRPC server is
    threaded). ``clock`` replaces ``time.time`` (tests pass a fake clock); the
    emulator's ``now()`` is that clock plus an offset kept in the database, so
    :meth:`advance_clock` survives restarts.
    """

    def __init__(
        self,
        db_path: str,
        *,
        step_seconds: float = 2.0,
        api_key_id: str,
        api_secret_key: str,
        user_name: str = "demo",
        cu_capacity: int = 64,
        token_ttl_seconds: int = 3600,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if step_seconds <= 0:
            raise ValueError(f"step_seconds must be positive, got {step_seconds}")
        if not api_key_id or not api_secret_key:
            raise ValueError("api_key_id and api_secret_key must not be empty")
        self.step_seconds = float(step_seconds)
        self.cu_capacity = cu_capacity
        self.token_ttl_seconds = token_ttl_seconds
        self._api_key_id = api_key_id
        self._api_secret_key = api_secret_key
        self._user = User(
            id="user-" + hashlib.sha256(api_key_id.encode()).hexdigest()[:12],
            name=user_name,
            email=f"{user_name}@puddle.local",
        )
        self._clock = clock or time.time
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(db_path, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            with self._conn:
                self._conn.executescript(_SCHEMA)
            with self._conn:
                row = self._conn.execute("SELECT value FROM meta WHERE key = 'clock_offset'").fetchone()
                self._offset = float(row["value"]) if row else 0.0
                self._seed()

    # ------------------------------------------------------------------ lifecycle of the backend

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PuddleBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """The emulator's time: the base clock plus every :meth:`advance_clock`."""
        return self._clock() + self._offset

    @_public
    def advance_clock(self, seconds: float) -> float:
        """Move the emulator's clock forward by ``seconds``; returns the new time."""
        if seconds < 0:
            raise ValidationFailedError("seconds", f"must not be negative, got {seconds}")
        self._offset += seconds
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES ('clock_offset', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (repr(self._offset),),
        )
        now = self.now()
        self._advance(now)
        return now

    # ------------------------------------------------------------------ auth

    @_public
    def login(self, api_key_id: str, api_secret_key: str) -> LoginResult:
        """Exchange the API key pair for a token; ``AuthError`` when either part is wrong."""
        key_ok = _same(api_key_id, self._api_key_id)
        secret_ok = _same(api_secret_key, self._api_secret_key)
        if not (key_ok and secret_ok):
            raise AuthError("invalid API key id or secret")
        now = self.now()
        self._conn.execute("DELETE FROM tokens WHERE expires_at <= ?", (now,))
        token = secrets.token_urlsafe(32)
        expires_at = int(now + self.token_ttl_seconds)
        user = self._user
        self._conn.execute(
            "INSERT INTO tokens (token_hash, user_id, user_name, user_email, expires_at) VALUES (?, ?, ?, ?, ?)",
            (_hash_token(token), user.id, user.name, user.email, expires_at),
        )
        return LoginResult(token, expires_at, user)

    @_public
    def check_token(self, token: str) -> User:
        """The user a token belongs to; ``AuthError`` when it is unknown or expired."""
        row = self._conn.execute(
            "SELECT * FROM tokens WHERE token_hash = ? AND expires_at > ?", (_hash_token(token), self.now())
        ).fetchone()
        if row is None:
            raise AuthError("token expired or invalid")
        return User(row["user_id"], row["user_name"], row["user_email"])

    @_public
    def logout(self, token: str) -> None:
        """Forget a token (unknown tokens are ignored)."""
        self._conn.execute("DELETE FROM tokens WHERE token_hash = ?", (_hash_token(token),))

    @_public
    def expire_tokens(self) -> int:
        """Reject every token issued so far; returns how many were live."""
        cur = self._conn.execute("DELETE FROM tokens")
        return cur.rowcount

    # ------------------------------------------------------------------ catalogue

    @_public
    def list_images(self, cloud: str = "") -> list[image_service_pb2.Image]:
        """Every image of ``cloud`` (every cloud when empty), whatever its status."""
        rows = self._by_cloud("images", cloud, "product, version")
        return [
            image_service_pb2.Image(
                id=r["id"], product=r["product"], version=r["version"], text=r["text"],
                selected_version=r["id"], status=r["status"], cloud=r["cloud"],
            )
            for r in rows
        ]

    @_public
    def list_instance_types(self, cloud: str = "") -> list[instance_type_service_pb2.InstanceType]:
        """Every instance type of ``cloud`` (every cloud when empty)."""
        rows = self._by_cloud("instance_types", cloud, "cu, text")
        return [
            instance_type_service_pb2.InstanceType(
                id=r["id"], text=r["text"], gpu=r["gpu_count"] > 0, gpu_count=r["gpu_count"],
                gpu_type=r["gpu_type"], price=r["price"], cu=r["cu"], cloud=r["cloud"],
            )
            for r in rows
        ]

    @_public
    def list_tags(self) -> list[tag_service_pb2.Tag]:
        """Every tag definition."""
        rows = self._conn.execute("SELECT * FROM tags ORDER BY required DESC, label").fetchall()
        return [
            tag_service_pb2.Tag(
                id=r["id"], label=r["label"], default_value=r["default_value"], input_type=r["input_type"],
                required=bool(r["required"]), status=r["status"], created=int(r["created"]),
                updated=int(r["updated"]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ systems

    @_public
    def create_system(
        self,
        user: User,
        *,
        cloud: str,
        name: str,
        disk_size_gb: int,
        idle_interval: int,
        image_id: str = "",
        product: str = "",
        version: str = "",
        instance_type_id: str = "",
        instance_type_name: str = "",
        tags: Sequence[tuple[str, str]] = (),
    ) -> system_service_pb2.System:
        """Validate, then begin creating a system; it reaches Started after the create steps."""
        validate_create(
            name=name, disk_size_gb=disk_size_gb, image_id=image_id or None, product=product or None,
            version=version or None, instance_type_id=instance_type_id or None,
            instance_type_name=instance_type_name or None, idle_interval=idle_interval, tags=tags,
        )
        cloud = self._check_cloud(cloud, required=True)
        image = self._resolve_image(cloud, image_id, product, version)
        itype = self._resolve_instance_type(cloud, instance_type_id, instance_type_name)
        tag_values = self._resolve_tags(tags)
        dup = self._conn.execute(
            "SELECT id FROM systems WHERE owner_id = ? AND name = ? AND status != ?",
            (user.id, name, _S.SYSTEM_STATUS_TERMINATED.code),
        ).fetchone()
        if dup is not None:
            raise PreconditionFailedError(f"system name {name!r} already exists (id {dup['id']})")
        self._check_cu(itype["cu"])
        now = self.now()
        s: dict[str, Any] = {
            "id": str(uuid.uuid4()), "name": name, "owner_id": user.id, "owner_name": user.name,
            "cloud": cloud, "cloud_id": "", "product": image["product"], "version": image["version"],
            "image_id": image["id"], "instance_type_id": itype["id"], "instance_type": itype["text"],
            "gpu_count": itype["gpu_count"], "gpu_type": itype["gpu_type"], "price": itype["price"],
            "cu": itype["cu"], "disk_size_gb": disk_size_gb, "tags": json.dumps(tag_values),
            "status": 0, "vm_status": 0, "product_status": 0,
            "phase": None, "phase_step": 0, "phase_started_at": None, "fail_next_transition": 0,
            "config_status": _S.CONFIG_STATUS_OK.code, "config_toml": "", "pending_config_toml": None,
            "config_started_at": None, "fail_next_config": 0, "provisioned": 0, "default_url": "",
            "ip_address": "", "private_ip": "", "public_ip": "", "username": "", "password": "",
            "auth_type": "", "idle_timeout": None, "idle_timeout_interval": idle_interval,
            "session_started_at": None, "session_cost": 0.0, "previous_sessions_cost": 0.0,
            "created": now, "updated": now,
        }
        self._begin(s, "create", now)
        columns = ", ".join(s)
        self._conn.execute(
            f"INSERT INTO systems ({columns}) VALUES ({', '.join('?' for _ in s)})", tuple(s.values())
        )
        return _system_to_proto(s, now)

    @_public
    def get_system(
        self, user: User, system_id: str
    ) -> tuple[system_service_pb2.System, list[system_service_pb2.DAIModel]]:
        """The system (terminated ones too) and, for a started DAI system, its experiments."""
        s = self._load(user, system_id, mutation=False)
        return _system_to_proto(s, self.now()), _dai_models(s)

    @_public
    def list_systems(self, user: User, cloud: str = "") -> list[system_service_pb2.System]:
        """The user's systems that are not terminated, in ``cloud`` (every cloud when empty)."""
        cloud = self._check_cloud(cloud, required=False)
        sql = "SELECT * FROM systems WHERE owner_id = ? AND status != ?"
        args: list[Any] = [user.id, _S.SYSTEM_STATUS_TERMINATED.code]
        if cloud:
            sql += " AND cloud = ?"
            args.append(cloud)
        now = self.now()
        return [_system_to_proto(dict(r), now) for r in self._conn.execute(sql + " ORDER BY created, id", args)]

    @_public
    def start_system(self, user: User, system_id: str) -> system_service_pb2.System:
        """Begin starting a stopped system (applies an uploaded config.toml)."""
        s = self._load(user, system_id)
        self._require(s, "start")
        self._check_cu(s["cu"])
        return self._begin_and_save(s, "start")

    @_public
    def stop_system(self, user: User, system_id: str) -> system_service_pb2.System:
        """Begin stopping a started or failed system."""
        s = self._load(user, system_id)
        self._require(s, "stop")
        return self._begin_and_save(s, "stop")

    @_public
    def restart_system(self, user: User, system_id: str) -> system_service_pb2.System:
        """Begin restarting a started system (applies an uploaded config.toml)."""
        s = self._load(user, system_id)
        self._require(s, "restart")
        return self._begin_and_save(s, "restart")

    @_public
    def terminate_system(self, user: User, system_id: str) -> system_service_pb2.System:
        """Begin terminating a started, stopped or failed system."""
        s = self._load(user, system_id)
        self._require(s, "terminate")
        return self._begin_and_save(s, "terminate")

    @_public
    def fail_system(self, user: User, system_id: str) -> system_service_pb2.System:
        """Mark a system in transition as failed (it fails after one step)."""
        s = self._load(user, system_id)
        if s["status"] in STABLE_SYSTEM_STATUSES:
            raise PreconditionFailedError(
                f"cannot fail system {s['name']!r} ({s['id']}): it is {system_status_text(s['status'])}, "
                "needs a system in transition"
            )
        if s["phase"] == "fail":
            return _system_to_proto(s, self.now())
        return self._begin_and_save(s, "fail")

    @_public
    def refresh_idle_timeout(self, user: User, system_id: str) -> system_service_pb2.System:
        """Push a started system's idle timeout to now plus its idle interval."""
        s = self._load(user, system_id)
        self._require(s, "refresh the idle timeout of")
        now = self.now()
        s["idle_timeout"] = now + s["idle_timeout_interval"] * 60
        s["updated"] = now
        self._save(s)
        return _system_to_proto(s, now)

    @_public
    def update_config_toml(self, user: User, system_id: str, config_toml: str) -> system_service_pb2.System:
        """Begin uploading config.toml to a started system; a start or restart applies it."""
        validate_system_id(system_id)
        validate_config_toml(config_toml)
        s = self._load(user, system_id)
        self._require(s, "update config.toml of")
        if s["config_status"] == _S.CONFIG_STATUS_UPLOADING.code:
            raise PreconditionFailedError(
                f"cannot update config.toml of system {s['name']!r} ({s['id']}): an upload is still running"
            )
        now = self.now()
        s.update(
            config_status=_S.CONFIG_STATUS_UPLOADING.code, pending_config_toml=config_toml,
            config_started_at=now, updated=now,
        )
        self._save(s)
        return _system_to_proto(s, now)

    @_public
    def cu_info(self, user: User) -> CUInfo:
        """CU consumed by every system, CU still available, and the user's consuming systems."""
        consumed = self._consumed_cu()
        rows = self._conn.execute(
            f"SELECT id, name, cu FROM systems WHERE owner_id = ? AND status NOT IN ({_in(NOT_CONSUMING_STATUSES)}) "
            "ORDER BY created, id",
            (user.id, *NOT_CONSUMING_STATUSES),
        ).fetchall()
        return CUInfo(
            available_cu=self.cu_capacity - consumed,
            consumed_cu=consumed,
            systems=[SystemCU(r["id"], r["name"], r["cu"]) for r in rows],
        )

    # ------------------------------------------------------------------ admin

    @_public
    def fail_next_transition(self, system_id: str, *, config_upload: bool = False) -> None:
        """Make the system's running (or else next) transition, or config upload, end in failure."""
        validate_system_id(system_id)
        s = self._load(None, system_id)
        s["fail_next_config" if config_upload else "fail_next_transition"] = 1
        self._save(s)

    # ------------------------------------------------------------------ internals: lookup

    def _by_cloud(self, table: str, cloud: str, order: str) -> list[sqlite3.Row]:
        cloud = self._check_cloud(cloud, required=False)
        if cloud:
            return self._conn.execute(
                f"SELECT * FROM {table} WHERE cloud = ? ORDER BY {order}", (cloud,)
            ).fetchall()
        return self._conn.execute(f"SELECT * FROM {table} ORDER BY cloud, {order}").fetchall()

    @staticmethod
    def _check_cloud(cloud: str, *, required: bool) -> str:
        if not cloud and not required:
            return ""
        try:
            return cloud_by_id(cloud).id
        except ValueError:
            raise ValidationFailedError(
                "cloud", f"must be one of {', '.join(c.id for c in ALL_CLOUDS)}, got {cloud!r}"
            ) from None

    def _resolve_image(self, cloud: str, image_id: str, product: str, version: str) -> sqlite3.Row:
        if image_id:
            row = self._conn.execute(
                "SELECT * FROM images WHERE id = ? AND cloud = ?", (image_id, cloud)
            ).fetchone()
            if row is None:
                raise ValidationFailedError("image", f"unknown image id {image_id!r} for cloud {cloud}")
            if row["status"] != ImageStatuses.IMAGE_STATUS_AVAILABLE.code:
                status = image_status_text(row["status"])
                raise ValidationFailedError("image", f"image {image_id!r} is not available (it is {status})")
            return row
        products = [p.id for p in ALL_PRODUCTS]
        if product not in products:
            raise ValidationFailedError("product", f"must be one of {', '.join(products)}, got {product!r}")
        rows = self._conn.execute(
            "SELECT * FROM images WHERE cloud = ? AND product = ? AND status = ? ORDER BY version",
            (cloud, product, ImageStatuses.IMAGE_STATUS_AVAILABLE.code),
        ).fetchall()
        for row in rows:
            if version in (row["version"], row["text"]):
                return row
        raise ValidationFailedError(
            "version",
            f"no available {product} image with version {version!r} for cloud {cloud}; "
            f"available: {_choices([r['version'] for r in rows])}",
        )

    def _resolve_instance_type(self, cloud: str, type_id: str, type_name: str) -> sqlite3.Row:
        rows = self._conn.execute(
            "SELECT * FROM instance_types WHERE cloud = ? ORDER BY cu, text", (cloud,)
        ).fetchall()
        for row in rows:
            if (type_id and row["id"] == type_id) or (not type_id and row["text"] == type_name):
                return row
        if type_id:
            field, what, known = "instance_type", f"id {type_id!r}", [r["id"] for r in rows]
        else:
            field, what, known = "instance_type_name", repr(type_name), [r["text"] for r in rows]
        raise ValidationFailedError(
            field, f"unknown instance type {what} for cloud {cloud}; available: {_choices(known)}"
        )

    def _resolve_tags(self, given: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        known = {
            r["label"]: r
            for r in self._conn.execute(
                "SELECT * FROM tags WHERE status = ? ORDER BY label", (TagStatuses.TAG_STATUS_OK.code,)
            )
        }
        values: dict[str, str] = {}
        for label, value in given:
            tag = known.get(label)
            if tag is None:
                raise ValidationFailedError("tags", f"unknown tag {label!r}; known tags: {_choices(list(known))}")
            value = value or tag["default_value"]
            if tag["input_type"] == "number" and value and not value.isdigit():
                raise ValidationFailedError("tags", f"tag {label!r} must be a number, got {value!r}")
            values[label] = value
        for label, tag in known.items():
            if tag["required"] and not values.get(label):
                raise ValidationFailedError("tags", f"tag {label!r} is required")
        return [(label, value) for label, value in values.items() if value]

    def _load(self, user: User | None, system_id: str, *, mutation: bool = True) -> dict[str, Any]:
        """The system row as a dict; ``NotFoundError`` for unknown ids, other owners' systems and,
        when ``mutation``, terminated systems. ``user`` None (admin) skips the owner check."""
        validate_system_id(system_id)
        row = self._conn.execute("SELECT * FROM systems WHERE id = ?", (system_id,)).fetchone()
        if row is None or (user is not None and row["owner_id"] != user.id):
            raise NotFoundError(f"system {system_id!r} not found")
        if mutation and row["status"] == _S.SYSTEM_STATUS_TERMINATED.code:
            raise NotFoundError(f"system {system_id!r} not found (it was terminated)")
        return dict(row)

    def _require(self, s: dict[str, Any], action: Action) -> None:
        allowed = ALLOWED_FROM[action]
        if s["status"] not in {a.code for a in allowed}:
            raise PreconditionFailedError(
                f"cannot {action} system {s['name']!r} ({s['id']}): it is {system_status_text(s['status'])}, "
                f"needs {_needs(allowed)}"
            )

    def _consumed_cu(self) -> int:
        row = self._conn.execute(
            f"SELECT COALESCE(SUM(cu), 0) AS total FROM systems WHERE status NOT IN ({_in(NOT_CONSUMING_STATUSES)})",
            tuple(NOT_CONSUMING_STATUSES),
        ).fetchone()
        return int(row["total"])

    def _check_cu(self, needed: int) -> None:
        available = self.cu_capacity - self._consumed_cu()
        if needed > available:
            raise PreconditionFailedError(f"not enough CU: needs {needed}, available {available}")

    def _save(self, s: dict[str, Any]) -> None:
        columns = [c for c in s if c != "id"]
        self._conn.execute(
            f"UPDATE systems SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
            (*(s[c] for c in columns), s["id"]),
        )

    def _seed(self) -> None:
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
            now = self.now()
            self._conn.executemany(
                "INSERT INTO tags (id, label, default_value, input_type, required, status, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (t.id, t.label, t.default_value, t.input_type, int(t.required), TagStatuses.TAG_STATUS_OK.code,
                     now, now)
                    for t in seed.TAGS
                ],
            )

    # ------------------------------------------------------------------ internals: the lifecycle

    def _advance(self, now: float) -> None:
        """Move every system through the steps, uploads and idle timeouts due by ``now``."""
        rows = self._conn.execute(
            "SELECT * FROM systems WHERE phase IS NOT NULL OR config_status = ? "
            "OR (status = ? AND idle_timeout < ?)",
            (_S.CONFIG_STATUS_UPLOADING.code, _S.SYSTEM_STATUS_STARTED.code, now),
        ).fetchall()
        for row in rows:
            s = dict(row)
            if self._advance_system(s, now):
                self._save(s)

    def _advance_system(self, s: dict[str, Any], now: float) -> bool:
        """Apply the system's due events in time order; True if anything changed."""
        changed = False
        while True:
            # (when, tie-break order, kind): an upload that ends with a restart is applied by it.
            events: list[tuple[float, int, str]] = []
            if s["config_status"] == _S.CONFIG_STATUS_UPLOADING.code:
                events.append((s["config_started_at"] + self.step_seconds, 0, "config"))
            if s["phase"] is not None:
                events.append((s["phase_started_at"] + (s["phase_step"] + 1) * self.step_seconds, 1, "phase"))
            elif (
                s["status"] == _S.SYSTEM_STATUS_STARTED.code
                and s["idle_timeout"] is not None
                and s["idle_timeout"] < now
            ):
                events.append((s["idle_timeout"], 2, "idle"))
            due = [e for e in events if e[0] <= now]
            if not due:
                return changed
            at, _, kind = min(due)
            if kind == "config":
                self._finish_upload(s, at)
            elif kind == "phase":
                self._next_step(s, at)
            else:
                self._begin(s, "stop", at)
            changed = True

    def _begin_and_save(self, s: dict[str, Any], phase: Phase) -> system_service_pb2.System:
        now = self.now()
        self._begin(s, phase, now)
        self._save(s)
        return _system_to_proto(s, now)

    def _begin(self, s: dict[str, Any], phase: Phase, at: float) -> None:
        if phase == "start":
            s["previous_sessions_cost"] += s["session_cost"]
            s["session_cost"] = 0.0
        s.update(phase=phase, phase_step=0, phase_started_at=at)
        _apply(s, TRANSITIONS[phase][0], at)

    def _next_step(self, s: dict[str, Any], at: float) -> None:
        phase = s["phase"]
        steps = TRANSITIONS[phase]
        step = s["phase_step"] + 1
        last = step == len(steps) - 1
        if last and phase != "fail" and s["fail_next_transition"]:
            s["fail_next_transition"] = 0
            self._begin(s, "fail", at)
            return
        _apply(s, steps[step], at)
        s["phase_step"] = step
        if last:
            s.update(phase=None, phase_step=0, phase_started_at=None)
            self._finish(s, phase, at)

    def _finish(self, s: dict[str, Any], phase: Phase, at: float) -> None:
        """Side effects of reaching a transition's stable result."""
        if s["status"] == _S.SYSTEM_STATUS_STARTED.code:
            if not s["provisioned"]:
                _provision(s)
            if phase in ("create", "start"):
                s["session_started_at"] = at
            if s["config_status"] == _S.CONFIG_STATUS_UPLOADED.code:
                s["config_status"] = _S.CONFIG_STATUS_OK.code
            s["idle_timeout"] = at + s["idle_timeout_interval"] * 60
        elif s["session_started_at"] is not None:
            s["session_cost"] = _session_cost(s, at)
            s["session_started_at"] = None

    def _finish_upload(self, s: dict[str, Any], at: float) -> None:
        if s["fail_next_config"]:
            s["config_status"] = _S.CONFIG_STATUS_FAILED.code
            s["fail_next_config"] = 0
        else:
            s["config_status"] = _S.CONFIG_STATUS_UPLOADED.code
            s["config_toml"] = s["pending_config_toml"] or ""
        s.update(pending_config_toml=None, config_started_at=None, updated=at)


def _in(values: frozenset[int]) -> str:
    return ", ".join("?" for _ in values)


def _apply(s: dict[str, Any], step: Step, at: float) -> None:
    status, vm, product = step
    s["status"] = status.code
    if vm is not None:
        s["vm_status"] = vm.code
    if product is not None:
        s["product_status"] = product.code
    s["updated"] = at


def _provision(s: dict[str, Any]) -> None:
    """Fill what a real system learns when it first comes up: URL, addresses, credentials."""
    rnd = secrets.SystemRandom()
    public_ip = f"203.0.113.{rnd.randint(1, 254)}"
    s.update(
        provisioned=1,
        default_url=f"https://{s['name']}.{s['cloud']}.puddle.local",
        private_ip=f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
        public_ip=public_ip,
        ip_address=public_ip,
        cloud_id=f"{s['cloud']}-vm-{secrets.token_hex(8)}",
        username="h2oai",
        password=secrets.token_urlsafe(12),
        auth_type="local",
    )


def _session_cost(s: dict[str, Any], at: float) -> float:
    if s["session_started_at"] is None:
        return float(s["session_cost"])
    return round(s["price"] * max(0.0, at - s["session_started_at"]) / 3600, 6)


def _system_to_proto(s: dict[str, Any], now: float) -> system_service_pb2.System:
    """The one place a system row becomes a ``System`` message (with the derived flags)."""
    stable = s["status"] in STABLE_SYSTEM_STATUSES
    return system_service_pb2.System(
        id=s["id"], name=s["name"], owner_id=s["owner_id"], owner_name=s["owner_name"],
        cloud=s["cloud"], cloud_id=s["cloud_id"], product=s["product"], version=s["version"],
        image_id=s["image_id"], instance_type=s["instance_type"], gpu=s["gpu_count"] > 0,
        gpu_count=s["gpu_count"], gpu_type=s["gpu_type"], disk_size_gb=s["disk_size_gb"],
        status=s["status"], vm_status=s["vm_status"], product_status=s["product_status"],
        config_status=s["config_status"], config_toml=s["config_toml"],
        can_fail=not stable, can_launch=s["status"] == _S.SYSTEM_STATUS_STOPPED.code, in_transition=not stable,
        provisioned=bool(s["provisioned"]), default_url=s["default_url"], ip_address=s["ip_address"],
        private_ip=s["private_ip"], public_ip=s["public_ip"], username=s["username"],
        password=s["password"], auth_type=s["auth_type"],
        idle_timeout=int(s["idle_timeout"] or 0), idle_timeout_interval=s["idle_timeout_interval"],
        current_session_cost=_session_cost(s, now), previous_sessions_cost=s["previous_sessions_cost"],
        created=int(s["created"]), updated=int(s["updated"]),
        tags=[system_service_pb2.TagData(label=label, value=value) for label, value in json.loads(s["tags"])],
        cu=s["cu"],
    )


_FAKE_EXPERIMENTS = (
    ("credit-card-default", "creditcard_train.csv", "default payment next month", "AUC"),
    ("house-prices", "house_prices_train.csv", "SalePrice", "RMSE"),
)


def _dai_models(s: dict[str, Any]) -> list[system_service_pb2.DAIModel]:
    """A started DAI system's experiments: fixed fakes, derived from the system id.

    On a system tagged ``Purpose=training`` the last experiment is still running (progress 0.5).
    """
    if s["product"] != PRODUCT_DAI.id or s["status"] != _S.SYSTEM_STATUS_STARTED.code:
        return []
    training = ["Purpose", "training"] in json.loads(s["tags"])
    models = []
    for n, (description, dataset, target, scorer) in enumerate(_FAKE_EXPERIMENTS):
        running = training and n == len(_FAKE_EXPERIMENTS) - 1
        digest = hashlib.sha256(f"{s['id']}/{n}".encode()).digest()
        score = 0.7 + digest[0] / 1000
        created = int(s["created"]) + 600 * (n + 1)
        models.append(
            system_service_pb2.DAIModel(
                id=str(uuid.UUID(bytes=digest[:16])), description=description, dataset=dataset,
                target=target, scorer=scorer, accuracy=7, time=3 + n, interpretability=6,
                progress=0.5 if running else 1.0, status=0.0, score=score, test_score=score - 0.01,
                training_duration=300.0 + digest[1], created=created, updated=created + 300,
            )
        )
    return models
