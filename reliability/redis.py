"""A throw-away Redis on a free loopback port: the CeleryExecutor's broker.

``redis-server`` (Debian's package; ``scripts/reliability_deps.sh`` installs it) runs in the
foreground as a :class:`~reliability.procs.Service`, so it is stopped by its pid (SIGTERM). It
binds 127.0.0.1 only, keeps nothing on disk (no RDB snapshots, no AOF) and has no Unix socket:
the broker's queues live for one run. Debian's own redis service is not used.
"""

from __future__ import annotations

import shutil
import signal
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path

from reliability.procs import Service, free_port, wait_until

READY_TIMEOUT_S = 30.0


def find_bin() -> str:
    """``redis-server`` from PATH."""
    found = shutil.which("redis-server")
    if not found:
        raise FileNotFoundError("redis-server not found: install it (Debian: apt-get install -y redis-server)")
    return found


class RedisServer:
    """``redis-server`` on ``127.0.0.1:<free port>``, without persistence; :meth:`stop` removes its directory."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self._env = dict(env)
        self._log_dir = log_dir
        self._dir = Path(tempfile.mkdtemp(prefix="puddle-redis-"))
        self.port = free_port()
        self.service: Service | None = None

    @property
    def url(self) -> str:
        """The broker URL Celery uses (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server; returns self once it answers PING."""
        settings = {
            "bind": "127.0.0.1", "port": str(self.port), "protected-mode": "yes", "unixsocket": "",
            "save": "", "appendonly": "no", "dir": str(self._dir), "daemonize": "no", "logfile": "",
        }
        argv = [find_bin()]
        for key, value in settings.items():
            argv += [f"--{key}", value]
        self.service = Service.spawn("redis", argv, env=self._env, log_path=self._log_dir / "redis.log")
        wait_until("Redis to answer PING", self._ping, READY_TIMEOUT_S, 0.1,
                   lambda: self.service.tail() if self.service else "")
        return self

    def _ping(self) -> bool | None:
        if self.service is not None and not self.service.running():
            raise RuntimeError(f"redis-server exited {self.service.proc.returncode}:\n{self.service.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return True if sock.recv(64).startswith(b"+PONG") else None
        except OSError:
            return None

    def stop(self) -> list[str]:
        """Stop by pid (SIGTERM), then remove its directory; returns what was SIGKILLed."""
        killed: list[str] = []
        if self.service is not None:
            killed = self.service.stop(signal.SIGTERM, grace=10)
            self.service = None
        shutil.rmtree(self._dir, ignore_errors=True)
        return killed
