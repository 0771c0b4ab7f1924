"""The emulator in its own process for the benchmarks, with call counters and a control pipe.

Run by :class:`_common.Emulator`, not by hand. It serves the same :class:`EmulatorServer`
that ``python -m airflow_puddle.emulator`` serves (default worker pool, SQLite file), and adds
what the admin service does not offer: counts of Login, ListSystems and GetSystem calls
(the backend methods wrapped, as the e2e test does), the process's own CPU time, and direct
backend commands for setting systems up and changing their state at planned wall times,
so that the benchmark's own driving sends no gRPC traffic. The first stdout line is
``{"address": ...}``; then one JSON command per stdin line, one JSON reply per stdout line.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from _common import raise_fd_limit

from airflow_puddle.domain.errors import PreconditionFailedError
from airflow_puddle.domain.lifecycle import TRANSITIONS, Phase
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, EmulatorServer, PuddleBackend

COUNTED = {"login": "Login", "list_systems": "ListSystems", "get_system": "GetSystem"}


class Counters:
    """Calls of the counted backend methods, by RPC name (thread-safe)."""

    def __init__(self, backend: PuddleBackend) -> None:
        self._lock = threading.Lock()
        self.calls = dict.fromkeys(COUNTED.values(), 0)
        for method, rpc in COUNTED.items():
            setattr(backend, method, self._counting(getattr(backend, method), rpc))

    def _counting(self, real: Callable[..., Any], rpc: str) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[rpc] += 1
            return real(*args, **kwargs)

        return counted


class Control:
    """The commands the benchmarks send: set systems up, stop them on a plan, read the counters."""

    def __init__(self, backend: PuddleBackend, counters: Counters) -> None:
        self.backend, self.counters = backend, counters
        self.user = backend.login(DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY).user
        self.created = 0
        self.stopped_at: dict[str, float] = {}
        self.stop_errors: list[str] = []
        self.stop_late_s = 0.0

    def _settle(self, phase: Phase) -> None:
        self.backend.advance_clock(len(TRANSITIONS[phase]) * self.backend.step_seconds + 0.001)

    def create(self, n: int, moving: bool = False) -> dict[str, Any]:
        """``n`` more Started systems; with ``moving``, every 10th+1 stopping and 10th+2 uploading config."""
        ids = [
            self.backend.create_system(
                self.user, cloud="aws", name=f"bench-{self.created + k}", disk_size_gb=256, idle_interval=240,
                product="h2o3", version="3.46.0.6", instance_type_name="m5.2xlarge", tags=[("Team", "bench")],
            ).id
            for k in range(n)
        ]
        self.created += n
        self._settle("create")
        if moving:
            for k, system_id in enumerate(ids):
                if k % 10 == 1:
                    self.backend.stop_system(self.user, system_id)
                elif k % 10 == 2:
                    self.backend.update_config_toml(self.user, system_id, "a = 1")
        return {"ids": ids}

    def start(self, ids: list[str]) -> dict[str, Any]:
        """Start the stopped systems of ``ids`` and let the start finish (the others are left as they are)."""
        started = 0
        for system_id in ids:
            try:
                self.backend.start_system(self.user, system_id)
                started += 1
            except PreconditionFailedError:  # already Started
                pass
        self._settle("start")
        return {"started": started}

    def stop_at(self, plan: list[tuple[str, float]]) -> dict[str, Any]:
        """Stop each system at its wall time, on a thread; :meth:`stops` says when each became Stopped."""
        self.stopped_at, self.stop_errors, self.stop_late_s = {}, [], 0.0
        threading.Thread(target=self._stop_plan, args=(sorted(plan, key=lambda p: p[1]),), daemon=True).start()
        return {"planned": len(plan)}

    def _stop_plan(self, plan: list[tuple[str, float]]) -> None:
        to_stopped = (len(TRANSITIONS["stop"]) - 1) * self.backend.step_seconds
        for system_id, at in plan:
            time.sleep(max(0.0, at - time.time()))
            self.stop_late_s = max(self.stop_late_s, time.time() - at)
            try:
                row = self.backend.stop_system(self.user, system_id)
            except Exception as err:  # reported, never fatal: the benchmark says how many
                self.stop_errors.append(f"{type(err).__name__}: {err}")
                continue
            offset = self.backend.now() - time.time()
            assert row.phase_started_at is not None
            self.stopped_at[system_id] = row.phase_started_at + to_stopped - offset

    def stops(self) -> dict[str, Any]:
        return {"stopped_at": self.stopped_at, "errors": self.stop_errors, "late_s": self.stop_late_s}

    def counts(self) -> dict[str, Any]:
        return dict(self.counters.calls)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--step-seconds", type=float, default=1.0)
    args = parser.parse_args()
    raise_fd_limit()
    server = EmulatorServer(port=0, db_path=args.db, step_seconds=args.step_seconds, cu_capacity=10**9)
    control = Control(server.backend, Counters(server.backend))
    address = server.start()
    print(json.dumps({"address": address}), flush=True)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            op = command.pop("op")
            if op == "quit":
                break
            reply = getattr(control, op)(**command)
            print(json.dumps(reply), flush=True)
    finally:
        server.stop(grace=0.5)


if __name__ == "__main__":
    main()
