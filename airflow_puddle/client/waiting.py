"""The wait engine: the one wait loop and its judge, without I/O.

A wait looks at a system until it reaches a :data:`~airflow_puddle.domain.lifecycle.WaitTarget`,
can no longer reach it, disappears, or its absolute deadline passes. :meth:`WaitTracker.follow`
is the loop, written once: take the next look, judge it, narrate. Where looks come from and
how a wait rests between two are its parameter, a :class:`Looks`: the client's ``wait``
(:meth:`SystemsClient.wait` and its async twin) takes one GetSystem per poll interval and
sleeps on a timer; a trigger takes the shared poll's list and parks on its board
(:mod:`airflow_puddle.triggers.looks`). The loop is a generator of the source's steps, run by
the client's drivers or the trigger's. A sensor's poke is one look, judged the same
(:meth:`WaitTracker.judge`).

It narrates like a progress bar: one line at each state change and, while nothing changes,
a heartbeat line every :attr:`WaitTracker.heartbeat_s` seconds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from airflow_puddle.client.models import System
from airflow_puddle.domain.errors import (
    NotFoundError,
    PuddleError,
    PuddleTimeoutError,
    PuddleUnavailableError,
    SystemFailedError,
)
from airflow_puddle.domain.lifecycle import CONFIG_UPLOADED, WaitTarget, wait_verdict

log = logging.getLogger("airflow_puddle.client")

OutcomeKind = Literal["reached", "failed", "timed_out", "gone", "unavailable"]
ProgressKind = Literal["state", "heartbeat", "unavailable"]

UNKNOWN_TEXT = System.SYSTEM_STATUS_UNKNOWN.text
UNNAMED_NOTE = " (Puddle sent a status code this client has no name for; see the warning)"

HEARTBEAT_S = 60.0
"""Seconds between two "still ..." lines while nothing changes."""

Seen = System | None | PuddleError
"""One look at a system: the system, ``None`` (no such system), or the error Puddle answered with."""

S_co = TypeVar("S_co", covariant=True)


class Looks(Protocol[S_co]):
    """Where a wait's looks come from, and how it rests between two: the one loop's parameter.

    Each method is a generator of the source's steps (the client's ``Rpc`` and ``Sleep``, or a
    trigger's awaitables), run by the source's driver.
    """

    def next(self, tracker: WaitTracker, /) -> Generator[S_co, Any, tuple[Seen, float] | None]:
        """Rest, then the next look and the Unix time it was taken; ``None``: the deadline came first."""
        ...

    def now(self, tracker: WaitTracker, /) -> Generator[S_co, Any, Seen]:
        """A look taken now: the one that decides at the deadline."""
        ...


def duration(seconds: float) -> str:
    """``4m10s``, ``45s``, ``1h02m``: a duration as a person reads it."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@dataclass(frozen=True)
class WaitProgress:
    """One line of a wait's narration, with what it is about."""

    kind: ProgressKind
    message: str
    system: System | None
    elapsed_s: float
    remaining_s: float


class Logs(Protocol):
    """What a narrator needs of a logger (stdlib and Airflow's structlog loggers both fit)."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any) -> Any: ...


def narrator(logger: Logs) -> Callable[[WaitProgress], None]:
    """An ``on_state`` that tells ``logger``: a warning while Puddle is unavailable, info otherwise."""

    def narrate(progress: WaitProgress) -> None:
        (logger.warning if progress.kind == "unavailable" else logger.info)("%s", progress.message)

    return narrate


log_progress = narrator(log)
"""The default narrator: the client's logger."""


@dataclass(frozen=True)
class WaitOutcome:
    """How a wait ended, with the last system seen.

    ``reached``; ``failed`` (the system can no longer reach the target); ``gone`` (no such
    system); ``timed_out`` (the deadline passed with Puddle answering); ``unavailable`` (the
    deadline passed while Puddle did not answer: worth another try later).
    """

    kind: OutcomeKind
    target: WaitTarget
    system_id: str
    system: System | None
    message: str
    elapsed_s: float

    @property
    def reached(self) -> bool:
        """True when the target was reached."""
        return self.kind == "reached"

    def result(self) -> System | None:
        """The system when the target was reached; otherwise raise the matching error.

        :class:`SystemFailedError` (failed), :class:`PuddleTimeoutError` (timed out, a
        ``TimeoutError``), :class:`PuddleUnavailableError` (unavailable, a ``ConnectionError``),
        :class:`NotFoundError` (gone). ``None`` only for a system that
        was already gone when a wait for ``terminated`` began.
        """
        if self.kind == "reached":
            return self.system
        raise self.error()

    def error(self) -> PuddleError:
        """The error that stands for this outcome (not meaningful for ``reached``)."""
        if self.kind == "failed":
            return SystemFailedError(self.message)
        if self.kind == "timed_out":
            return PuddleTimeoutError(self.message)
        if self.kind == "unavailable":
            return PuddleUnavailableError(self.message)
        return NotFoundError(self.message)


