"""``make demo`` (scripts/demo.py) as a user runs it: a subprocess with its own emulator and Airflow home."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "scripts" / "demo.py"
TIMEOUT_S = 180


class Demo:
    """scripts/demo.py in a subprocess, its output collected line by line as it comes."""

    def __init__(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PUDDLE_"))}
        env["TMPDIR"] = str(tmp_path)  # where the demo's temporary directory must appear and vanish
        self.proc = subprocess.Popen([sys.executable, str(DEMO)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """The first output line matching ``pattern`` (searching what was already read too)."""
        regex = re.compile(pattern)
        for line in self.lines:
            if m := regex.search(line):
                return m
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if got is None:
                break
            self.lines.append(got)
            if m := regex.search(got):
                return m
        raise AssertionError(f"no line matching {pattern!r} in the demo output:\n{self.output[-4000:]}")

    def finish(self, timeout_s: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the demo did not finish in {timeout_s}s:\n{self.output[-4000:]}") from None
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the demo cleans up its emulator on SIGTERM
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

    @property
    def output(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    d = Demo(tmp_path)
    yield d
    d.kill()


def gone(pid: int) -> bool:
    """True once a process and its process group have exited (after a short grace)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.1)
    return False


def test_demo_trains_a_real_model_tells_a_short_story_and_cleans_up(demo: Demo, tmp_path: Path) -> None:
    started = time.monotonic()
    emulator_pid = int(demo.wait_for(r"Puddle emulator \(pid (\d+)\) listening on http://127\.0\.0\.1:\d+; "
                                     r"H2O-3 systems are real", 30)[1])
    child_pid = int(demo.wait_for(r"Airflow runs in child process (\d+)", 10)[1])

    code = demo.finish(TIMEOUT_S)
    elapsed = time.monotonic() - started

    out = demo.output
    assert code == 0, out[-4000:]
    lines = out.splitlines()
    # A story, not Airflow's internals: every line is the demo's own (make adds none: the script runs bare).
    assert all(line.startswith("[demo] ") for line in lines), out
    assert len(lines) <= 22, out
    assert re.search(r"system h2o3-\w+ \([0-9a-f-]{36}\) is Started after \d+s", out), out
    for task in ("create_system", "train", "terminate_system"):
        assert re.search(rf"^\[demo\] {task}\s+success\s+[\d.]+s", out, re.M), out
    auc = float(re.search(r"train\s+success\s+[\d.]+s\s+GBM on prostate: AUC (0\.\d{4}), logloss", out, re.M)[1])
    assert 0.6 < auc <= 1.0
    assert re.search(r"terminate_system\s+success\s+[\d.]+s\s+system Terminated$", out, re.M), out
    mojo = Path(re.search(r"^\[demo\] MOJO at (\S+\.zip)$", out, re.M)[1])
    assert zipfile.is_zipfile(mojo)
    log_path = Path(re.search(r"Airflow's own output: (\S+)$", out, re.M)[1])
    assert "[DAG TEST] running trigger in line" in log_path.read_text()  # the waits ran as triggers
    assert "RESULT: SUCCESS" in out
    assert "deferred to the triggerer" not in out  # dag.test() runs triggers in its own process
    assert "temporary files removed" in out
    assert gone(emulator_pid), "the emulator is still running"
    assert gone(child_pid), "the Airflow child is still running"
    assert list(tmp_path.iterdir()) == [], "the demo left its temporary directory behind"
    ours = [p for p in Path("/proc").glob("[0-9]*") if b"h2o.jar" in _cmdline(p) and bytes(tmp_path) in _cmdline(p)]
    assert ours == [], "an H2O-3 node of the demo is still running"
    print(f"demo took {elapsed:.1f}s")


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_demo_sigterm_stops_the_emulator_and_cleans_up(demo: Demo, tmp_path: Path) -> None:
    emulator_pid = int(demo.wait_for(r"Puddle emulator \(pid (\d+)\) listening", 30)[1])
    child_pid = int(demo.wait_for(r"Airflow runs in child process (\d+)", 10)[1])
    assert len(list(tmp_path.iterdir())) == 1  # the demo's temporary directory, while it runs

    demo.proc.send_signal(signal.SIGTERM)  # while the child migrates the Airflow DB
    code = demo.finish(30)

    assert code == 130, demo.output[-4000:]
    assert "interrupted (SIGTERM)" in demo.output
    assert gone(emulator_pid), "the emulator is still running"
    assert gone(child_pid), "the Airflow child (or its airflow db migrate) is still running"
    assert list(tmp_path.iterdir()) == [], "the demo left its temporary directory behind"
