"""A wait ends at its deadline whatever the poll interval, in every mode; tampered kwargs are refused.

Each wait polls once an hour and has a second or two left: it must end then, judged on a look
taken at the deadline, whether it runs through Airflow's SharedStreamManager, alone (``run()``)
or per trigger (``shared=False``). The 30 s guards only catch a wait that overruns by an interval.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from airflow.triggers.shared_stream import SharedStreamManager

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger
from tests.triggers.test_puddle_trigger import DAI, first_event
from tests.triggers.test_shared_stream import as_the_triggerer, through_manager

pytestmark = pytest.mark.both_clients
HOUR = 3600.0
MODES = ("shared", "run", "alone")


@pytest.fixture
def client(emulator: Any) -> SystemsClient:
    return SystemsClient(CLOUD_AWS, authorizer=Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))


def hourly(system_id: str, target: str, seconds: float, **kw: Any) -> PuddleSystemStateTrigger:
    return PuddleSystemStateTrigger(system_id=system_id, target=target, deadline=time.time() + seconds,
                                    poll_interval=HOUR, **kw)


async def event_in(mode: str, wait_for: tuple[str, str, float]) -> dict[str, Any]:
    system_id, target, seconds = wait_for
    if mode == "shared":
        (event,) = await through_manager([hourly(system_id, target, seconds)], timeout=30)
        return event
    return await first_event(hourly(system_id, target, seconds, shared=mode != "alone"), timeout=30)


@pytest.mark.parametrize("mode", MODES)
async def test_a_wait_times_out_at_its_deadline_not_at_the_next_poll(puddle_conn: str, client: SystemsClient,
                                                                      mode: str) -> None:
    system = client.wait_for_system_started(client.create(f"late-{mode}", **DAI).id)
    event = await event_in(mode, (system.id, "stopped", 1.0))
    assert event["status"] == "timeout" and "Started" in event["message"], event


@pytest.mark.parametrize("mode", MODES)
async def test_a_target_reached_between_polls_counts_at_the_deadline(puddle_conn: str, client: SystemsClient,
                                                                     mode: str) -> None:
    system = client.create(f"boot-{mode}", **DAI)  # Waiting when the first poll sees it, Started ~0.4 s later
    event = await event_in(mode, (system.id, "started", 2.0))
    assert event["status"] == "success" and event["system"]["status_text"] == "Started", event


async def test_a_wait_joining_a_running_poll_ends_at_its_deadline(puddle_conn: str, client: SystemsClient) -> None:
    """A late subscriber's first snapshot is a poll interval away: its deadline comes first."""
    first = client.wait_for_system_started(client.create("hourly-1", **DAI).id)
    second = client.wait_for_system_started(client.create("hourly-2", **DAI).id)
    manager = SharedStreamManager()
    early, late = hourly(first.id, "stopped", 2.5), hourly(second.id, "stopped", 1.0)

    async def joining() -> dict[str, Any]:
        await asyncio.sleep(0.5)  # the poll's first list is done: the next is an hour away
        return await as_the_triggerer(manager, 2, late)

    try:
        results = await asyncio.wait_for(asyncio.gather(as_the_triggerer(manager, 1, early), joining()), 30)
    finally:
        await manager.stop_all()
    assert [r["status"] for r in results] == ["timeout", "timeout"], results
    assert results[1]["system"]["id"] == second.id  # judged on a look at its own system


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"owns_system": "false"}, "owns_system: must be True or False, got 'false'"),
    ({"owns_system": 1}, "owns_system: must be True or False, got 1"),
    ({"shared": "no"}, "shared: must be True or False, got 'no'"),
    ({"shared": None}, "shared: must be True or False, got None"),
    ({"deadline": time.time() + 1e14}, "deadline: must be at most 30 days from now"),
    ({"poll_interval": 1e9}, "poll_interval: must be at most 1 hours"),
])
def test_tampered_kwargs_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PuddleSystemStateTrigger(**{"system_id": "x", "target": "started", "deadline": time.time() + 60, **kwargs})
