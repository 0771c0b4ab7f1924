"""The lifecycle engine: steps, config uploads and idle timeouts, applied lazily from timestamps.

Each system stores which transition (``phase``) it is in, which step, and when that
transition began; each step lasts ``step_seconds``. Because only timestamps are
stored, a system mid-transition carries on after the emulator restarts. Each row also
stores ``due_at``, the earliest of its next step, its upload finishing, and (while
started) its idle timeout, so :meth:`Lifecycle.sweep` reads only the rows with
something due instead of every system.

The table of transitions is :data:`airflow_puddle.domain.lifecycle.TRANSITIONS`.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import replace
from typing import Literal, Protocol

from airflow_puddle.domain.lifecycle import BOOTING_PHASES, TRANSITIONS, Phase, Step
from airflow_puddle.domain.statuses import SystemStatuses
from airflow_puddle.emulator.rows import SystemRow, session_cost
from airflow_puddle.emulator.store import Store

_S = SystemStatuses

__all__ = ["TRANSITIONS", "Lifecycle"]

# Ties at one instant: an upload that ends as a restart ends is applied by that restart.
_Event = tuple[float, int, Literal["config", "phase", "idle"]]


class NodeGate(Protocol):
    """Holds a system's transition to Started until its real product answers (real H2O-3 nodes)."""

    def gated(self, s: SystemRow) -> bool:
        """Whether ``s`` boots a real product."""

    def ready_at(self, s: SystemRow) -> float | None:
        """When the product booted for ``s``'s running transition became ready; None until then."""


class Lifecycle:
    """Applies :data:`TRANSITIONS` to system rows, ``step_seconds`` per step.

    With a ``gate``, a gated system's last step to Started waits until the gate says its
    product is ready, and once it is, the remaining steps apply at that moment.
    """

    def __init__(self, step_seconds: float) -> None:
        if not (math.isfinite(step_seconds) and step_seconds > 0):
            raise ValueError(f"step_seconds must be a finite number above 0, got {step_seconds}")
        self.step_seconds = float(step_seconds)
        self.gate: NodeGate | None = None

    # ------------------------------------------------------------------ due times

    def _events(self, s: SystemRow) -> list[_Event]:
        """The system's next event of each kind; idle only while started and not in a transition."""
        events: list[_Event] = []
        if s.config_status == _S.CONFIG_STATUS_UPLOADING.code and s.config_started_at is not None:
            events.append((s.config_started_at + self.step_seconds, 0, "config"))
        if s.phase is not None and s.phase_started_at is not None:
            at = s.phase_started_at + (s.phase_step + 1) * self.step_seconds
            if self.gate is not None and s.phase in BOOTING_PHASES and self.gate.gated(s):
                ready = self.gate.ready_at(s)
                last = s.phase_step + 2 >= len(TRANSITIONS[s.phase])
                if ready is not None:  # the steps left apply by then, the step to Started just then
                    events.append((ready if last else min(at, ready), 1, "phase"))
                elif not last:
                    events.append((at, 1, "phase"))  # the step to Started waits for the product
            else:
                events.append((at, 1, "phase"))
        elif s.status == _S.SYSTEM_STATUS_STARTED.code and s.idle_timeout is not None:
            events.append((s.idle_timeout, 2, "idle"))
        return events

    def due_at(self, s: SystemRow) -> float | None:
        """When the system next has something to apply; None when nothing will happen by itself."""
        events = self._events(s)
        return min(events)[0] if events else None

    def stamped(self, s: SystemRow) -> SystemRow:
        """``s`` with its ``due_at`` recomputed: what every write of a system stores."""
        return replace(s, due_at=self.due_at(s))

    # ------------------------------------------------------------------ applying

    def advance(self, s: SystemRow, now: float) -> SystemRow:
        """Apply the system's events due by ``now`` in time order (an idle timeout only once passed)."""
        while True:
            due = [e for e in self._events(s) if e[0] <= now and (e[2] != "idle" or e[0] < now)]
            if not due:
                return self.stamped(s)
            at, _, kind = min(due)
            if kind == "config":
                s = _finish_upload(s, at)
            elif kind == "phase":
                s = self._next_step(s, at)
            else:
                s = self.begin(s, "stop", at)

    def sweep(self, store: Store, now: float) -> int:
        """Bring every system with something due by ``now`` up to date; returns how many rows it read."""
        rows = store.due_systems(now)
        for row in rows:
            advanced = self.advance(row, now)
            if advanced != row:
                store.save_system(advanced)
        return len(rows)

    def restamp(self, store: Store) -> None:
        """Recompute every system's ``due_at`` by :meth:`due_at` and store those that changed
        (after ``step_seconds`` changed, or a migration added the column)."""
        store.set_due_times([(due, s.id) for s in store.all_systems() if (due := self.due_at(s)) != s.due_at])

    @staticmethod
    def begin(s: SystemRow, phase: Phase, at: float) -> SystemRow:
        """Start ``phase`` at ``at``: its first step applies at once (``due_at`` is left to the caller)."""
        if phase == "start":
            s = replace(s, previous_sessions_cost=s.previous_sessions_cost + s.session_cost, session_cost=0.0)
        if phase in BOOTING_PHASES:
            s = replace(s, failure_reason="")
        s = replace(s, phase=phase, phase_step=0, phase_started_at=at)
        return _apply(s, TRANSITIONS[phase][0], at)

    def _next_step(self, s: SystemRow, at: float) -> SystemRow:
        phase = s.phase
        assert phase is not None
        steps = TRANSITIONS[phase]
        step = s.phase_step + 1
        last = step == len(steps) - 1
        if last and phase != "fail" and s.fail_next_transition:
            return self.begin(replace(s, fail_next_transition=False), "fail", at)
        s = replace(_apply(s, steps[step], at), phase_step=step)
        if last:
            s = _finish(replace(s, phase=None, phase_step=0, phase_started_at=None), phase, at)
        return s


