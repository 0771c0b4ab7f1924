"""A task's H2O-3 session on a Puddle system: check it is Started, connect the ``h2o`` client, disconnect."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING

from airflow_puddle.domain.products import PRODUCT_H2O3
from airflow_puddle.domain.statuses import SystemStatuses, system_status_text
from airflow_puddle.domain.validation import validate_system_id
from airflow_puddle.hooks.masking import mask_secret_quietly

if TYPE_CHECKING:
    from airflow_puddle.hooks.puddle import PuddleHook

log = logging.getLogger(__name__)
H2O_EXTRA = "airflow-provider-puddle[h2o]"


class H2OSessionError(RuntimeError):
    """The system cannot give an H2O-3 session: not an H2O-3 system, not Started, or no ``h2o`` package."""


def import_h2o() -> ModuleType:
    """The ``h2o`` client package; :class:`H2OSessionError` naming the extra to install when it is missing."""
    try:
        import h2o
    except ImportError:
        raise H2OSessionError(
            f"the h2o package is not installed: pip install '{H2O_EXTRA}' (h2o-3 client 3.46.0.11 tested)"
        ) from None
    return h2o


@contextlib.contextmanager
def h2o_session(hook: PuddleHook, system_id: str) -> Iterator[ModuleType]:
    """Connect ``h2o`` to the Started H2O-3 system ``system_id`` with its login; yields the ``h2o`` module.

    The system's password is masked in task logs before it is used. The session is closed
    at exit (the system keeps running). ``h2o`` has one current connection per process,
    so one session at a time.
    """
    validate_system_id(system_id)
    h2o = import_h2o()
    system = hook.get_systems_client().get(system_id)
    if system is None:
        raise H2OSessionError(f"system_id: no system {system_id!r}")
    label = f"system {system.name!r} ({system.id})"
    if system.product != PRODUCT_H2O3.id:
        raise H2OSessionError(f"{label} runs {system.product!r}; an H2O-3 session needs an {PRODUCT_H2O3.id} system")
    if system.status != SystemStatuses.SYSTEM_STATUS_STARTED.code:
        raise H2OSessionError(f"{label} is {system_status_text(system.status)}; an H2O-3 session needs it Started")
    if not system.default_url:
        raise H2OSessionError(f"{label} has no URL yet")
    if system.password:
        mask_secret_quietly(system.password)
    auth = (system.username, system.password) if system.username else None
    # h2o prints its banner and notes to stdout: only its warnings (a client/server version mismatch) go on.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        h2o.no_progress()
        connection = h2o.connect(url=system.default_url, auth=auth, verbose=False)
    for line in printed.getvalue().splitlines():
        if line.strip().lower().startswith("warning") and " old" not in line:  # not "your build is N months old"
            log.warning("h2o: %s", line.strip())
    try:
        yield h2o
    finally:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
            connection.close()
