"""The handler pool: a few runners, and a stand-in for each handler sleeping in injected latency."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_puddle._proto.puddle.v2 import admin_service_pb2, system_service_pb2
from airflow_puddle.emulator.pool import HandlerPool

WAIT_S = 5.0


def test_handlers_that_lend_their_place_do_not_stall_the_others() -> None:
    pool = HandlerPool(runners=2, limit=8)
    release, inside = threading.Event(), threading.Semaphore(0)

    def sleeper() -> str:
        with pool.lend():
            inside.release()
            release.wait(WAIT_S)
        return "slept"

    sleepers = [pool.submit(sleeper) for _ in range(4)]  # twice the runners
    for _ in sleepers:
        assert inside.acquire(timeout=WAIT_S)
    assert pool.submit(lambda: "quick").result(timeout=WAIT_S) == "quick"
    assert pool.threads == 6  # the four sleepers, and two runners working meanwhile
    release.set()
    assert [f.result(timeout=WAIT_S) for f in sleepers] == ["slept"] * 4
    for _ in range(8):  # stand-ins leave once they have nobody to stand in for
        pool.submit(lambda: None).result(timeout=WAIT_S)
    assert pool.threads == 2
    pool.shutdown()


def test_without_lending_the_runners_are_the_limit() -> None:
    pool = HandlerPool(runners=2, limit=8)
    release, inside = threading.Event(), threading.Semaphore(0)

    def blocker() -> None:
        inside.release()
        release.wait(WAIT_S)

    blockers = [pool.submit(blocker) for _ in range(2)]
    for _ in blockers:
        assert inside.acquire(timeout=WAIT_S)
    quick = pool.submit(lambda: "quick")
    assert not quick.done() and pool.threads == 2  # queued: both runners are busy
    release.set()
    assert quick.result(timeout=WAIT_S) == "quick"
    pool.shutdown()


def test_the_limit_caps_stand_ins_and_errors_reach_the_future() -> None:
    pool = HandlerPool(runners=1, limit=2)
    release = threading.Event()

    def sleeper() -> None:
        with pool.lend():
            release.wait(WAIT_S)

    sleepers = [pool.submit(sleeper) for _ in range(3)]
    time.sleep(0.2)
    assert pool.threads == 2  # the limit: the third sleeper waits for a thread
    release.set()
    for f in sleepers:
        f.result(timeout=WAIT_S)

    def broken() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        pool.submit(broken).result(timeout=WAIT_S)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: None)


@pytest.mark.parametrize(("runners", "limit"), [(0, 4), (5, 4)])
def test_bad_sizes(runners: int, limit: int) -> None:
    with pytest.raises(ValueError, match="runners, limit"):
        HandlerPool(runners, limit)


def test_calls_sleeping_in_latency_do_not_hold_the_servers_few_runners(admin_stub, system_stub, md) -> None:
    latency, calls = 1.0, 12  # three times the default four runners
    admin_stub.SetLatency(admin_service_pb2.SetLatencyRequest(method="ListSystems", seconds=latency))
    request = system_service_pb2.ListSystemsRequest()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=calls) as callers:
        list(callers.map(lambda _: system_stub.ListSystems(request, metadata=md, timeout=30), range(calls)))
    elapsed = time.monotonic() - started
    # Held runners would answer four at a time: three rounds, >= 3 s. Lent, they all sleep together.
    assert elapsed < 2.5 * latency, elapsed
