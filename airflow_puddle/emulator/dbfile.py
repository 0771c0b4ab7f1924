"""The emulator's database file: checked before it is opened, watched while the emulator runs.

SQLite writes the file and, next to it, its ``-wal`` and ``-shm`` files, so both the file
and its directory must be writable. ``os.access`` answers for the effective user, which
for root ignores the mode bits; root therefore also needs a write bit set, so a file or
directory made read-only with ``chmod a-w`` is refused for everyone. A file deleted or
replaced under a running emulator is noticed by :class:`FileWatch`.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

import grpc

from airflow_puddle.domain.errors import PreconditionFailedError, PuddleError
from airflow_puddle.emulator.limits import EmulatorConfigError

log = logging.getLogger(__name__)


class DatabaseGoneError(PreconditionFailedError):
    """The database file was deleted or replaced while the emulator ran (``FAILED_PRECONDITION``)."""


class DatabaseClosedError(PuddleError):
    """A call reached the database after the emulator closed it, while shutting down (``UNAVAILABLE``)."""

    code = grpc.StatusCode.UNAVAILABLE


def _writable(path: Path, st: os.stat_result) -> bool:
    if not os.access(path, os.W_OK):
        return False
    return os.geteuid() != 0 or bool(st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def check_db_path(db_path: object) -> Path:
    """The database path, once its directory exists and is writable and the file (if any) is a writable file."""
    if not isinstance(db_path, str | os.PathLike) or not str(db_path).strip():
        raise EmulatorConfigError("db_path", f"must be a file path, got {db_path!r}")
    path = Path(db_path).expanduser().absolute()
    directory = path.parent
    try:
        dir_st = directory.stat()
    except OSError as err:
        raise EmulatorConfigError("db_path", f"directory {directory} does not exist ({err.strerror})") from None
    if not stat.S_ISDIR(dir_st.st_mode):
        raise EmulatorConfigError("db_path", f"{directory} is not a directory")
    if os.statvfs(directory).f_flag & os.ST_RDONLY:
        raise EmulatorConfigError("db_path", f"directory {directory} is on a read-only file system")
    if not _writable(directory, dir_st):
        raise EmulatorConfigError(
            "db_path", f"directory {directory} is not writable (SQLite keeps its -wal and -shm files there)"
        )
    try:
        st = path.stat()
    except FileNotFoundError:
        return path  # created on open
    except OSError as err:
        raise EmulatorConfigError("db_path", f"cannot inspect {path} ({err.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise EmulatorConfigError("db_path", f"{path} is a directory, not a database file")
    if not stat.S_ISREG(st.st_mode):
        raise EmulatorConfigError("db_path", f"{path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise EmulatorConfigError("db_path", f"{path} is not readable")
    if not _writable(path, st):
        raise EmulatorConfigError("db_path", f"{path} is read-only (mode {stat.S_IMODE(st.st_mode):04o})")
    return path


STAMP_OFFSET = 68
"""Where SQLite keeps ``PRAGMA application_id`` in the file's header: the emulator's stamp on its file."""


def read_stamp(path: Path) -> bytes:
    """The four header bytes that hold ``PRAGMA application_id`` (fewer for a file too short to have them)."""
    with open(path, "rb") as f:
        f.seek(STAMP_OFFSET)
        return f.read(4)


class FileWatch:
    """Tells whether the file opened at ``path`` is still the one there.

    The same device and inode, and, whenever its size or modification time moved, the same
    stamp in its header (:data:`STAMP_OFFSET`, written when the store opened it), so a file
    copied over it in place (``cp other.sqlite ...``: same inode) is noticed too. A ``stat`` per
    check, a few microseconds, plus a 4-byte read after a write. The first failed check is logged, once.
    """

    def __init__(self, path: Path, stamp: bytes) -> None:
        self.path = path
        st = path.stat()
        self._identity = (st.st_dev, st.st_ino)
        self._stamp = stamp
        self._verified: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._said = False

    def problem(self) -> str | None:
        """What happened to the file, or None while it is the one opened."""
        replaced = f"emulator database {self.path} was replaced by another file; restart the emulator"
        try:
            st = self.path.stat()
            if (st.st_dev, st.st_ino) != self._identity:
                return replaced
            version = (st.st_mtime_ns, st.st_size)
            if version != self._verified:
                if read_stamp(self.path) != self._stamp:
                    return replaced
                self._verified = version
        except FileNotFoundError:
            return f"emulator database {self.path} was deleted; restart the emulator"
        except OSError as err:
            return f"emulator database {self.path} cannot be read ({err.strerror}); restart the emulator"
        return None

    def report(self, problem: str) -> None:
        """Log ``problem``, the first time only."""
        with self._lock:
            said, self._said = self._said, True
        if not said:
            log.error("%s; every call now fails with FAILED_PRECONDITION", problem)

    def check(self) -> None:
        """Raise :class:`DatabaseGoneError` (logging it the first time) when the file is not the one opened."""
        problem = self.problem()
        if problem is not None:
            self.report(problem)
            raise DatabaseGoneError(problem)
