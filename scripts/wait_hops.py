"""How many of our functions a deferred wait goes through in the triggerer, from the trigger to its event.

Run: ``.venv/bin/python scripts/wait_hops.py [--list]``. An in-process emulator boots one system; a
``PuddleSystemStateTrigger`` waits for it to be Started in each of its three ways: through Airflow's
``SharedStreamManager`` (``filter_shared_stream``), alone over a private poll (``run()``), and per
trigger (``shared=False``: the client's wait). A profiler records each distinct function of
``airflow_puddle`` entered in the wait's tasks (the manager's shared-poll task is counted apart),
generated protobuf code and comprehensions left out. "Hops" leaves out the models' and status
tables' accessors too (``client/models.py``, ``domain/statuses.py``): what a reader follows.
``--list`` prints the functions in the order they were first entered. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any

DATA = ("airflow_puddle.client.models.", "airflow_puddle.domain.statuses.")
"""Accessors of data, not steps of the wait: left out of the hops."""

POLL_STARTS = ("open_shared_stream", "poll_systems", "AsyncSystemsClient.list")
"""A task that starts in one of these is the manager's shared poll (or its ListSystems under a timeout), counted
apart; any other task is the wait's."""


class Hops:
    """The ``airflow_puddle`` functions entered, by asyncio task, in the order first entered."""

    def __init__(self, package: Path) -> None:
        self.package = str(package)
        self.root = package.parent
        self.by_task: dict[str, dict[tuple[str, str], None]] = {}

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        code = frame.f_code
        if not code.co_filename.startswith(self.package) or "_proto" in code.co_filename or code.co_name[0] == "<":
            return
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        name = task.get_name() if task is not None else "main"
        module = Path(code.co_filename).relative_to(self.root).with_suffix("").as_posix().replace("/", ".")
        self.by_task.setdefault(name, {})[module, code.co_qualname] = None

    def count(self, run: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
        sys.setprofile(self)
        try:
            return asyncio.run(run())
        finally:
            sys.setprofile(None)


async def shared(wait: Any) -> dict[str, Any]:
    from airflow.triggers.shared_stream import SharedStreamManager

    manager = SharedStreamManager()
    key = wait.shared_stream_key()

    async def follow() -> dict[str, Any]:
        stream = manager.subscribe(trigger_id=1, trigger=wait, key=key)
        try:
            async for event in wait.filter_shared_stream(stream):
                return dict(event.payload)
            raise AssertionError("no event")
        finally:
            await manager.unsubscribe(1, key)

    try:
        return await asyncio.create_task(follow(), name="wait")
    finally:
        await manager.stop_all()


async def alone(wait: Any) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        events = wait.run()
        try:
            return dict((await anext(events)).payload)
        finally:
            await events.aclose()

    return await asyncio.create_task(first(), name="wait")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the functions entered, in order")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="puddle-hops-") as tmp:
        os.environ.update({"AIRFLOW_HOME": tmp, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
        import airflow_puddle
        from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
        from airflow_puddle.client.models import TagData
        from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
        from airflow_puddle.emulator.server import EmulatorServer
        from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

        server = EmulatorServer(port=0, db_path=f"{tmp}/hops.sqlite", api_key_id=DEFAULT_API_KEY_ID,
                                api_secret_key=DEFAULT_API_SECRET_KEY, step_seconds=0.2)
        server.start()
        try:
            host, _, port = server.address.rpartition(":")
            os.environ["AIRFLOW_CONN_PUDDLE_DEFAULT"] = json.dumps({
                "conn_type": "puddle", "host": host, "port": int(port), "login": DEFAULT_API_KEY_ID,
                "password": DEFAULT_API_SECRET_KEY})
            client = SystemsClient(CLOUD_AWS, authorizer=Authorizer(server.address, DEFAULT_API_KEY_ID,
                                                                    DEFAULT_API_SECRET_KEY))
            ways: list[tuple[str, Callable[[Any], Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]]] = [
                ("shared", shared, {}), ("run", alone, {}), ("per-trigger", alone, {"shared": False})]
            for name, way, kwargs in ways:
                system = client.create(f"hops-{name}", product="dai", version="1.11.1",
                                       instance_type_name="m5.2xlarge", tags=[TagData("Team", "ml")])
                wait = PuddleSystemStateTrigger(system_id=system.id, target="started", deadline=time.time() + 60,
                                                poll_interval=0.1, **kwargs)
                hops = Hops(Path(airflow_puddle.__file__).parent)
                event = hops.count(functools.partial(way, wait))
                assert event["status"] == "success", event
                polls = [t for t in hops.by_task.values() if next(iter(t))[1].endswith(POLL_STARTS)]
                waits = [t for name, t in hops.by_task.items() if t not in polls and name != "main"]
                path = list(dict.fromkeys(f for t in waits for f in t))
                steps = [(module, fn) for module, fn in path if f"{module}." not in DATA]
                modules = {module for module, _ in steps}
                poll = len({f for t in polls for f in t})
                print(f"{name}: {len(steps)} hops in {len(modules)} modules ({len(path)} functions with the data "
                      f"accessors) from the trigger to its event; {poll} functions in the shared poll's task")
                if args.list:
                    print("".join(f"  {module}.{fn}\n" for module, fn in steps), end="")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
