"""The hook that crashes the worker running a task (:meth:`Stack.kill_task_worker`), checked on this executor.

``rel_worker_kill`` runs one task that holds its worker on try 1 and returns at once on try 2.
Once it runs, the hook finds its task runner by the task instance's id and SIGKILLs the
supervisor and the runner. Airflow must see a lost worker (LocalExecutor: the missed heartbeat;
Celery: the lost pool process, which also leaves a ``state mismatch`` audit entry) and retry:
try 2 succeeds. Scenarios that crash a Puddle operator mid-flight build on this hook.
"""

from __future__ import annotations

from reliability.dags import WORKER_KILL_DAG_ID
from reliability.report import Row
from reliability.scenarios.common import wait_for_state
from reliability.stack import Stack

RUN = "worker-kill"
TASK = "hold"
# the scheduler's [scheduler] task_instance_heartbeat_timeout (stack.py) and its check, plus the retry
RECOVERY_TIMEOUT_S = 300.0


def run(stack: Stack) -> list[Row]:
    dep = stack.deployment
    dep.api.trigger(WORKER_KILL_DAG_ID, RUN)
    running = wait_for_state(dep, WORKER_KILL_DAG_ID, RUN, TASK, "running")
    killed = stack.kill_task_worker(str(running["id"]))
    stack.progress(f"worker-kill: SIGKILLed {killed}")
    final = dep.api.wait_for_run(WORKER_KILL_DAG_ID, RUN, RECOVERY_TIMEOUT_S,
                                 lambda: dep.diagnostics(WORKER_KILL_DAG_ID, RUN))
    tries = dep.api.api("GET", f"/api/v2/dags/{WORKER_KILL_DAG_ID}/dagRuns/{RUN}/taskInstances/{TASK}/tries")
    states = {int(t["try_number"]): t["state"] for t in tries["task_instances"]}
    expected_service = "scheduler" if stack.executor == "local" else "celery-worker-"
    observed = (f"task runner found by its id under {killed.service}: supervisor [{killed.supervisor}], "
                f"runner [{killed.task}]; both gone: {killed.gone}; tries {states}; run {final['state']}")
    holds = (killed.gone and killed.service.startswith(expected_service) and final["state"] == "success"
             and states.get(1) in ("failed", "up_for_retry") and states.get(2) == "success")
    return [Row("worker-kill: the hook SIGKILLs the worker running a task",
                f"found under the {expected_service.rstrip('-')}; try 1 fails as a lost worker, try 2 succeeds",
                observed, holds)]
