"""Real H2O-3 systems on the backend's side: the rules at create and start, and what the nodes report.

:class:`NodeRules` is attached to a :class:`~airflow_puddle.emulator.state.PuddleBackend`
when the emulator runs real H2O-3 nodes. It refuses, before anything changes, a create
of an H2O-3 version the jar is not and a create or start past ``--h2o3-max-nodes``. It is
also what the :class:`~airflow_puddle.emulator.nodes.NodeManager` calls: each call takes
the backend's lock, sweeps, and applies what a node did (booting on a URL, healthy,
dead) to its system.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

from airflow_puddle.domain.clouds import ALL_CLOUDS
from airflow_puddle.domain.errors import PreconditionFailedError, ValidationFailedError
from airflow_puddle.domain.lifecycle import BOOTING_PHASES
from airflow_puddle.domain.products import PRODUCT_H2O3
from airflow_puddle.domain.statuses import SystemStatuses
from airflow_puddle.emulator.h2o3 import H2O3Runtime
from airflow_puddle.emulator.nodes import NodeManager, needs_node
from airflow_puddle.emulator.rows import ImageRow, SystemRow
from airflow_puddle.emulator.seed import image_row
from airflow_puddle.emulator.state import PuddleBackend

_S = SystemStatuses
NODE_USERNAME = "h2oai"


def node_dir(db_path: str) -> Path:
    """Where the nodes of the emulator with database ``db_path`` keep their files: ``<db>.h2o3/``."""
    path = Path(db_path).resolve()
    return path.with_name(path.name + ".h2o3")


class NodeRules:
    """The backend's side of real H2O-3 nodes (see the module docstring)."""

    def __init__(self, backend: PuddleBackend, manager: NodeManager) -> None:
        self._backend = backend
        self.manager = manager
        self.runtime: H2O3Runtime = manager.runtime
        backend.lifecycle.gate = manager
        backend.nodes = self
        with backend.swept():
            backend.store.add_images(image_row(c.id, PRODUCT_H2O3.id, self.runtime.version) for c in ALL_CLOUDS)
            # Stored due times were computed without the gate.
            backend.lifecycle.restamp(backend.store)

    # ------------------------------------------------------------------ rules (under the backend's lock)

    def check_create(self, image: ImageRow) -> None:
        """Refuse an H2O-3 image the jar is not, and a node past the cap."""
        if image.product != PRODUCT_H2O3.id:
            return
        if image.version != self.runtime.version:
            raise ValidationFailedError(
                "version",
                f"this emulator runs real H2O-3 nodes, which can only be version {self.runtime.version} "
                f"(the installed h2o package), got {image.version!r}",
            )
        self._check_cap("create an H2O-3 system")

    def check_start(self, s: SystemRow) -> None:
        """Refuse to start an H2O-3 system past the cap."""
        if s.product == PRODUCT_H2O3.id:
            self._check_cap(f"start system {s.name!r} ({s.id})")

    def _check_cap(self, action: str) -> None:
        running = sum(needs_node(s) for s in self._backend.store.live_systems_of(PRODUCT_H2O3.id))
        if running >= self.manager.max_nodes:
            raise PreconditionFailedError(
                f"cannot {action}: {running} H2O-3 nodes run or boot, and this emulator runs at most "
                f"{self.manager.max_nodes} (--h2o3-max-nodes); stop or terminate an H2O-3 system first"
            )

    def changed(self, s: SystemRow) -> None:
        """A command changed ``s``: a stop, terminate or fail stops its node now; the manager looks again."""
        if s.product == PRODUCT_H2O3.id and s.phase in ("stop", "terminate", "fail"):
            self.manager.stop_now(s.id, keep_files=s.phase == "stop")
        self.manager.poke()

    # ------------------------------------------------------------------ start-up

    def reboot_started(self) -> int:
        """After a restart, put every Started H2O-3 system through a reboot (its node is gone); returns how many."""
        backend = self._backend
        with backend.swept():
            live = backend.store.live_systems_of(PRODUCT_H2O3.id)
            started = [s for s in live if s.phase is None and s.status == _S.SYSTEM_STATUS_STARTED.code]
            room = self.manager.max_nodes - sum(needs_node(s) and s.phase is not None for s in live)
            for n, s in enumerate(started):  # oldest first, up to the cap; the rest fail, saying why
                if n < room:
                    backend.save_system(backend.lifecycle.begin(s, "restart", backend.now()))
                else:
                    reason = (f"the emulator restarted with --h2o3-max-nodes {self.manager.max_nodes}, "
                              "fewer than its started H2O-3 systems")
                    backend.save_system(backend.lifecycle.begin(replace(s, failure_reason=reason), "fail",
                                                                backend.now()))
        return min(len(started), max(room, 0))

    def live_ids(self) -> set[str]:
        """Ids of the H2O-3 systems not terminated."""
        with self._backend.swept():
            return {s.id for s in self._backend.store.live_systems_of(PRODUCT_H2O3.id)}

    # ------------------------------------------------------------------ what the manager reports

    def now(self) -> float:
        """The emulator's clock."""
        return self._backend.now()

    def node_systems(self) -> list[SystemRow]:
        """Every H2O-3 system not terminated, brought up to date."""
        with self._backend.swept():
            return self._backend.store.live_systems_of(PRODUCT_H2O3.id)

    def node_booting(self, system_id: str, url: str) -> SystemRow | None:
        """Give the system the node's URL and its login (made once, kept across boots); None if it needs no node."""
        backend = self._backend
        with backend.swept():
            s = backend.store.system(system_id)
            if s is None or not needs_node(s):
                return None
            return backend.save_system(replace(
                s, provisioned=True, default_url=url, ip_address="127.0.0.1", private_ip="127.0.0.1",
                public_ip="127.0.0.1", cloud_id=s.cloud_id or f"{s.cloud}-vm-{secrets.token_hex(8)}",
                username=s.username or NODE_USERNAME, password=s.password or secrets.token_urlsafe(12),
                auth_type="basic",
            ))

    def node_ready(self, system_id: str, booted_for: float | None, version: str) -> None:
        """The node booted for the system's transition is healthy: the transition finishes now."""
        backend = self._backend
        with backend.swept():
            s = backend.store.system(system_id)
            if s is None or s.phase not in BOOTING_PHASES or s.phase_started_at != booted_for:
                return
            backend.save_system(backend.lifecycle.advance(replace(s, version=version or s.version), backend.now()))

    def node_failed(self, system_id: str, booted_for: float | None, reason: str) -> None:
        """The node died or never became healthy: its system fails, with ``reason``."""
        backend = self._backend
        with backend.swept():
            s = backend.store.system(system_id)
            if s is None:
                return
            booting = s.phase in BOOTING_PHASES and s.phase_started_at == booted_for
            if booting or (s.phase is None and s.status == _S.SYSTEM_STATUS_STARTED.code):
                failed = backend.lifecycle.begin(replace(s, failure_reason=reason, fail_next_transition=False),
                                                 "fail", backend.now())
                backend.save_system(failed)
