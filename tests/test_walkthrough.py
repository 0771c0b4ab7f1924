"""The walkthrough in ``docs/architecture.md`` is true: its hops exist and a real deferred create enters them in order.

The worker's hops (and the resume) are checked on a ``dag.test()`` run of a deferrable create;
the triggerer's on a wait run the way an Airflow 3.3 triggerer runs it, through Airflow's
``SharedStreamManager``. The profiler is ``scripts/create_hops.py``'s.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import re
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_puddle.client import SystemsClient
from airflow_puddle.client.models import TagData
from tests.conftest import load_dag

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## One data path: a deferred create, function by function"
TRIGGERER = range(15, 24)
"""The hops that run in the triggerer (the rest run in a worker)."""

COMEBACKS = {"operators.base", "triggers.looks", "client.waiting", "waits"}
"""The modules the walkthrough says a reader comes back to."""

DAG = '''
import pendulum
from airflow.sdk import DAG
from airflow_puddle.operators.puddle import PuddleCreateSystemOperator

with DAG("walkthrough", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    PuddleCreateSystemOperator(task_id="create", name="walkthrough", product="dai", version="1.11.1",
                               instance_type_name="m5.2xlarge", tags={"Team": "ml"}, deferrable=True,
                               poll_interval=0.05)
'''


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hops() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.find("\n## ", len(SECTION))] if "\n## " in section[len(SECTION):] else section
    numbered = re.findall(r"^(\d+)\. `([\w.]+)`", section, flags=re.MULTILINE)
    assert [int(n) for n, _ in numbered] == list(range(1, len(numbered) + 1)), "the hops are numbered 1..n"
    return [name for _, name in numbered]


def module_and_qualname(hop: str) -> tuple[str, str]:
    """Split ``triggers.looks.PollLooks.next`` into the module and the qualified name, by importing."""
    parts = hop.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            importlib.import_module("airflow_puddle." + ".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        return ".".join(parts[:cut]), ".".join(parts[cut:])
    raise AssertionError(f"{hop}: no module of airflow_puddle")


def test_the_walkthrough_has_at_most_30_hops_that_all_exist() -> None:
    names = hops()
    assert 20 <= len(names) <= 30, names
    assert len(set(names)) == len(names), "a hop is named twice"
    for hop in names:
        module, qualname = module_and_qualname(hop)
        obj: Any = importlib.import_module("airflow_puddle." + module)
        for attr in qualname.split("."):
            assert hasattr(obj, attr), f"{hop}: {module} has no {qualname}"
            obj = getattr(obj, attr)
        assert callable(obj), f"{hop} is not a function"


def test_the_modules_a_reader_comes_back_to_are_the_ones_it_names() -> None:
    modules = [module_and_qualname(hop)[0] for hop in hops()]
    runs = [m for i, m in enumerate(modules) if i == 0 or modules[i - 1] != m]
    assert {m for m in runs if runs.count(m) > 1} == COMEBACKS


def in_order(wanted: list[str], entered: list[str]) -> list[str]:
    """The hops of ``wanted`` missing from ``entered``, or entered out of order."""
    position = {name: i for i, name in reversed(list(enumerate(entered)))}
    wrong, last = [], -1
    for hop in wanted:
        at = position.get(hop)
        if at is None or at < last:
            wrong.append(hop)
        else:
            last = at
    return wrong


def profiled(run: Any) -> list[str]:
    entered = script("create_hops").Entered(ROOT / "airflow_puddle")
    threading.setprofile(entered)
    sys.setprofile(entered)
    try:
        run()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return [f"{module.removeprefix('airflow_puddle.')}.{fn}" for module, fn in entered.entered]


@pytest.mark.usefixtures("airflow_db", "puddle_conn")
def test_a_deferred_create_in_a_worker_enters_the_hops_in_order() -> None:
    dag = load_dag(DAG, "walkthrough.py")
    runs: list[Any] = []
    entered = profiled(lambda: runs.append(dag.test()))
    assert {ti.task_id: str(ti.state) for ti in runs[0].get_task_instances()} == {"create": "success"}
    worker = [hop for n, hop in enumerate(hops(), 1) if n not in TRIGGERER]
    assert in_order(worker, entered) == []


@pytest.mark.usefixtures("puddle_conn")
def test_a_wait_in_a_triggerer_enters_the_hops_in_order(client: SystemsClient) -> None:
    from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

    system = client.create("walkthrough-wait", product="dai", version="1.11.1", instance_type_name="m5.2xlarge",
                           tags=[TagData("Team", "ml")])
    wait = PuddleSystemStateTrigger(system_id=system.id, target="started", deadline=time.time() + 60,
                                    poll_interval=0.05)
    events: list[dict[str, Any]] = []
    entered = profiled(lambda: events.append(asyncio.run(script("wait_hops").shared(wait))))
    assert events[0]["status"] == "success", events
    triggerer = [hop for n, hop in enumerate(hops(), 1) if n in TRIGGERER]
    assert in_order(triggerer, entered) == []
