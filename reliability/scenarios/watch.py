"""watcher-downtime: a system that fails while no triggerer runs is reported once, when one starts again.

``rel_watch`` schedules on an asset whose ``AssetWatcher`` follows the system ``rel-watched``
into Failed. Once the watcher's mark for the system is in the asset's state store (it has
looked), every triggerer is stopped, the system is failed at the emulator, and one triggerer
starts. The asset event must come once; after another restart of every triggerer (the watcher
picked up by a new job, then left to poll a while) it must still be one. Events and marks are
read through the api-server's REST API.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from airflow_puddle.client.models import TagData
from airflow_puddle.triggers.cursor import KEY_PREFIX
from reliability.dags import WATCH_CONN, WATCH_DAG_ID, WATCH_NAME, WATCH_POLL_S, WATCH_URI
from reliability.procs import wait_until
from reliability.report import Row
from reliability.scenarios.common import STARTED, named
from reliability.stack import Stack

EMULATOR = WATCH_CONN.removeprefix("puddle_")
TIMEOUT_S = 180.0
QUIET_S = 20 * WATCH_POLL_S  # polls after which a second event would have come


def _asset_id(stack: Stack) -> int:
    body = stack.deployment.api.api("GET", f"/api/v2/assets?uri_pattern={WATCH_URI}")
    (asset,) = [a for a in body["assets"] if a["uri"] == WATCH_URI]
    return int(asset["id"])


def _events(stack: Stack, asset_id: int) -> list[dict[str, Any]]:
    return list(stack.deployment.api.api("GET", f"/api/v2/assets/events?asset_id={asset_id}&limit=100")["asset_events"])


def _mark(stack: Stack, asset_id: int, system_id: str) -> dict[str, Any] | None:
    status, body = stack.deployment.api.request(
        "GET", f"/api/v2/assets/{asset_id}/state-store/{KEY_PREFIX}.failed.{system_id}")
    return dict(body["value"]) if status == 200 else None


def _watcher_on(stack: Stack, asset_id: int, jobs: set[int]) -> bool | None:
    """The asset's watcher trigger is held by one of ``jobs`` (triggerer job ids)."""
    rows = stack.deployment.db.query(
        "SELECT t.triggerer_id FROM trigger t JOIN asset_watcher a ON a.trigger_id = t.id WHERE a.asset_id = :a",
        a=asset_id)
    return True if rows and all(r[0] in jobs for r in rows) else None


def _triggerers(stack: Stack) -> list[str]:
    return sorted(n for n in stack.deployment.services if n.startswith("triggerer-"))


def _stop_triggerers(stack: Stack) -> list[str]:
    """SIGTERM every triggerer by pid; what had to be SIGKILLed after the grace period."""
    return [k for name in _triggerers(stack) for k in stack.deployment.services[name].stop(signal.SIGTERM)]


def run(stack: Stack) -> list[Row]:
    dep = stack.deployment
    stack.expect(EMULATOR, {WATCH_NAME}, terminated=False)
    auth, client = stack.emulators[EMULATOR].client()
    admin = stack.emulators[EMULATOR].admin()
    try:
        system_id = client.wait_for_system_started(client.create(WATCH_NAME, **_DAI).id).id
        asset_id = wait_until("the watched asset", lambda: _asset_id(stack), TIMEOUT_S, 1.0, dep.diagnostics)
        wait_until("the watcher's first look in the asset state store", lambda: _mark(stack, asset_id, system_id),
                   TIMEOUT_S, 1.0, dep.diagnostics)
        names = _triggerers(stack)
        killed = _stop_triggerers(stack)  # every triggerer
        admin.fail_next_transition(system_id)
        client.stop(system_id)
        failed = client.wait(system_id, "failed", timeout_s=60)
        down_at = time.time()
        first = dep.start_triggerer(names[0])
        wait_until("the asset event", lambda: _events(stack, asset_id) or None, TIMEOUT_S, 1.0, dep.diagnostics)
        time.sleep(QUIET_S)
        after_restart = len(_events(stack, asset_id))
        killed += _stop_triggerers(stack)  # and again, now that it was reported; then both triggerers, as before
        jobs = {dep.start_triggerer(name) for name in names}
        wait_until("the watcher on a new triggerer", lambda: _watcher_on(stack, asset_id, jobs), TIMEOUT_S, 1.0,
                   dep.diagnostics)
        time.sleep(QUIET_S)
        events = _events(stack, asset_id)
        mark = _mark(stack, asset_id, system_id) or {}
        runs = [r["state"] for r in dep.api.api("GET", f"/api/v2/dags/{WATCH_DAG_ID}/dagRuns")["dag_runs"]]
    finally:
        admin.close()
        auth.close()
    systems = named(stack, EMULATOR, WATCH_NAME)
    reported = [(e.get("extra") or {}).get("payload", {}).get("system_id") for e in events]
    observed = (f"{WATCH_NAME} ({system_id}) {failed.system.status_text if failed.system else '?'} while "
                f"{len(names)} triggerers were stopped (SIGKILLed after the grace period: {killed or 'none'}); "
                f"triggerer job {first} started: {after_restart} asset "
                f"event(s) in {QUIET_S}s; every triggerer restarted (jobs {sorted(jobs)}), {QUIET_S}s later: "
                f"{len(events)} event(s), for {reported}, runs of {WATCH_DAG_ID}: {runs}; mark: entries "
                f"{mark.get('entries')}, reported {mark.get('reported')}; the event came "
                f"{max(0.0, _ts(events) - down_at):.0f}s after the failure")
    holds = (failed.reached and after_restart == 1 and len(events) == 1 and reported == [system_id]
             and mark.get("entries") == 1 and len(systems) == 1 and systems[0]["status"] != STARTED)
    return [Row("watcher-downtime: a watched system fails while every triggerer is stopped",
                "one asset event when a triggerer starts; none more after another restart", observed, holds)]


def _ts(events: list[dict[str, Any]]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(events[0]["timestamp"]).timestamp() if events else 0.0


_DAI: dict[str, Any] = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge",
                        "tags": [TagData("Team", "ml")]}
