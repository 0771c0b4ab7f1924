"""Which DAG run and task made a system: written at create time into Airflow's task state store.

A create (or an adoption) writes one key per system, ``puddle.system:<system id>``, into the
task's own scope of the task state store (Airflow 3.3: ``context["task_state_store"]``). The
scope already is the DAG run, the task and the map index, so the value needs only the
connection. The Puddle page (:mod:`airflow_puddle.plugins`) reads the keys back for the systems
it lists; the task instance's "Task State Store" tab in the UI shows them too.

Why not Puddle tags: Puddle's tags are defined by its admins (``TagsClient.list()`` returns their
definitions, with ``required`` and ``default_value``), so a label like ``airflow-dag-id`` exists
only where an admin made it; the emulator, modelling that, refuses an undefined label. And the
documented ``System`` has no ``tags`` to read them back from (H2O's client does not return them).
"""

from __future__ import annotations

import logging
from typing import Any

OWNER_KEY_PREFIX = "puddle.system:"
"""The task state store key of a system a task created or adopted is this prefix plus the system's id."""

log = logging.getLogger(__name__)


def owner_key(system_id: str) -> str:
    """The task state store key that records who created (or adopted) ``system_id``."""
    return f"{OWNER_KEY_PREFIX}{system_id}"


def record_owner(context: Any, system_id: str, puddle_conn_id: str) -> None:
    """Record that the running task instance made (or adopted) ``system_id``; a failure only logs a warning.

    The record is for the Puddle page; a store that refuses it must not fail a create that worked.
    """
    store = context.get("task_state_store") if hasattr(context, "get") else None
    if store is None:
        return
    try:
        store.set(owner_key(system_id), {"puddle_conn_id": puddle_conn_id})
    except Exception as err:  # the task state store's backend is pluggable: any error is its own
        log.warning("Could not record system %s in the task state store (the Puddle page will not show "
                    "its owner): %s: %s", system_id, type(err).__name__, err)
