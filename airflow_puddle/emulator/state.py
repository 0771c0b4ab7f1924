"""The emulated Puddle as one facade: auth tokens and the system commands, under one lock.

:class:`PuddleBackend` composes the Store (SQLite), the Lifecycle engine and the Catalog, and
returns typed rows, never protobuf messages. Commands that read or change systems first run one
lifecycle sweep, which touches only the systems with something due. Errors are the shared
:mod:`airflow_puddle.domain.errors` classes; the servicers turn them into gRPC statuses.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Concatenate, Literal, ParamSpec, TypeVar

from airflow_puddle.domain.errors import (
    AlreadyExistsError,
    AuthError,
    NotFoundError,
    PreconditionFailedError,
)
from airflow_puddle.domain.lifecycle import STABLE_SYSTEM_STATUSES, Action, Phase, refusal
from airflow_puddle.domain.statuses import SystemStatuses, system_status_text
from airflow_puddle.domain.validation import validate_config_toml, validate_create, validate_system_id
from airflow_puddle.emulator.catalog import Catalog, check_cloud
from airflow_puddle.emulator.experiments import dai_experiments
from airflow_puddle.emulator.lifecycle import Lifecycle
from airflow_puddle.emulator.limits import (
    MAX_TOKEN_TTL_SECONDS,
    advance_seconds,
    setting_int,
    setting_step_seconds,
    setting_text,
)
from airflow_puddle.emulator.rows import (
    CUInfo,
    ExperimentRow,
    ImageRow,
    InstanceTypeRow,
    LoginResult,
    SystemCU,
    SystemRow,
    TagRow,
    User,
    new_system,
)
from airflow_puddle.emulator.store import Store
from airflow_puddle.emulator.tokens import hash_token, new_token, same, user_of_key

if TYPE_CHECKING:
    from airflow_puddle.emulator.node_systems import NodeRules

__all__ = ["CUInfo", "LoginResult", "PuddleBackend", "SystemCU", "SystemRow", "User"]

_S = SystemStatuses
P = ParamSpec("P")
R = TypeVar("R")
_Method = Callable[Concatenate["PuddleBackend", P], R]


def _locked(fn: _Method[P, R]) -> _Method[P, R]:
    """Run a public method under the lock, in one transaction; no lifecycle sweep."""

    @functools.wraps(fn)
    def wrapper(self: PuddleBackend, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock, self.store.transaction():
            return fn(self, *args, **kwargs)

    return wrapper


def _swept(fn: _Method[P, R]) -> _Method[P, R]:
    """Run a public method under the lock after one lifecycle sweep up to now.

    Two transactions: the sweep's is committed first, so it stands even when the method
    then fails (a precondition, an unknown id) and its own transaction rolls back.
    """

    @functools.wraps(fn)
    def wrapper(self: PuddleBackend, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.swept():
            return fn(self, *args, **kwargs)

    return wrapper


class PuddleBackend:
    """The emulated Puddle: systems, their lifecycle, catalogue, tokens and CU accounting.

    Thread-safe: every public method runs under one lock. Bad arguments (and an unusable database) raise
    :class:`~airflow_puddle.emulator.limits.EmulatorConfigError` naming the argument. ``clock`` replaces
    ``time.time``; ``now()`` adds an offset kept in the database, so :meth:`advance_clock` survives restarts.
    ``store``, ``lifecycle`` and ``catalog`` are exposed for tests; they take no lock of their own.
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
        self.lifecycle = Lifecycle(setting_step_seconds(step_seconds))
        self.step_seconds = self.lifecycle.step_seconds
        self.cu_capacity = setting_int("cu_capacity", cu_capacity, minimum=0)
        self.token_ttl_seconds = setting_int("token_ttl_seconds", token_ttl_seconds, minimum=1,
                                             maximum=int(MAX_TOKEN_TTL_SECONDS))
        self._api_key_id = setting_text("api_key_id", api_key_id)
        self._api_secret_key = setting_text("api_secret_key", api_secret_key)
        user_name = setting_text("user_name", user_name)
        self._user = user_of_key(self._api_key_id, user_name)
        self._clock = clock or time.time
        self._lock = threading.RLock()
        self.nodes: NodeRules | None = None  # real H2O-3 nodes (emulator/node_systems.py), when running them
        self.store = Store(db_path)
        self.catalog = Catalog(self.store)
        with self._lock, self.store.transaction():
            self._offset = self.store.clock_offset()
            self.store.seed(self.now())
            # Stored due times are computed with the step length; restamp them when it changed.
            if self.store.meta("step_seconds") != repr(self.step_seconds):
                self.lifecycle.restamp(self.store)
                self.store.set_meta("step_seconds", repr(self.step_seconds))

    @contextlib.contextmanager
    def swept(self) -> Iterator[None]:
        """Hold the lock, sweep the lifecycle up to now (committed), then open a transaction."""
        with self._lock:
            with self.store.transaction():
                self.lifecycle.sweep(self.store, self.now())
            with self.store.transaction():
                yield

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self.store.close()

    def __enter__(self) -> PuddleBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """The emulator's time: the base clock plus every :meth:`advance_clock`."""
        return self._clock() + self._offset

    @_locked
    def advance_clock(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (finite, at most ten years; nothing stored otherwise) and
        sweep up to then; returns the new time."""
        self._offset += advance_seconds(seconds, self.now())
        self.store.set_meta("clock_offset", repr(self._offset))
        now = self.now()
        self.lifecycle.sweep(self.store, now)
        return now

    # ------------------------------------------------------------------ auth

    @_locked
    def login(self, api_key_id: str, api_secret_key: str) -> LoginResult:
        """Exchange the API key pair for a token; ``AuthError`` when either part is wrong."""
        key_ok = same(api_key_id, self._api_key_id)
        secret_ok = same(api_secret_key, self._api_secret_key)
        if not (key_ok and secret_ok):
            raise AuthError("invalid API key id or secret")
        now = self.now()
        self.store.delete_tokens(expired_at=now)
        token = new_token()
        expires_at = int(now + self.token_ttl_seconds)
        self.store.add_token(hash_token(token), self._user, expires_at)
        return LoginResult(token, expires_at, self._user)

    @_locked
    def check_token(self, token: str) -> User:
        """The user a token belongs to; ``AuthError`` when it is unknown or expired."""
        user = self.store.token_user(hash_token(token), self.now())
        if user is None:
            raise AuthError("token expired or invalid")
        return user

    @_locked
    def logout(self, token: str) -> None:
        """Forget a token (unknown tokens are ignored)."""
        self.store.delete_tokens(token_hash=hash_token(token))

    @_locked
    def expire_tokens(self) -> int:
        """Reject every token issued so far; returns how many were live."""
        return self.store.delete_tokens()

    # ------------------------------------------------------------------ catalogue

    @_locked
    def list_images(self, cloud: str = "") -> list[ImageRow]:
        """Every image of ``cloud`` (every cloud when empty), whatever its status."""
        return self.catalog.images(cloud)

    @_locked
    def list_instance_types(self, cloud: str = "") -> list[InstanceTypeRow]:
        """Every instance type of ``cloud`` (every cloud when empty)."""
        return self.catalog.instance_types(cloud)

    @_locked
    def list_tags(self) -> list[TagRow]:
        """Every tag definition."""
        return self.catalog.tags()

    # ------------------------------------------------------------------ systems

    @_swept
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
    ) -> SystemRow:
        """Validate, then begin creating a system; it reaches Started after the create steps."""
        validate_create(
            name=name, disk_size_gb=disk_size_gb, image_id=image_id or None, product=product or None,
            version=version or None, instance_type_id=instance_type_id or None,
            instance_type_name=instance_type_name or None, idle_interval=idle_interval, tags=tags,
            unset_tag_values=True,  # proto3: an empty value is a tag not given, which gets its default
        )
        cloud = check_cloud(cloud, required=True)
        image = self.catalog.resolve_image(cloud, image_id, product, version)
        itype = self.catalog.resolve_instance_type(cloud, instance_type_id, instance_type_name)
        tag_values = self.catalog.resolve_tags(tags)
        if self.nodes is not None:
            self.nodes.check_create(image)
        dup = self.store.live_system_named(user.id, name)
        if dup is not None:
            raise AlreadyExistsError(f"system name {name!r} already exists (id {dup})")
        self._check_cu(itype.cu)
        now = self.now()
        s = new_system(user.id, user.name, cloud, name, image, itype, disk_size_gb, tag_values, idle_interval, now)
        s = self.lifecycle.stamped(self.lifecycle.begin(s, "create", now))
        self.store.insert_system(s)
        self._changed(s)
        return s

    @_swept
    def get_system(self, user: User, system_id: str) -> tuple[SystemRow, list[ExperimentRow]]:
        """The system (terminated ones too) and, for a started DAI system, its experiments."""
        s = self._load(user, system_id, mutation=False)
        return s, dai_experiments(s)

    @_swept
    def list_systems(self, user: User, cloud: str = "", name: str = "") -> list[SystemRow]:
        """The user's systems that are not terminated, in ``cloud`` (every cloud when empty), named ``name``."""
        return self.store.systems(user.id, check_cloud(cloud, required=False), name)

    @_swept
    def start_system(self, user: User, system_id: str) -> SystemRow:
        """Begin starting a stopped system (applies an uploaded config.toml)."""
        s = self._load(user, system_id)
        self._require(s, "start")
        self._check_cu(s.cu)
        if self.nodes is not None:
            self.nodes.check_start(s)
        return self._begin(s, "start")

    @_swept
    def stop_system(self, user: User, system_id: str) -> SystemRow:
        """Begin stopping a started or failed system."""
        return self._act(user, system_id, "stop")

    @_swept
    def restart_system(self, user: User, system_id: str) -> SystemRow:
        """Begin restarting a started system (applies an uploaded config.toml)."""
        return self._act(user, system_id, "restart")

    @_swept
    def terminate_system(self, user: User, system_id: str) -> SystemRow:
        """Begin terminating a started, stopped or failed system."""
        return self._act(user, system_id, "terminate")

    @_swept
    def fail_system(self, user: User, system_id: str) -> SystemRow:
        """Mark a system in transition as failed (it fails after one step)."""
        s = self._load(user, system_id)
        if s.status in STABLE_SYSTEM_STATUSES:
            raise PreconditionFailedError(
                f"cannot fail system {s.name!r} ({s.id}): it is {system_status_text(s.status)}, "
                "needs a system in transition"
            )
        return s if s.phase == "fail" else self._begin(s, "fail")

    @_swept
    def refresh_idle_timeout(self, user: User, system_id: str) -> SystemRow:
        """Push a started system's idle timeout to now plus its idle interval."""
        s = self._load(user, system_id)
        self._require(s, "refresh the idle timeout of")
        now = self.now()
        return self.save_system(replace(s, idle_timeout=now + s.idle_timeout_interval * 60, updated=now))

    @_swept
    def update_config_toml(self, user: User, system_id: str, config_toml: str) -> SystemRow:
        """Begin uploading config.toml to a started system; a start or restart applies it."""
        validate_system_id(system_id)
        validate_config_toml(config_toml)
        s = self._load(user, system_id)
        self._require(s, "update config.toml of")
        if s.config_status == _S.CONFIG_STATUS_UPLOADING.code:
            raise PreconditionFailedError(
                f"cannot update config.toml of system {s.name!r} ({s.id}): an upload is still running"
            )
        now = self.now()
        return self.save_system(replace(
            s, config_status=_S.CONFIG_STATUS_UPLOADING.code, pending_config_toml=config_toml,
            config_started_at=now, updated=now,
        ))

    @_swept
    def cu_info(self, user: User) -> CUInfo:
        """CU consumed by every system, CU still available, and the user's consuming systems."""
        consumed = self.store.consumed_cu()
        return CUInfo(
            available_cu=self.cu_capacity - consumed,
            consumed_cu=consumed,
            systems=tuple(SystemCU(*consumer) for consumer in self.store.cu_consumers(user.id)),
        )

    # ------------------------------------------------------------------ admin

    @_swept
    def fail_next_transition(self, system_id: str, *, config_upload: bool = False) -> None:
        """Make the system's running (or else next) transition, or config upload, end in failure."""
        s = self._load(None, system_id)
        self.save_system(replace(s, fail_next_config=True) if config_upload else replace(s, fail_next_transition=True))

    # ------------------------------------------------------------------ internals

    def _load(self, user: User | None, system_id: str, *, mutation: bool = True) -> SystemRow:
        """The system; ``NotFoundError`` for unknown ids, other owners' systems and, when ``mutation``,
        terminated systems. ``user`` None (admin) skips the owner check."""
        validate_system_id(system_id)
        s = self.store.system(system_id)
        if s is None or (user is not None and s.owner_id != user.id):
            raise NotFoundError(f"system {system_id!r} not found")
        if mutation and s.status == _S.SYSTEM_STATUS_TERMINATED.code:
            raise NotFoundError(f"system {system_id!r} not found (it was terminated)")
        return s

    def _require(self, s: SystemRow, action: Action) -> None:
        why = refusal(action, s.status)
        if why is not None:
            raise PreconditionFailedError(f"cannot {action} system {s.name!r} ({s.id}): {why}")

    def _act(self, user: User, system_id: str, action: Literal["stop", "restart", "terminate"]) -> SystemRow:
        s = self._load(user, system_id)
        self._require(s, action)
        return self._begin(s, action)

    def _check_cu(self, needed: int) -> None:
        available = self.cu_capacity - self.store.consumed_cu()
        if needed > available:
            raise PreconditionFailedError(f"not enough CU: needs {needed}, available {available}")

    def _begin(self, s: SystemRow, phase: Phase) -> SystemRow:
        s = self.save_system(self.lifecycle.begin(s, phase, self.now()))
        self._changed(s)
        return s

    def _changed(self, s: SystemRow) -> None:
        if self.nodes is not None:
            self.nodes.changed(s)

    def save_system(self, s: SystemRow) -> SystemRow:
        """Store ``s`` with its due time recomputed (the caller holds :meth:`swept`); returns what was stored."""
        s = self.lifecycle.stamped(s)
        self.store.save_system(s)
        return s
