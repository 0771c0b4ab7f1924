"""Emulator faults during DAG runs, side by side, each on an emulator of its own.

Each run is ``rel_pipeline`` (create -> use -> terminate, both waits deferred), or
``rel_bootfail`` (the same, create without retries). A fault lands once the create's wait is
deferred (and, for bursts and expired tokens, again once the terminate's is):

* ``unavailable``: bursts of UNAVAILABLE on ListSystems and GetSystem, longer than the client's retries;
* ``latency``: calls slower than the connection's 2 s deadline for 12 s;
* ``restart``: the emulator SIGKILLed, down 10 s, started again on the same port and database;
* ``tokens``: every token expired;
* ``bootfail``: the system fails while it boots; the create must fail clearly and terminate it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from reliability.dags import BOOTFAIL_DAG_ID, PIPELINE_DAG_ID
from reliability.procs import NotReady, wait_until
from reliability.report import Row, failed_row
from reliability.scenarios.common import TERMINATED, count_events, failure_message, named, status_text, wait_for_state
from reliability.stack import Stack

RUN_TIMEOUT_S = 300.0
BURST = 15  # more failures than a read's retries (4), so the wait itself sees Puddle unavailable
LATENCY_S = 3.0
LATENCY_FOR_S = 12.0
DOWN_FOR_S = 10.0
SETTLE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Fault:
    """One fault scenario: its emulator (and connection ``puddle_<name>``), what it does, what must happen."""

    name: str
    title: str
    expected: str
    inject: Callable[[Stack, str, str], str]  # (stack, system id, wait: create|terminate) -> what was done
    dag_id: str = PIPELINE_DAG_ID
    again_on_terminate: bool = False


def _unavailable(stack: Stack, system_id: str, wait: str) -> str:
    """A burst on the shared poll's ListSystems; during the terminate's wait on GetSystem too (a terminated
    system leaves the list). Not on GetSystem earlier: the ``use`` task's one read would fail."""
    methods = ("ListSystems", "GetSystem") if wait == "terminate" else ("ListSystems",)
    admin = stack.emulators["unavailable"].admin()
    try:
        for method in methods:
            admin.inject_fault(method, "UNAVAILABLE", BURST, "injected burst")
    finally:
        admin.close()
    return f"{wait} wait: {BURST} UNAVAILABLE on {' and '.join(methods)}"


def _latency(stack: Stack, system_id: str, wait: str) -> str:
    admin = stack.emulators["latency"].admin()
    try:
        for method in ("ListSystems", "GetSystem"):
            admin.set_latency(method, LATENCY_S)
        time.sleep(LATENCY_FOR_S)
        for method in ("ListSystems", "GetSystem"):
            admin.set_latency(method, 0)
    finally:
        admin.close()
    return f"{LATENCY_S:g}s latency for {LATENCY_FOR_S:g}s against a 2s deadline"


def _restart(stack: Stack, system_id: str, wait: str) -> str:
    emulator = stack.emulators["restart"]
    before = emulator.service.pid if emulator.service else None
    emulator.kill()
    time.sleep(DOWN_FOR_S)
    emulator.start()
    after = emulator.service.pid if emulator.service else None
    return f"emulator SIGKILLed (pid {before}), restarted {DOWN_FOR_S:g}s later (pid {after})"


def _tokens(stack: Stack, system_id: str, wait: str) -> str:
    admin = stack.emulators["tokens"].admin()
    try:
        return f"{wait} wait: {admin.expire_tokens()}"
    finally:
        admin.close()


def _bootfail(stack: Stack, system_id: str, wait: str) -> str:
    admin = stack.emulators["bootfail"].admin()
    try:
        admin.fail_next_transition(system_id)
    finally:
        admin.close()
    return "the system's next boot step fails"


FAULTS = [
    Fault("unavailable", "UNAVAILABLE bursts during both waits", "run succeeds; 1 system, terminated",
          _unavailable, again_on_terminate=True),
    Fault("latency", "latency past the RPC deadline mid-wait", "run succeeds; 1 system, terminated", _latency),
    Fault("restart", "emulator SIGKILLed and restarted mid-wait", "run succeeds; 1 system, terminated", _restart),
    Fault("tokens", "all tokens expired during both waits", "run succeeds; 1 system, terminated", _tokens,
          again_on_terminate=True),
    # Airflow skips a teardown whose setup failed (upstream_failed): the create's terminate_on_failure cleans up.
    Fault("bootfail", "system fails while it boots",
          "create fails naming the failure and terminates its system (terminate_on_failure); 1 system", _bootfail,
          dag_id=BOOTFAIL_DAG_ID),
]


