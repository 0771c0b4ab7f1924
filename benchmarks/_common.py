"""What the benchmarks share: the emulator in its own process, target lines, percentiles."""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import psutil

from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

HERE = Path(__file__).resolve().parent


def target(name: str, figure: str, goal: str, holds: bool) -> bool:
    """Print the one line ``make bench`` collects: ``target NAME: FIGURE (goal GOAL) holds|misses``."""
    print(f"target {name}: {figure} (goal {goal}) {'holds' if holds else 'misses'}", flush=True)
    return holds


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def raise_fd_limit() -> None:
    """Allow as many open files as the hard limit does: thousands of waits hold thousands of sockets."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connection_json(address: str) -> str:
    """An ``AIRFLOW_CONN_*`` value for a puddle connection to the emulator at ``address``."""
    host, _, port = address.rpartition(":")
    return json.dumps({"conn_type": "puddle", "host": host, "port": int(port), "login": DEFAULT_API_KEY_ID,
                       "password": DEFAULT_API_SECRET_KEY})


class Emulator:
    """The emulator served by ``_emulator_proc.py`` in its own process, and its control pipe.

    Use as a context manager; :meth:`call` sends one command (see that module) and returns its reply.
    """

    def __init__(self, *, step_seconds: float) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="puddle-bench-")
        self.log_path = Path(self._tmp.name) / "emulator.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_emulator_proc.py"), "--db", str(Path(self._tmp.name) / "bench.sqlite"),
             "--step-seconds", str(step_seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first:
            raise RuntimeError(f"the emulator did not start:\n{self.log_path.read_text()[-2000:]}")
        self.address: str = json.loads(first)["address"]
        self.port = int(self.address.rsplit(":", 1)[1])
        self._ps = psutil.Process(self.proc.pid)

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """Send one command; its JSON reply."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the emulator died:\n{self.log_path.read_text()[-2000:]}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def connections(self) -> int:
        """Established TCP connections to the emulator's port (each gRPC subchannel holds one)."""
        return sum(1 for c in self._ps.net_connections("tcp")
                   if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == self.port)

    def cpu_s(self) -> float:
        """CPU seconds the emulator process has used so far."""
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self._tmp.cleanup()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
