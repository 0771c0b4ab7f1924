"""The Airflow UI in headless Chromium (Debian's, driven by Playwright), against the running api-server.

Four checks, each asserting on what the page shows (screenshots go to ``artifacts/ui``):

* the connection form for type Puddle shows our labels and hides the fields we do not use;
* its Test button succeeds for the right secret, and fails readably for a wrong one;
* a create task's Details tab has the "Puddle System" extra link to the system's URL;
* its Logs tab shows the wait's narration from the triggerer.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from airflow_puddle.emulator import DEFAULT_API_KEY_ID
from airflow_puddle.hooks.form import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from reliability.dags import PIPELINE_DAG_ID
from reliability.procs import RUN_MARKER
from reliability.report import Row, failed_row
from reliability.stack import Stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN = "ui"
SYSTEM = "rel-ui"
EMULATOR = "fast"
TIMEOUT_MS = 30_000
WRONG_SECRET = "not-the-secret-0000"
CONN_OK, CONN_WRONG = "puddle_ui_ok", "puddle_ui_wrong_secret"  # saved through the form (their secrets encrypted)


@contextlib.contextmanager
def browser(run_id: str) -> Iterator[Any]:
    """A Chromium context with a fresh profile directory (removed afterwards)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="puddle-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                viewport={"width": 1400, "height": 1000}, env={RUN_MARKER: run_id, "HOME": profile},
            )
            context.set_default_timeout(TIMEOUT_MS)
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _open_puddle_form(page: Any, base: str) -> Any:
    page.goto(f"{base}/connections", wait_until="networkidle")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").first.click()
    page.keyboard.type("Puddle")
    page.keyboard.press("Enter")
    dialog.get_by_label("Server address").wait_for()
    return dialog


def check_form(page: Any, base: str, shots: Path) -> Row:
    dialog = _open_puddle_form(page, base)
    standard = _lines(dialog.inner_text())
    page.screenshot(path=str(shots / "connection-form.png"), full_page=True)
    dialog.get_by_text("Extra Fields", exact=True).click()
    dialog.get_by_text(CONN_FIELDS["cloud"]["label"], exact=True).wait_for()
    extra = _lines(dialog.inner_text())
    page.screenshot(path=str(shots / "connection-form-extra.png"), full_page=True)
    relabeled = UI_FIELD_BEHAVIOUR["relabeling"]
    want = [*relabeled.values(), *(spec["label"] for spec in CONN_FIELDS.values())]
    hidden = [f.capitalize() for f in [*UI_FIELD_BEHAVIOUR["hidden-fields"], *relabeled]]
    shown = [label for label in want if label in standard + extra]
    leaked = [label for label in hidden if label in standard + extra]
    observed = f"labels shown {len(shown)}/{len(want)} {shown}; hidden fields shown: {leaked or 'none'} (of {hidden})"
    return Row("UI: Puddle connection form", "our labels; schema and the relabelled defaults hidden", observed,
               len(shown) == len(want) and not leaked)


def _save_and_test(page: Any, base: str, conn_id: str, port: int, secret: str, shot: Path) -> str:
    """Add a Puddle connection through the form, press its Test button; the toast's text."""
    dialog = _open_puddle_form(page, base)
    dialog.get_by_label("Connection ID").fill(conn_id)
    dialog.get_by_label("Server address").fill("http://127.0.0.1")
    dialog.get_by_label("Port").fill(str(port))
    dialog.get_by_label(UI_FIELD_BEHAVIOUR["relabeling"]["login"]).fill(DEFAULT_API_KEY_ID)
    dialog.get_by_label(UI_FIELD_BEHAVIOUR["relabeling"]["password"]).fill(secret)
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")
    page.get_by_role("row").filter(has_text=conn_id).get_by_role("button", name="Test Connection").click()
    toast = page.locator("[data-scope=toast][data-part=root]").filter(has_text="Test Connection").first
    toast.wait_for()
    text = " ".join(_lines(toast.inner_text()))
    page.screenshot(path=str(shot))
    return text


