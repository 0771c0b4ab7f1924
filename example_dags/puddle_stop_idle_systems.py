"""Every night, stop the started systems that are idle, so nobody pays for a VM doing nothing.

``find_idle_systems`` lists the started systems through :class:`PuddleHook`,
keeps those matching the optional name prefix and ``Label=value`` tag filter,
and picks the idle ones: no Driverless AI experiment still running (progress
below 1) and an idle deadline (Puddle stops a system by itself at its
``idle_timeout``) within ``idle_margin_minutes`` from now. ``stop_idle_system``
stops them in parallel, one mapped task per system, each waiting until its
system is stopped. ``report`` always runs: it logs what was stopped and what
was spared (and why), and fails when a system it meant to stop is not stopped,
so the run's state tells the truth.

The tag filter needs the builtin client: a system's tags are not part of the documented
``puddle.client`` API, so with ``extra.client=puddle`` a ``tag_filter`` fails ``find_idle_systems``
(``System.tags`` raises ``AttributeError`` saying so) before anything is stopped.

Knobs (environment, read when the file is parsed):

- ``PUDDLE_POLL_INTERVAL``: seconds between status checks (default 5).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowException

from airflow_puddle.hooks.api import System
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.operators.puddle import PuddleStopSystemOperator

log = logging.getLogger(__name__)

POLL_INTERVAL = float(os.environ.get("PUDDLE_POLL_INTERVAL", "5"))
CONN_ID = "puddle_default"
STARTED = System.SYSTEM_STATUS_STARTED.code
STOPPED = System.SYSTEM_STATUS_STOPPED.code


def parse_tag_filter(text: str) -> tuple[str, str] | None:
    """``"Label=value"`` -> ``("Label", "value")``; empty -> None; anything else is an error."""
    text = (text or "").strip()
    if not text:
        return None
    label, sep, value = text.partition("=")
    if not sep or not label.strip():
        raise AirflowException(f"params.tag_filter: must look like Label=value, got {text!r}")
    return label.strip(), value.strip()


@task(task_id="find_idle_systems")
def find_idle_systems(params: dict[str, Any] | None = None, ti: Any = None) -> list[str]:
    """Decide which started systems to stop.

    Returns the ids to stop (what ``stop_idle_system`` maps over: Airflow maps only
    over a task's return value) and pushes the spared ones, with reasons, as XCom ``spared``.
    """
    params = params or {}
    prefix = str(params.get("name_prefix") or "")
    tag = parse_tag_filter(str(params.get("tag_filter") or ""))
    margin_min = int(params.get("idle_margin_minutes", 30))
    if margin_min < 0:
        raise AirflowException(f"params.idle_margin_minutes: must not be negative, got {margin_min}")

    to_stop: list[str] = []
    spared: list[dict[str, Any]] = []

    def spare(system: System, reason: str) -> None:
        spared.append({"id": system.id, "name": system.name, "reason": reason})

    with PuddleHook(puddle_conn_id=CONN_ID) as hook:
        systems = hook.get_systems_client()
        for listed in systems.list():
            if listed.status != STARTED:
                continue
            if prefix and not listed.name.startswith(prefix):
                spare(listed, f"name does not start with {prefix!r}")
                continue
            if tag is not None and {t.label: t.value for t in listed.tags}.get(tag[0]) != tag[1]:
                spare(listed, f"not tagged {tag[0]}={tag[1]}")
                continue
            system = systems.get(listed.id)  # get() also returns the DAI experiments
            if system is None or system.status != STARTED:
                continue  # gone or moved on since the list
            running = [m for m in (system.models or []) if m.progress < 1]
            if running:
                spare(system, f"{len(running)} experiment(s) still running")
                continue
            if not system.idle_timeout:
                spare(system, "no idle deadline")
                continue
            left_min = (system.idle_timeout - time.time()) / 60
            if left_min > margin_min:
                spare(system, f"idle deadline in {left_min:.0f} min, beyond the {margin_min} min margin")
                continue
            log.info("System %s (%s) is idle: no running experiment, idle deadline in %.1f min",
                     system.name, system.id, left_min)
            to_stop.append(system.id)

    for s in spared:
        log.info("Sparing system %s (%s): %s", s["name"], s["id"], s["reason"])
    log.info("%d system(s) to stop, %d spared", len(to_stop), len(spared))
    ti.xcom_push(key="spared", value=spared)
    return to_stop


@task(task_id="report", trigger_rule="all_done")
def report(to_stop: list[str] | None, spared: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Log and return what was stopped and what was spared; fail if a chosen system is not stopped."""
    to_stop, spared = list(to_stop or []), list(spared or [])
    stopped: list[dict[str, str]] = []
    not_stopped: list[dict[str, str]] = []
    with PuddleHook(puddle_conn_id=CONN_ID) as hook:
        systems = hook.get_systems_client()
        for system_id in to_stop:
            system = systems.get(system_id)
            entry = {"id": system_id, "name": system.name if system else "?",
                     "status": system.status_text if system else "missing"}
            (stopped if system is not None and system.status == STOPPED else not_stopped).append(entry)

    for s in stopped:
        log.info("Stopped: %s (%s)", s["name"], s["id"])
    for s in spared:
        log.info("Spared:  %s (%s): %s", s["name"], s["id"], s["reason"])
    for s in not_stopped:
        log.error("NOT stopped: %s (%s) is %s", s["name"], s["id"], s["status"])
    if not_stopped:
        raise AirflowException(f"{len(not_stopped)} idle system(s) were not stopped: "
                               + ", ".join(s["name"] for s in not_stopped))
    return {"stopped": stopped, "spared": spared}


with DAG(
    dag_id="puddle_stop_idle_systems",
    description="Stop started Puddle systems that are idle",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["puddle", "example", "cost"],
    params={
        "name_prefix": Param("", type="string", description="Only systems whose name starts with this"),
        "tag_filter": Param("", type="string", description="Only systems with this tag, as Label=value "
                            "(builtin client only: the documented puddle.client API has no system tags)"),
        "idle_margin_minutes": Param(
            30, type="integer", minimum=0,
            description="Stop a system whose idle deadline is at most this many minutes away",
        ),
    },
) as dag:
    to_stop = find_idle_systems()
    stops = PuddleStopSystemOperator.partial(
        task_id="stop_idle_system",
        puddle_conn_id=CONN_ID,
        poll_interval=POLL_INTERVAL,
    ).expand(system_id=to_stop)
    stops >> report(to_stop, to_stop["spared"])
