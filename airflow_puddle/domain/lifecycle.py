"""A system's lifecycle, defined once: transitions, goals, and the verdict of one observation.

:data:`TRANSITIONS` is the table the emulator runs and the client's waits are derived
from: :data:`MOVING_TOWARD` (which transitional states end in which goal without
another call) is computed from it, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from airflow_puddle.domain.statuses import SystemStatuses as _S
from airflow_puddle.domain.statuses import system_status_text

Step = tuple[_S.Status, _S.VmStatus | None, _S.ProductStatus | None]
"""One step of a transition: (status, vm status, product status); ``None`` keeps the current value."""

Phase = Literal["create", "start", "stop", "restart", "restart_dai", "terminate", "fail"]

TRANSITIONS: dict[Phase, tuple[Step, ...]] = {
    "create": (
        (_S.SYSTEM_STATUS_INITIALIZING, _S.VM_STATUS_WAITING, _S.PRODUCT_STATUS_WAITING_FOR_VM),
        (_S.SYSTEM_STATUS_INITIALIZING, _S.VM_STATUS_PROVISIONING, _S.PRODUCT_STATUS_WAITING_FOR_VM),
        (_S.SYSTEM_STATUS_INITIALIZING, _S.VM_STATUS_RUNNING, _S.PRODUCT_STATUS_WAITING_FOR_PRODUCT),
        (_S.SYSTEM_STATUS_STARTED, _S.VM_STATUS_RUNNING, _S.PRODUCT_STATUS_READY),
    ),
    "start": (
        (_S.SYSTEM_STATUS_STARTING, _S.VM_STATUS_STARTING, _S.PRODUCT_STATUS_WAITING_FOR_VM),
        (_S.SYSTEM_STATUS_STARTING, _S.VM_STATUS_RUNNING, _S.PRODUCT_STATUS_WAITING_FOR_PRODUCT),
        (_S.SYSTEM_STATUS_STARTED, _S.VM_STATUS_RUNNING, _S.PRODUCT_STATUS_READY),
    ),
    "stop": (
        (_S.SYSTEM_STATUS_STOPPING, _S.VM_STATUS_DEALLOCATING, _S.PRODUCT_STATUS_VM_UNAVAILABLE),
        (_S.SYSTEM_STATUS_STOPPED, _S.VM_STATUS_DEALLOCATED, _S.PRODUCT_STATUS_VM_UNAVAILABLE),
    ),
    "restart": (
        (_S.SYSTEM_STATUS_REBOOTING, _S.VM_STATUS_STARTING, _S.PRODUCT_STATUS_WAITING_FOR_PRODUCT),
        (_S.SYSTEM_STATUS_STARTED, _S.VM_STATUS_RUNNING, _S.PRODUCT_STATUS_READY),
    ),
    # An admin's action (restart DAI without rebooting the VM); the API has no call for it.
    "restart_dai": (
        (_S.SYSTEM_STATUS_RESTARTING_DAI, None, _S.PRODUCT_STATUS_WAITING_FOR_PRODUCT),
        (_S.SYSTEM_STATUS_STARTED, None, _S.PRODUCT_STATUS_READY),
    ),
    "terminate": (
        (_S.SYSTEM_STATUS_TERMINATING, _S.VM_STATUS_TERMINATING, _S.PRODUCT_STATUS_VM_UNAVAILABLE),
        (_S.SYSTEM_STATUS_TERMINATED, _S.VM_STATUS_TERMINATED, _S.PRODUCT_STATUS_VM_UNAVAILABLE),
    ),
    "fail": (
        (_S.SYSTEM_STATUS_FAILING, None, None),
        (_S.SYSTEM_STATUS_FAILED, None, None),
    ),
}
"""Each transition's steps, in order; the last step is its stable result."""

BOOTING_PHASES: frozenset[Phase] = frozenset(
    phase for phase, steps in TRANSITIONS.items() if steps[-1][0] == _S.SYSTEM_STATUS_STARTED
)
"""The transitions that end in Started: where a real system boots its product."""

Action = Literal["start", "stop", "restart", "terminate", "refresh the idle timeout of", "update config.toml of"]

ALLOWED_FROM: dict[Action, tuple[_S.Status, ...]] = {
    "start": (_S.SYSTEM_STATUS_STOPPED,),
    "stop": (_S.SYSTEM_STATUS_STARTED, _S.SYSTEM_STATUS_FAILED),
    "restart": (_S.SYSTEM_STATUS_STARTED,),
    "terminate": (_S.SYSTEM_STATUS_STARTED, _S.SYSTEM_STATUS_STOPPED, _S.SYSTEM_STATUS_FAILED),
    "refresh the idle timeout of": (_S.SYSTEM_STATUS_STARTED,),
    "update config.toml of": (_S.SYSTEM_STATUS_STARTED,),
}
"""The statuses each user action may start from."""


