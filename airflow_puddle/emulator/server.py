"""The emulator's gRPC server: servicers, auth and fault interceptors, health and reflection.

gRPC core queues the calls a server has received but not yet handed to a worker, and past
1,000 queued calls (its default soft limit; 3,000 hard) it cancels new ones at random. The
sync server hands calls over one at a time, so a burst of 3,000 logins from one client
ended with hundreds CANCELLED. :data:`SERVER_OPTIONS` raises those limits: a burst waits in
the queue (each call within its own deadline) instead.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from airflow_puddle._proto.puddle.v2 import admin_service_pb2, auth_service_pb2
from airflow_puddle.domain.errors import PuddleError
from airflow_puddle.emulator.faults import FaultRegistry
from airflow_puddle.emulator.h2o3 import RuntimeMissing, find_runtime, reap
from airflow_puddle.emulator.limits import (
    EmulatorConfigError,
    bind_target,
    format_address,
    setting_host,
    setting_int,
    setting_port,
    setting_seconds,
    setting_tls,
)
from airflow_puddle.emulator.node_systems import NodeRules, node_dir
from airflow_puddle.emulator.nodes import DEFAULT_BOOT_TIMEOUT_S, NodeManager, default_max_nodes
from airflow_puddle.emulator.pool import HandlerPool
from airflow_puddle.emulator.servicers import TOKEN_METADATA_KEY, acting_as, add_servicers, token_from_metadata
from airflow_puddle.emulator.state import PuddleBackend

log = logging.getLogger(__name__)

DEFAULT_API_KEY_ID = "demo-key-id"
DEFAULT_API_SECRET_KEY = "demo-secret-key"  # a well-known demo value, not a secret
DEFAULT_PORT = 50051

_ADMIN_PREFIX = f"/{admin_service_pb2.DESCRIPTOR.services_by_name['EmulatorAdminService'].full_name}/"
_AUTH_PREFIX = f"/{auth_service_pb2.DESCRIPTOR.services_by_name['AuthService'].full_name}/"
_PUDDLE_PREFIX = f"/{admin_service_pb2.DESCRIPTOR.package}."
# Services callable without a token.
_NO_TOKEN_PREFIXES = (_AUTH_PREFIX, _ADMIN_PREFIX, f"/{health.SERVICE_NAME}/", "/grpc.reflection.")

SERVER_OPTIONS = (
    ("grpc.server.max_pending_requests", 100_000),
    ("grpc.server.max_pending_requests_hard_limit", 100_000),
    ("grpc.server_max_unrequested_time_in_server", 300),
    ("grpc.so_reuseport", 0),
)
"""gRPC server options: room for a burst of queued calls (see the module docstring), and no
``SO_REUSEPORT``, with which a second emulator on a port in use would start and take half the calls."""
MAX_HANDLER_THREADS = 64
"""Threads the handlers may use at most: the runners, and a stand-in for each call sleeping in injected latency."""
WATCH_INTERVAL_S = 1.0
"""How often a running server checks that its database file is still there."""

_Behavior = Callable[[Any, grpc.ServicerContext], Any]
_HandlerLookup = Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None]


def _wrap_unary(handler: grpc.RpcMethodHandler, wrap: Callable[[_Behavior], _Behavior]) -> grpc.RpcMethodHandler:
    inner = handler.unary_unary
    assert inner is not None
    return grpc.unary_unary_rpc_method_handler(
        wrap(inner),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _WrappingInterceptor(grpc.ServerInterceptor):
    """An interceptor that wraps each method's handler once: later calls of that method reuse it."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler | None] = {}

    def intercept_service(
        self, continuation: _HandlerLookup, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        path = handler_call_details.method
        if path not in self._wrapped:
            self._wrapped[path] = self.wrap(continuation(handler_call_details), path)
        return self._wrapped[path]

    def wrap(self, handler: grpc.RpcMethodHandler | None, path: str) -> grpc.RpcMethodHandler | None:
        """The handler to serve ``path`` with (``handler`` itself to leave it alone)."""
        raise NotImplementedError


class FaultInterceptor(_WrappingInterceptor):
    """Delays, then fails, Puddle calls as the :class:`FaultRegistry` says (not the admin service).

    A delay ends early, with ``UNAVAILABLE``, once ``stopping`` is set: a shutdown never waits for it.
    """

    def __init__(self, faults: FaultRegistry, stopping: threading.Event, pool: HandlerPool) -> None:
        super().__init__()
        self._faults = faults
        self._stopping = stopping
        self._pool = pool

    def wrap(self, handler: grpc.RpcMethodHandler | None, path: str) -> grpc.RpcMethodHandler | None:
        if handler is None or handler.unary_unary is None:
            return handler
        if not path.startswith(_PUDDLE_PREFIX) or path.startswith(_ADMIN_PREFIX):
            return handler
        method = path.rsplit("/", 1)[-1]
        faults, stopping, pool = self._faults, self._stopping, self._pool

        def wrap(inner: _Behavior) -> _Behavior:
            def behavior(request: Any, context: grpc.ServicerContext) -> Any:
                # Runs on one of the pool's few runners: it lends its place while it sleeps.
                delay = faults.latency(method)
                if delay > 0:
                    with pool.lend():
                        shutting_down = stopping.wait(delay)
                    if shutting_down:
                        context.abort(grpc.StatusCode.UNAVAILABLE, "the emulator is shutting down")
                fault = faults.check(method)
                if fault is not None:
                    log.info("injecting %s into %s", fault[0].name, method)
                    context.abort(*fault)
                response = inner(request, context)  # a refused call raises (context.abort) and is not counted
                faults.answered(method)
                return response

            return behavior

        return _wrap_unary(handler, wrap)


class AuthInterceptor(_WrappingInterceptor):
    """The one token check per call: rejects calls without a valid ``x-puddle-token`` (except to auth,
    admin, health and reflection) and runs the servicer :func:`acting_as` the token's user."""

    def __init__(self, backend: PuddleBackend) -> None:
        super().__init__()
        self._backend = backend

    def wrap(self, handler: grpc.RpcMethodHandler | None, path: str) -> grpc.RpcMethodHandler | None:
        if handler is None or path.startswith(_NO_TOKEN_PREFIXES):
            return handler
        if handler.unary_unary is None:  # every token-protected Puddle RPC is unary
            return handler
        backend = self._backend

        def wrap(inner: _Behavior) -> _Behavior:
            def behavior(request: Any, context: grpc.ServicerContext) -> Any:
                token = token_from_metadata(context.invocation_metadata())
                if not token:
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing {TOKEN_METADATA_KEY} metadata")
                try:
                    user = backend.check_token(token)
                except PuddleError as err:  # an unknown token, or the database gone
                    context.abort(err.code, err.message)
                with acting_as(user):
                    return inner(request, context)

            return behavior

        return _wrap_unary(handler, wrap)


H2O3_MODES = ("real", "simulated")


def h2o3_nodes(backend: PuddleBackend, mode: str, data_dir: Path, max_nodes: int | None,
               boot_timeout: float) -> NodeRules | None:
    """Real H2O-3 nodes for ``backend`` (mode ``real``), or None (``simulated``); a missing runtime is an
    :class:`EmulatorConfigError` naming ``h2o3`` and what to install."""
    if mode not in H2O3_MODES:
        raise EmulatorConfigError("h2o3", f"must be one of {', '.join(H2O3_MODES)}, got {mode!r}")
    if mode == "simulated":
        return None
    try:
        runtime = find_runtime()
    except RuntimeMissing as err:
        raise EmulatorConfigError("h2o3", f"real H2O-3 nodes cannot run: {err}") from None
    cap = default_max_nodes() if max_nodes is None else setting_int("h2o3_max_nodes", max_nodes, minimum=1,
                                                                     maximum=256)
    manager = NodeManager(runtime, data_dir, max_nodes=cap,
                          boot_timeout=setting_seconds("h2o3_boot_timeout", boot_timeout))
    return NodeRules(backend, manager)


def _bind_problem(host: str, port: int) -> str | None:
    """Why no address of ``host`` can be bound at ``port`` (a port in use, say), or None."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as err:
        return f"cannot resolve {host!r} ({err.strerror})"
    problem = "no address"
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does: TIME_WAIT is no conflict
            try:
                probe.bind(address)
            except OSError as err:
                problem = err.strerror or str(err)
            else:
                return None
    return problem


class EmulatorServer:
    """A Puddle emulator on a threaded gRPC server, backed by a SQLite file.

    ``port=0`` picks a free port; :meth:`start` returns the address to give
    clients (an IPv6 ``host`` such as ``::1`` comes back in brackets). Usable as a
    context manager (starts on enter, stops on exit). Bad arguments, and a database
    that cannot be used, raise :class:`~airflow_puddle.emulator.limits.EmulatorConfigError`
    (a ``ValueError``) naming the argument, before anything is bound. While serving, a
    thread checks every :data:`WATCH_INTERVAL_S` that the database file is still there
    and marks the server NOT_SERVING in its health service when it is not.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str,
        api_key_id: str = DEFAULT_API_KEY_ID,
        api_secret_key: str = DEFAULT_API_SECRET_KEY,
        step_seconds: float = 2.0,
        cu_capacity: int = 64,
        faults: FaultRegistry | None = None,
        runners: int = 4,
        tls: tuple[bytes, bytes] | None = None,
        h2o3: str = "simulated",
        h2o3_max_nodes: int | None = None,
        h2o3_boot_timeout: float = DEFAULT_BOOT_TIMEOUT_S,
    ) -> None:
        self._tls = setting_tls(tls)
        self._host = setting_host(host)
        self._requested_port = setting_port(port)
        self._port: int | None = None
        self._runners = setting_int("runners", runners, minimum=1, maximum=MAX_HANDLER_THREADS)
        self._faults = faults if faults is not None else FaultRegistry()
        self._backend = PuddleBackend(
            db_path,
            step_seconds=step_seconds,
            api_key_id=api_key_id,
            api_secret_key=api_secret_key,
            cu_capacity=cu_capacity,
        )
        self._node_dir = node_dir(db_path)
        try:
            self._nodes = h2o3_nodes(self._backend, h2o3, self._node_dir, h2o3_max_nodes, h2o3_boot_timeout)
        except EmulatorConfigError:
            self._backend.close()
            raise
        self._server: grpc.Server | None = None
        self._health: health.HealthServicer | None = None
        self._services: list[str] = []
        self._stopping = threading.Event()

    @property
    def backend(self) -> PuddleBackend:
        """The state model behind the servicers."""
        return self._backend

    @property
    def nodes(self) -> NodeRules | None:
        """The real H2O-3 nodes' rules and manager (``nodes.manager``); None when H2O-3 is simulated."""
        return self._nodes

    @property
    def faults(self) -> FaultRegistry:
        """The fault and latency rules the server applies."""
        return self._faults

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._port is None:
            raise RuntimeError("the emulator server is not started")
        return self._port

    @property
    def address(self) -> str:
        """``http://HOST:PORT`` of the running server (``https://`` when serving TLS)."""
        return format_address(self._host, self.port, tls=self._tls is not None)

    def start(self) -> str:
        """Bind, start serving, and return :attr:`address`; ``EmulatorConfigError`` when the port cannot be bound."""
        if self._server is not None:
            raise RuntimeError("the emulator server is already started")
        pool = HandlerPool(self._runners, MAX_HANDLER_THREADS)
        server = grpc.server(
            cast(futures.ThreadPoolExecutor, pool),  # grpc only calls submit()
            interceptors=[FaultInterceptor(self._faults, self._stopping, pool), AuthInterceptor(self._backend)],
            options=SERVER_OPTIONS,
        )
        services = add_servicers(server, self._backend, self._faults)
        health_servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        for name in ("", *services):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(
            [*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        port = self._bind(server)
        reaped = sum(reap(home) for home in sorted(self._node_dir.glob("*")) if home.is_dir())
        if reaped:
            log.info("stopped %d H2O-3 nodes a previous emulator left running", reaped)
        if self._nodes is not None:
            self._nodes.manager.forget(self._nodes.live_ids)
            rebooting = self._nodes.reboot_started()
            if rebooting:
                log.info("rebooting %d started H2O-3 systems (their nodes did not outlive the last run)", rebooting)
            self._nodes.manager.start(self._nodes)
        server.start()
        self._server, self._health, self._port, self._services = server, health_servicer, port, ["", *services]
        threading.Thread(target=self._watch, name="puddle-emulator-db-watch", daemon=True).start()
        log.info("puddle emulator serving on %s", self.address)
        return self.address

    def _bind(self, server: grpc.Server) -> int:
        target = bind_target(self._host, self._requested_port)
        problem = _bind_problem(self._host, self._requested_port)
        if problem is not None:  # said before gRPC would log its own error about it
            raise EmulatorConfigError("port", f"cannot bind {target}: {problem}")
        try:
            if self._tls:
                cert_chain, private_key = self._tls
                credentials = grpc.ssl_server_credentials([(private_key, cert_chain)])
                port = server.add_secure_port(target, credentials)
            else:
                port = server.add_insecure_port(target)
        except RuntimeError:  # grpcio raises where older versions returned 0
            port = 0
        if port == 0:
            raise EmulatorConfigError("port", f"cannot bind {target}: in use, or not an address of this machine")
        return port

    def _watch(self) -> None:
        """Mark every service NOT_SERVING once the database file is gone (the store says why, once)."""
        while not self._stopping.wait(WATCH_INTERVAL_S):
            problem = self._backend.store.watch.problem()
            if problem is not None:
                self._backend.store.watch.report(problem)
                health_servicer = self._health
                if health_servicer is not None:
                    for name in self._services:
                        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
                return

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds; injected delays end now) and close the database."""
        self._stopping.set()
        if self._server is not None:
            if self._health is not None:
                self._health.enter_graceful_shutdown()
            self._server.stop(grace).wait()
            self._server = None
        if self._nodes is not None:
            self._nodes.manager.stop()
        self._backend.close()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
