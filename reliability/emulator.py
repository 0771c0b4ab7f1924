"""The Puddle emulator as a process of its own (so a scenario can kill and restart it), and its admin service.

:class:`EmulatorProcess` runs ``puddle-emulator`` on a fixed loopback port with its SQLite
file; :meth:`~EmulatorProcess.kill` is a SIGKILL, :meth:`~EmulatorProcess.start` again brings it
back on the same port and state. :class:`EmulatorAdmin` is the fault-injection client (the
tests' ``admin`` fixture uses it too).
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import grpc

from airflow_puddle._proto.puddle.v2 import admin_service_pb2, admin_service_pb2_grpc
from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from reliability.procs import Service, free_port, wait_until

READY_TIMEOUT_S = 60.0


class EmulatorAdmin:
    """The emulator's fault-injection surface, over its admin gRPC service."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.insecure_channel(address.removeprefix("http://"))
        self._stub = admin_service_pb2_grpc.EmulatorAdminServiceStub(self._channel)

    def inject_fault(self, method: str, code: str, count: int, message: str = "injected") -> None:
        self._stub.InjectFault(
            admin_service_pb2.InjectFaultRequest(method=method, code=code, count=count, message=message)
        )

    def set_latency(self, method: str, seconds: float) -> None:
        self._stub.SetLatency(admin_service_pb2.SetLatencyRequest(method=method, seconds=seconds))

    def fail_next_transition(self, system_id: str, config_upload: bool = False) -> None:
        self._stub.FailNextTransition(
            admin_service_pb2.FailNextTransitionRequest(system_id=system_id, config_upload=config_upload)
        )

    def expire_tokens(self) -> str:
        """Reject every token issued so far; returns the emulator's answer (``expired N token(s)``)."""
        return str(self._stub.ExpireTokens(admin_service_pb2.ExpireTokensRequest()).detail)

    def advance_clock(self, seconds: float) -> None:
        self._stub.AdvanceClock(admin_service_pb2.AdvanceClockRequest(seconds=seconds))

    def clear_faults(self) -> None:
        self._stub.ClearFaults(admin_service_pb2.ClearFaultsRequest())

    def close(self) -> None:
        self._channel.close()


def connection_json(address: str, secret: str = DEFAULT_API_SECRET_KEY, **extra: object) -> str:
    """An ``AIRFLOW_CONN_*`` value for a puddle connection to ``address`` (``http://host:port``)."""
    host, _, port = address.rpartition(":")
    # No "cloud": "aws" (the default): Airflow warns about any extra string under 5 characters.
    conn = {"conn_type": "puddle", "host": host, "port": int(port), "login": DEFAULT_API_KEY_ID, "password": secret}
    return json.dumps({**conn, "extra": extra} if extra else conn)


class EmulatorProcess:
    """``puddle-emulator`` on ``127.0.0.1:<port>`` with state in ``db``; output to ``log_path``."""

    def __init__(self, name: str, *, db: Path, log_path: Path, env: Mapping[str, str], secret: str,
                 step_seconds: float, cu_capacity: int = 64, h2o3: str = "simulated") -> None:
        self.name = name
        self.h2o3 = h2o3
        self.port = free_port()
        self.db = db
        self.secret = secret
        self._log_path = log_path
        self._env = dict(env)
        self._step_seconds = step_seconds
        self._cu_capacity = cu_capacity
        self.service: Service | None = None
        self._starts = 0

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self, **extra: object) -> str:
        """The ``AIRFLOW_CONN_*`` value that reaches this emulator."""
        return connection_json(self.address, self.secret, **extra)

    def start(self) -> EmulatorProcess:
        """Start (or start again, on the same port and database) and wait for its ready line."""
        self._starts += 1
        argv = [str(Path(sys.executable).with_name("puddle-emulator")), "--host", "127.0.0.1",
                "--port", str(self.port), "--db", str(self.db), "--step-seconds", str(self._step_seconds),
                "--api-secret-key", self.secret, "--cu-capacity", str(self._cu_capacity), "--h2o3", self.h2o3]
        self.service = Service.spawn(self.name, argv, env=self._env, log_path=self._log_path)
        service, ready = self.service, f"puddle-emulator listening on {self.address}"

        def listening() -> bool | None:
            if not service.running():
                raise RuntimeError(f"{self.name} exited {service.proc.returncode}:\n{service.tail()}")
            return True if service.tail(200).count(ready) >= self._starts else None

        wait_until(f"{self.name} to listen", listening, READY_TIMEOUT_S, 0.1, service.tail)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, in-flight calls cut."""
        if self.service is not None:
            self.service.kill_group()

    def stop(self) -> list[str]:
        """SIGTERM by pid (the emulator shuts down cleanly); returns what had to be SIGKILLed."""
        killed = self.service.stop(signal.SIGTERM) if self.service is not None and self.service.running() else []
        self.service = None
        return killed

    def admin(self) -> EmulatorAdmin:
        return EmulatorAdmin(self.address)

    def client(self) -> tuple[Authorizer, SystemsClient]:
        """An authorizer (close it) and a systems client on this emulator."""
        auth = Authorizer(self.address, DEFAULT_API_KEY_ID, self.secret)
        return auth, SystemsClient(CLOUD_AWS, authorizer=auth)