def refusal(action: Action, status: int) -> str | None:
    """Why ``action`` may not start from ``status`` (``it is Stopping, needs Started or Failed``); None if it may."""
    allowed = ALLOWED_FROM[action]
    if status in {a.code for a in allowed}:
        return None
    texts = [a.text for a in allowed]
    needs = texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"
    return f"it is {system_status_text(status)}, needs {needs}"


STABLE_SYSTEM_STATUSES: frozenset[int] = frozenset(
    s.code for s in (_S.SYSTEM_STATUS_STARTED, _S.SYSTEM_STATUS_STOPPED,
                     _S.SYSTEM_STATUS_TERMINATED, _S.SYSTEM_STATUS_FAILED)
)
"""A system in any other state is in transition."""

TERMINAL_SYSTEM_STATUSES: frozenset[int] = frozenset(
    s.code for s in (_S.SYSTEM_STATUS_FAILED, _S.SYSTEM_STATUS_TERMINATED)
)
"""A wait for any goal but these ends when the system gets here."""

NOT_CONSUMING_STATUSES: frozenset[int] = frozenset(
    s.code for s in (_S.SYSTEM_STATUS_STOPPED, _S.SYSTEM_STATUS_TERMINATED, _S.SYSTEM_STATUS_FAILED)
)
"""A system in these states consumes no compute units."""

StateTarget = Literal["started", "stopped", "terminated", "failed"]
WaitTarget = Literal["started", "stopped", "terminated", "failed", "config_uploaded", "settled"]
"""What a wait waits for: a system state, a finished config.toml upload, or any stable state."""

WAIT_TARGETS: dict[StateTarget, _S.Status] = {
    "started": _S.SYSTEM_STATUS_STARTED,
    "stopped": _S.SYSTEM_STATUS_STOPPED,
    "terminated": _S.SYSTEM_STATUS_TERMINATED,
    "failed": _S.SYSTEM_STATUS_FAILED,
}
"""The state targets and the status each one waits for."""

CONFIG_UPLOADED: Literal["config_uploaded"] = "config_uploaded"
"""The wait target for a finished config.toml upload (judged on ``config_status``)."""
SETTLED: Literal["settled"] = "settled"
"""The wait target for any stable state (what a clean-up waits for before it terminates)."""
ALL_WAIT_TARGETS: tuple[WaitTarget, ...] = get_args(WaitTarget)


def _moving_toward() -> dict[StateTarget, frozenset[int]]:
    goals = {status.code: target for target, status in WAIT_TARGETS.items()}
    moving: dict[StateTarget, set[int]] = {target: set() for target in WAIT_TARGETS}
    for steps in TRANSITIONS.values():
        *on_the_way, (last, _, _) = steps
        moving[goals[last.code]].update(status.code for status, _, _ in on_the_way)
    return {target: frozenset(codes) for target, codes in moving.items()}


MOVING_TOWARD: dict[StateTarget, frozenset[int]] = _moving_toward()
"""Transitional states that end in each goal without another call, derived from :data:`TRANSITIONS`:
what an idempotent operator waits on instead of calling again."""

Verdict = Literal["reached", "failed"]


def wait_verdict(target: WaitTarget, status: int, config_status: int | None = None) -> Verdict | None:
    """Judge one observation while waiting for ``target``.

    ``"reached"`` when the target is reached, ``"failed"`` when it can no longer be
    (the system failed, or was terminated while waiting for anything but termination,
    or the config upload failed), ``None`` to keep waiting. ``config_status`` is needed
    only for :data:`CONFIG_UPLOADED`.
    """
    if target == SETTLED:
        return "reached" if status in STABLE_SYSTEM_STATUSES else None
    if target == CONFIG_UPLOADED:
        if config_status in (_S.CONFIG_STATUS_UPLOADED.code, _S.CONFIG_STATUS_OK.code):
            return "reached"
        if config_status == _S.CONFIG_STATUS_FAILED.code or status in TERMINAL_SYSTEM_STATUSES:
            return "failed"
        return None
    if target not in WAIT_TARGETS:
        raise ValueError(f"target: must be one of {', '.join(ALL_WAIT_TARGETS)}, got {target!r}")
    if status == WAIT_TARGETS[target].code:
        return "reached"
    if status in TERMINAL_SYSTEM_STATUSES:
        return "failed"
    return None


def check_wait_target(target: object, field: str = "target",
                      choices: Sequence[WaitTarget] = ALL_WAIT_TARGETS) -> WaitTarget:
    """``target`` if it is one of ``choices`` (any wait target by default); ``ValueError`` naming ``field`` if not."""
    if target not in choices:
        raise ValueError(f"{field}: must be one of {', '.join(choices)}, got {target!r}")
    return target  # type: ignore[return-value]  # one of the choices
