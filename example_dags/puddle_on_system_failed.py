"""Event-driven: run when a named Puddle system fails, with no task holding a slot while it waits.

An ``AssetWatcher`` runs :class:`PuddleSystemStateTrigger` as a watcher (``deadline=None``) in
the triggerer. It shares the connection's one poll with every other Puddle wait there, and each
time the system named ``PUDDLE_WATCHED_SYSTEM`` (default ``nightly-dai``) is seen entering the
Failed state it records an asset event, which schedules this DAG. What it saw is kept per system
id in the asset's state store, so a failure while no triggerer runs is reported once when one
starts again (README, "Event-driven scheduling"). The task reports what failed; a real job would
page someone, or discard and recreate the system.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

log = logging.getLogger(__name__)

WATCHED = os.environ.get("PUDDLE_WATCHED_SYSTEM", "nightly-dai")
POLL_INTERVAL = float(os.environ.get("PUDDLE_POLL_INTERVAL", "30"))

system_failed = Asset(
    f"puddle://puddle_default/systems/{WATCHED}/failed",
    watchers=[
        AssetWatcher(
            name=f"puddle-{WATCHED}-failed",
            trigger=PuddleSystemStateTrigger(
                system_name=WATCHED, target="failed", deadline=None, puddle_conn_id="puddle_default",
                poll_interval=POLL_INTERVAL,
            ),
        )
    ],
)


@task
def report_failure(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
    """Log and return which system failed, from the asset events that scheduled this run."""
    failures = []
    for events in (triggering_asset_events or {}).values():
        for event in events:
            # A watcher's event: extra = {"from_trigger": True, "payload": <the trigger event's payload>}
            system = ((event.extra or {}).get("payload") or {}).get("system") or {}
            failures.append({"id": system.get("id"), "name": system.get("name"),
                             "status": system.get("status_text")})
            log.warning("Puddle system %s (%s) is %s", system.get("name"), system.get("id"),
                        system.get("status_text"))
    return failures


with DAG(
    dag_id="puddle_on_system_failed",
    description="Runs when a named Puddle system fails (event-driven, no task waiting)",
    schedule=[system_failed],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["puddle", "example", "event-driven"],
):
    report_failure()
