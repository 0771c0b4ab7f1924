"""``make demo``: run the train pipeline through a real Airflow against a local Puddle emulator.

1. a throw-away AIRFLOW_HOME (SQLite metadata DB, dags folder = this repo's example_dags/);
2. the emulator as a subprocess (``python -m airflow_puddle.emulator --port 0``), its
   address read from its "listening on" line;
3. the ``puddle_default`` connection as ``AIRFLOW_CONN_PUDDLE_DEFAULT``, ``airflow db migrate``;
4. ``puddle_train_pipeline`` run with ``dag.test()``, waits deferred to the (inline) triggerer;
5. a summary: each task's final state and the system's final status, read from the emulator.

Exits 0 only when the run succeeded and the system ended terminated. The emulator is
always stopped and the temporary directory always removed, on errors and on
SIGINT/SIGTERM too. Airflow's own logs pass through; the summary comes last.

Steps 3-5 run in a child process (this script with ``--airflow-child``): Airflow's
in-process task runner installs its own SIGTERM handler (to call ``on_kill``) and
never restores ours, so the parent, which never imports Airflow, owns the emulator,
the temporary directory and the signals.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO / "example_dags"
DAG_FILE = EXAMPLE_DAGS / "puddle_train_pipeline.py"
LISTENING = "puddle-emulator listening on "
STEP_SECONDS = "1"
STARTUP_TIMEOUT_S = 30.0
CHILD_FLAG = "--airflow-child"
PUDDLE_ADDRESS_ENV = "PUDDLE_DEMO_EMULATOR_ADDRESS"


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


class Emulator:
    """The emulator subprocess: started, its address read, and stopped (politely, then not)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""

    def start(self) -> str:
        cmd = [sys.executable, "-m", "airflow_puddle.emulator", "--host", "127.0.0.1", "--port", "0",
               "--db", str(self.db_path), "--step-seconds", STEP_SECONDS, "--log-level", "WARNING"]
        # Its own session: a Ctrl-C reaches only this script, which stops the emulator last.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None

        def pump() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, name="emulator-stdout", daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"the emulator exited with code {self.proc.returncode} before listening") from None
                continue
            if line.startswith(LISTENING):
                self.address = line[len(LISTENING):].strip()
                return self.address
        raise RuntimeError(f"the emulator did not report its address within {STARTUP_TIMEOUT_S:.0f}s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGINT, 5.0), (signal.SIGTERM, 3.0)):
            proc.send_signal(sig)
            try:
                proc.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue
        proc.kill()
        proc.wait(timeout=5)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def airflow_environment(home: Path, address: str) -> dict[str, str]:
    """Everything Airflow and the DAG read from the environment, for the Airflow child process."""
    from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

    host, _, port = address.rpartition(":")
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        "AIRFLOW_CONN_PUDDLE_DEFAULT": json.dumps({
            "conn_type": "puddle", "host": host, "port": int(port),
            "login": DEFAULT_API_KEY_ID, "password": DEFAULT_API_SECRET_KEY, "extra": {"cloud": "aws"},
        }),
        PUDDLE_ADDRESS_ENV: address,
    })
    env.setdefault("PUDDLE_POLL_INTERVAL", "1")
    env.setdefault("PUDDLE_TRAIN_STEPS", "3")
    return env


def migrate() -> None:
    airflow = Path(sys.executable).with_name("airflow")
    started = time.monotonic()
    done = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"airflow db migrate failed with code {done.returncode}")
    say(f"Airflow metadata DB migrated in {time.monotonic() - started:.1f}s")


