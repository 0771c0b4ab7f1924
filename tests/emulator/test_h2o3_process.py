"""Real H2O-3 nodes and the emulator process: no JVM outlives it, a restart reboots, a SIGKILL is reaped.

Also the runtime rules: which Java and package real nodes need, and what the CLI says without them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.emulator import h2o3
from airflow_puddle.emulator.h2o3 import RuntimeMissing, find_runtime, java_major
from tests.emulator.conftest import API_KEY_ID, API_SECRET_KEY, CliEmulator
from tests.emulator.test_h2o3_nodes import alive, create, gone_within, http_status, wait


def node_pid(db: Path, system_id: str) -> int:
    return int((db.with_name(db.name + ".h2o3") / system_id / "node.pid").read_text())


def test_no_jvm_outlives_the_emulator_and_a_restart_or_a_sigkill_brings_the_node_back(
    run_emulator: Callable[..., CliEmulator], tmp_path: Path,
) -> None:
    db = tmp_path / "cli.sqlite"
    flags = ("--h2o3", "real", "--step-seconds", "0.3")
    emulator = run_emulator(*flags)
    auth = Authorizer(f"http://{emulator.address(30)}", API_KEY_ID, API_SECRET_KEY)
    systems = SystemsClient(CLOUD_AWS, authorizer=auth)
    started = wait(systems, create(systems, "survivor").id, "started")
    login = (started.username, started.password)
    first = node_pid(db, started.id)
    auth.close()

    # SIGTERM: the emulator stops its nodes before it exits.
    assert emulator.terminate() == 0
    assert gone_within(first, 5)

    # A restarted emulator reboots the Started system: a new node on the same URL and login.
    emulator = run_emulator(*flags)
    auth = Authorizer(f"http://{emulator.address(30)}", API_KEY_ID, API_SECRET_KEY)
    systems = SystemsClient(CLOUD_AWS, authorizer=auth)
    back = wait(systems, started.id, "started")
    assert (back.default_url, back.username, back.password) == (started.default_url, *login)
    assert http_status(back.default_url, login) == 200
    second = node_pid(db, started.id)
    auth.close()

    # SIGKILL: the node is orphaned; the next emulator reaps it from its pid file and boots another.
    emulator.proc.send_signal(signal.SIGKILL)
    emulator.proc.wait(10)
    assert alive(second)
    emulator = run_emulator(*flags)
    auth = Authorizer(f"http://{emulator.address(30)}", API_KEY_ID, API_SECRET_KEY)
    systems = SystemsClient(CLOUD_AWS, authorizer=auth)
    assert gone_within(second, 5)
    again = wait(systems, started.id, "started")
    assert http_status(again.default_url, login) == 200
    third = node_pid(db, started.id)
    assert third not in (first, second)
    systems.terminate(started.id)
    wait(systems, started.id, "terminated")
    auth.close()
    assert emulator.terminate() == 0
    assert "stopped 1 H2O-3 nodes a previous emulator left running" in emulator.stderr
    assert gone_within(third, 5)


# --------------------------------------------------------------------------- runtime rules


def fake_java(tmp_path: Path, version_line: str) -> Path:
    """A ``java`` on a PATH of its own that prints ``version_line`` as ``java -version`` does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    java = bin_dir / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize(("line", "major"), [
    ('openjdk version "17.0.15" 2025-04-15', 17),
    ('java version "1.8.0_402"', 8),
    ('openjdk version "21" 2023-09-19', 21),
    ("no version here", None),
])
def test_java_major_reads_what_java_version_prints(tmp_path: Path, line: str, major: int | None) -> None:
    assert java_major(str(fake_java(tmp_path, line) / "java")) == major


def test_real_nodes_need_java_8_to_17_and_the_h2o_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_runtime().java_major in range(8, 18)
    monkeypatch.setenv("PATH", str(fake_java(tmp_path, 'openjdk version "21.0.2" 2024-01-16')))
    with pytest.raises(RuntimeMissing, match=r"is Java 21; the H2O-3 jar needs Java 8-17"):
        find_runtime()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeMissing, match=r"no java on PATH \(install Java 8-17"):
        find_runtime()
    monkeypatch.setattr(h2o3.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeMissing, match=r"no h2o package \(pip install 'airflow-provider-puddle\[h2o\]'"):
        find_runtime()


def test_an_explicit_real_that_cannot_run_exits_2_naming_what_is_missing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "airflow_puddle.emulator", "--port", "0", "--db", str(tmp_path / "x.sqlite"),
         "--h2o3", "real"],
        capture_output=True, text=True, timeout=60, env={"PATH": str(tmp_path / "empty")},
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "puddle-emulator: error: argument --h2o3: real H2O-3 nodes cannot run: no java on PATH "
        "(install Java 8-17, e.g. apt-get install openjdk-17-jre-headless)"
    ]


def test_without_java_the_default_is_simulated_said_in_one_line(
    run_emulator: Callable[..., CliEmulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PUDDLE_EMULATOR_H2O3")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    emulator = run_emulator()
    assert emulator.address(30)
    assert emulator.terminate() == 0
    said = [line for line in emulator.stderr.splitlines() if "H2O-3 systems are simulated" in line]
    assert len(said) == 1 and said[0].endswith("no java on PATH (install Java 8-17, e.g. apt-get install "
                                               "openjdk-17-jre-headless)")
