"""A throw-away PostgreSQL cluster on a free loopback port, for Airflow's metadata DB.

``initdb`` makes the cluster in a fresh directory; ``postgres`` runs in the foreground as a
:class:`~reliability.procs.Service`, so it is stopped by its pid (SIGINT: fast shutdown). Postgres
refuses to run as root, so as root the cluster belongs to the ``postgres`` user (or ``nobody``).
Durability is off (fsync, synchronous commit): the data lives for one run.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path

from reliability.procs import Service, free_port, wait_until

USER = "airflow"
DATABASE = "airflow"
READY_TIMEOUT_S = 60.0


def find_bin(name: str) -> str:
    """``initdb`` or ``postgres``: from PATH, else the newest Debian ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not candidates:
        raise FileNotFoundError(f"{name} not found: install PostgreSQL (Debian: apt-get install -y postgresql)")
    return candidates[-1]


def _owner() -> str | None:
    """The user the cluster runs as: None when we are not root, else ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to own the cluster")


class PostgresCluster:
    """``initdb`` + ``postgres`` on ``127.0.0.1:<free port>``; :meth:`stop` removes everything."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self._env = dict(env)
        self._log_dir = log_dir
        self._dir = Path(tempfile.mkdtemp(prefix="puddle-pg-"))
        self.port = free_port()
        self.service: Service | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Airflow uses."""
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> PostgresCluster:
        """Create the cluster, start the server, create the database; returns self once it accepts connections."""
        owner = _owner()
        data, sockets = self._dir / "data", self._dir / "sockets"
        sockets.mkdir()
        if owner is not None:
            entry = pwd.getpwnam(owner)
            for path in (self._dir, sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        init_log = self._log_dir / "initdb.log"
        init = Service.spawn("initdb", [find_bin("initdb"), "-D", str(data), "-U", USER, "--auth=trust",
                                        "-E", "UTF8", "--no-sync", "--no-instructions"],
                             env=self._env, log_path=init_log, user=owner)
        if init.proc.wait(timeout=120) != 0:
            raise RuntimeError(f"initdb failed:\n{init.tail()}")
        settings = {
            "listen_addresses": "127.0.0.1", "port": str(self.port), "unix_socket_directories": str(sockets),
            "max_connections": "300", "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
        }
        argv = [find_bin("postgres"), "-D", str(data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self.service = Service.spawn("postgres", argv, env=self._env, log_path=self._log_dir / "postgres.log",
                                     user=owner)
        wait_until("PostgreSQL to accept connections", self._create_database, READY_TIMEOUT_S, 0.25,
                   lambda: self.service.tail() if self.service else "")
        return self

    def _create_database(self) -> bool | None:
        import psycopg2  # only the reliability run needs the driver

        if self.service is not None and not self.service.running():
            raise RuntimeError(f"postgres exited {self.service.proc.returncode}:\n{self.service.tail()}")
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres", connect_timeout=2)
        except psycopg2.OperationalError:
            return None
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            conn.close()
        return True

    def stop(self) -> list[str]:
        """Fast shutdown by pid (SIGINT), then remove the cluster's directory; returns what was SIGKILLed."""
        killed: list[str] = []
        if self.service is not None:
            killed = self.service.stop(signal.SIGINT, grace=30)
            self.service = None
        shutil.rmtree(self._dir, ignore_errors=True)
        return killed

