"""Real H2O-3 systems: one node per H2O-3 system that is Started or on its way there.

The :class:`NodeManager` keeps the running nodes in line with the systems. Its thread
reads the H2O-3 systems, boots a node for each one that is being created, started or
restarted (a restart boots a new node), and stops the nodes of systems that stop, fail
or are terminated (deleting their files, except a stopped system's logs). While a node
boots it checks its health; when the node answers healthy it tells the backend, which
lets the system's transition finish (:meth:`ready_at` is the lifecycle's gate). A node that
exits, or is not healthy within ``boot_timeout``, fails its system with the node's last
output line as the reason; so does a node of a Started system that dies.

Lock order: the backend's lock, then this manager's. The manager never calls the backend
while it holds its own lock.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from airflow_puddle.domain.lifecycle import BOOTING_PHASES
from airflow_puddle.domain.products import PRODUCT_H2O3
from airflow_puddle.domain.statuses import SystemStatuses
from airflow_puddle.emulator.h2o3 import H2O3Runtime, NodeProcess, free_port_pair
from airflow_puddle.emulator.rows import SystemRow

log = logging.getLogger(__name__)

_STARTED = SystemStatuses.SYSTEM_STATUS_STARTED.code
_STOPPED = SystemStatuses.SYSTEM_STATUS_STOPPED.code
NODE_HEAP_MB = 1024
"""Each node's Java heap (``-Xmx``)."""
NODE_MEMORY_MB = 1280
"""What a node may use at most (heap and the JVM's own), for the default cap."""
DEFAULT_BOOT_TIMEOUT_S = 120.0
"""How long a node may take to answer healthy before its system fails."""


