"""``scripts/airflow_local.sh``: the walkthrough's deployment starts, defers by default, and stops by pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from reliability.procs import free_port

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "airflow_local.sh"
COMPONENTS = ("emulator", "api-server", "scheduler", "dag-processor", "triggerer")


def run(home: Path, ui: int, puddle: int, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    # A user's shell: none of the test session's AIRFLOW_* settings, only the script's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW_UI_PORT=str(ui), PUDDLE_PORT=str(puddle))
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_environment_defers_and_holds_the_readme_connection(tmp_path: Path) -> None:
    ui, puddle = free_port(), free_port()
    out = run(tmp_path, ui, puddle, "env")
    assert out.returncode == 0, out.stderr
    read = ("import json, os; from airflow.configuration import conf; "
            "print(json.dumps([conf.getboolean('operators', 'default_deferrable'), "
            "os.environ['AIRFLOW_CONN_PUDDLE_DEFAULT'], conf.get('core', 'executor')]))")
    shown = subprocess.run(["bash", "-c", f'eval "$1" && {sys.executable} -c "$2"', "_", out.stdout, read],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    deferrable, conn, executor = json.loads(shown.stdout.strip().splitlines()[-1])
    assert deferrable is True and executor == "LocalExecutor"
    assert json.loads(conn) == {"conn_type": "puddle", "host": "http://127.0.0.1", "port": puddle,
                                "login": "demo-key-id", "password": "demo-secret-key"}
    # The secrets it generates are kept, so `env` and every component agree.
    assert run(tmp_path, ui, puddle, "env").stdout == out.stdout


def test_start_then_stop_leaves_no_process(tmp_path: Path) -> None:
    ui, puddle = free_port(), free_port()
    started = run(tmp_path, ui, puddle, "start")
    pids = {name: int((tmp_path / "run" / f"{name}.pid").read_text()) for name in COMPONENTS
            if (tmp_path / "run" / f"{name}.pid").exists()}
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        assert f"Airflow UI: http://127.0.0.1:{ui}" in started.stdout
        assert set(pids) == set(COMPONENTS)
        assert all(group_alive(pgid) for pgid in pids.values())
        with urllib.request.urlopen(f"http://127.0.0.1:{ui}/api/v2/monitor/health", timeout=5) as health:
            assert health.status == 200
        again = run(tmp_path, ui, puddle, "start")
        assert again.returncode == 1 and "already runs" in again.stderr
    finally:
        stopped = run(tmp_path, ui, puddle, "stop")
    assert stopped.returncode == 0, stopped.stderr
    left = [name for name, pgid in pids.items() if group_alive(pgid)]
    assert left == [], f"process groups still alive after stop: {left}"
    assert "not running" in run(tmp_path, ui, puddle, "status").stdout
    assert not list((tmp_path / "run").glob("*.pid"))
