"""The Puddle page in the Airflow UI, in headless Chromium (rows ``ui-puddle-page: ...``).

A ``rel_pipeline`` run creates a system and holds it (its ``use`` task sleeps) while the browser:

* opens the Airflow UI, clicks the "Puddle" entry in its navigation, and finds the page inside
  the UI's frame listing that system as Started, with its cost, idle countdown and owner link;
* clicks the owner link, which must bring the whole UI (not the frame) to the run's create task.

Over REST: ``/puddle/api/systems`` with a bad token is refused (403), without one it answers as
Airflow's own API does (this deployment runs ``SIMPLE_AUTH_MANAGER_ALL_ADMINS``: no token means an
admin; ``tests/plugins`` checks the 401 with real users), with one it lists the system and its
owner, and neither the page's text nor the JSON holds the canary API secret or a DAI password
(the JSON also goes into the run's REST transcript, which the secrets row hunts through).
Screenshots: ``artifacts/ui/puddle-page*.png``.
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from reliability.airflow import _NO_PROXY
from reliability.dags import PIPELINE_DAG_ID
from reliability.report import Row, failed_row
from reliability.scenarios.common import wait_for_state
from reliability.stack import Stack
from reliability.ui import browser

RUN = "ui-page"
SYSTEM = "rel-page"
EMULATOR = "fast"
HOLD_S = 150  # the use task keeps the system Started this long
TITLE = "ui-puddle-page"


def _bad_token(api: Any, path: str) -> int:
    """The status of ``path`` with a token that is not a JWT."""
    req = urllib.request.Request(api.base_url + path, headers={"Authorization": "Bearer not-a-jwt"})
    try:
        with _NO_PROXY.open(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _systems_json(stack: Stack) -> tuple[dict[str, int], dict[str, Any] | None, Any]:
    """Statuses (no token, a bad token, a token; Airflow's own API without one), the system's row, the body."""
    api = stack.deployment.api
    statuses = {"none": api.request("GET", "/puddle/api/systems", auth=False)[0],
                "core api, none": api.request("GET", "/api/v2/connections", auth=False)[0],
                "bad": _bad_token(api, "/puddle/api/systems")}
    statuses["token"], body = api.request("GET", "/puddle/api/systems")
    rows = [s for c in (body or {}).get("connections", []) if c["conn_id"] == f"puddle_{EMULATOR}"
            for s in c["systems"] if s["name"] == SYSTEM] if statuses["token"] == 200 else []
    return statuses, rows[0] if rows else None, body


def check_page(page: Any, base: str, shots: Path) -> tuple[Row, str]:
    """Open the page through the UI's nav; the row of the run's system (and the page's text)."""
    page.goto(base, wait_until="networkidle")
    page.get_by_role("link", name="Puddle").first.click()
    page.wait_for_url("**/plugin/puddle**")
    frame = page.frame_locator('iframe[title="Puddle"]')
    row = frame.locator(f'tr[data-system-name="{SYSTEM}"]')
    row.wait_for()
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    owner = row.locator("a[data-owner-link]")
    owner_text, owner_href = owner.inner_text(), owner.get_attribute("href") or ""
    text = frame.locator("body").inner_text()
    page.screenshot(path=str(shots / "puddle-page.png"), full_page=True)
    want_href = f"/dags/{PIPELINE_DAG_ID}/runs/{RUN}/tasks/create"
    observed = (f"nav 'Puddle' -> {unquote(page.url.removeprefix(base))}; row {cells[:9]}; "
                f"owner link '{owner_text}' -> {owner_href}")
    holds = (len(cells) == 10 and cells[0] == SYSTEM and cells[2] == "Started" and cells[7].startswith("stops in ")
             and cells[1] == "dai 1.11.1" and owner_text == f"{PIPELINE_DAG_ID} / {RUN} / create"
             and owner_href == want_href and "CU:" in text)
    return Row(f"{TITLE}: the page inside the Airflow UI",
               "nav entry opens it; the run's system Started, with costs, countdown and owner", observed, holds), text


def check_owner_link(page: Any, base: str, shots: Path) -> Row:
    """Click the owner link in the frame: the UI itself goes to the run's task."""
    frame = page.frame_locator('iframe[title="Puddle"]')
    frame.locator(f'tr[data-system-name="{SYSTEM}"] a[data-owner-link]').click()
    want = f"{base}/dags/{PIPELINE_DAG_ID}/runs/{quote(RUN, safe='')}/tasks/create"
    page.wait_for_url(f"{want}**")
    page.get_by_text("create", exact=True).first.wait_for()
    framed = page.locator('iframe[title="Puddle"]').count()
    page.screenshot(path=str(shots / "puddle-page-owner-link.png"), full_page=True)
    observed = f"after the click the UI is at {page.url.removeprefix(base)}; page frames left: {framed}"
    return Row(f"{TITLE}: owner link back to the run", "the whole UI opens the run's create task",
               observed, page.url.startswith(want) and framed == 0)


def run(stack: Stack, artifacts: Path) -> list[Row]:
    dep = stack.deployment
    stack.expect(EMULATOR, {SYSTEM}, terminated=True)
    dep.api.trigger(PIPELINE_DAG_ID, RUN, {"conn": f"puddle_{EMULATOR}", "system_name": SYSTEM, "hold": HOLD_S})
    wait_for_state(dep, PIPELINE_DAG_ID, RUN, "use", "running")
    shots = artifacts / "ui"
    shots.mkdir(parents=True, exist_ok=True)
    base = dep.api.base_url
    rows: list[Row] = []
    text = ""
    with browser(stack.run_id) as context:
        page = context.new_page()
        try:
            row, text = check_page(page, base, shots)
            rows.append(row)
            rows.append(check_owner_link(page, base, shots))
        except Exception as err:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(shots / "puddle-page-failed.png"), full_page=True)
            rows.append(failed_row(f"{TITLE}: the page inside the Airflow UI", "the browser checks hold", err))
        finally:
            page.close()
    statuses, system, body = _systems_json(stack)
    secrets = [stack.canary, *(s["password"] for s in stack.systems(EMULATOR) if s["password"])]
    hits = sum(1 for s in secrets for found in (text, repr(body)) if s in found)
    owner = (system or {}).get("owner") or {}
    observed = (f"statuses {statuses}; {SYSTEM} {'listed' if system else 'missing'} as "
                f"{(system or {}).get('status')}, owner {owner.get('dag_id')}/{owner.get('run_id')}/"
                f"{owner.get('task_id')}; {hits} hits for {len(secrets)} secrets (the API secret, the DAI passwords) "
                f"in the page and JSON")
    # SIMPLE_AUTH_MANAGER_ALL_ADMINS (this deployment) makes every request without a token an admin's, for
    # Airflow's own API too: the page must answer as that API does. tests/plugins has the 401 with real users.
    holds = (statuses["bad"] == 403 and statuses["none"] == statuses["core api, none"]
             and statuses["token"] == 200 and system is not None and owner.get("run_id") == RUN and hits == 0)
    rows.append(Row(f"{TITLE}: JSON, auth and secrets",
                    "a bad token refused (403); no token as Airflow's API; the system and its owner; 0 hits",
                    observed, holds))
    dep.api.wait_for_run(PIPELINE_DAG_ID, RUN, HOLD_S + 300.0, lambda: dep.diagnostics(PIPELINE_DAG_ID, RUN))
    return rows
