"""What a real H2O-3 node needs: Java 8-17 and the ``h2o`` package's jar; and one node's process.

:func:`find_runtime` answers whether this machine can run real H2O-3 nodes, and if not,
why, in one line that says how to fix it. :class:`NodeProcess` is one node: the command
line, its files under one directory, its health check and its last log line.
"""

from __future__ import annotations

import base64
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

JAVA_VERSIONS = range(8, 18)
"""The Java major versions the H2O-3 jar accepts."""
JAR_IN_PACKAGE = ("backend", "bin", "h2o.jar")
HEALTH_PATH = "/3/Cloud"
PID_FILE = "node.pid"
OUTPUT_FILE = "node.out"
LOGIN_FILE = "login.conf"


# No proxy, whatever http_proxy says: the node is on loopback, and its login must not go to a proxy.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RuntimeMissing(Exception):
    """Real H2O-3 nodes cannot run here; the message says what is missing and how to get it."""


@dataclass(frozen=True)
class H2O3Runtime:
    """A Java that runs the jar, the jar, and the H2O-3 version it is."""

    java: str
    java_major: int
    jar: Path
    version: str


def java_major(java: str) -> int | None:
    """The major version ``java -version`` reports (8 for ``1.8.0_x``), or None when it cannot tell."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_runtime() -> H2O3Runtime:
    """The runtime for real nodes; :class:`RuntimeMissing` naming what is missing and how to get it."""
    spec = importlib.util.find_spec("h2o")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeMissing("no h2o package (pip install 'airflow-provider-puddle[h2o]', or h2o==3.46.0.11)")
    jar = Path(next(iter(spec.submodule_search_locations)), *JAR_IN_PACKAGE)
    if not jar.is_file():
        raise RuntimeMissing(f"the h2o package has no server jar at {jar} (reinstall h2o==3.46.0.11)")
    java = shutil.which("java")
    if java is None:
        raise RuntimeMissing("no java on PATH (install Java 8-17, e.g. apt-get install openjdk-17-jre-headless)")
    major = java_major(java)
    if major is None or major not in JAVA_VERSIONS:
        raise RuntimeMissing(
            f"{java} is Java {major if major is not None else '(unknown version)'}; "
            "the H2O-3 jar needs Java 8-17 (e.g. apt-get install openjdk-17-jre-headless)"
        )
    return H2O3Runtime(java=java, java_major=major, jar=jar, version=importlib.metadata.version("h2o"))


def port_pair_free(port: int) -> bool:
    """Whether ``port`` and ``port + 1`` can both be bound on 127.0.0.1 (a node uses both)."""
    if not 1024 <= port < 65535:
        return False
    for p in (port, port + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM does: TIME_WAIT is no conflict
            try:
                probe.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


def free_port_pair(preferred: int | None = None) -> int:
    """A port P with P and P+1 free: ``preferred`` when it is, else one the kernel picks."""
    if preferred is not None and port_pair_free(preferred):
        return preferred
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port_pair_free(port):
            return port
    raise OSError("no two adjacent free ports on 127.0.0.1")


@dataclass(frozen=True)
class Health:
    """One answer of a node's ``/3/Cloud``."""

    healthy: bool
    version: str


class NodeProcess:
    """One H2O-3 node on 127.0.0.1:``port`` with its files under ``home`` (removed by :meth:`remove`)."""

    def __init__(self, runtime: H2O3Runtime, home: Path, *, name: str, port: int, username: str,
                 password: str, max_heap_mb: int) -> None:
        self.home = home
        self.port = port
        self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        for sub in ("logs", "ice", "tmp"):
            (home / sub).mkdir(exist_ok=True)
        flatfile = home / "flatfile.txt"
        flatfile.write_text(f"127.0.0.1:{port}\n")
        login = home / LOGIN_FILE
        fd = os.open(login, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{username}:{password}\n")
        os.chmod(login, 0o600)
        self.argv = [
            runtime.java, "-XX:-UsePerfData", f"-Xmx{max_heap_mb}m",
            f"-Djava.io.tmpdir={home / 'tmp'}", "-Dsys.ai.h2o.ext.core.toggle.XGBoost=false",
            "-jar", str(runtime.jar), "-name", name, "-ip", "127.0.0.1", "-web_ip", "127.0.0.1",
            "-port", str(port), "-flatfile", str(flatfile), "-log_dir", str(home / "logs"),
            "-ice_root", str(home / "ice"), "-hash_login", "-login_conf", str(login),
        ]
        with open(home / OUTPUT_FILE, "wb") as out:
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=home, start_new_session=True,
            )
        (home / PID_FILE).write_text(f"{self._proc.pid}\n")
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        """The JVM's process id."""
        return self._proc.pid

    @property
    def url(self) -> str:
        """The node's Flow UI and REST address."""
        return f"http://127.0.0.1:{self.port}"

    def exit_code(self) -> int | None:
        """The JVM's exit code, or None while it runs."""
        return self._proc.poll()

    def health(self, timeout: float = 1.0) -> Health:
        """Ask ``/3/Cloud`` (with the node's credentials); unhealthy while it does not answer."""
        request = urllib.request.Request(self.url + HEALTH_PATH, headers={"Authorization": self._auth})
        try:
            with _DIRECT.open(request, timeout=timeout) as response:
                body = json.load(response)
        except (OSError, ValueError, urllib.error.URLError):
            return Health(False, "")
        healthy = bool(body.get("cloud_healthy")) and int(body.get("cloud_size") or 0) >= 1
        return Health(healthy, str(body.get("version") or ""))

    def last_log_line(self) -> str:
        """The node's last non-empty line of output (what to show when it died), at most 300 characters."""
        return last_line(self.home / OUTPUT_FILE)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the pid file goes once it has exited."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        (self.home / PID_FILE).unlink(missing_ok=True)

    def remove(self) -> None:
        """Stop the node and delete its files."""
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def last_line(path: Path) -> str:
    """The last non-empty line of a text file, at most 300 characters; empty when there is none."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = [line.strip() for line in f.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""


def reap(home: Path) -> bool:
    """Kill a node left running by an emulator that died (its pid file under ``home``); True if one was."""
    pid_file = home / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    killed = False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        cmdline = []
    # Only a JVM started for this home: a recycled pid of another process is left alone.
    if str(home).encode() + b"/flatfile.txt" in cmdline:
        try:
            os.kill(pid, signal.SIGKILL)
            killed = True
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return killed
