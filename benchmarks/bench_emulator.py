"""The emulator: state work per RPC, and GetSystem / ListSystems per second over real gRPC.

Run: ``python benchmarks/bench_emulator.py [--quick]`` (``make bench`` runs ``--quick``).
At 50 and then 1,000 systems, a fifth of them mid-transition (stopping, or uploading
config.toml):

- state work: an in-process :class:`PuddleBackend` on a temp SQLite file, the backend calls
  one RPC makes (the token check, then the call with its lifecycle sweep), median over many;
- over gRPC: the emulator in its own process (the same ``EmulatorServer`` as
  ``python -m airflow_puddle.emulator``), 1, 10 and 50 concurrent callers on raw ``grpc.aio``
  stubs, each on its own channel and connection, in this process: calls per second, median
  round trip, and how busy each process was (CPU seconds per second: 1.0 is one core).

Prints figures and the targets; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc.aio
from _common import Emulator, target

from airflow_puddle._proto.puddle.v2 import system_service_pb2, system_service_pb2_grpc
from airflow_puddle.client import Authorizer
from airflow_puddle.domain.wire import TOKEN_METADATA_KEY
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, PuddleBackend

SIZES = (50, 1000)
CALLERS = (1, 10, 50)
STEP_SECONDS = 600.0  # long enough that the systems set in motion stay mid-transition while measuring
SCALING_GOAL = 1.5
LIST_GOAL_MS = 5.0
GET_GOAL_PER_S = 3000
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", 64 * 2**20)]


def median_us(call: Callable[[], object], calls: int) -> float:
    """Median wall time of ``call`` in microseconds, after a short warm-up."""
    for _ in range(min(50, calls)):
        call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def measure(systems: int, db_path: str, get_calls: int, list_calls: int) -> tuple[float, float]:
    """(GetSystem, ListSystems) state work in µs with ``systems`` systems, a fifth mid-transition."""
    with PuddleBackend(
        db_path, step_seconds=STEP_SECONDS, api_key_id=DEFAULT_API_KEY_ID, api_secret_key=DEFAULT_API_SECRET_KEY,
        cu_capacity=4 * systems,
    ) as backend:
        user = backend.login(DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY).user
        ids = [
            backend.create_system(
                user, cloud="aws", name=f"bench-{n}", disk_size_gb=256, idle_interval=240, product="h2o3",
                version="3.46.0.6", instance_type_name="m5.2xlarge", tags=[("Team", "bench")],
            ).id
            for n in range(systems)
        ]
        backend.advance_clock(3 * STEP_SECONDS)  # every create finished: all Started
        token = backend.login(DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY).token
        for n, system_id in enumerate(ids):
            if n % 10 == 1:
                backend.stop_system(user, system_id)
            elif n % 10 == 2:
                backend.update_config_toml(user, system_id, "a = 1")
        target = ids[len(ids) // 2]

        def get_system() -> None:  # what one GetSystem RPC asks of the backend
            backend.check_token(token)
            backend.get_system(user, target)

        def list_systems() -> None:  # what one ListSystems RPC asks of the backend
            backend.check_token(token)
            backend.list_systems(user)

        return median_us(get_system, get_calls), median_us(list_systems, list_calls)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def hammer(emulator: Emulator, token: str, method: str, request: Any, callers: int, seconds: float
                 ) -> dict[str, float]:
    """``callers`` concurrent callers making ``method`` for ``seconds``: calls/s, median ms, CPU of each side."""
    channels = [grpc.aio.insecure_channel(emulator.address.removeprefix("http://"), options=CHANNEL_OPTIONS)
                for _ in range(callers)]
    calls = [getattr(system_service_pb2_grpc.SystemServiceStub(c), method) for c in channels]
    metadata = ((TOKEN_METADATA_KEY, token),)
    await asyncio.gather(*(call(request, metadata=metadata, timeout=60) for call in calls))  # connect, warm up
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds

    async def caller(call: Any) -> None:
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            await call(request, metadata=metadata, timeout=60)
            latencies.append(time.perf_counter() - start)

    t0, ours, theirs = time.perf_counter(), cpu_s(), emulator.cpu_s()
    await asyncio.gather(*(caller(call) for call in calls))
    elapsed = time.perf_counter() - t0
    figures = {"per_s": len(latencies) / elapsed, "median_ms": statistics.median(latencies) * 1e3,
               "emulator_busy": (emulator.cpu_s() - theirs) / elapsed, "client_busy": (cpu_s() - ours) / elapsed}
    await asyncio.gather(*(c.close(None) for c in channels))
    return figures


def over_grpc(seconds: float) -> dict[tuple[int, str, int], dict[str, float]]:
    """Every (systems, method, callers) cell against the emulator in its own process."""
    cells: dict[tuple[int, str, int], dict[str, float]] = {}
    with Emulator(step_seconds=STEP_SECONDS) as emulator:
        ids: list[str] = []
        for systems in SIZES:
            ids += emulator.call("create", n=systems - len(ids), moving=True)["ids"]
            authorizer = Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
            authorizer.login()
            assert authorizer.token is not None
            requests = {"GetSystem": system_service_pb2.GetSystemRequest(system_id=ids[len(ids) // 2]),
                        "ListSystems": system_service_pb2.ListSystemsRequest()}
            for method, request in requests.items():
                for callers in CALLERS:
                    cells[systems, method, callers] = asyncio.run(
                        hammer(emulator, authorizer.token, method, request, callers, seconds))
            authorizer.close()
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, shorter runs (make bench)")
    args = parser.parse_args()
    get_calls, list_calls, seconds = (1000, 60, 1.5) if args.quick else (3000, 200, 5.0)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for systems in SIZES:
            results[systems] = measure(systems, str(Path(tmp) / f"bench-{systems}.sqlite"), get_calls, list_calls)
    print(f"emulator state work per RPC, median µs ({get_calls} GetSystem / {list_calls} ListSystems calls; "
          "a fifth of the systems mid-transition)")
    print(f"{'systems':>8}  {'GetSystem':>10}  {'ListSystems':>12}")
    for systems, (get_us, list_us) in results.items():
        print(f"{systems:>8}  {get_us:>10.1f}  {list_us:>12.1f}")
    cells = over_grpc(seconds)
    print(f"\nover gRPC, emulator in its own process, {seconds:g} s per cell; busy = CPU s per s (1.0 = one core)")
    print(f"{'systems':>8} {'method':>12} {'callers':>8} {'calls/s':>9} {'median ms':>10} {'emulator busy':>14} "
          f"{'client busy':>12}")
    for (systems, method, callers), c in cells.items():
        print(f"{systems:>8} {method:>12} {callers:>8} {c['per_s']:>9,.0f} {c['median_ms']:>10.2f} "
              f"{c['emulator_busy']:>14.2f} {c['client_busy']:>12.2f}")
    small, large = SIZES
    ratio = results[large][0] / results[small][0]
    target("emulator-getsystem-state-scaling", f"{ratio:.2f}x at {large} vs {small} systems",
           f"<= {SCALING_GOAL}x", ratio <= SCALING_GOAL)
    listed = cells[large, "ListSystems", 1]["median_ms"]
    target(f"emulator-listsystems-{large}", f"{listed:.1f} ms median round trip, 1 caller",
           f"<= {LIST_GOAL_MS:g} ms", listed <= LIST_GOAL_MS)
    rate = cells[large, "GetSystem", 10]["per_s"]
    target(f"emulator-getsystem-{large}-10-callers", f"{rate:,.0f} calls/s", f">= {GET_GOAL_PER_S:,}/s",
           rate >= GET_GOAL_PER_S)


if __name__ == "__main__":
    main()
