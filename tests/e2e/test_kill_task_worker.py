"""The reliability harness's hook that crashes the worker running a task instance.

A real process tree shaped as the Task SDK makes it (``supervise`` forks a task runner that leads
its own process group and retitles itself ``airflow worker -- <ti id>``): a service, and under it
one supervisor per task instance. The hook must kill exactly the named task's supervisor, runner
and the runner's own child, and leave the service and the other task alone. ``make reliability``
checks the same hook against the real LocalExecutor and Celery workers (``worker-kill``).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from reliability.procs import RUN_MARKER, NotReady, Service, tree, wait_until
from reliability.workers import find_task_worker, kill_task_worker, task_title

_TREE = '''
import os, sys, time
from setproctitle import setproctitle

def supervise(ti_id):
    setproctitle(f"airflow supervisor: {ti_id}")
    runner = os.fork()
    if runner == 0:
        os.setpgid(0, 0)
        setproctitle(f"airflow worker -- {ti_id}")
        if os.fork() == 0:
            setproctitle(f"a process the task started {ti_id}")
        time.sleep(600)
        os._exit(0)
    os.waitpid(runner, 0)
    os._exit(0)

for ti_id in sys.argv[1:]:
    if os.fork() == 0:
        supervise(ti_id)
time.sleep(600)
'''


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Service, str, str]]:
    """A service running two task instances (ids ``a``, ``b``), each under its supervisor."""
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    env = {**os.environ, RUN_MARKER: f"test-{uuid.uuid4()}"}
    service = Service.spawn("executor", [sys.executable, "-c", _TREE, a, b], env=env, log_path=tmp_path / "out.log")
    try:
        wait_until("both task runners", lambda: True if all(
            find_task_worker(tree([service.pid]), t) for t in (a, b)) else None, 30)
        yield service, a, b
    finally:
        service.stop(grace=1)  # only the leader gets SIGTERM; the rest of the tree is SIGKILLed after 1 s


def _titles(service: Service) -> list[str]:
    return [" ".join(p.cmdline()).strip() for p in tree([service.pid])]


def test_kills_the_named_tasks_supervisor_runner_and_its_children_only(workers: tuple[Service, str, str]) -> None:
    service, a, b = workers
    runner_a = find_task_worker(tree([service.pid]), a)
    assert runner_a is not None
    child_a = runner_a.task.children()[0]

    killed = kill_task_worker(lambda: tree([service.pid]), a, {"executor": service.pid})

    assert killed.service == "executor" and killed.gone
    assert killed.supervisor == f"{runner_a.supervisor.pid} airflow supervisor: {a}"
    assert killed.task == f"{runner_a.task.pid} {task_title(a)}"
    wait_until("the task's own child to go", lambda: True if not child_a.is_running()
               or child_a.status() == psutil.STATUS_ZOMBIE else None, 10)
    titles = _titles(service)
    assert not {f"airflow supervisor: {a}", task_title(a), f"a process the task started {a}"} & set(titles)
    assert f"airflow supervisor: {b}" in titles and task_title(b) in titles
    assert service.running()


def test_a_task_with_no_runner_is_an_error_naming_it(workers: tuple[Service, str, str]) -> None:
    service, _, _ = workers
    before = _titles(service)
    missing = str(uuid.uuid4())

    with pytest.raises(NotReady, match=f"task runner of task instance {missing}"):
        kill_task_worker(lambda: tree([service.pid]), missing, {"executor": service.pid}, timeout=1)

    assert _titles(service) == before
