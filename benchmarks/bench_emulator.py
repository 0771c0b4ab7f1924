"""The emulator's state work per RPC, and how it grows with the number of systems.

Run: ``make bench``. Builds a :class:`PuddleBackend` on a temp SQLite file with 50 and then
1,000 systems, a fifth of them mid-transition (stopping, or uploading config.toml), and
times the backend calls one RPC makes (the token check, then the call with its lifecycle
sweep) as the median over many calls. Prints figures and whether the GetSystem target
holds; asserts nothing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, PuddleBackend

SIZES = (50, 1000)
GET_CALLS = 3000
LIST_CALLS = 200
STEP_SECONDS = 600.0  # long enough that the systems set in motion stay mid-transition while measuring
SCALING_GOAL = 1.5


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


def measure(systems: int, db_path: str) -> tuple[float, float]:
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

        return median_us(get_system, GET_CALLS), median_us(list_systems, LIST_CALLS)


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for systems in SIZES:
            results[systems] = measure(systems, str(Path(tmp) / f"bench-{systems}.sqlite"))
    print(f"emulator state work per RPC, median µs ({GET_CALLS} GetSystem / {LIST_CALLS} ListSystems calls; "
          "a fifth of the systems mid-transition)")
    print(f"{'systems':>8}  {'GetSystem':>10}  {'ListSystems':>12}")
    for systems, (get_us, list_us) in results.items():
        print(f"{systems:>8}  {get_us:>10.1f}  {list_us:>12.1f}")
    small, large = SIZES
    ratio = results[large][0] / results[small][0]
    verdict = "holds" if ratio <= SCALING_GOAL else "misses"
    print(f"target getsystem-state-scaling: {ratio:.2f}x at {large} vs {small} systems "
          f"(goal <= {SCALING_GOAL}x) {verdict}")


if __name__ == "__main__":
    main()
