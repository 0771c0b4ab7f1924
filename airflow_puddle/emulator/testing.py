"""For tests and scripts that drive an emulator: its admin client and an Airflow connection to it.

:class:`EmulatorAdmin` is the fault-injection surface (fail the next calls, add latency, fail a
system's next transition, expire tokens, advance the clock) over the emulator's admin gRPC
service, which takes no token. :func:`connection_json` is the ``AIRFLOW_CONN_*`` value of a
``puddle`` connection to an emulator with the demo key pair.
"""

from __future__ import annotations

import json

import grpc

from airflow_puddle._proto.puddle.v2 import admin_service_pb2, admin_service_pb2_grpc
from airflow_puddle.emulator.server import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

__all__ = ["EmulatorAdmin", "connection_json"]


class EmulatorAdmin:
    """The emulator's fault-injection surface, over its admin gRPC service."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.insecure_channel(address.removeprefix("http://"))
        self._stub = admin_service_pb2_grpc.EmulatorAdminServiceStub(self._channel)

    def inject_fault(self, method: str, code: str, count: int, message: str = "injected") -> None:
        """Fail the next ``count`` calls of ``method`` (``GetSystem``, ...) with status ``code`` (``UNAVAILABLE``)."""
        self._stub.InjectFault(
            admin_service_pb2.InjectFaultRequest(method=method, code=code, count=count, message=message)
        )

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay every call of ``method`` by ``seconds`` (0 removes the delay)."""
        self._stub.SetLatency(admin_service_pb2.SetLatencyRequest(method=method, seconds=seconds))

    def fail_next_transition(self, system_id: str, config_upload: bool = False) -> None:
        """Make the system's next transition end in Failed (with ``config_upload``: its next upload)."""
        self._stub.FailNextTransition(
            admin_service_pb2.FailNextTransitionRequest(system_id=system_id, config_upload=config_upload)
        )

    def expire_tokens(self) -> str:
        """Reject every token issued so far; returns the emulator's answer (``expired N token(s)``)."""
        return str(self._stub.ExpireTokens(admin_service_pb2.ExpireTokensRequest()).detail)

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward (transitions and idle timeouts fall due)."""
        self._stub.AdvanceClock(admin_service_pb2.AdvanceClockRequest(seconds=seconds))

    def clear_faults(self) -> None:
        """Drop every injected fault and latency."""
        self._stub.ClearFaults(admin_service_pb2.ClearFaultsRequest())

    def call_counts(self) -> dict[str, int]:
        """How many calls of each Puddle RPC (``RestartSystem``, ...) the emulator answered OK since it started."""
        return dict(self._stub.CallCounts(admin_service_pb2.CallCountsRequest()).answered)

    def close(self) -> None:
        """Close the admin channel."""
        self._channel.close()


def connection_json(address: str, secret: str = DEFAULT_API_SECRET_KEY, **extra: object) -> str:
    """An ``AIRFLOW_CONN_*`` value for a puddle connection to ``address`` (``http://host:port``)."""
    host, _, port = address.rpartition(":")
    # No "cloud": "aws" (the default): Airflow warns about any extra string under 5 characters.
    conn = {"conn_type": "puddle", "host": host, "port": int(port), "login": DEFAULT_API_KEY_ID, "password": secret}
    return json.dumps({**conn, "extra": extra} if extra else conn)
