"""The provider's side of a wait, shared by the operators, the sensors and the trigger.

The wait itself is the client's (:meth:`SystemsClient.wait`); this module holds the
defaults, the one event format a wait ends in (in the worker, a sensor's poke, or the
triggerer), and the one verdict on how a wait ended:

============  =====================================  =========================================
event status  operator                               sensor
============  =====================================  =========================================
success       the system's fields                    the system's fields
failed        fails at once (the system failed,      fails at once; ``soft_fail``: skipped
              vanished, or its upload failed)
error         fails at once (a rejected key, a       fails at once; ``soft_fail``: skipped
              broken TLS handshake or connection)
timeout       :class:`PuddleWaitTimeout`: retried    ``AirflowSensorTimeout``: not retried;
              (a retry waits on the same system)     ``soft_fail``: skipped
unavailable   ``PuddleUnavailableError``: retried    the same: retried, never skipped
              (Puddle did not answer until the       (Puddle's outage says nothing about
              deadline)                              the system)
============  =====================================  =========================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, Literal, NotRequired, TypedDict

from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout, AirflowTaskTimeout

from airflow_puddle.domain import defaults
from airflow_puddle.hooks.api import AuthError, PuddleUnavailableError, TlsHandshakeError, WaitOutcome

DEFAULT_POLL_INTERVAL = defaults.POLL_INTERVAL_S
"""Seconds between two polls, as the Puddle client's ``POLL_INTERVAL_S``."""
DEFAULT_TIMEOUT = timedelta(minutes=defaults.WAIT_TIMEOUT_MIN)
"""How long a wait lasts in all, as the Puddle client's ``POLL_TIMEOUT_MINUTES``."""
DEFER_GRACE_S = 30.0
"""Airflow's own deferral timeout comes this long after the wait's deadline, so the trigger's verdict comes first."""

EventStatus = Literal["success", "failed", "timeout", "unavailable", "error"]
DeadlineOf = Literal["timeout", "execution_timeout"]
"""Which limit set a wait's deadline: its own ``timeout``, or what was left of the task's ``execution_timeout``."""


class WaitEvent(TypedDict):
    """How a wait ended, as a trigger event payload (JSON-safe, no secret)."""

    status: EventStatus
    target: str
    system_id: str
    system: dict[str, Any] | None
    message: str
    deadline: float
    owns_system: bool
    deadline_of: NotRequired[DeadlineOf]
    cleanup: NotRequired[str]
    """Only when the triggerer terminated the system this task owns after its wait failed: how that went."""


class PuddleWaitTimeout(AirflowException):
    """An operator's wait passed its deadline with the system not there yet; a retry waits again."""


_STATUS_OF: dict[str, EventStatus] = {"reached": "success", "failed": "failed", "gone": "failed",
                                      "timed_out": "timeout", "unavailable": "unavailable"}

PERMANENT_ERRORS = (AuthError, TlsHandshakeError)
"""Errors that polling again cannot fix: a wait that meets one ends with an ``error`` event."""


def outcome_event(outcome: WaitOutcome, *, deadline: float, owns_system: bool,
                  deadline_of: DeadlineOf = "timeout") -> WaitEvent:
    """The event for a wait's outcome; a system that disappeared counts as failed."""
    system = outcome.system.to_dict() if outcome.system is not None else None
    return WaitEvent(status=_STATUS_OF[outcome.kind], target=outcome.target, system_id=outcome.system_id,
                     system=system, message=outcome.message, deadline=deadline, owns_system=owns_system,
                     deadline_of=deadline_of)


def error_event(*, target: str, system_id: str, message: str, deadline: float, owns_system: bool,
                deadline_of: DeadlineOf = "timeout") -> WaitEvent:
    """The event for a wait that could not go on (a rejected key, a broken connection)."""
    return WaitEvent(status="error", target=target, system_id=system_id, system=None, message=message,
                     deadline=deadline, owns_system=owns_system, deadline_of=deadline_of)


def wait_deadline(context: Mapping[str, Any], timeout_s: float, execution_timeout: timedelta | None,
                  start: float) -> tuple[float, DeadlineOf]:
    """A wait's absolute deadline: ``start + timeout_s``, or the end of the task's ``execution_timeout`` if sooner.

    Airflow does not enforce ``execution_timeout`` while a task is deferred (apache/airflow#69734),
    so the wait does, from when this try started.
    """
    deadline: tuple[float, DeadlineOf] = (start + timeout_s, "timeout")
    if execution_timeout is None:
        return deadline
    started = getattr(context.get("ti"), "start_date", None)
    began = started.timestamp() if started is not None else start
    end = began + execution_timeout.total_seconds()
    return (end, "execution_timeout") if end < deadline[0] else deadline


def verdict(event: Mapping[str, Any], *, sensor: bool) -> dict[str, Any]:
    """The one reading of a wait's end: the system's fields, or the exception the table above gives.

    A wait whose deadline was the task's ``execution_timeout`` ends, past it, as Airflow's own
    ``AirflowTaskTimeout``, naming ``execution_timeout``.
    """
    status = event.get("status")
    if status == "success":
        return dict(event.get("system") or {})
    message = f"Puddle wait for {event.get('target')} ended {status}: {event.get('message')}"
    if status in ("timeout", "unavailable") and event.get("deadline_of") == "execution_timeout":
        raise AirflowTaskTimeout(f"execution_timeout passed while waiting for {event.get('target')} "
                                 f"(the task's execution_timeout set the wait's deadline): {event.get('message')}")
    if status == "unavailable":
        raise PuddleUnavailableError(message)
    if status == "timeout":
        raise AirflowSensorTimeout(message) if sensor else PuddleWaitTimeout(message)
    raise AirflowFailException(message)  # failed, error, or an event this provider does not write


@contextlib.contextmanager
def permanent_errors_fail() -> Iterator[None]:
    """A rejected key or a broken TLS handshake fails the task at once, wherever it is met (as an ``error`` event)."""
    try:
        yield
    except PERMANENT_ERRORS as err:
        raise AirflowFailException(f"{type(err).__name__}: {err}") from err


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable``, read when an operator is built."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)