def load_dag() -> Any:
    from airflow.sdk import DAG

    spec = importlib.util.spec_from_file_location("puddle_train_pipeline", DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [v for v in vars(module).values() if isinstance(v, DAG)]
    assert len(dags) == 1, f"{DAG_FILE.name} defines {len(dags)} DAGs"
    return dags[0]


def created_system_id(run: Any) -> str | None:
    """The system id from the create task's XCom (the system's public dict)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id,
                                                  task_ids="create_system", key="return_value")).all()
        values = [XComModel.deserialize_value(r) for r in rows]
    return next((v["id"] for v in values if isinstance(v, dict) and v.get("id")), None)


def system_status(address: str, system_id: str) -> tuple[str, str]:
    """(name, status text) of a system, read from the emulator directly, not through Airflow."""
    from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
    from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

    auth = Authorizer(address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    try:
        system = SystemsClient(CLOUD_AWS, authorizer=auth).get(system_id)
    finally:
        auth.close()
    return (system.name, system.status_text) if system else ("?", "not found")


def summarize(run: Any, seconds: float, address: str) -> bool:
    order = {"create_system": 0, "train_model": 1, "terminate_system": 2}
    tis = sorted(run.get_task_instances(), key=lambda ti: (order.get(ti.task_id, 9), ti.task_id))
    system_id = created_system_id(run)
    name, status = system_status(address, system_id) if system_id else ("-", "never created")
    run_ok = str(run.state) == "success"
    system_ok = status == "Terminated"
    width = max(len(ti.task_id) for ti in tis) if tis else 4
    rule = "=" * 64
    lines = [
        "", rule, " Puddle demo summary", rule,
        f" DAG run   {run.dag_id} ({run.run_id})",
        f" state     {run.state} in {seconds:.1f}s",
        "",
        f" {'task':<{width}}  state",
        f" {'-' * width}  -------",
        *(f" {ti.task_id:<{width}}  {ti.state}" for ti in tis),
        "",
        f" system    {name} ({system_id or '-'}): {status}",
        rule,
        f" RESULT: {'SUCCESS' if run_ok and system_ok else 'FAILURE'}"
        + ("" if run_ok and system_ok else
           f" (run {run.state}; system {status}, expected Terminated)"),
        rule,
    ]
    print("\n".join(lines), flush=True)
    return run_ok and system_ok


def run_airflow() -> int:
    """The child: migrate, run the DAG, print the summary. Its exit code is the demo's."""
    address = os.environ[PUDDLE_ADDRESS_ENV]
    migrate()
    dag = load_dag()
    say(f"Running {dag.dag_id} with dag.test(); waits are deferred to the triggerer")
    started = time.monotonic()
    run = dag.test()
    return 0 if summarize(run, time.monotonic() - started, address) else 1


def stop_child(child: subprocess.Popen[bytes] | None) -> None:
    """Stop the Airflow child and whatever it started (its own process group).

    Airflow's task runner takes SIGTERM over to call ``on_kill``, so after a short grace
    the group is killed.
    """
    if child is None:
        return
    for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            break
        try:
            child.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    child.wait(timeout=5)


def main() -> int:
    """The parent: owns the emulator and the temporary directory, and always cleans them up."""
    signal.signal(signal.SIGTERM, _on_signal)
    home = Path(tempfile.mkdtemp(prefix="puddle-demo-"))
    emulator = Emulator(home / "puddle-emulator.sqlite")
    child: subprocess.Popen[bytes] | None = None
    try:
        address = emulator.start()
        say(f"Puddle emulator (pid {emulator.proc.pid if emulator.proc else '?'}) listening on {address}")
        child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), CHILD_FLAG],
                                 env=airflow_environment(home / "airflow", address), cwd=REPO,
                                 start_new_session=True)
        say(f"Airflow runs in child process {child.pid}")
        return child.wait()
    except KeyboardInterrupt as why:
        say(f"interrupted ({why or 'SIGINT'}); cleaning up")
        return 130
    except Exception as err:
        say(f"FAILED: {type(err).__name__}: {err}")
        return 1
    finally:
        stop_child(child)
        emulator.stop()
        shutil.rmtree(home, ignore_errors=True)
        say("emulator stopped, temporary files removed")


if __name__ == "__main__":
    sys.exit(run_airflow() if sys.argv[1:] == [CHILD_FLAG] else main())