def default_max_nodes() -> int:
    """Half of this machine's memory in nodes of :data:`NODE_MEMORY_MB`, between 1 and 32."""
    try:
        with open("/proc/meminfo") as f:
            total_kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    except (OSError, StopIteration, ValueError):
        return 2
    return max(1, min(32, total_kb // 1024 // 2 // NODE_MEMORY_MB))


def needs_node(s: SystemRow) -> bool:
    """Whether an H2O-3 system has (or is booting) a node: Started, or created, started or restarted."""
    return s.phase in BOOTING_PHASES or (s.phase is None and s.status == _STARTED)


class NodeBackend(Protocol):
    """What the manager asks of the emulated Puddle (each call takes the backend's lock)."""

    def now(self) -> float: ...
    def node_systems(self) -> list[SystemRow]: ...
    def node_booting(self, system_id: str, url: str) -> SystemRow | None: ...
    def node_ready(self, system_id: str, booted_for: float | None, version: str) -> None: ...
    def node_failed(self, system_id: str, booted_for: float | None, reason: str) -> None: ...


@dataclass
class _Node:
    process: NodeProcess
    booted_for: float | None  # the phase_started_at of the transition it boots for
    ready_at: float | None = None
    version: str = ""
    failed: bool = field(default=False)


class NodeManager:
    """Runs one H2O-3 node per H2O-3 system that needs one, under ``data_dir``."""

    def __init__(self, runtime: H2O3Runtime, data_dir: Path, *, max_nodes: int,
                 boot_timeout: float = DEFAULT_BOOT_TIMEOUT_S, interval: float = 0.2) -> None:
        self.runtime = runtime
        self.data_dir = data_dir
        self.max_nodes = max_nodes
        self.boot_timeout = boot_timeout
        self._interval = interval
        self._nodes: dict[str, _Node] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._backend: NodeBackend | None = None
        self.boot_seconds: dict[str, float] = {}
        """How long each system's last node took from ``java`` to healthy, by system id."""

    # ------------------------------------------------------------------ the lifecycle's gate

    def gated(self, s: SystemRow) -> bool:
        """Whether ``s``'s transition to Started waits for its node."""
        return s.product == PRODUCT_H2O3.id

    def ready_at(self, s: SystemRow) -> float | None:
        """When the node booted for ``s``'s running transition answered healthy; None until it has."""
        with self._lock:
            node = self._nodes.get(s.id)
            if node is None or node.failed or node.booted_for != s.phase_started_at:
                return None
            return node.ready_at

    # ------------------------------------------------------------------ running

    def start(self, backend: NodeBackend) -> None:
        """Start following ``backend``'s systems."""
        self._backend = backend
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._thread = threading.Thread(target=self._run, name="puddle-emulator-h2o3-nodes", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Look at the systems now (a system changed)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and every node (a stopped system's files stay for the next run)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        with self._lock:
            nodes, self._nodes = list(self._nodes.values()), {}
        threads = [threading.Thread(target=n.process.stop) for n in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def stop_now(self, system_id: str, *, keep_files: bool) -> None:
        """Stop a system's node now (a stop, terminate or fail began), so it never outlives Started."""
        self._drop(system_id, keep_files=keep_files)

    def running(self) -> dict[str, int]:
        """``{system id: JVM pid}`` of every node this manager runs."""
        with self._lock:
            return {system_id: n.process.pid for system_id, n in self._nodes.items()}

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                booting = self._step()
            except Exception:  # keep following: one bad turn must not orphan the nodes
                log.exception("H2O-3 node manager: a turn failed")
                booting = False
            self._wake.wait(self._interval if booting else 1.0)
            self._wake.clear()

    def _step(self) -> bool:
        """One turn: stop nodes no longer needed, boot missing ones, check the rest; True while any boots."""
        backend = self._backend
        assert backend is not None
        systems = {s.id: s for s in backend.node_systems()}
        with self._lock:
            nodes = dict(self._nodes)
        for system_id, node in nodes.items():
            s = systems.get(system_id)
            if s is None or not needs_node(s) or (s.phase is not None and node.booted_for != s.phase_started_at):
                self._drop(system_id, keep_files=s is not None and (s.status == _STOPPED or s.phase == "stop"))
        for s in systems.values():
            if needs_node(s) and s.id not in self._nodes and not self._stopping.is_set():
                self._boot(backend, s)
        booting = False
        with self._lock:
            nodes = dict(self._nodes)
        for system_id, node in nodes.items():
            code = node.process.exit_code()
            if code is not None:
                self._fail(backend, system_id, node, f"the H2O-3 node exited (code {code})")
            elif node.ready_at is None:
                booting = True
                self._check_boot(backend, system_id, node)
        return booting

    def _boot(self, backend: NodeBackend, s: SystemRow) -> None:
        preferred = _port_of(s.default_url)
        try:
            port = free_port_pair(preferred)
            row = backend.node_booting(s.id, f"http://127.0.0.1:{port}")
            if row is None:
                return
            process = NodeProcess(
                self.runtime, self.data_dir / s.id, name=f"puddle-{s.id[:8]}", port=port,
                username=row.username, password=row.password, max_heap_mb=NODE_HEAP_MB,
            )
        except OSError as err:
            backend.node_failed(s.id, s.phase_started_at, f"the H2O-3 node could not start: {err}")
            return
        log.info("booting an H2O-3 node for system %s on port %d (pid %d)", s.id, port, process.pid)
        with self._lock:
            self._nodes[s.id] = _Node(process, row.phase_started_at)

    def _check_boot(self, backend: NodeBackend, system_id: str, node: _Node) -> None:
        health = node.process.health()
        if health.healthy:
            took = time.monotonic() - node.process.started
            self.boot_seconds[system_id] = took
            log.info("the H2O-3 node of system %s is healthy after %.1f s", system_id, took)
            with self._lock:
                node.ready_at, node.version = backend.now(), health.version
            backend.node_ready(system_id, node.booted_for, health.version)
        elif time.monotonic() - node.process.started > self.boot_timeout:
            self._fail(backend, system_id, node, f"the H2O-3 node was not healthy within {self.boot_timeout:g} s")

    def _fail(self, backend: NodeBackend, system_id: str, node: _Node, what: str) -> None:
        last = node.process.last_log_line()
        reason = f"{what}; its last output: {last}" if last else what
        log.warning("system %s failed: %s", system_id, reason)
        with self._lock:
            node.failed = True
        self._drop(system_id, keep_files=False)
        backend.node_failed(system_id, node.booted_for, reason)

    def _drop(self, system_id: str, *, keep_files: bool) -> None:
        with self._lock:
            node = self._nodes.pop(system_id, None)
        if node is None:
            return
        if keep_files:
            node.process.stop()
        else:
            node.process.remove()
        log.info("stopped the H2O-3 node of system %s", system_id)

    def forget(self, system_ids: Callable[[], set[str]]) -> int:
        """Delete the node directories of systems not in ``system_ids()`` (terminated, or gone); returns how many."""
        if not self.data_dir.is_dir():
            return 0
        keep = system_ids()
        removed = 0
        for home in self.data_dir.iterdir():
            if home.is_dir() and home.name not in keep:
                shutil.rmtree(home, ignore_errors=True)
                removed += 1
        return removed


def _port_of(url: str) -> int | None:
    host, _, port = url.removeprefix("http://").partition(":")
    return int(port) if host == "127.0.0.1" and port.isdigit() else None
