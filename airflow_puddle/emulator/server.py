"""The emulator's gRPC server: servicers, auth and fault interceptors, health and reflection."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from airflow_puddle._proto.puddle.v2 import admin_service_pb2, auth_service_pb2
from airflow_puddle.client.errors import AuthError
from airflow_puddle.emulator.faults import FaultRegistry
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


class FaultInterceptor(grpc.ServerInterceptor):
    """Delays, then fails, Puddle calls as the :class:`FaultRegistry` says (not the admin service)."""

    def __init__(self, faults: FaultRegistry) -> None:
        self._faults = faults

    def intercept_service(
        self, continuation: _HandlerLookup, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        path = handler_call_details.method
        if handler is None or handler.unary_unary is None:
            return handler
        if not path.startswith(_PUDDLE_PREFIX) or path.startswith(_ADMIN_PREFIX):
            return handler
        method = path.rsplit("/", 1)[-1]
        faults = self._faults

        def wrap(inner: _Behavior) -> _Behavior:
            def behavior(request: Any, context: grpc.ServicerContext) -> Any:
                # Runs on a worker thread, so sleeping here delays only this call.
                delay = faults.latency(method)
                if delay > 0:
                    time.sleep(delay)
                fault = faults.check(method)
                if fault is not None:
                    log.info("injecting %s into %s", fault[0].name, method)
                    context.abort(*fault)
                return inner(request, context)

            return behavior

        return _wrap_unary(handler, wrap)


class AuthInterceptor(grpc.ServerInterceptor):
    """The one token check per call: rejects calls without a valid ``x-puddle-token`` (except to auth,
    admin, health and reflection) and runs the servicer :func:`acting_as` the token's user."""

    def __init__(self, backend: PuddleBackend) -> None:
        self._backend = backend

    def intercept_service(
        self, continuation: _HandlerLookup, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_NO_TOKEN_PREFIXES):
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
                except AuthError as err:
                    context.abort(err.code, err.message)
                with acting_as(user):
                    return inner(request, context)

            return behavior

        return _wrap_unary(handler, wrap)


def _format_address(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class EmulatorServer:
    """A Puddle emulator on a threaded gRPC server, backed by a SQLite file.

    ``port=0`` picks a free port; :meth:`start` returns the address to give
    clients. Usable as a context manager (starts on enter, stops on exit).
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
        max_workers: int = 16,
        tls: tuple[bytes, bytes] | None = None,
    ) -> None:
        self._tls = tls
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._max_workers = max_workers
        self._faults = faults if faults is not None else FaultRegistry()
        self._backend = PuddleBackend(
            db_path,
            step_seconds=step_seconds,
            api_key_id=api_key_id,
            api_secret_key=api_secret_key,
            cu_capacity=cu_capacity,
        )
        self._server: grpc.Server | None = None
        self._health: health.HealthServicer | None = None

    @property
    def backend(self) -> PuddleBackend:
        """The state model behind the servicers."""
        return self._backend

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
        address = _format_address(self._host, self.port)
        return address.replace("http://", "https://", 1) if self._tls else address

    def start(self) -> str:
        """Bind, start serving, and return :attr:`address`."""
        if self._server is not None:
            raise RuntimeError("the emulator server is already started")
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="puddle-emulator"),
            interceptors=[FaultInterceptor(self._faults), AuthInterceptor(self._backend)],
        )
        services = add_servicers(server, self._backend, self._faults)
        health_servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        for name in ("", *services):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(
            [*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        bind = f"{self._host}:{self._requested_port}"
        if self._tls:
            cert_chain, private_key = self._tls
            credentials = grpc.ssl_server_credentials([(private_key, cert_chain)])
            port = server.add_secure_port(bind, credentials)
        else:
            port = server.add_insecure_port(bind)
        if port == 0:
            raise RuntimeError(f"could not bind {self._host}:{self._requested_port}")
        server.start()
        self._server, self._health, self._port = server, health_servicer, port
        log.info("puddle emulator serving on %s", self.address)
        return self.address

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds) and close the database."""
        if self._server is not None:
            if self._health is not None:
                self._health.enter_graceful_shutdown()
            self._server.stop(grace).wait()
            self._server = None
        self._backend.close()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
