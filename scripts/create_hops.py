"""How many of our functions a deferred create goes through, from ``execute`` to ``execute_complete``.

Run: ``.venv/bin/python scripts/create_hops.py [--list [--all]]``. A DAG with one deferrable
``PuddleCreateSystemOperator`` runs in ``dag.test()`` (which runs the trigger inline, over a private
poll) against an in-process emulator. A profiler records each distinct function of
``airflow_puddle`` entered in any thread, in the order first entered (the emulator, the plugin,
generated protobuf code and comprehensions left out). "Hops" leaves out too what a reader reads
beside the path rather than along it (``BRANCHES``: data accessors, checks, the task state store
record, the owner and the link, the connection's fields, narration, closing). ``--list`` prints the
hops, ``--all`` every function. ``docs/architecture.md`` walks 27 of the hops, named and in order,
and names the rest beside them; ``tests/test_walkthrough.py`` checks that walk against real runs.
Prints figures only.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

LEFT_OUT = ("airflow_puddle.emulator.", "airflow_puddle._proto.", "airflow_puddle.plugins.")
"""The emulator is the server and the plugin the UI's: neither is on the task's path."""

BRANCHES = (
    # data: the models, status tables, clouds and stream keys
    r"^client\.models\.", r"^domain\.(statuses|clouds)\.", r"^triggers\.snapshots\.",
    # checks made before anything is sent (and at parse time)
    r"^domain\.validation\.", r"^checks\.", r"^client\.address\.check_", r"^domain\.lifecycle\.check_",
    r"\.__init__$", r"\.__post_init__$", r"^operators\.base\.tag_data$", r"\._check$",
    # bookkeeping beside the path: the task state store, the owner, the link
    r"^operators\.record\.", r"^owners\.", r"^links\.", r"\._begin$", r"\._recorded$", r"\._answered$",
    r"\._owned$",
    # the connection's fields, narration, closing
    r"^hooks\.settings\._", r"^client\.auth\._given_or_env$", r"^client\.auth\.resolve_server_address$",
    r"^client\.waiting\.(narrator|duration)", r"^client\.waiting\.WaitTracker\.(_narrate|_say|_label)$",
    r"\.(close|__enter__|__exit__|_lock|_stub|authority|loop_changed)$", r"^waits\.permanent_errors_fail$",
)
"""What a reader of the path reads beside it, not along it: named in the walkthrough, not counted as hops."""

DAG = '''
import pendulum
from airflow.sdk import DAG
from airflow_puddle.operators.puddle import PuddleCreateSystemOperator

with DAG("create_hops", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    PuddleCreateSystemOperator(task_id="create", name="hops", product="dai", version="1.11.1",
                               instance_type_name="m5.2xlarge", tags={"Team": "ml"}, deferrable=True,
                               poll_interval=0.1)
'''


class Entered:
    """The ``airflow_puddle`` functions entered, in the order first entered."""

    def __init__(self, package: Path) -> None:
        self.package = str(package)
        self.root = package.parent
        self.entered: dict[tuple[str, str], None] = {}
        self.lock = threading.Lock()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        code = frame.f_code
        if not code.co_filename.startswith(self.package) or code.co_name[0] == "<":
            return
        module = Path(code.co_filename).relative_to(self.root).with_suffix("").as_posix().replace("/", ".")
        if f"{module}.".startswith(LEFT_OUT):
            return
        with self.lock:
            self.entered[module, code.co_qualname] = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the hops, in order")
    parser.add_argument("--all", action="store_true", help="with --list: every function entered")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="puddle-create-hops-") as tmp:
        dags = Path(tmp, "dags")
        dags.mkdir()
        (dags / "create_hops.py").write_text(DAG)
        os.environ.update({"AIRFLOW_HOME": tmp, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                           "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "AIRFLOW__CORE__DAGS_FOLDER": str(dags)})
        subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True,
                       capture_output=True, env=os.environ.copy())
        import airflow_puddle
        from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
        from airflow_puddle.emulator.server import EmulatorServer
        from airflow_puddle.emulator.testing import connection_json

        server = EmulatorServer(port=0, db_path=f"{tmp}/hops.sqlite", api_key_id=DEFAULT_API_KEY_ID,
                                api_secret_key=DEFAULT_API_SECRET_KEY, step_seconds=0.2)
        server.start()
        try:
            os.environ["AIRFLOW_CONN_PUDDLE_DEFAULT"] = connection_json(server.address)
            namespace: dict[str, Any] = {}
            exec(compile(DAG, str(dags / "create_hops.py"), "exec"), namespace)
            dag = namespace["dag"]
            path = Entered(Path(airflow_puddle.__file__).parent)
            threading.setprofile(path)
            sys.setprofile(path)
            try:
                run = dag.test()
            finally:
                sys.setprofile(None)
                threading.setprofile(None)  # type: ignore[arg-type]
            states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
            assert states == {"create": "success"}, states
            entered = [(module.removeprefix("airflow_puddle."), fn) for module, fn in path.entered]
            hops = [(m, fn) for m, fn in entered if not any(re.search(b, f"{m}.{fn}") for b in BRANCHES)]
            print(f"deferred create: {len(hops)} hops in {len({m for m, _ in hops})} modules from execute to "
                  f"execute_complete ({len(entered)} functions entered in all)")
            if args.list:
                print("".join(f"  {m}.{fn}\n" for m, fn in (entered if args.all else hops)), end="")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
