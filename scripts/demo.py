"""``make demo``: train a real model on a Puddle system through a real Airflow, told as a short story.

1. the emulator as a subprocess (``python -m airflow_puddle.emulator --port 0``), with real
   H2O-3 nodes when Java 8-17 and the ``h2o`` package are here (else simulated, and the DAI
   pipeline runs instead, which only pretends to train);
2. a throw-away AIRFLOW_HOME, the ``puddle_default`` connection, ``airflow db migrate``;
3. ``puddle_h2o3_train_pipeline`` run with ``dag.test()``: create an H2O-3 system (the wait is a
   trigger, which ``dag.test()`` runs in this process), train a GBM on it, export the MOJO, terminate;
4. the story: the Puddle lines as they happen, then one line per task and the result.

Airflow's own output goes to ``.demo/airflow.log`` (path printed); the MOJO stays in
``.demo/artifacts/``. Exits 0 only when the run succeeded and the system ended terminated.
The emulator (and so every H2O-3 node) is always stopped and the temporary directory
removed, on errors and on SIGINT/SIGTERM too.

Steps 2-4 run in a child process (this script with ``--airflow-child``): Airflow's
in-process task runner installs its own SIGTERM handler (to call ``on_kill``) and
never restores ours, so the parent, which never imports Airflow, owns the emulator,
the temporary directory and the signals.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO / "example_dags"
DEMO_DIR = REPO / ".demo"
LISTENING = "puddle-emulator listening on "
STEP_SECONDS = "1"
STARTUP_TIMEOUT_S = 30.0
CHILD_FLAG = "--airflow-child"
PUDDLE_ADDRESS_ENV = "PUDDLE_DEMO_EMULATOR_ADDRESS"
DAG_ENV = "PUDDLE_DEMO_DAG"
LOG_ENV = "PUDDLE_DEMO_LOG"
H2O3_DAG, DAI_DAG = "puddle_h2o3_train_pipeline", "puddle_train_pipeline"
# The lines of Airflow's output that tell the story (our narration and the tasks' own lines).
STORY = re.compile(r"(system \S+ \(\S+\) is (Initializing|Started|Terminating|Terminated)\b.*"
                   r"|Connected to H2O-3 .*|Trained GBM .*|Training step .*|Connected to Driverless AI .*)")
_out: TextIO = sys.stdout


def say(message: str) -> None:
    print(f"[demo] {message}", file=_out, flush=True)


class Emulator:
    """The emulator subprocess: started, its address read, and stopped (politely, then not)."""

    def __init__(self, db_path: Path, h2o3: str) -> None:
        self.db_path = db_path
        self.h2o3 = h2o3
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""

    def start(self) -> str:
        cmd = [sys.executable, "-m", "airflow_puddle.emulator", "--host", "127.0.0.1", "--port", "0",
               "--db", str(self.db_path), "--step-seconds", STEP_SECONDS, "--log-level", "WARNING",
               "--h2o3", self.h2o3]
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
        for sig, wait_s in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0)):
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


def h2o3_mode() -> tuple[str, str]:
    """(emulator ``--h2o3`` mode, why) for this machine."""
    from airflow_puddle.emulator.h2o3 import RuntimeMissing, find_runtime

    try:
        runtime = find_runtime()
    except RuntimeMissing as err:
        return "simulated", str(err)
    return "real", f"H2O-3 {runtime.version} on Java {runtime.java_major}"


def airflow_environment(home: Path, address: str, dag: str, log_path: Path) -> dict[str, str]:
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
            "login": DEFAULT_API_KEY_ID, "password": DEFAULT_API_SECRET_KEY,
        }),
        "PUDDLE_ARTIFACTS_DIR": str(DEMO_DIR / "artifacts"),
        PUDDLE_ADDRESS_ENV: address,
        DAG_ENV: dag,
        LOG_ENV: str(log_path),
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


def load_dag(name: str) -> Any:
    from airflow.sdk import DAG

    path = EXAMPLE_DAGS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [v for v in vars(module).values() if isinstance(v, DAG)]
    assert len(dags) == 1, f"{path.name} defines {len(dags)} DAGs"
    return dags[0]


def returned(run: Any, task_id: str) -> Any:
    """What a task of the run returned (its XCom), or None."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id,
                                                  task_ids=task_id, key="return_value")).all()
        values = [XComModel.deserialize_value(r) for r in rows]
    return values[0] if values else None


