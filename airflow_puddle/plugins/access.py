"""The Airflow side of the Puddle page: which connections a user may read, which DAGs, who owns a system.

Blocking calls (the metadata DB, the auth manager), run off the event loop by the app. Rights
come from Airflow's auth manager, as the core API's own routes get them: a connection is shown
only when ``filter_authorized_connections`` (GET) keeps it, and a system's owner only when
``filter_authorized_dag_ids`` (GET) keeps its DAG.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.owners import owner_key
from airflow_puddle.plugins.rows import Owner

CHUNK = 500
"""Keys per ``IN (...)`` query of the task state store."""


def puddle_connections() -> dict[str, str | None]:
    """Every ``puddle`` connection Airflow can list, by id, with its team (None outside multi-team mode).

    Those in the metadata DB and those in ``AIRFLOW_CONN_*`` variables of this process. Other
    secrets backends cannot be listed, so their connections do not show.
    """
    from airflow.models import Connection
    from airflow.secrets.environment_variables import CONN_ENV_PREFIX, EnvironmentVariablesBackend
    from airflow.utils.session import create_session
    from sqlalchemy import select

    found: dict[str, str | None] = {}
    env = EnvironmentVariablesBackend()
    for name, value in os.environ.items():
        if name.startswith(CONN_ENV_PREFIX) and value:
            conn_id = name[len(CONN_ENV_PREFIX):].lower()
            try:
                conn_type = env.deserialize_connection(conn_id, value).conn_type
            except Exception:  # a malformed variable is Airflow's to report, not this page's
                continue
            if conn_type == PuddleHook.conn_type:
                found[conn_id] = None
    with create_session() as session:
        rows = session.execute(select(Connection.conn_id, Connection.team_name)
                               .where(Connection.conn_type == PuddleHook.conn_type)).all()
    for conn_id, team in rows:
        found.setdefault(conn_id, team)  # an environment variable wins, as it does for a lookup
    return found


def readable_connections(user: Any) -> list[str]:
    """The ``puddle`` connections the auth manager lets ``user`` read, sorted."""
    from airflow.api_fastapi.app import get_auth_manager

    by_team: dict[str | None, set[str]] = defaultdict(set)
    for conn_id, team in puddle_connections().items():
        by_team[team].add(conn_id)
    manager = get_auth_manager()
    allowed: set[str] = set()
    for team, conn_ids in by_team.items():
        allowed |= manager.filter_authorized_connections(conn_ids=conn_ids, user=user, method="GET", team_name=team)
    return sorted(allowed)


def readable_dags(user: Any, dag_ids: set[str]) -> set[str]:
    """Those of ``dag_ids`` the auth manager lets ``user`` read."""
    if not dag_ids:
        return set()
    from airflow.api_fastapi.app import get_auth_manager

    return set(get_auth_manager().filter_authorized_dag_ids(dag_ids=dag_ids, user=user, method="GET"))


def owners_of(system_ids: list[str]) -> dict[str, Owner]:
    """The task instance that last recorded each system (``airflow_puddle.owners``), by system id.

    Reads the ``task_state_store`` table: with a custom ``[state_store] backend`` that keeps
    values elsewhere, no owner is found.
    """
    from airflow.models.task_state_store import TaskStateStoreModel as Row
    from airflow.utils.session import create_session
    from sqlalchemy import select

    by_key = {owner_key(system_id): system_id for system_id in system_ids}
    latest: dict[str, tuple[Any, Owner]] = {}
    keys = list(by_key)
    with create_session() as session:
        for start in range(0, len(keys), CHUNK):
            query = select(Row.key, Row.dag_id, Row.run_id, Row.task_id, Row.map_index, Row.updated_at).where(
                Row.key.in_(keys[start:start + CHUNK]))
            for key, dag_id, run_id, task_id, map_index, updated in session.execute(query):
                system_id = by_key[key]
                if system_id not in latest or updated > latest[system_id][0]:
                    latest[system_id] = (updated, Owner(dag_id, run_id, task_id, int(map_index)))
    return {system_id: owner for system_id, (_, owner) in latest.items()}
