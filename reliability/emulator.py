"""The Puddle emulator as a process of its own, so a scenario can kill and restart it.

:class:`EmulatorProcess` runs ``puddle-emulator`` on a fixed loopback port with its SQLite
file; :meth:`~EmulatorProcess.kill` is a SIGKILL, :meth:`~EmulatorProcess.start` again brings it
back on the same port and state. Its admin client and connection value come from
:mod:`airflow_puddle.emulator.testing`, as the tests' do.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.emulator import DEFAULT_API_KEY_ID
from airflow_puddle.emulator.testing import EmulatorAdmin, connection_json
from reliability.procs import Service, free_port, wait_until

READY_TIMEOUT_S = 60.0


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
        self.step_seconds = step_seconds
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
                "--port", str(self.port), "--db", str(self.db), "--step-seconds", str(self.step_seconds),
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
