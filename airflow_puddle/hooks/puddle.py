"""PuddleHook: an Airflow connection in, authorized Puddle clients out (sync and async)."""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_puddle.client import (
    AsyncAuthorizer,
    AsyncSystemsClient,
    Authorizer,
    ImagesClient,
    InstanceTypesClient,
    SystemsClient,
    TagsClient,
)
from airflow_puddle.client._drivers import BLOCKING_CALLS
from airflow_puddle.client._transport import DEFAULT_TIMEOUT_S, RetryPolicy, Target, check_ca_cert
from airflow_puddle.domain.clouds import CloudProvider, cloud_by_id
from airflow_puddle.domain.validation import MAX_BACKOFF_S, validate_call_timeout, validate_seconds
from airflow_puddle.hooks.adapter import OfficialClientMissingError, OfficialKit, import_official
from airflow_puddle.hooks.form import BUILTIN_ONLY, CLIENT_CHOICES, CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_puddle.hooks.h2o import h2o_session
from airflow_puddle.hooks.masking import mask_secret_quietly

if TYPE_CHECKING:
    from airflow.sdk import Connection


class PuddleConnectionError(ValueError):
    """A Puddle connection field is missing or malformed."""


@dataclass(frozen=True)
class PuddleSettings:
    """What a ``puddle`` connection says, checked. Secrets are kept out of ``repr``."""

    server_address: str
    api_key_id: str
    api_secret_key: str = field(repr=False)
    cloud: CloudProvider
    ca_cert: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    client: str = "builtin"

    @classmethod
    def from_connection(cls, conn: Connection) -> PuddleSettings:
        """Read and check a connection; :class:`PuddleConnectionError` names the bad field."""
        cid = conn.conn_id
        host = (conn.host or "").strip()
        if not host:
            raise PuddleConnectionError(f"connection {cid!r}: host is required (e.g. https://puddle.example.com)")
        address = _join(cid, host, conn.port)
        try:
            target = Target.parse(address)
        except ValueError as err:
            raise PuddleConnectionError(f"connection {cid!r}: host: {str(err).split(': ', 1)[-1]}") from None
        if not conn.login:
            raise PuddleConnectionError(f"connection {cid!r}: login (the API key ID) is required")
        if not conn.password:
            raise PuddleConnectionError(f"connection {cid!r}: password (the API secret key) is required")
        extra = _extra(conn)
        unknown = set(extra) - set(EXTRA_FIELDS)
        if unknown:
            raise PuddleConnectionError(
                f"connection {cid!r}: extra: unknown field(s) {sorted(unknown)}; known: {', '.join(EXTRA_FIELDS)}"
            )
        try:
            cloud = cloud_by_id(str(extra.get("cloud") or "aws"))
        except ValueError as err:
            raise PuddleConnectionError(f"connection {cid!r}: extra.{err}") from None
        client = _client_choice(cid, extra)  # first: it refuses what the official client has no use for
        ca_cert = extra.get("ca_cert") or None
        try:
            check_ca_cert(target, None if ca_cert is None else str(ca_cert))
            timeout_s = validate_call_timeout(_number(extra.get("timeout", DEFAULT_TIMEOUT_S)), "timeout")
            retry = _retry_policy(extra)
        except ValueError as err:
            raise PuddleConnectionError(f"connection {cid!r}: extra.{err}") from None
        return cls(address, conn.login, conn.password, cloud, str(ca_cert) if ca_cert else None, timeout_s, retry,
                   client)

    def authorizer(self) -> Authorizer:
        return Authorizer(self.server_address, self.api_key_id, self.api_secret_key,
                          ca_cert=self.ca_cert, timeout_s=self.timeout_s, retry_policy=self.retry)

    def async_authorizer(self) -> AsyncAuthorizer:
        return AsyncAuthorizer(self.server_address, self.api_key_id, self.api_secret_key,
                               ca_cert=self.ca_cert, timeout_s=self.timeout_s, retry_policy=self.retry)

    @property
    def official(self) -> bool:
        """Whether the connection asks for the official ``puddle.client`` (``extra.client=puddle``)."""
        return self.client == "puddle"

    def official_kit(self) -> OfficialKit:
        """The official client's ``Authorizer(server_address, api_key_id, api_secret_key)`` and its clients."""
        return OfficialKit(self.server_address, self.api_key_id, self.api_secret_key, self.cloud)


@dataclass(frozen=True)
class SystemCredentials:
    """How to reach a system's DAI: its URL and login. ``password`` stays out of ``repr``."""

    url: str
    username: str
    password: str = field(repr=False)