@dataclass
class WaitTracker:
    """The state of one wait: what was last seen, when the last line was said, the deadline.

    :param system_id: The system waited on.
    :param target: What the wait waits for.
    :param deadline: Unix time after which the wait gives up.
    :param started_at: Unix time the wait (or this resumption of it) began.
    :param on_state: Where narration goes; the client's logger by default.
    """

    system_id: str
    target: WaitTarget
    deadline: float
    started_at: float
    on_state: Callable[[WaitProgress], None] = log_progress
    heartbeat_s: float = HEARTBEAT_S
    system: System | None = None
    _said: str | None = field(default=None, repr=False)
    _said_at: float = field(default=-math.inf, repr=False)

    def _label(self) -> str:
        name = self.system.name if self.system is not None else ""
        return f"system {name} ({self.system_id})" if name else f"system {self.system_id}"

    def _end(self, kind: OutcomeKind, message: str, now: float) -> WaitOutcome:
        return WaitOutcome(kind, self.target, self.system_id, self.system, message, now - self.started_at)

    def _say(self, kind: ProgressKind, key: str, message: str, now: float) -> None:
        self._said, self._said_at = key, now
        self.on_state(WaitProgress(kind, message, self.system, now - self.started_at, self.deadline - now))

    def follow(self, looks: Looks[S_co]) -> Generator[S_co, Any, WaitOutcome]:
        """The one wait loop: the next look, judged, until an outcome.

        The deadline holds whatever the source's pace: when it passes before the next look, or
        after a look taken before it, a look taken now decides, judged at the deadline.
        """
        while True:
            look = yield from looks.next(self)
            if look is None or look[1] < self.deadline <= time.time():
                seen, now = (yield from looks.now(self)), max(time.time(), self.deadline)
            else:
                seen, now = look[0], time.time()
            outcome = self.judge(seen, now)
            if outcome is not None:
                return outcome

    def judge(self, seen: Seen, now: float) -> WaitOutcome | None:
        """Judge one look; an outcome ends the wait, ``None`` looks on.

        Puddle unavailable (:class:`PuddleUnavailableError`) is ridden out until the deadline;
        any other error is permanent, and raised.
        """
        if isinstance(seen, PuddleUnavailableError):
            return self.unavailable(seen, now)
        if isinstance(seen, PuddleError):
            raise seen.with_traceback(None)  # may be one poll's error, seen by every wait on it
        return self.observe(seen, now)

    def observe(self, system: System | None, now: float) -> WaitOutcome | None:
        """Judge one poll (``None``: no such system); an outcome ends the wait, ``None`` polls on."""
        if system is None:
            if self.target == "terminated":
                return self._end("reached", f"{self._label()} is gone (terminated)", now)
            return self._end("gone", f"{self._label()} not found while waiting for {self.target}", now)
        self.system = system
        state = system.config_status_text if self.target == CONFIG_UPLOADED else system.status_text
        verdict = wait_verdict(self.target, system.status, system.config_status)
        if verdict == "reached":
            self._narrate(state, now, final=True)
            return self._end("reached", f"{self._label()} is {state}", now)
        if verdict == "failed":
            self._narrate(state, now, final=True)
            what = f"config.toml upload {state}" if self.target == CONFIG_UPLOADED else f"is {state}"
            why = f" ({system.failure_reason})" if getattr(system, "failure_reason", "") else ""
            return self._end("failed", f"{self._label()} {what}{why}: it will not become {self.target}", now)
        if now >= self.deadline:
            return self._end("timed_out", f"{self._label()} still {state} after {duration(now - self.started_at)} "
                                          f"waiting for {self.target}", now)
        self._narrate(state, now)
        return None

    def unavailable(self, error: PuddleError, now: float) -> WaitOutcome | None:
        """Judge a poll that failed transiently: the wait carries on until its deadline."""
        if now >= self.deadline:
            return self._end("unavailable", f"Puddle unavailable until the deadline waiting for {self.target} "
                                          f"on {self._label()}: {error}", now)
        if self._said != "unavailable" or now - self._said_at >= self.heartbeat_s:
            self._say("unavailable", "unavailable",
                      f"Puddle unavailable while waiting for {self._label()} to be {self.target} ({error}); "
                      f"polling on{self._gives_up(now)}", now)
        return None

    def _narrate(self, state: str, now: float, final: bool = False) -> None:
        # A status with no name (an unknown code from Puddle) is said to be one, on every line about it.
        unnamed = UNNAMED_NOTE if state == UNKNOWN_TEXT else ""
        if state != self._said:
            after = "" if self._said is None else f" after {duration(now - self.started_at)}"
            tail = "" if final else f"; waiting for {self.target}{self._gives_up(now)}"
            self._say("state", state, f"{self._label()} is {state}{unnamed}{after}{tail}", now)
        elif now - self._said_at >= self.heartbeat_s:  # nothing to format on the polls in between
            elapsed, left = duration(now - self.started_at), self._gives_up(now).replace(",", ";", 1)
            self._say("heartbeat", state, f"{self._label()} still {state}{unnamed} after {elapsed}{left}", now)

    def _gives_up(self, now: float) -> str:
        return "" if math.isinf(self.deadline) else f", gives up in {duration(self.deadline - now)}"

    def next_due(self) -> float:
        """Unix time by which this wait must be judged even if nothing changes: its deadline or next heartbeat."""
        return min(self.deadline, self._said_at + self.heartbeat_s)

    def sleep_for(self, poll_interval_s: float, now: float) -> float:
        """Seconds to sleep before the next poll: the interval, but never past the deadline."""
        return max(0.0, min(poll_interval_s, self.deadline - now))
