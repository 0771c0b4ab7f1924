"""The secret hunt: the canary API secret and every system's DAI password, searched everywhere Airflow keeps text.

The run's every emulator takes the canary API secret (a fresh value each run), every component
logs at DEBUG, and the pipeline runs read DAI credentials through the hook. Afterwards this
module counts, for each canary, its occurrences in:

* files: task and trigger logs, the scheduler's, triggerers', api-server's and dag-processor's output;
* the metadata DB: every column of every table (XCom, rendered fields, task instances, the audit
  log, ...), plus every trigger row seen while the run went on (rows go once a trigger fires), its
  kwargs decrypted when encrypted;
* the REST API: every response the harness got during the run, and a crawl of each task's
  details, XComs, rendered fields and logs.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from reliability.report import Row
from reliability.stack import Stack

WAITS_SAMPLE = 10  # of the 200 waits' task instances, crawled over REST (the others are alike)


class TriggerSampler:
    """Reads the trigger table every ``interval`` s on a thread, keeping every row it saw (decrypted)."""

    def __init__(self, stack: Stack, interval: float = 2.0) -> None:
        self._stack = stack
        self._interval = interval
        self._stop = threading.Event()
        self.rows: dict[int, str] = {}
        self._thread = threading.Thread(target=self._loop, name="trigger-sampler", daemon=True)

    def start(self) -> TriggerSampler:
        self._thread.start()
        return self

    def _loop(self) -> None:
        dep = self._stack.deployment
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):  # a failed sample is one sample less, not a failed run
                for trigger_id, classpath, kwargs in dep.db.query("SELECT id, classpath, kwargs FROM trigger"):
                    if trigger_id not in self.rows:
                        self.rows[trigger_id] = f"{classpath} {kwargs} {dep.decrypt(kwargs)}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class Hunt:
    """Where the canaries were looked for, and every hit (source, which canary)."""

    canaries: dict[str, str]  # label -> value
    files: int = 0
    debug_records: int = 0  # task and trigger log records at DEBUG: proof the run logged at that level
    db_values: int = 0
    rest_bodies: int = 0
    scanned_bytes: int = 0
    hits: list[tuple[str, str]] = field(default_factory=list)

    def search(self, source: str, text: str) -> None:
        self.scanned_bytes += len(text)
        for label, value in self.canaries.items():
            if value in text:
                self.hits.append((source, label))


def _canaries(stack: Stack) -> dict[str, str]:
    found = {"API secret": stack.canary}
    for name in stack.emulators:
        for system in stack.systems(name):
            if system["password"]:
                found[f"DAI password of {system['name']} ({name})"] = system["password"]
    return found


def _files(stack: Stack, hunt: Hunt) -> None:
    home = stack.deployment.home
    paths = [*sorted((home / "logs").rglob("*.log")), *sorted((home / "components").glob("*.log"))]
    for path in paths:
        hunt.files += 1
        text = path.read_text(errors="replace")
        hunt.debug_records += text.count('"level":"debug"')
        hunt.search(str(path.relative_to(home)), text)


def _database(stack: Stack, sampler: TriggerSampler, hunt: Hunt) -> None:
    db = stack.deployment.db
    for table in db.tables():
        for row in db.query(f'SELECT * FROM "{table}"'):  # table names come from the DB's own catalogue
            for value in row:
                if value is not None:
                    hunt.db_values += 1
                    text = (bytes(value).decode(errors="replace") if isinstance(value, bytes | memoryview)
                            else str(value))
                    hunt.search(f"table {table}", text)
    for trigger_id, text in sampler.rows.items():
        hunt.db_values += 1
        hunt.search(f"trigger row {trigger_id} (sampled)", text)


def _crawl_paths(stack: Stack) -> Iterable[str]:
    api = stack.deployment.api
    runs = stack.deployment.db.query("SELECT dag_id, run_id FROM dag_run")
    for dag_id, run_id in runs:
        run = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}"
        yield run
        tis = api.task_instances(dag_id, run_id)
        if dag_id == "rel_waits":
            tis = tis[:WAITS_SAMPLE]
        for ti in tis:
            task = f"{run}/taskInstances/{ti['task_id']}"
            mapped = f"{task}/{ti['map_index']}" if ti["map_index"] >= 0 else task
            yield mapped
            yield f"{task}/xcomEntries?map_index={ti['map_index']}"
            for try_number in range(1, int(ti["try_number"]) + 1):
                yield f"{task}/logs/{try_number}?full_content=true&map_index={ti['map_index']}"
    yield "/api/v2/connections"
    yield "/api/v2/eventLogs?limit=1000"
    yield "/api/v2/config"


def _rest(stack: Stack, hunt: Hunt) -> None:
    """The responses the run got (the transcript, up to now), then a crawl's."""
    api = stack.deployment.api
    transcript = stack.deployment.home / "rest-transcript.txt"
    if transcript.exists():
        hunt.search("REST responses during the run", transcript.read_text(errors="replace"))
    for path in _crawl_paths(stack):
        status, body = api.request("GET", path)
        hunt.rest_bodies += 1
        hunt.search(f"GET {path} ({status})", str(body))


def run(stack: Stack, sampler: TriggerSampler) -> list[Row]:
    """Hunt after the scenarios (the deployment still up); one row with the hit count."""
    sampler.stop()
    hunt = Hunt(_canaries(stack))
    _rest(stack, hunt)
    _files(stack, hunt)
    _database(stack, sampler, hunt)
    where = sorted({source for source, _ in hunt.hits})
    observed = (f"{len(hunt.hits)} hits for {len(hunt.canaries)} canaries (the API secret, "
                f"{len(hunt.canaries) - 1} DAI passwords) in {hunt.files} log files, {hunt.db_values} DB values "
                f"(+{len(sampler.rows)} sampled trigger rows), {hunt.rest_bodies} crawled REST responses and the "
                f"run's REST transcript; {hunt.scanned_bytes / 1e6:.0f} MB searched; "
                f"{hunt.debug_records} DEBUG records in the task and trigger logs"
                + (f"; hits in: {where[:8]}" if where else ""))
    return [Row("secrets at DEBUG (logs, XCom, rendered fields, triggers, REST)", "0 hits", observed,
                not hunt.hits and len(hunt.canaries) > 1 and hunt.debug_records > 0)]
