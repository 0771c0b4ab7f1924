"""One phase of ``bench_triggers.py``: N system-state waits in one asyncio loop, as a triggerer runs them.

Run by ``bench_triggers.py`` in a fresh process per phase (so CPU and RSS are this phase's own).
Each trigger goes the way ``TriggerRunner.run_trigger`` sends it: a non-None
``shared_stream_key()`` subscribes it to Airflow's own ``SharedStreamManager`` and feeds
``filter_shared_stream``; ``shared=False`` runs its own ``run()``. Triggers are created as
``TriggerRunner.create_triggers`` creates them, yielding to the loop between two.

Protocol: writes ``{"ready": ...}`` to ``--report-fd``, reads the launch wall time from stdin,
launches every trigger then, and writes the phase's figures as one JSON line when all have
ended (or at ``--cap``). Trigger logs go to stdout, which the parent sends to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import grpc.aio
import psutil
from _common import raise_fd_limit
from airflow.triggers.shared_stream import SharedStreamManager

from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

LAG_PERIOD_S = 0.05
IDLE_PROBE_S = 1.0


class Sampler:
    """Event-loop lag (how late a ``sleep(LAG_PERIOD_S)`` wakes), peak RSS and garbage-collector pauses."""

    def __init__(self) -> None:
        self.lags: list[tuple[float, float]] = []
        self.gc_pauses: list[tuple[float, int, float]] = []  # (wall time, generation, seconds)
        self.rss_peak = 0
        self._ps = psutil.Process()
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append((time.time(), info["generation"], time.perf_counter() - self._gc_started))

    async def run(self) -> None:
        last_rss = 0.0
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_PERIOD_S)
            now = time.monotonic()
            self.lags.append((time.time(), now - before - LAG_PERIOD_S))
            if now - last_rss >= 1.0:
                self.rss_peak, last_rss = max(self.rss_peak, self._ps.memory_info().rss), now


def count_channels() -> list[int]:
    """Count ``grpc.aio`` channels opened from here on (a pass-through wrapper); ``[opened]``."""
    opened = [0]
    real = grpc.aio.insecure_channel

    def counting(*args: Any, **kwargs: Any) -> grpc.aio.Channel:
        opened[0] += 1
        return real(*args, **kwargs)

    setattr(grpc.aio, "insecure_channel", counting)  # noqa: B010  (the transport looks it up per channel)
    return opened


class Phase:
    """N waits for ``stopped``, shared or per trigger, and what each one yielded."""

    def __init__(self, ids: list[str], *, shared: bool, interval: float) -> None:
        self.ids, self.shared, self.interval = ids, shared, interval
        self.manager = SharedStreamManager()
        self.events: dict[str, tuple[str, float, str]] = {}
        self.problems: list[str] = []

    async def run_trigger(self, trigger_id: int, trigger: PuddleSystemStateTrigger) -> None:
        """What ``TriggerRunner.run_trigger`` does with a trigger, minus the database and the spans."""
        key = trigger.shared_stream_key()
        try:
            if key is not None:
                stream = trigger.filter_shared_stream(self.manager.subscribe(trigger_id=trigger_id,
                                                                             trigger=trigger, key=key))
            else:
                stream = trigger.run()
            async for event in stream:
                payload = event.payload
                self.events.setdefault(trigger.system_id, (str(payload["status"]), time.time(),
                                                           str(payload.get("message", ""))))
        except Exception as err:  # the triggerer would fail the task: an error event here
            self.problems.append(f"{type(err).__name__}: {err}")
        finally:
            if key is not None:
                await self.manager.unsubscribe(trigger_id, key)

    async def warm_up(self) -> float:
        """One wait through ``run()`` before the launch, loading what a triggerer that ran before has; its seconds."""
        started = time.monotonic()
        trigger = PuddleSystemStateTrigger(system_id=self.ids[0], target="started", deadline=time.time() + 60,
                                           poll_interval=self.interval, shared=self.shared)
        events = trigger.run()
        await events.__anext__()
        await events.aclose()  # type: ignore[attr-defined]
        return time.monotonic() - started

    async def launch(self, deadline: float) -> list[asyncio.Task[None]]:
        """Create every trigger and its task, yielding to the loop between two."""
        tasks = []
        for trigger_id, system_id in enumerate(self.ids):
            await asyncio.sleep(0)
            trigger = PuddleSystemStateTrigger(system_id=system_id, target="stopped", deadline=deadline,
                                               poll_interval=self.interval, shared=self.shared)
            tasks.append(asyncio.create_task(self.run_trigger(trigger_id, trigger)))
        return tasks


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def load(args: argparse.Namespace, ids: list[str], report: Any, opened: list[int]) -> dict[str, Any]:
    phase = Phase(ids, shared=args.mode == "shared", interval=args.interval)
    warm_up_s = await phase.warm_up()
    opened[0] = 0
    sampler = Sampler()
    sampling = asyncio.create_task(sampler.run())
    idle_cpu = cpu_s()
    await asyncio.sleep(IDLE_PROBE_S)  # the sampler alone: its CPU is subtracted from the phase's
    idle_cpu_per_s = (cpu_s() - idle_cpu) / IDLE_PROBE_S
    rss0 = psutil.Process().memory_info().rss
    report.write(json.dumps({"ready": True}) + "\n")
    report.flush()
    launch_at = float(await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline))
    await asyncio.sleep(max(0.0, launch_at - time.time()))
    t0, cpu0 = time.time(), cpu_s()
    tasks = await phase.launch(deadline=t0 + args.deadline_s)
    created = time.time()
    _done, pending = await asyncio.wait(tasks, timeout=t0 + args.cap_s - time.time())
    end, cpu = time.time(), cpu_s() - cpu0
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await phase.manager.stop_all()
    sampling.cancel()
    return {
        "warm_up_s": warm_up_s, "t0": t0, "created_s": created - t0, "duration_s": end - t0, "cpu_s": cpu,
        "idle_cpu_per_s": idle_cpu_per_s,
        "rss0_mb": rss0 / 2**20, "rss_peak_mb": max(sampler.rss_peak, rss0) / 2**20, "channels": opened[0],
        "lags": [lag for t, lag in sampler.lags if t0 <= t <= end],
        "start_lags": [lag for t, lag in sampler.lags if t0 <= t <= created + args.interval],
        "gc_pauses": [[gen, s] for t, gen, s in sampler.gc_pauses if t0 <= t <= end],
        "events": phase.events, "problems": phase.problems, "unfinished": len(pending),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("shared", "per-trigger"), required=True)
    parser.add_argument("--ids-file", required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--deadline-s", type=float, required=True, help="the waits' deadline, after the launch")
    parser.add_argument("--cap-s", type=float, required=True, help="when unfinished waits are cut, after the launch")
    parser.add_argument("--report-fd", type=int, required=True)
    args = parser.parse_args()
    raise_fd_limit()
    opened = count_channels()
    with os.fdopen(args.report_fd, "w") as report:
        result = asyncio.run(load(args, json.loads(Path(args.ids_file).read_text()), report, opened))
        report.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