def check_test_button(page: Any, base: str, shots: Path, stack: Stack) -> Row:
    port = stack.emulators[EMULATOR].port
    ok = _save_and_test(page, base, CONN_OK, port, stack.canary, shots / "test-connection-ok.png")
    page.reload(wait_until="networkidle")
    bad = _save_and_test(page, base, CONN_WRONG, port, WRONG_SECRET, shots / "test-connection-wrong.png")
    observed = f"right secret: '{ok}'; wrong secret: '{bad}'"
    holds = ("Successful" in ok and "Logged in" in ok and "Failed" in bad and "invalid API key id or secret" in bad
             and WRONG_SECRET not in bad)
    return Row("UI: connection Test button", "succeeds; a wrong secret fails with a readable reason", observed, holds)


def check_link(page: Any, base: str, shots: Path, url: str) -> Row:
    page.goto(f"{base}/dags/{PIPELINE_DAG_ID}/runs/{RUN}/tasks/create/details", wait_until="networkidle")
    link = page.get_by_role("link", name="Puddle System")
    link.wait_for()
    href = link.get_attribute("href")
    page.screenshot(path=str(shots / "extra-link.png"), full_page=True)
    observed = f"Details tab link 'Puddle System' -> {href} (the system's URL: {url})"
    return Row("UI: Puddle System extra link", "the system's URL", observed, bool(url) and href == url)


def check_narration(page: Any, base: str, shots: Path) -> Row:
    page.goto(f"{base}/dags/{PIPELINE_DAG_ID}/runs/{RUN}/tasks/create", wait_until="networkidle")
    page.get_by_text("waiting for started", exact=False).first.wait_for()
    text = page.inner_text("body")
    page.screenshot(path=str(shots / "task-log.png"), full_page=True)
    narration = [line for line in _lines(text) if f"system {SYSTEM} (" in line and " is " in line]
    observed = f"{len(narration)} narration lines in the log view, e.g. {narration[:2]}"
    holds = any("waiting for started, gives up in" in line for line in narration) and any(
        "is Started" in line for line in narration)
    return Row("UI: wait narration in the task log", "state changes and the deadline, from the triggerer",
               observed, holds)


def run(stack: Stack, artifacts: Path) -> list[Row]:
    dep = stack.deployment
    stack.expect(EMULATOR, {SYSTEM}, terminated=True)
    dep.api.trigger(PIPELINE_DAG_ID, RUN, {"conn": f"puddle_{EMULATOR}", "system_name": SYSTEM})
    dep.api.wait_for_run(PIPELINE_DAG_ID, RUN, 300.0, lambda: dep.diagnostics(PIPELINE_DAG_ID, RUN))
    value = dep.api.api("GET", f"/api/v2/dags/{PIPELINE_DAG_ID}/dagRuns/{RUN}/taskInstances/create/xcomEntries/"
                               "return_value")["value"]
    url = str((json.loads(value) if isinstance(value, str) else value).get("default_url", ""))
    shots = artifacts / "ui"
    shots.mkdir(parents=True, exist_ok=True)
    base = dep.api.base_url
    checks: list[tuple[str, str, Callable[[Any], Row]]] = [
        ("UI: Puddle connection form", "our labels shown, unused hidden", lambda p: check_form(p, base, shots)),
        ("UI: connection Test button", "succeeds; wrong secret fails readably",
         lambda p: check_test_button(p, base, shots, stack)),
        ("UI: Puddle System extra link", "the system's URL", lambda p: check_link(p, base, shots, url)),
        ("UI: wait narration in the task log", "narration visible", lambda p: check_narration(p, base, shots)),
    ]
    rows = []
    with browser(stack.run_id) as context:
        for title, expected, check in checks:
            page = context.new_page()
            try:
                rows.append(check(page))
            except Exception as err:
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(shots / f"failed-{len(rows)}.png"), full_page=True)
                rows.append(failed_row(title, expected, err))
            finally:
                page.close()
    return rows