EXTRA_FIELDS = ("client", "cloud", "ca_cert", "timeout", "retries", "retry_max_wait")
"""The keys a ``puddle`` connection's extra may hold."""

MAX_RETRIES = 20


def _number(value: object) -> object:
    """A number given as JSON text (``"12.5"``) read as one; anything else as it is, to be checked."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _retry_policy(extra: dict[str, Any]) -> RetryPolicy:
    """``extra.retries`` (retries of a failed read, 0..20) and ``extra.retry_max_wait`` (longest backoff, s)."""
    default = RetryPolicy()
    retries = extra.get("retries", default.max_attempts - 1)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise ValueError(f"retries: must be a whole number from 0 to {MAX_RETRIES}, got {retries!r}")
    max_wait = validate_seconds("retry_max_wait", _number(extra.get("retry_max_wait", default.max_backoff_s)),
                                maximum=MAX_BACKOFF_S)
    return replace(default, max_attempts=retries + 1, max_backoff_s=max_wait,
                   initial_backoff_s=min(default.initial_backoff_s, max_wait))


def _client_choice(cid: str | None, extra: dict[str, Any]) -> str:
    """``extra.client``: ``builtin`` (default) or ``puddle``, whose package must be importable.

    With ``puddle``, the extras only our client has (``ca_cert``, ``timeout``, ``retries``,
    ``retry_max_wait``) are refused unless they hold the form's defaults (the UI saves those).
    """
    client = extra.get("client") or "builtin"
    if client not in CLIENT_CHOICES:
        raise PuddleConnectionError(
            f"connection {cid!r}: extra.client: must be one of {', '.join(CLIENT_CHOICES)}, got {client!r}")
    if client == "puddle":
        for name in BUILTIN_ONLY:
            value = extra.get(name)
            if value not in (None, "") and _number(value) != CONN_FIELDS[name]["schema"].get("default"):
                raise PuddleConnectionError(
                    f"connection {cid!r}: extra.{name}: not supported with extra.client=puddle (the official "
                    f"puddle.client documents no such setting); remove it, or use extra.client=builtin")
        try:
            import_official()
        except OfficialClientMissingError as err:
            raise PuddleConnectionError(f"connection {cid!r}: {err}") from None
    return str(client)


def _join(cid: str | None, host: str, port: int | None) -> str:
    """The server address from the connection's host and port (``Target.parse`` checks the result)."""
    if not port:
        return host
    netloc = host.split("://", 1)[-1]
    if netloc.count(":") >= 2 and "[" not in netloc:
        raise PuddleConnectionError(f"connection {cid!r}: host: an IPv6 address needs brackets, as in "
                                    f"http://[::1] (with the port in port), got {host!r}")
    if "?" in netloc or "#" in netloc:
        return host  # Target.parse names the query string
    if _has_port(host):
        raise PuddleConnectionError(f"connection {cid!r}: give the port in host or in port, not both")
    return f"{host.rstrip('/')}:{port}"


def _has_port(host: str) -> bool:
    try:
        return urlsplit(host if "://" in host else f"//{host}").port is not None
    except ValueError:
        return True


def _extra(conn: Connection) -> dict[str, Any]:
    raw = conn.extra
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        raise PuddleConnectionError(f"connection {conn.conn_id!r}: extra: must be a JSON object") from None
    if not isinstance(value, dict):
        raise PuddleConnectionError(f"connection {conn.conn_id!r}: extra: must be a JSON object")
    return value


