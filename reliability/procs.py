"""Processes the harness starts: each in its own session, logged to a file, stopped by pid.

Every process gets the environment variable :data:`RUN_MARKER` set to the run's id, so
:func:`leftovers` finds whatever survived (a task runner reparented away from its tree, say)
and :func:`sweep` ends it. Nothing is found by name.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")

RUN_MARKER = "PUDDLE_RELIABILITY_RUN"
STOP_GRACE_S = 20.0


class NotReady(TimeoutError):
    """What :func:`wait_until` raises when its check never passed in time."""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.25,
               diagnostics: Callable[[], str] = lambda: "") -> T:
    """Call ``check`` until it returns something other than None; raise :class:`NotReady` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise NotReady(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnostics()}")
        time.sleep(interval)


def describe(p: psutil.Process) -> str:
    """``pid command`` of a process, short."""
    try:
        return f"{p.pid} {' '.join(p.cmdline()).strip()[:100]}"
    except psutil.Error:
        return f"{p.pid} (gone)"


def alive(procs: Sequence[psutil.Process]) -> list[psutil.Process]:
    """The processes of ``procs`` still running (zombies count as gone)."""
    out = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


def _run_as(user: str | None) -> dict[str, object]:
    """Popen arguments that drop root to ``user`` (nothing when no user is asked or we are not root)."""
    if user is None or os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@dataclass
class Service:
    """One started process, the leader of its own session; its output goes to ``log_path``."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(repr=False)

    @classmethod
    def spawn(cls, name: str, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path,
              cwd: Path | None = None, user: str | None = None) -> Service:
        """Start ``argv`` in a new session (its process group has its pid), output appended to ``log_path``."""
        if RUN_MARKER not in env:
            raise ValueError(f"{name}: the environment has no {RUN_MARKER}, so a leftover could not be found")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, **_run_as(user),  # type: ignore[call-overload]
            )
        return cls(name=name, proc=proc, log_path=log_path, argv=list(argv))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        """True while the leader has not exited."""
        return self.proc.poll() is None

    def tail(self, lines: int = 60) -> str:
        """The end of the process's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill_group(self) -> None:
        """SIGKILL the whole process group at once (the crash a scenario injects), and reap the leader."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, sig: signal.Signals = signal.SIGTERM, grace: float = STOP_GRACE_S) -> list[str]:
        """Send ``sig`` to the leader, wait ``grace`` s for it and its whole tree, SIGKILL what is left.

        The tree is snapshotted first: children in process groups of their own (Airflow's task
        runners) are found too. Returns what had to be SIGKILLed.
        """
        try:
            tree = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        deadline = time.monotonic() + grace
        while (self.running() or alive(tree)) and time.monotonic() < deadline:
            time.sleep(0.2)
        killed = [describe(p) for p in alive(tree)]
        for p in alive(tree):
            with contextlib.suppress(psutil.Error):
                p.kill()
        if self.running():
            killed.append(f"{self.proc.pid} {self.name}")
            self.proc.kill()
        self.proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # a group id is not reused while the group has members
        return killed


def leftovers(run_id: str) -> list[psutil.Process]:
    """Every running process (but this one) whose environment carries ``RUN_MARKER=run_id``."""
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.pid != os.getpid() and p.environ().get(RUN_MARKER) == run_id:
                found.append(p)
    return alive(found)


def tree(pids: Iterable[int]) -> list[psutil.Process]:
    """The processes ``pids`` and all their descendants that still run."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                found[p.pid] = p
    return alive(list(found.values()))


def listeners(procs: Sequence[psutil.Process]) -> list[tuple[str, str, bool]]:
    """(process, ``address:port``, on loopback?) of every listening TCP socket of ``procs``.

    Found by pid, not by the run marker: a process that retitles itself (the api-server's
    uvicorn worker) may overwrite the environment psutil reads.
    """
    names = {p.pid: describe(p) for p in procs}
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in names and conn.laddr:
            ip = ipaddress.ip_address(conn.laddr.ip.split("%")[0])
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            found.append((names[conn.pid], f"{conn.laddr.ip}:{conn.laddr.port}", (mapped or ip).is_loopback))
    return found


def bound(ports: Iterable[int]) -> list[int]:
    """Which of ``ports`` something still listens on."""
    wanted = set(ports)
    return sorted({c.laddr.port for c in psutil.net_connections(kind="tcp")
                   if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in wanted})


def sweep(run_id: str) -> list[str]:
    """SIGKILL every leftover of the run; returns what was killed."""
    found = leftovers(run_id)
    killed = [describe(p) for p in found]
    for p in found:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(found, timeout=10)
    return killed
