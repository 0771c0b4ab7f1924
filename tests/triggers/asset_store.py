"""Airflow's asset state store for a watcher under test: Airflow's own Execution API, in process, on the test DB.

In a triggerer, a watcher's ``asset_state_store`` sends each get and set to the triggerer's
supervisor, which calls the Execution API. Here the supervisor is Airflow's
``InProcessTestSupervisor`` (what ``dag.test()`` uses) with ``asend`` added (``dag.test()``'s
comms have none): the requests reach the same API routes and the same ``asset_state_store``
table, one at a time, as through a triggerer's comms. ``asend`` answers on the loop's thread:
Airflow's in-process comms unset ``SUPERVISOR_COMMS`` while a request is handled, which another
thread's request would see.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import structlog

from tests.conftest import DAGS_FOLDER

_DAG = '''
import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

watched = Asset(name={name!r}, uri={uri!r}, watchers=[AssetWatcher(
    name={name!r}, trigger=PuddleSystemStateTrigger(system_name="unused", target="failed", deadline=None))])

with DAG({dag_id!r}, schedule=[watched], start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False):
    @task
    def report():
        return None

    report()
'''


def _sync_dags_folder() -> None:
    """What ``dag.test()`` does before a run: write the DAGs folder's DAGs (and so their assets) to the DB."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    with create_session() as session:
        manager = DagBundlesManager()
        manager.sync_bundles_to_db(session=session)
        session.commit()
        for bundle in manager.get_all_dag_bundles():
            if not bundle.is_initialized:
                bundle.initialize()
            bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
            sync_bag_to_db(bag, bundle.name, None, session=session)


class InProcessComms:
    """A triggerer's comms as a trigger sees them (``send``, ``asend``), over Airflow's in-process supervisor."""

    def __init__(self) -> None:
        from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms, InProcessTestSupervisor

        supervisor = InProcessTestSupervisor(
            id=uuid.uuid4(), pid=os.getpid(), process=psutil.Process(), process_log=structlog.get_logger(),
            client=InProcessTestSupervisor._api_client(),
        )
        supervisor.comms = InProcessSupervisorComms(supervisor=supervisor)
        self._comms = supervisor.comms

    def send(self, msg: Any) -> Any:
        return self._comms.send(msg)

    async def asend(self, msg: Any) -> Any:
        await asyncio.sleep(0)  # a request is a step of the loop, as when awaiting a triggerer's comms
        return self._comms.send(msg)


@dataclass
class WatchedAsset:
    """An asset registered in the test DB (a DAG schedules on it), and its state store."""

    name: str
    uri: str

    def accessors(self) -> Any:
        """What the triggerer sets as a watcher's ``asset_state_store``: a new one for each trigger."""
        from airflow.sdk import Asset
        from airflow.sdk.execution_time.context import AssetStateStoreAccessors

        return AssetStateStoreAccessors(inlets=[Asset(name=self.name, uri=self.uri)])

    def stored(self) -> dict[str, Any]:
        """Every key the asset's state store holds, read from the metadata DB, with its JSON value."""
        from airflow.models.asset import AssetModel
        from airflow.models.asset_state_store import AssetStateStoreModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            asset_id = session.scalar(select(AssetModel.id).where(AssetModel.name == self.name))
            rows = session.scalars(select(AssetStateStoreModel).where(AssetStateStoreModel.asset_id == asset_id))
            return {row.key: json.loads(row.value) for row in rows}


def watched_asset() -> Iterator[WatchedAsset]:
    """Register a fresh asset and put in-process comms in place while the test runs."""
    from airflow.sdk.execution_time.supervisor import set_supervisor_comms

    tag = uuid.uuid4().hex[:8]
    asset = WatchedAsset(name=f"watched-{tag}", uri=f"puddle://puddle_default/systems/watched-{tag}/failed")
    path = DAGS_FOLDER / f"watch_{tag}.py"
    path.write_text(_DAG.format(name=asset.name, uri=asset.uri, dag_id=f"watch_{tag}"))
    try:
        _sync_dags_folder()
        with set_supervisor_comms(InProcessComms()):
            yield asset
    finally:
        path.unlink()
