"""A ``puddle`` connection read and checked: :class:`PuddleSettings`, the hook's input.

Every field is checked when the connection is read, naming the connection and the field
(:class:`PuddleConnectionError`), before any client is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_puddle.client import AsyncAuthorizer, Authorizer, RetryPolicy
from airflow_puddle.client.address import Target, check_ca_cert
from airflow_puddle.domain.clouds import CloudProvider, cloud_by_id
from airflow_puddle.domain.defaults import CALL_TIMEOUT_S
from airflow_puddle.domain.errors import split_field
from airflow_puddle.domain.validation import MAX_BACKOFF_S, validate_call_timeout, validate_seconds
from airflow_puddle.hooks.adapter import OfficialClientMissingError, OfficialKit, import_official
from airflow_puddle.hooks.form import BUILTIN_ONLY, CLIENT_CHOICES, CONN_FIELDS

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
    timeout_s: float = CALL_TIMEOUT_S
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
            raise PuddleConnectionError(f"connection {cid!r}: host: {split_field(str(err))[1]}") from None
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
            timeout_s = validate_call_timeout(_number(extra.get("timeout", CALL_TIMEOUT_S)), "timeout")
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