def system_status(address: str, system_id: str) -> str:
    """The system's status text, read from the emulator directly, not through Airflow."""
    from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
    from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

    auth = Authorizer(address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    try:
        system = SystemsClient(CLOUD_AWS, authorizer=auth).get(system_id)
    finally:
        auth.close()
    return system.status_text if system else "not found"


def summarize(run: Any, seconds: float, address: str, log_path: Path) -> bool:
    """One line per task with what it did, then the result; True when the run and the clean-up succeeded."""
    created = returned(run, "create_system") or {}
    trained = returned(run, "train") or returned(run, "train_model") or {}
    status = system_status(address, created["id"]) if created.get("id") else "never created"
    did = {
        "create_system": f"{created.get('name', '-')} booted: {created.get('product', '')} "
                         f"{created.get('version', '')} at {created.get('default_url', '-')}",
        "train": f"GBM on prostate: AUC {trained.get('auc', 0):.4f}, logloss {trained.get('logloss', 0):.4f}",
        "train_model": f"{trained.get('experiment', {}).get('steps', '?')} simulated steps (DAI is not real)",
        "terminate_system": f"system {status}",
    }
    order = ["create_system", "train", "train_model", "terminate_system"]
    tis = sorted(run.get_task_instances(), key=lambda ti: order.index(ti.task_id) if ti.task_id in order else 9)
    ok = str(run.state) == "success" and status == "Terminated"
    lines = [f"[demo] {'-' * 60}"]
    for ti in tis:
        took = (ti.end_date - ti.start_date).total_seconds() if ti.end_date and ti.start_date else 0.0
        lines.append(f"[demo] {ti.task_id:<16} {ti.state!s:<8} {took:5.1f}s  {did.get(ti.task_id, '')}")
    if trained.get("mojo_path"):
        lines.append(f"[demo] MOJO at {trained['mojo_path']}")
    lines.append(f"[demo] RESULT: {'SUCCESS' if ok else 'FAILURE'}: run {run.state} in {seconds:.1f}s, "
                 f"system {status}")
    lines.append(f"[demo] Airflow's own output: {log_path}")
    print("\n".join(lines), file=_out, flush=True)
    return ok


def follow(log_path: Path, stop: threading.Event) -> None:
    """Echo the story lines of Airflow's output as they are written."""
    seen: set[str] = set()
    with open(log_path, errors="replace") as log:
        while True:
            line = log.readline()
            if not line:
                if stop.is_set():
                    return
                time.sleep(0.1)
                continue
            m = STORY.search(line)
            if m and m[1] not in seen:
                seen.add(m[1])
                say(m[1].split(" [", 1)[0].rstrip(";, "))


def run_airflow() -> int:
    """The child: Airflow's output to the log file, the story to our stdout; migrate, run, summarize."""
    global _out
    address, dag_name, log_path = os.environ[PUDDLE_ADDRESS_ENV], os.environ[DAG_ENV], Path(os.environ[LOG_ENV])
    _out = os.fdopen(os.dup(1), "w", buffering=1)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    migrate()
    dag = load_dag(dag_name)
    say(f"Running {dag.dag_id} with dag.test(): its waits are triggers, run inline in this process")
    stop = threading.Event()
    follower = threading.Thread(target=follow, args=(log_path, stop), daemon=True)
    follower.start()
    started = time.monotonic()
    run = dag.test()
    seconds = time.monotonic() - started
    stop.set()
    follower.join(5)
    return 0 if summarize(run, seconds, address, log_path) else 1


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
    began = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="puddle-demo-"))
    DEMO_DIR.mkdir(exist_ok=True)
    mode, why = h2o3_mode()
    dag = H2O3_DAG if mode == "real" else DAI_DAG
    emulator = Emulator(home / "puddle-emulator.sqlite", mode)
    child: subprocess.Popen[bytes] | None = None
    try:
        address = emulator.start()
        say(f"Puddle emulator (pid {emulator.proc.pid if emulator.proc else '?'}) listening on {address}; "
            + (f"H2O-3 systems are real ({why})" if mode == "real" else f"H2O-3 is simulated: {why}"))
        child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), CHILD_FLAG],
                                 env=airflow_environment(home / "airflow", address, dag, DEMO_DIR / "airflow.log"),
                                 cwd=REPO, start_new_session=True)
        say(f"Airflow runs in child process {child.pid}")
        return child.wait()
    except KeyboardInterrupt as why_stopped:
        say(f"interrupted ({why_stopped or 'SIGINT'}); cleaning up")
        return 130
    except Exception as err:
        say(f"FAILED: {type(err).__name__}: {err}")
        return 1
    finally:
        stop_child(child)
        emulator.stop()
        shutil.rmtree(home, ignore_errors=True)
        say(f"emulator and its nodes stopped, temporary files removed; {time.monotonic() - began:.1f}s in all")


if __name__ == "__main__":
    sys.exit(run_airflow() if sys.argv[1:] == [CHILD_FLAG] else main())
