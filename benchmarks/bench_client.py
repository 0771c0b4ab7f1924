"""Our client against the raw gRPC stub, sync and async, on the emulator in its own process.

Run: ``python benchmarks/bench_client.py [--quick]`` (``make bench`` runs ``--quick``).
One call in flight at a time: ``SystemsClient.get`` (validation, token, retry loop, error
mapping, the ``System`` model) against ``SystemServiceStub.GetSystem`` with the same token,
in interleaved rounds so that both see the same load; the median per call of each, and the
ratio. Then calls per second, sync and with 20 concurrent async callers. Prints figures and
the overhead targets; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from collections.abc import Awaitable, Callable

import grpc
import grpc.aio
from _common import Emulator, target

from airflow_puddle._proto.puddle.v2 import system_service_pb2, system_service_pb2_grpc
from airflow_puddle.client import CLOUD_AWS, AsyncAuthorizer, AsyncSystemsClient, Authorizer, SystemsClient
from airflow_puddle.domain.wire import TOKEN_METADATA_KEY
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

OVERHEAD_GOAL = 1.3
CONCURRENCY = 20


def sync_round(call: Callable[[], object], calls: int, into: list[float]) -> None:
    for _ in range(calls):
        start = time.perf_counter()
        call()
        into.append(time.perf_counter() - start)


async def async_round(call: Callable[[], Awaitable[object]], calls: int, into: list[float]) -> None:
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        into.append(time.perf_counter() - start)


def compare_sync(address: str, system_id: str, rounds: int, calls: int) -> tuple[float, float]:
    """Median seconds per call: (client, raw stub)."""
    client = SystemsClient(CLOUD_AWS, authorizer=Authorizer(address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))
    client.get(system_id)
    token = client.authorizer.token
    channel = grpc.insecure_channel(address.removeprefix("http://"))
    stub = system_service_pb2_grpc.SystemServiceStub(channel)

    def raw() -> object:
        request = system_service_pb2.GetSystemRequest(system_id=system_id)
        return stub.GetSystem(request, timeout=30, metadata=((TOKEN_METADATA_KEY, token),))

    ours: list[float] = []
    theirs: list[float] = []
    raw()
    for _ in range(rounds):
        sync_round(lambda: client.get(system_id), calls, ours)
        sync_round(raw, calls, theirs)
    channel.close()
    client.authorizer.close()
    return statistics.median(ours), statistics.median(theirs)


async def compare_async(address: str, system_id: str, rounds: int, calls: int) -> tuple[float, float]:
    """Median seconds per call: (async client, raw aio stub)."""
    client = AsyncSystemsClient(CLOUD_AWS, authorizer=AsyncAuthorizer(address, DEFAULT_API_KEY_ID,
                                                                        DEFAULT_API_SECRET_KEY))
    await client.get(system_id)
    token = client.authorizer.token
    channel = grpc.aio.insecure_channel(address.removeprefix("http://"))
    stub = system_service_pb2_grpc.SystemServiceStub(channel)

    async def raw() -> object:
        request = system_service_pb2.GetSystemRequest(system_id=system_id)
        return await stub.GetSystem(request, timeout=30, metadata=((TOKEN_METADATA_KEY, token),))

    ours: list[float] = []
    theirs: list[float] = []
    await raw()
    for _ in range(rounds):
        await async_round(lambda: client.get(system_id), calls, ours)
        await async_round(raw, calls, theirs)
    await channel.close(None)
    await client.authorizer.close()
    return statistics.median(ours), statistics.median(theirs)


def throughput(address: str, system_id: str, calls: int) -> tuple[float, float]:
    """Calls per second: (sync, one after another; async, CONCURRENCY callers on one client)."""
    sync = SystemsClient(CLOUD_AWS, authorizer=Authorizer(address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))
    sync.get(system_id)
    start = time.perf_counter()
    for _ in range(calls):
        sync.get(system_id)
    sync_rate = calls / (time.perf_counter() - start)
    sync.authorizer.close()

    async def run_async() -> float:
        client = AsyncSystemsClient(CLOUD_AWS, authorizer=AsyncAuthorizer(address, DEFAULT_API_KEY_ID,
                                                                            DEFAULT_API_SECRET_KEY))
        await client.get(system_id)

        async def worker() -> None:
            for _ in range(calls // CONCURRENCY):
                await client.get(system_id)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        took = time.perf_counter() - t0
        await client.authorizer.close()
        return calls / took

    return sync_rate, asyncio.run(run_async())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (make bench)")
    args = parser.parse_args()
    rounds, calls = (10, 100) if args.quick else (20, 250)
    with Emulator(step_seconds=0.1) as emulator:
        system_id = emulator.call("create", n=1)["ids"][0]
        sync_ours, sync_raw = compare_sync(emulator.address, system_id, rounds, calls)
        async_ours, async_raw = asyncio.run(compare_async(emulator.address, system_id, rounds, calls))
        sync_rate, async_rate = throughput(emulator.address, system_id, rounds * calls)
    print(f"GetSystem, one call in flight, median of {rounds * calls} interleaved calls each "
          "(emulator in its own process)")
    print(f"{'':8}{'client ms':>11}{'raw stub ms':>13}{'ratio':>8}")
    for name, ours, raw in (("sync", sync_ours, sync_raw), ("async", async_ours, async_raw)):
        print(f"{name:8}{ours * 1e3:>11.3f}{raw * 1e3:>13.3f}{ours / raw:>8.2f}")
    print(f"client get: {sync_rate:,.0f} calls/s sync, {async_rate:,.0f} calls/s async ({CONCURRENCY} concurrent); "
          f"client peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    for name, ours, raw in (("sync", sync_ours, sync_raw), ("async", async_ours, async_raw)):
        target(f"client-{name}-vs-raw-stub", f"{ours / raw:.2f}x ({ours * 1e3:.3f} vs {raw * 1e3:.3f} ms median)",
               f"<= {OVERHEAD_GOAL}x", ours / raw <= OVERHEAD_GOAL)


if __name__ == "__main__":
    main()
