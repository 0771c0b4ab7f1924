"""The one transport under every client: channel, deadlines, auth, retries.

Everything that needs no I/O lives in plain functions and small classes here (the
retry decision, backoff, the final error); the address rules are
:mod:`airflow_puddle.client.address`. The sync and the async channel wrappers hold only
the call loop and the sleep.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import grpc
import grpc.aio

from airflow_puddle._proto.puddle.v2 import (
    auth_service_pb2_grpc,
    image_service_pb2_grpc,
    instance_type_service_pb2_grpc,
    system_service_pb2_grpc,
    tag_service_pb2_grpc,
)
from airflow_puddle.client.address import Target, check_ca_cert
from airflow_puddle.domain.defaults import CALL_TIMEOUT_S
from airflow_puddle.domain.errors import (
    PuddleError,
    PuddleUnavailableError,
    TlsHandshakeError,
    from_rpc_error,
    is_transient,
    tls_fix,
)
from airflow_puddle.domain.wire import TOKEN_METADATA_KEY

if TYPE_CHECKING:
    from google.protobuf.message import Message

log = logging.getLogger("airflow_puddle.client")

MAX_RECEIVE_BYTES = 64 * 1024 * 1024
"""The largest response the client accepts (gRPC's default is 4 MiB)."""
CHANNEL_OPTIONS = (
    # gRPC's default reconnect backoff grows to 120 s: a wait would notice a backend that is back
    # up to two minutes late. Keep reconnect attempts at most 10 s apart.
    ("grpc.max_reconnect_backoff_ms", 10_000),
    ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
)

_STUBS: dict[str, Any] = {
    "AuthService": auth_service_pb2_grpc.AuthServiceStub,
    "SystemService": system_service_pb2_grpc.SystemServiceStub,
    "ImageService": image_service_pb2_grpc.ImageServiceStub,
    "InstanceTypeService": instance_type_service_pb2_grpc.InstanceTypeServiceStub,
    "TagService": tag_service_pb2_grpc.TagServiceStub,
}


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for reads: exponential backoff with jitter on transient codes only.

    Callers tune attempts and delays; which codes are transient is fixed, and
    calls that change state are never retried blindly.
    """

    max_attempts: int = 5
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts: must be at least 1")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("initial_backoff_s, max_backoff_s: must not be negative")

    def backoff(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return base * (1 + random.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True)
class Rpc:
    """One RPC to make: service, method, request, and whether repeating it is harmless."""

    service: str
    method: str
    request: Message
    idempotent: bool
    authenticated: bool = True


Decision = Literal["relogin", "retry", "raise"]


def decide(rpc: Rpc, err: grpc.RpcError, attempt: int, relogged: bool, policy: RetryPolicy) -> Decision:
    """What to do after ``rpc`` failed with ``err`` on attempt ``attempt``."""
    code = err.code()
    if code == grpc.StatusCode.UNAUTHENTICATED and rpc.authenticated and not relogged:
        return "relogin"
    if rpc.idempotent and is_transient(code, err.details() or "") and attempt < policy.max_attempts:
        return "retry"
    return "raise"


def failure(rpc: Rpc, err: grpc.RpcError, attempts: int, target: Target | None = None) -> PuddleError:
    """The error to raise for a final failure of ``rpc`` (``target``: where it went, for a TLS failure's fix)."""
    mapped = from_rpc_error(err, rpc.method)
    if isinstance(mapped, TlsHandshakeError) and target is not None and target.bare:
        details = err.details() or ""
        mapped.message = (f"{rpc.method}: TLS handshake with {target.authority} failed, which retrying cannot "
                          f"fix: {tls_fix(details, bare=True)} ({details})")
        mapped.args = (mapped.message,)
        return mapped
    if isinstance(mapped, PuddleUnavailableError):
        if rpc.idempotent:
            mapped.message = f"{mapped.message} (gave up after {attempts} attempts)"
        else:
            mapped.message = (
                f"{mapped.message}; not retried because {rpc.method} changes state: "
                "check the system's state before trying again"
            )
        mapped.args = (mapped.message,)
    return mapped


@dataclass
class ChannelConfig:
    """How to open a channel to one backend."""

    target: Target
    ca_cert: str | None = None
    timeout_s: float = CALL_TIMEOUT_S
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        check_ca_cert(self.target, self.ca_cert)

    def credentials(self) -> grpc.ChannelCredentials:
        root = self.ca_cert.encode() if self.ca_cert else None
        return grpc.ssl_channel_credentials(root_certificates=root)


class SyncChannel:
    """A lazily opened ``grpc.Channel`` with the retrying, re-authenticating call loop."""

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self._channel: grpc.Channel | None = None
        self._stubs: dict[str, Any] = {}

    def _stub(self, service: str) -> Any:
        if self._channel is None:
            t = self.config.target
            self._channel = (
                grpc.secure_channel(t.authority, self.config.credentials(), options=CHANNEL_OPTIONS)
                if t.tls
                else grpc.insecure_channel(t.authority, options=CHANNEL_OPTIONS)
            )
        if service not in self._stubs:
            self._stubs[service] = _STUBS[service](self._channel)
        return self._stubs[service]

    def call(self, rpc: Rpc, token: Any = None) -> Any:
        """Make ``rpc``; ``token`` is a callable ``(rejected: str | None) -> str`` for authenticated calls."""
        attempt, relogged, used, rejected = 0, False, "", None
        while True:
            attempt += 1
            if rpc.authenticated:
                used = token(rejected)
            metadata = ((TOKEN_METADATA_KEY, used),) if rpc.authenticated else ()
            try:
                method = getattr(self._stub(rpc.service), rpc.method)
                return method(rpc.request, timeout=self.config.timeout_s, metadata=metadata)
            except grpc.RpcError as err:
                action = decide(rpc, err, attempt, relogged, self.config.retry)
                if action == "raise":
                    raise failure(rpc, err, attempt, self.config.target) from None
                if action == "relogin":
                    relogged, rejected, attempt = True, used, 0
                    log.info("%s: token rejected, logging in again", rpc.method)
                    continue
                delay = self.config.retry.backoff(attempt)
                log.debug("%s failed with %s, retry %d in %.2fs", rpc.method, err.code().name, attempt, delay)
                time.sleep(delay)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel, self._stubs = None, {}


def loop_changed(owner: str, loop: asyncio.AbstractEventLoop | None) -> bool:
    """Whether ``loop`` (where something async was made) is over and the running loop may replace it.

    A closed loop (an earlier ``asyncio.run()``) is replaced; another loop that still runs is an
    error that says so: a grpc.aio channel belongs to the loop it was opened on.
    """
    running = asyncio.get_running_loop()
    if loop is None or loop is running:
        return False
    if loop.is_closed() or not loop.is_running():
        return True
    raise RuntimeError(f"{owner} is in use on another running event loop; an async Puddle client belongs to one "
                       f"loop at a time: build one per loop (or per thread)")


class AsyncChannel:
    """The ``grpc.aio`` twin of :class:`SyncChannel`: same decisions, awaited calls and sleeps.

    A channel belongs to the event loop it was opened on; on a new loop (a second ``asyncio.run()``)
    after that one ended, a fresh channel is opened.
    """

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self._channel: grpc.aio.Channel | None = None
        self._stubs: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _stub(self, service: str) -> Any:
        if loop_changed("this client's channel", self._loop):
            self._channel, self._stubs = None, {}  # its loop is gone, and the channel with it
        if self._channel is None:
            self._loop = asyncio.get_running_loop()
            t = self.config.target
            self._channel = (
                grpc.aio.secure_channel(t.authority, self.config.credentials(), options=CHANNEL_OPTIONS)
                if t.tls
                else grpc.aio.insecure_channel(t.authority, options=CHANNEL_OPTIONS)
            )
        if service not in self._stubs:
            self._stubs[service] = _STUBS[service](self._channel)
        return self._stubs[service]

    async def call(self, rpc: Rpc, token: Any = None) -> Any:
        """Async version of :meth:`SyncChannel.call`; ``token`` is an async callable."""
        attempt, relogged, used, rejected = 0, False, "", None
        while True:
            attempt += 1
            if rpc.authenticated:
                used = await token(rejected)
            metadata = ((TOKEN_METADATA_KEY, used),) if rpc.authenticated else ()
            try:
                method = getattr(self._stub(rpc.service), rpc.method)
                return await method(rpc.request, timeout=self.config.timeout_s, metadata=metadata)
            except grpc.RpcError as err:
                action = decide(rpc, err, attempt, relogged, self.config.retry)
                if action == "raise":
                    raise failure(rpc, err, attempt, self.config.target) from None
                if action == "relogin":
                    relogged, rejected, attempt = True, used, 0
                    log.info("%s: token rejected, logging in again", rpc.method)
                    continue
                delay = self.config.retry.backoff(attempt)
                log.debug("%s failed with %s, retry %d in %.2fs", rpc.method, err.code().name, attempt, delay)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._channel is not None and not loop_changed("this client's channel", self._loop):
            await self._channel.close(None)
        self._channel, self._stubs, self._loop = None, {}, None
