"""The executors a run can use, and the processes that run its tasks.

* ``local``: the scheduler's LocalExecutor; its worker processes are the scheduler's children.
* ``celery``: the CeleryExecutor, with Redis as the broker, the metadata DB (PostgreSQL) as the
  result backend and :data:`CELERY_WORKERS` ``airflow celery worker`` processes, each its own
  :class:`~reliability.procs.Service` (its own session, stopped by pid), without a log server.

Either way, a task instance runs as two processes: its *supervisor* (a LocalExecutor worker
process, or a Celery worker's pool child) and the *task runner* it forks, titled
``airflow worker -- <task instance id>`` and the leader of its own process group.
:func:`kill_task_worker` SIGKILLs both: the crash of the worker that runs a task (the hook for
scenarios that crash a task mid-flight; ``worker-kill`` checks it on each executor).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import psutil

from reliability.procs import NotReady, alive, describe, wait_until

EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
CELERY_WORKERS = 2
CELERY_CONCURRENCY = 16  # per worker: 32 task slots in all, as [core] parallelism
FIND_TIMEOUT_S = 60.0


def celery_settings(broker_url: str, result_backend: str) -> dict[str, str]:
    """The CeleryExecutor's settings (``AIRFLOW__CELERY__*``) for every component."""
    return {
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(CELERY_CONCURRENCY),
        "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",  # sending a task: a margin over 1 s on 2 busy cores
    }


def celery_worker_args(name: str) -> list[str]:
    """``airflow celery worker`` arguments for worker ``name``: no log server (it would bind every
    interface; the api-server reads task logs from the shared home)."""
    return ["celery", "worker", "--skip-serve-logs", "--celery-hostname", f"{name}@%h",
            "--concurrency", str(CELERY_CONCURRENCY), "--without-gossip", "--without-mingle"]


def task_title(ti_id: str) -> str:
    """The title the Task SDK gives a task runner process (``setproctitle`` in its task runner)."""
    return f"airflow worker -- {ti_id}"


@dataclass(frozen=True)
class TaskWorker:
    """The processes running one task instance."""

    supervisor: psutil.Process
    task: psutil.Process


def find_task_worker(procs: Sequence[psutil.Process], ti_id: str) -> TaskWorker | None:
    """The task runner of task instance ``ti_id`` among ``procs``, and its parent (the supervisor)."""
    title = task_title(ti_id)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if " ".join(p.cmdline()).strip() == title:
                parent = p.parent()
                if parent is not None:
                    return TaskWorker(supervisor=parent, task=p)
    return None


@dataclass(frozen=True)
class Killed:
    """What :func:`kill_task_worker` SIGKILLed (``pid title`` each), under which service, and whether both ended."""

    supervisor: str
    task: str
    service: str
    gone: bool


def kill_task_worker(processes: Callable[[], Sequence[psutil.Process]], ti_id: str,
                     services: Mapping[str, int], timeout: float = FIND_TIMEOUT_S) -> Killed:
    """SIGKILL the worker running task instance ``ti_id``: its supervisor, then the task runner's group.

    ``processes`` lists the run's processes (say ``tree(stack.pids())``); it is called until the
    task runner shows up, up to ``timeout`` s. ``services`` (name -> pid) names the service whose
    tree held the supervisor (the scheduler for LocalExecutor, a Celery worker for Celery). The
    supervisor goes first, so nothing reports the task's end: Airflow learns of it as of a lost
    worker (a missed heartbeat, or Celery's lost pool process).
    """
    worker = wait_until(f"the task runner of task instance {ti_id}",
                        lambda: find_task_worker(processes(), ti_id), timeout, 0.2)
    try:
        ancestors = {p.pid for p in worker.supervisor.parents()}
    except psutil.Error:
        ancestors = set()
    service = next((name for name, pid in services.items() if pid in ancestors), "none of the run's services")
    supervisor, task = describe(worker.supervisor), describe(worker.task)
    with contextlib.suppress(psutil.Error):
        worker.supervisor.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(worker.task.pid, signal.SIGKILL)  # the runner leads its own group (and its children)
    with contextlib.suppress(psutil.Error):
        worker.task.kill()  # in case it never got a group of its own
    procs = [worker.supervisor, worker.task]
    with contextlib.suppress(NotReady):  # a zombie is gone too: its parent reaps it when it will
        wait_until("the killed processes to end", lambda: True if not alive(procs) else None, 10, 0.1)
    return Killed(supervisor=supervisor, task=task, service=service, gone=not alive(procs))