def _apply(s: SystemRow, step: Step, at: float) -> SystemRow:
    status, vm, product = step
    return replace(
        s,
        status=status.code,
        vm_status=s.vm_status if vm is None else vm.code,
        product_status=s.product_status if product is None else product.code,
        updated=at,
    )


def _finish(s: SystemRow, phase: Phase, at: float) -> SystemRow:
    """Side effects of reaching a transition's stable result."""
    if s.status == _S.SYSTEM_STATUS_STARTED.code:
        if not s.provisioned:
            s = _provision(s)
        if phase in ("create", "start"):
            s = replace(s, session_started_at=at)
        if s.config_status == _S.CONFIG_STATUS_UPLOADED.code:
            s = replace(s, config_status=_S.CONFIG_STATUS_OK.code)
        return replace(s, idle_timeout=at + s.idle_timeout_interval * 60)
    if s.session_started_at is not None:
        return replace(s, session_cost=session_cost(s.price, s.session_started_at, at), session_started_at=None)
    return s


def _finish_upload(s: SystemRow, at: float) -> SystemRow:
    if s.fail_next_config:
        s = replace(s, config_status=_S.CONFIG_STATUS_FAILED.code, fail_next_config=False)
    else:
        s = replace(s, config_status=_S.CONFIG_STATUS_UPLOADED.code, config_toml=s.pending_config_toml or "")
    return replace(s, pending_config_toml=None, config_started_at=None, updated=at)


def _provision(s: SystemRow) -> SystemRow:
    """Fill what a real system learns when it first comes up: URL, addresses, credentials."""
    rnd = secrets.SystemRandom()
    public_ip = f"203.0.113.{rnd.randint(1, 254)}"
    return replace(
        s,
        provisioned=True,
        default_url=f"https://{s.name}.{s.cloud}.puddle.local",
        private_ip=f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
        public_ip=public_ip,
        ip_address=public_ip,
        cloud_id=f"{s.cloud}-vm-{secrets.token_hex(8)}",
        username="h2oai",
        password=secrets.token_urlsafe(12),
        auth_type="local",
    )
