"""The lifecycle domain: verdicts, and the goal table derived from the transitions the emulator runs."""

from __future__ import annotations

import pytest

from airflow_puddle.domain import lifecycle
from airflow_puddle.domain.lifecycle import (
    ALL_WAIT_TARGETS,
    MOVING_TOWARD,
    STABLE_SYSTEM_STATUSES,
    TRANSITIONS,
    WAIT_TARGETS,
    check_wait_target,
    wait_verdict,
)
from airflow_puddle.domain.statuses import SystemStatuses as S
from airflow_puddle.emulator import lifecycle as state

STARTED, STOPPED, FAILED, TERMINATED, STOPPING = (s.code for s in (
    S.SYSTEM_STATUS_STARTED, S.SYSTEM_STATUS_STOPPED, S.SYSTEM_STATUS_FAILED, S.SYSTEM_STATUS_TERMINATED,
    S.SYSTEM_STATUS_STOPPING))


def test_state_verdicts() -> None:
    assert wait_verdict("started", STARTED) == "reached"
    assert wait_verdict("started", STOPPING) is None
    assert wait_verdict("started", FAILED) == "failed"
    assert wait_verdict("started", TERMINATED) == "failed"
    assert wait_verdict("terminated", TERMINATED) == "reached"
    assert wait_verdict("failed", FAILED) == "reached"
    assert wait_verdict("failed", TERMINATED) == "failed"


def test_settled_accepts_every_stable_state_and_nothing_else() -> None:
    for status in S.ALL_STATES:
        expected = "reached" if status.code in STABLE_SYSTEM_STATUSES else None
        assert wait_verdict("settled", status.code) == expected, status


def test_config_uploaded_verdicts() -> None:
    uploaded, ok, uploading, upload_failed = (s.code for s in (
        S.CONFIG_STATUS_UPLOADED, S.CONFIG_STATUS_OK, S.CONFIG_STATUS_UPLOADING, S.CONFIG_STATUS_FAILED))
    assert wait_verdict("config_uploaded", STARTED, uploaded) == "reached"
    assert wait_verdict("config_uploaded", STARTED, ok) == "reached"
    assert wait_verdict("config_uploaded", STARTED, uploading) is None
    assert wait_verdict("config_uploaded", STARTED, upload_failed) == "failed"
    assert wait_verdict("config_uploaded", FAILED, uploading) == "failed"


@pytest.mark.parametrize("bad", ["start", "", None, 1, "STARTED"])
def test_unknown_targets_are_refused_with_the_choices(bad: object) -> None:
    with pytest.raises(ValueError, match="target: must be one of started, stopped, terminated, failed"):
        check_wait_target(bad)
    with pytest.raises(ValueError, match="target: must be one of"):
        wait_verdict(bad, STARTED)  # type: ignore[arg-type]


def test_every_wait_target_is_judged() -> None:
    for target in ALL_WAIT_TARGETS:
        assert check_wait_target(target) == target
        wait_verdict(target, STARTED, S.CONFIG_STATUS_OK.code)


def test_moving_toward_matches_the_transitions_the_emulator_runs() -> None:
    # The emulator runs the very table the goals are derived from, so they cannot drift apart.
    assert state.TRANSITIONS is TRANSITIONS
    for phase, steps in TRANSITIONS.items():
        goal = next(t for t, s in WAIT_TARGETS.items() if s == steps[-1][0])
        for status, _, _ in steps[:-1]:
            assert status.code in MOVING_TOWARD[goal], (phase, status)
            assert status.code not in STABLE_SYSTEM_STATUSES
    # Every transitional state is on the way to exactly one goal, Restarting DAI included.
    assert S.SYSTEM_STATUS_RESTARTING_DAI.code in MOVING_TOWARD["started"]
    goals = [g for g, codes in MOVING_TOWARD.items() for _ in codes]
    assert len(goals) == sum(len(c) for c in MOVING_TOWARD.values()) == len(set().union(*MOVING_TOWARD.values()))


def test_terminal_states_end_every_other_wait() -> None:
    assert {FAILED, TERMINATED} == lifecycle.TERMINAL_SYSTEM_STATUSES
