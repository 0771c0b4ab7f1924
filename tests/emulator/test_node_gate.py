"""The lifecycle's gate on the fake clock: a gated system reaches Started when its product is ready, not before."""

from __future__ import annotations

from pathlib import Path

from airflow_puddle.domain.statuses import SystemStatuses as S
from airflow_puddle.emulator import PuddleBackend
from airflow_puddle.emulator.h2o3 import find_runtime
from airflow_puddle.emulator.node_systems import NodeRules
from airflow_puddle.emulator.nodes import NodeManager
from airflow_puddle.emulator.rows import SystemRow, User

from .conftest import FakeClock
from .test_state import _create


class Gate:
    """Gates H2O-3 systems; ready from ``ready_at`` on, for the transition that began at ``booted_for``."""

    def __init__(self) -> None:
        self.ready: dict[str, tuple[float | None, float]] = {}

    def gated(self, s: SystemRow) -> bool:
        return s.product == "h2o3"

    def ready_at(self, s: SystemRow) -> float | None:
        booted_for, at = self.ready.get(s.id, (None, -1.0))
        return at if booted_for == s.phase_started_at and at >= 0 else None


def told_ready(backend: PuddleBackend, user: User, system_id: str) -> SystemRow:
    """What the node manager does once a node is healthy: bring that one system up to date now."""
    with backend.swept():
        s = backend.store.system(system_id)
        assert s is not None
        backend.save_system(backend.lifecycle.advance(s, backend.now()))
    return backend.get_system(user, system_id)[0]


def h2o3(backend: PuddleBackend, user: User, name: str) -> SystemRow:
    return _create(backend, user, name=name, product="h2o3", version="3.46.0.6")


def test_a_gated_create_waits_for_its_product_however_long_the_steps_take(
    backend: PuddleBackend, user: User, clock: FakeClock,
) -> None:
    gate = Gate()
    backend.lifecycle.gate = gate
    slow = h2o3(backend, user, "slow")
    dai = _create(backend, user, name="dai")

    clock.tick(60)  # far past the four 1 s steps
    waiting = backend.get_system(user, slow.id)[0]
    assert waiting.status == S.SYSTEM_STATUS_INITIALIZING.code
    assert waiting.product_status == S.PRODUCT_STATUS_WAITING_FOR_PRODUCT.code
    assert waiting.due_at is None  # nothing happens by itself: the sweep does not re-read it
    assert backend.get_system(user, dai.id)[0].status == S.SYSTEM_STATUS_STARTED.code  # DAI is not gated

    gate.ready[slow.id] = (waiting.phase_started_at, backend.now())
    started = told_ready(backend, user, slow.id)
    assert started.status == S.SYSTEM_STATUS_STARTED.code
    assert started.session_started_at == gate.ready[slow.id][1]  # billed from when it was ready


def test_a_product_ready_before_the_steps_finish_them_at_once(
    backend: PuddleBackend, user: User, clock: FakeClock,
) -> None:
    gate = Gate()
    backend.lifecycle.gate = gate
    quick = h2o3(backend, user, "quick")
    gate.ready[quick.id] = (quick.phase_started_at, backend.now() + 0.5)

    clock.tick(0.6)
    started = told_ready(backend, user, quick.id)
    assert started.status == S.SYSTEM_STATUS_STARTED.code  # the remaining steps applied when it was ready
    assert started.session_started_at == quick.phase_started_at + 0.5

    # A restart's transition needs its own ready: the create's does not count.
    backend.restart_system(user, quick.id)
    clock.tick(30)
    assert backend.get_system(user, quick.id)[0].status == S.SYSTEM_STATUS_REBOOTING.code


def test_a_restart_reboots_started_h2o3_systems_up_to_the_cap_and_fails_the_rest_saying_why(
    backend: PuddleBackend, user: User, clock: FakeClock, tmp_path: Path,
) -> None:
    older = h2o3(backend, user, "older")
    clock.tick(1)
    newer = h2o3(backend, user, "newer")
    clock.tick(10)
    assert {backend.get_system(user, s.id)[0].status for s in (older, newer)} == {S.SYSTEM_STATUS_STARTED.code}

    rules = NodeRules(backend, NodeManager(find_runtime(), tmp_path / "nodes", max_nodes=1))  # never started

    assert rules.reboot_started() == 1
    assert backend.get_system(user, older.id)[0].status == S.SYSTEM_STATUS_REBOOTING.code
    failing = backend.get_system(user, newer.id)[0]
    assert failing.status == S.SYSTEM_STATUS_FAILING.code
    assert "--h2o3-max-nodes 1" in failing.failure_reason
