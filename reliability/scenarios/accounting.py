"""After the scenarios: systems created against those expected, every wait ended once, the race's retries.

* systems: each emulator holds exactly the systems the scenarios said they would create (by
  name, no duplicates), and every system a teardown (or ``terminate_on_failure``) was to end is
  terminated;
* waits: every deferral of every task (each try's trigger logs, whichever triggerers ran it)
  fired exactly one event, or none when Airflow's own trigger timeout ended it;
* on Celery, the workloads each Celery worker ran;
* the race apache/airflow#72716 / #71580: the scheduler's "state mismatch" failures (a stale
  executor event failing a task that had just deferred or resumed), each task it hit, and
  whether that task recovered through its retries.
"""

from __future__ import annotations

from reliability.dags import KILLED_DAG_IDS
from reliability.events import fired_events, task_folder
from reliability.procs import listeners, tree
from reliability.report import Row
from reliability.scenarios.common import TERMINATED
from reliability.stack import Stack


def systems_row(stack: Stack) -> Row:
    created = expected = duplicates = 0
    missing: list[str] = []
    unexpected: list[str] = []
    ended = should_end = 0
    left: list[str] = []
    for name in stack.emulators:
        systems = stack.systems(name)
        names = [s["name"] for s in systems]
        want = stack.expected.get(name, set())
        created, expected = created + len(names), expected + len(want)
        duplicates += len(names) - len(set(names))
        missing += sorted(want - set(names))
        unexpected += sorted(set(names) - want)
        for system in systems:
            if system["name"] in stack.must_be_terminated.get(name, set()):
                should_end += 1
                if system["status"] == TERMINATED:
                    ended += 1
                else:
                    left.append(f"{system['name']} ({name})")
    observed = (f"{created} systems created on {len(stack.emulators)} emulators, {expected} expected; "
                f"{duplicates} duplicates, missing {missing[:5] or 0}, unexpected {unexpected[:5] or 0}; "
                f"{ended}/{should_end} that a teardown was to end are terminated{f', left: {left}' if left else ''}")
    holds = created == expected and not missing and not unexpected and duplicates == 0 and ended == should_end
    return Row("final accounting: systems", "created == expected; none left running that a teardown should end",
               observed, holds)


def waits_row(stack: Stack) -> Row:
    """One verdict per deferral: the event lines of one try of one task instance, over every triggerer."""
    once = timeouts = elsewhere = 0
    bad: list[str] = []
    home = stack.deployment.home
    for (dag_id, run_id, task_id, map_index, attempt), fired in fired_events(home).items():
        elsewhere += fired.in_triggerer_output
        if fired.events == 1:
            once += 1
            continue
        worker_log = task_folder(home, dag_id, run_id, task_id, map_index) / f"attempt={attempt}.log"
        try:
            timed_out = fired.events == 0 and "TaskDeferralTimeout" in worker_log.read_text(errors="replace")
        except OSError:
            timed_out = False
        if timed_out:
            timeouts += 1
        else:
            bad.append(f"{dag_id}/{run_id}/{task_id}[{map_index}] try {attempt}: {fired.events} events")
    total = once + timeouts + len(bad)
    observed = (f"{total} deferrals in all runs: {once} ended with one event, {timeouts} by Airflow's "
                f"trigger timeout, {len(bad)} otherwise{f' {bad[:3]}' if bad else ''}; {elsewhere} event lines "
                f"only in a triggerer's own output")
    return Row("final accounting: waits", "every deferred wait ended exactly once", observed,
               not bad and total > 0)


def race_row(stack: Stack) -> Row:
    """The scheduler records each such failure in the audit log as event ``state mismatch``
    (``process_executor_events`` in Airflow 3.3's scheduler)."""
    dep = stack.deployment
    # a worker SIGKILLed on purpose (worker-kill, durable-*) is reported the same way on Celery: no race, not counted
    hits = [h for h in dep.db.query("SELECT dag_id, task_id, run_id, map_index FROM log WHERE event = 'state mismatch'")
            if h[0] not in KILLED_DAG_IDS]
    again = dep.db.query("SELECT dag_id, task_id, map_index, try_number FROM task_instance WHERE try_number > 1")
    extra = sorted(f"{r[0]}.{r[1]}{'' if r[2] < 0 else f'[{r[2]}]'} try {r[3]}" for r in again)
    final = {(r[0], r[1], r[2], int(r[3])): r[4] for r in dep.db.query(
        "SELECT dag_id, task_id, run_id, map_index, state FROM task_instance")}
    hit_tis = {(h[0], h[1], h[2], -1 if h[3] is None else int(h[3])) for h in hits}
    recovered = sum(final.get(k) == "success" for k in hit_tis)
    observed = (f"{len(hits)} 'state mismatch' failures in the audit log on {len(hit_tis)} task instances, "
                f"{recovered} of them ended success after a retry; tasks past their first try (a clear counts too): "
                f"{extra or 'none'}")
    return Row("Airflow race #72716/#71580", "survived by retries (the operators are idempotent); counted",
               observed, recovered == len(hit_tis))


def loopback_row(stack: Stack) -> Row:
    """Every listening socket of the run's processes (log servers included) is on loopback."""
    found = listeners(tree(stack.pids()))
    outside = [f"{who} on {where}" for who, where, loopback in found if not loopback]
    observed = f"{len(found)} listening sockets of the run's processes, {len(outside)} beyond loopback {outside[:3]}"
    return Row("loopback only", "every listener on 127.0.0.1 (no log server on other interfaces)", observed,
               not outside and len(found) >= len(stack.ports()))


def celery_row(stack: Stack) -> list[Row]:
    """On Celery: the workloads (a task's try, or its resume after a deferral) each worker ran, from its output."""
    if stack.executor != "celery":
        return []
    ran = {name: service.log_path.read_text(errors="replace").count("Executing workload in Celery")
           for name, service in stack.deployment.services.items() if name.startswith("celery-worker-")}
    observed = f"workloads run: {', '.join(f'{n} on {name}' for name, n in ran.items())}"
    return [Row("Celery workers ran the tasks", "each Celery worker ran tasks", observed,
                len(ran) > 1 and all(ran.values()))]


def run(stack: Stack) -> list[Row]:
    return [systems_row(stack), waits_row(stack), race_row(stack), loopback_row(stack), *celery_row(stack)]
