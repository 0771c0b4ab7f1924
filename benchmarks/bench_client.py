"""Client round trips against a local emulator: calls per second, sync and async, and RSS.

Run: ``make bench``. Prints figures; asserts nothing (targets live here, not in tests).
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from pathlib import Path

from airflow_puddle.client import CLOUD_AWS, AsyncAuthorizer, AsyncSystemsClient, Authorizer, SystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, EmulatorServer

CALLS = 2000
CONCURRENCY = 20


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(
        port=0, db_path=str(Path(tmp) / "bench.sqlite"), step_seconds=0.1
    ) as emulator:
        sync = SystemsClient(CLOUD_AWS, authorizer=Authorizer(emulator.address, DEFAULT_API_KEY_ID,
                                                                DEFAULT_API_SECRET_KEY))
        system = sync.create("bench", product="dai", version="1.11.1", instance_type_name="m5.2xlarge",
                             tags=[TagData("Team", "bench")])
        sync.wait_for_system_started(system.id, poll_interval_s=0.05)

        start = time.perf_counter()
        for _ in range(CALLS):
            sync.get(system.id)
        elapsed = time.perf_counter() - start
        print(f"sync get:  {CALLS} calls in {elapsed:.2f}s = {CALLS / elapsed:,.0f} calls/s, "
              f"{elapsed / CALLS * 1e3:.2f} ms/call")

        async def run_async() -> float:
            client = AsyncSystemsClient(CLOUD_AWS, authorizer=AsyncAuthorizer(
                emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))
            await client.get(system.id)
            per_task = CALLS // CONCURRENCY

            async def worker() -> None:
                for _ in range(per_task):
                    await client.get(system.id)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            took = time.perf_counter() - t0
            await client.authorizer.close()  # type: ignore[attr-defined]
            return took

        elapsed = asyncio.run(run_async())
        print(f"async get: {CALLS} calls ({CONCURRENCY} concurrent) in {elapsed:.2f}s = "
              f"{CALLS / elapsed:,.0f} calls/s")
        print(f"peak RSS: {rss_mb():.0f} MB (client and emulator in one process)")


if __name__ == "__main__":
    main()