class PuddleHook(BaseHook):
    """Authorized Puddle clients for one Airflow connection.

    The sync clients share one channel and one login; use the hook as a context
    manager (``with PuddleHook(...) as hook:``) to close that channel at the end.
    The async twins, for triggers, are built from ``await aget_connection(...)``
    so no sync lookup runs on the event loop, each on its own channel.

    :param puddle_conn_id: The ``puddle`` connection to use.
    :param cloud: Cloud id overriding the connection's ``cloud`` extra.
    """

    conn_name_attr = "puddle_conn_id"
    default_conn_name = "puddle_default"
    conn_type = "puddle"
    hook_name = "Puddle"

    def __init__(self, puddle_conn_id: str = default_conn_name, cloud: str | None = None) -> None:
        super().__init__()
        self.puddle_conn_id = puddle_conn_id
        self._cloud = cloud_by_id(cloud) if cloud else None

    # ------------------------------------------------------------------ settings

    @cached_property
    def settings(self) -> PuddleSettings:
        """The connection's checked settings (sync lookup: not for triggers)."""
        return self._with_cloud(PuddleSettings.from_connection(self.get_connection(self.puddle_conn_id)))

    async def asettings(self) -> PuddleSettings:
        """Async version of :attr:`settings` (read in a worker thread: it may import ``puddle.client``)."""
        conn = await self.aget_connection(self.puddle_conn_id)
        read = await asyncio.get_running_loop().run_in_executor(BLOCKING_CALLS, PuddleSettings.from_connection, conn)
        return self._with_cloud(read)

    def _with_cloud(self, settings: PuddleSettings) -> PuddleSettings:
        return settings if self._cloud is None else replace(settings, cloud=self._cloud)

    # ------------------------------------------------------------------ sync clients

    @cached_property
    def authorizer(self) -> Authorizer:
        """One authorizer (one channel, one login) for every client of this hook (builtin client)."""
        return self.settings.authorizer()

    @cached_property
    def official(self) -> OfficialKit:
        """One official ``Authorizer`` for every client of this hook (``extra.client=puddle``)."""
        return self.settings.official_kit()

    def get_systems_client(self) -> SystemsClient:
        """A :class:`SystemsClient` on the connection's cloud (over the official client with ``client=puddle``)."""
        if self.settings.official:
            return self.official.systems()
        return SystemsClient(self.settings.cloud, authorizer=self.authorizer)

    def get_images_client(self) -> ImagesClient:
        """An :class:`ImagesClient` on the connection's cloud."""
        if self.settings.official:
            return self.official.images()
        return ImagesClient(self.settings.cloud, authorizer=self.authorizer)

    def get_instance_types_client(self) -> InstanceTypesClient:
        """An :class:`InstanceTypesClient` on the connection's cloud."""
        if self.settings.official:
            return self.official.instance_types()
        return InstanceTypesClient(self.settings.cloud, authorizer=self.authorizer)

    def get_tags_client(self) -> TagsClient:
        """A :class:`TagsClient`."""
        if self.settings.official:
            return self.official.tags()
        return TagsClient(authorizer=self.authorizer)

    def get_system_credentials(self, system_id: str) -> SystemCredentials:
        """URL and DAI login of a started system, fetched now; the password is masked in task logs.

        The password is registered with the masker without being echoed by Airflow's DEBUG logging.
        """
        system = self.get_systems_client().get(system_id)
        if system is None:
            raise PuddleConnectionError(f"system_id: no system {system_id!r} on {self.settings.server_address}")
        if system.password:
            mask_secret_quietly(system.password)
        return SystemCredentials(system.default_url, system.username, system.password)

    def h2o_session(self, system_id: str) -> AbstractContextManager[ModuleType]:
        """``with hook.h2o_session(system_id) as h2o:``: the ``h2o`` client connected to a Started H2O-3
        system with its login (password masked), disconnected at exit. Needs ``airflow-provider-puddle[h2o]``."""
        return h2o_session(self, system_id)

    # ------------------------------------------------------------------ async clients

    async def aget_systems_client(self) -> AsyncSystemsClient:
        """Async version of :meth:`get_systems_client`: a fresh async client on its own channel."""
        settings = await self.asettings()
        if settings.official:  # its Authorizer may log in when built: not on the event loop
            kit = await asyncio.get_running_loop().run_in_executor(BLOCKING_CALLS, settings.official_kit)
            return kit.async_systems()
        return AsyncSystemsClient(settings.cloud, authorizer=settings.async_authorizer())

    # ------------------------------------------------------------------ Airflow UI

    def test_connection(self) -> tuple[bool, str]:
        """Log in and list systems: what the UI's Test button runs."""
        try:
            systems = self.get_systems_client()
            count = len(systems.list())
            user = getattr(systems.user, "name", None) or "?"
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, f"Logged in to {self.settings.server_address} as {user}; {count} system(s) visible"

    def close(self) -> None:
        """Close the shared channel, if one was opened (a later call opens it again)."""
        if "authorizer" in self.__dict__:
            self.authorizer.close()

    def __enter__(self) -> PuddleHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide the generic connection fields (Airflow 3 reads the provider info's copy)."""
        return UI_FIELD_BEHAVIOUR


class PuddleHookUser:
    """For operators and sensors: a :class:`PuddleHook` for ``puddle_conn_id`` and its systems client.

    Use ``with self.hook:`` around each step of a task, so its channel is closed when the step ends.
    """

    puddle_conn_id: str
    cloud: str | None

    @cached_property
    def hook(self) -> PuddleHook:
        """The hook for ``puddle_conn_id`` (and ``cloud``, when given)."""
        return PuddleHook(self.puddle_conn_id, cloud=self.cloud)

    @cached_property
    def _client(self) -> SystemsClient:
        return self.hook.get_systems_client()
