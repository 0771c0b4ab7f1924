"""The wait engine: its judge (narration, heartbeat, deadline) and the client's ``wait``/``check`` on both twins."""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from typing import Any

import pytest

from airflow_puddle._proto.puddle.v2 import system_service_pb2
from airflow_puddle.client import PRODUCT_DAI
from airflow_puddle.client.models import System, TagData
from airflow_puddle.client.waiting import WaitProgress, WaitTracker, duration
from airflow_puddle.domain.errors import NotAnEmulatorError, PuddleUnavailableError, ValidationFailedError

DAI = {"product": PRODUCT_DAI, "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}
T0 = 1_000_000.0


def system(status: System.Status, name: str = "boot") -> System:
    return System(system_service_pb2.System(id="sys-1", name=name, status=status.code))


def tracker(lines: list[WaitProgress], target: Any = "started", timeout: float = 20 * 60) -> WaitTracker:
    return WaitTracker("sys-1", target, T0 + timeout, T0, lines.append)


def test_a_long_boot_narrates_each_change_and_a_heartbeat_every_minute() -> None:
    lines: list[WaitProgress] = []
    judge = tracker(lines)
    initializing = system(System.SYSTEM_STATUS_INITIALIZING)
    for second in range(0, 251, 5):  # 4m10s of Initializing, polled every 5 s
        assert judge.observe(initializing, T0 + second) is None
    outcome = judge.observe(system(System.SYSTEM_STATUS_STARTED), T0 + 255)
    texts = [p.message for p in lines]
    assert texts == [
        "system boot (sys-1) is Initializing; waiting for started, gives up in 20m00s",
        "system boot (sys-1) still Initializing after 1m00s; gives up in 19m00s",
        "system boot (sys-1) still Initializing after 2m00s; gives up in 18m00s",
        "system boot (sys-1) still Initializing after 3m00s; gives up in 17m00s",
        "system boot (sys-1) still Initializing after 4m00s; gives up in 16m00s",
        "system boot (sys-1) is Started after 4m15s",
    ]
    assert [p.kind for p in lines] == ["state", "heartbeat", "heartbeat", "heartbeat", "heartbeat", "state"]
    assert outcome is not None and outcome.kind == "reached" and outcome.elapsed_s == 255


def test_a_wait_is_next_due_at_its_heartbeat_or_its_deadline() -> None:
    lines: list[WaitProgress] = []
    judge = tracker(lines, timeout=90)
    assert judge.next_due() == -math.inf  # nothing said yet: judge now
    judge.observe(system(System.SYSTEM_STATUS_INITIALIZING), T0 + 5)
    assert judge.next_due() == T0 + 5 + 60  # the heartbeat
    judge.observe(system(System.SYSTEM_STATUS_INITIALIZING), T0 + 65)
    assert judge.next_due() == T0 + 90  # the deadline comes before the next heartbeat
    judge.unavailable(PuddleUnavailableError("down"), T0 + 70)
    assert judge.next_due() == T0 + 90


def test_the_judge_ends_a_wait_as_the_domain_says() -> None:
    lines: list[WaitProgress] = []
    failed = tracker(lines).observe(system(System.SYSTEM_STATUS_FAILED), T0 + 1)
    assert failed is not None and failed.kind == "failed" and "is Failed: it will not become started" in failed.message
    late = tracker(lines, timeout=10).observe(system(System.SYSTEM_STATUS_STARTING), T0 + 10)
    assert late is not None and late.kind == "timed_out" and "still Starting after 10s" in late.message
    gone = tracker(lines).observe(None, T0)
    assert gone is not None and gone.kind == "gone" and "not found" in gone.message
    terminated = tracker(lines, "terminated").observe(None, T0)
    assert terminated is not None and terminated.kind == "reached"
    settled = tracker(lines, "settled").observe(system(System.SYSTEM_STATUS_FAILED), T0)
    assert settled is not None and settled.kind == "reached"


def test_unavailable_polls_on_until_the_deadline_and_says_so_once_a_minute() -> None:
    lines: list[WaitProgress] = []
    judge = tracker(lines, timeout=150)
    error = PuddleUnavailableError("GetSystem: connection refused")
    for second in range(0, 150, 10):
        assert judge.unavailable(error, T0 + second) is None
    assert [p.kind for p in lines] == ["unavailable"] * 3  # at 0 s, 60 s and 120 s
    assert "polling on, gives up in 2m30s" in lines[0].message
    end = judge.unavailable(error, T0 + 150)
    assert end is not None and end.kind == "unavailable" and "unavailable until the deadline" in end.message
    assert judge.sleep_for(5, T0 + 148) == 2  # never sleeps past the deadline


class Scripted:
    """A source of looks from a list: ``next`` hands them out in turn (``None``: the deadline came first)."""

    def __init__(self, nexts: list[Any], now: Any) -> None:
        self.nexts, self.at_now = list(nexts), now
        self.calls: list[str] = []

    def next(self, tracker: WaitTracker) -> Generator[str, Any, Any]:
        self.calls.append("next")
        yield "rest"
        return self.nexts.pop(0)

    def now(self, tracker: WaitTracker) -> Generator[str, Any, Any]:
        self.calls.append("now")
        yield "look"
        return self.at_now


def run_loop(judge: WaitTracker, looks: Scripted) -> tuple[Any, list[str]]:
    """Run the loop, answering every step with None: what its driver would do, with no I/O."""
    loop, steps = judge.follow(looks), []
    try:
        while True:
            steps.append(loop.send(None))
    except StopIteration as stop:
        return stop.value, steps


def test_the_loop_decides_on_a_look_taken_at_the_deadline() -> None:
    lines: list[WaitProgress] = []
    now = time.time()
    booting, started = system(System.SYSTEM_STATUS_STARTING), system(System.SYSTEM_STATUS_STARTED)
    # The next look was taken before the deadline but comes after it: a look taken now decides, not that one.
    late = WaitTracker("sys-1", "started", now - 1, now - 30, lines.append)
    outcome, _ = run_loop(late, Scripted([(booting, now - 5)], started))
    assert outcome.kind == "reached" and outcome.elapsed_s >= 30
    # No look before the deadline (a poll an hour away): the look now decides; still not there: timed out.
    outcome, _ = run_loop(WaitTracker("sys-1", "started", now - 1, now - 30, lines.append), Scripted([None], booting))
    assert outcome.kind == "timed_out" and "still Starting" in outcome.message
    # Looks taken before the deadline are judged as they come; the loop rests between two with the source's steps.
    early = Scripted([(booting, now), (booting, now), (started, now)], None)
    outcome, steps = run_loop(WaitTracker("sys-1", "started", now + 60, now, lines.append), early)
    assert outcome.kind == "reached" and early.calls == ["next"] * 3 and steps == ["rest"] * 3


def test_a_permanent_error_ends_the_loop_and_unavailable_does_not() -> None:
    now = time.time()
    started = system(System.SYSTEM_STATUS_STARTED)
    down = PuddleUnavailableError("down")
    lines: list[WaitProgress] = []
    outcome, _ = run_loop(WaitTracker("sys-1", "started", now + 60, now, lines.append),
                          Scripted([(down, now), (down, now), (started, now)], None))
    assert outcome.kind == "reached" and [p.kind for p in lines] == ["unavailable", "state"]
    with pytest.raises(NotAnEmulatorError, match="not an emulator"):
        run_loop(WaitTracker("sys-1", "started", now + 60, now, lines.append),
                 Scripted([(NotAnEmulatorError("not an emulator"), now)], None))


def test_a_client_wait_ends_at_its_deadline_whatever_the_poll_interval(systems: Any) -> None:
    booting = systems.create("hourly-poll", **DAI)  # Started well within the second
    started = time.monotonic()
    outcome = systems.wait(booting.id, "started", deadline=time.time() + 1.0, poll_interval_s=3600)
    assert outcome.reached and time.monotonic() - started < 5  # a look at the deadline decided


def test_durations_read_like_a_person_writes_them() -> None:
    assert [duration(s) for s in (0, 45, 250, 3720, -3)] == ["0s", "45s", "4m10s", "1h02m", "0s"]


def test_wait_and_check_through_the_emulator(systems: Any) -> None:
    booting = systems.create("waiting-boot", **DAI)
    seen: list[str] = []
    assert systems.check(booting.id, "started", on_state=lambda p: seen.append(p.message)) is None
    assert seen and "is Initializing; waiting for started" in seen[0] and "gives up" not in seen[0]
    outcome = systems.wait(booting.id, "started", timeout_s=20, poll_interval_s=0.02)
    assert outcome.reached and outcome.system.status_text == "Started"
    checked = systems.check(booting.id, "started")
    assert checked is not None and checked.reached
    stopped = systems.wait(booting.id, "stopped", deadline=time.time() + 0.1, poll_interval_s=0.02)
    assert stopped.kind == "timed_out" and "still Started" in stopped.message
    missing = systems.wait("no-such-system", "started", timeout_s=1)
    assert missing.kind == "gone"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"poll_interval_s": 0}, "poll_interval_s: must be more than 0 seconds"),
    ({"poll_interval_s": -1}, "poll_interval_s: must be more than 0 seconds"),
    ({"poll_interval_s": math.nan}, "poll_interval_s: must be a finite number"),
    ({"poll_interval_s": True}, "poll_interval_s: must be a number of seconds"),
    ({"timeout_s": math.inf}, "timeout_s: must be a finite number"),
    ({"timeout_s": -5}, "timeout_s: must not be negative"),
    ({"deadline": 1.0, "timeout_s": 5}, "deadline: give deadline or timeout_s, not both"),
    ({"target": "running"}, "target: must be one of started"),
])
def test_bad_wait_arguments_are_refused_before_any_call(systems: Any, emulator: Any, kwargs: dict[str, Any],
                                                         message: str) -> None:
    emulator.stop()  # nothing may be sent: a call would fail as unavailable, not as invalid
    given = dict(kwargs)
    target = given.pop("target", "started")
    with pytest.raises(ValueError, match=message) as info:
        systems.wait("sys-1", target, **given)
    assert isinstance(info.value, ValidationFailedError) or "target" in message