def _tokens_issued(stack: Stack, name: str) -> int:
    db = sqlite3.connect(f"file:{stack.emulators[name].db}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute("SELECT count(*) FROM tokens").fetchone()[0])
    finally:
        db.close()


def _terminated(stack: Stack, emulator: str, name: str) -> bool | None:
    systems = named(stack, emulator, name)
    return True if systems and all(s["status"] == TERMINATED for s in systems) else None


def _one(stack: Stack, fault: Fault) -> Row:
    dep, run_id, system_name = stack.deployment, f"fault-{fault.name}", f"rel-{fault.name}"
    stack.expect(fault.name, {system_name}, terminated=True)
    dep.api.trigger(fault.dag_id, run_id, {"conn": f"puddle_{fault.name}", "system_name": system_name})
    wait_for_state(dep, fault.dag_id, run_id, "create", "deferred")
    (system,) = named(stack, fault.name, system_name)
    done = [fault.inject(stack, system["id"], "create")]
    if fault.again_on_terminate:
        wait_for_state(dep, fault.dag_id, run_id, "terminate", "deferred")
        done.append(fault.inject(stack, system["id"], "terminate"))
    run = dep.api.wait_for_run(fault.dag_id, run_id, RUN_TIMEOUT_S, lambda: dep.diagnostics(fault.dag_id, run_id))
    tis = {t["task_id"]: t for t in dep.api.task_instances(fault.dag_id, run_id)}
    with contextlib.suppress(NotReady):  # a cleanup may still be in its Terminating step: give it a while
        wait_until(f"{system_name} to be terminated", lambda: _terminated(stack, fault.name, system_name),
                   SETTLE_TIMEOUT_S, 1.0)
    systems = named(stack, fault.name, system_name)
    statuses = [status_text(s["status"]) for s in systems]
    unavailable = count_events(dep, fault.dag_id, run_id, "create", lambda e: "Puddle unavailable" in e)
    unavailable += count_events(dep, fault.dag_id, run_id, "terminate", lambda e: "Puddle unavailable" in e)
    tries = ", ".join(f"{t} {ti['state']} (try {ti['try_number']})" for t, ti in tis.items())
    evidence = f"{unavailable} 'Puddle unavailable' lines in the waits"
    if fault.name == "tokens":
        evidence = f"{_tokens_issued(stack, fault.name)} tokens issued after the last expiry"
    observed = f"{'; '.join(done)}; run {run['state']}: {tries}; systems {statuses}; {evidence}"
    one_terminated = len(systems) == 1 and systems[0]["status"] == TERMINATED
    if fault.dag_id == BOOTFAIL_DAG_ID:
        message = failure_message(dep, fault.dag_id, run_id, "create")
        cleanup = count_events(dep, fault.dag_id, run_id, "create", lambda e: "that this task created" in e)
        observed += f"; create failed with: {message}; its cleanup logged {cleanup}x"
        holds = (tis["create"]["state"] == "failed" and "will not become started" in message and one_terminated
                 and run["state"] == "failed" and cleanup == 1)
    else:
        holds = run["state"] == "success" and one_terminated
        if fault.name in ("unavailable", "latency"):
            holds = holds and unavailable > 0  # the fault reached the wait, not only the transport's retries
    return Row(f"fault: {fault.title}", fault.expected, observed, holds)


def run(stack: Stack) -> list[Row]:
    """Every fault run at once; one row each."""
    with ThreadPoolExecutor(max_workers=len(FAULTS)) as pool:
        futures = [(fault, pool.submit(_one, stack, fault)) for fault in FAULTS]
        rows = []
        for fault, future in futures:
            try:
                rows.append(future.result())
            except Exception as err:
                rows.append(failed_row(f"fault: {fault.title}", fault.expected, err))
    return rows
