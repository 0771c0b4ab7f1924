"""The provider's side of a wait, shared by the operators, the sensors and the trigger.

The wait itself is the client's (:meth:`SystemsClient.wait`); this module holds the
defaults, the one event format a wait ends in (whether it ran in the worker or in the
triggerer), and the one reading of that event.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, TypedDict

from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowException

from airflow_puddle.domain import defaults
from airflow_puddle.hooks.api import WaitOutcome

DEFAULT_POLL_INTERVAL = defaults.POLL_INTERVAL_S
"""Seconds between two polls, as the Puddle client's ``POLL_INTERVAL_S``."""
DEFAULT_TIMEOUT = timedelta(minutes=defaults.WAIT_TIMEOUT_MIN)
"""How long a wait lasts in all, as the Puddle client's ``POLL_TIMEOUT_MINUTES``."""

EventStatus = Literal["success", "failed", "timeout", "error"]


class WaitEvent(TypedDict):
    """How a wait ended, as a trigger event payload (JSON-safe, no secret)."""

    status: EventStatus
    target: str
    system_id: str
    system: dict[str, Any] | None
    message: str
    deadline: float
    owns_system: bool


_STATUS_OF: dict[str, EventStatus] = {"reached": "success", "failed": "failed", "gone": "failed",
                                      "timed_out": "timeout", "unavailable": "timeout"}


def outcome_event(outcome: WaitOutcome, *, deadline: float, owns_system: bool) -> WaitEvent:
    """The event for a wait's outcome; a system that disappeared counts as failed."""
    system = outcome.system.to_dict() if outcome.system is not None else None
    return WaitEvent(status=_STATUS_OF[outcome.kind], target=outcome.target, system_id=outcome.system_id,
                     system=system, message=outcome.message, deadline=deadline, owns_system=owns_system)


def error_event(*, target: str, system_id: str, message: str, deadline: float, owns_system: bool) -> WaitEvent:
    """The event for a wait that could not go on (a rejected key, a broken connection)."""
    return WaitEvent(status="error", target=target, system_id=system_id, system=None, message=message,
                     deadline=deadline, owns_system=owns_system)


def event_system(event: dict[str, Any]) -> dict[str, Any]:
    """The system's public fields from a successful event; :class:`AirflowException` otherwise."""
    if event.get("status") == "success":
        return dict(event.get("system") or {})
    raise AirflowException(f"Puddle wait for {event.get('target')} ended {event.get('status')}: "
                           f"{event.get('message')}")


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable``, read when an operator is built."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)
