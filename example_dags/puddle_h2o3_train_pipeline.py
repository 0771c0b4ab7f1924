"""Train a real GBM on an H2O-3 system that lives exactly as long as the run.

``create_system`` (a setup task) creates an H2O-3 system and waits until it is started;
``train`` connects the ``h2o`` client to it with :meth:`PuddleHook.h2o_session`, trains a
gradient boosting model on the ``prostate`` data set shipped with ``h2o``, logs its AUC and
logloss on a held-out split, and exports the MOJO; ``terminate_system`` (the teardown)
terminates the system whether training succeeded or not.

Against the emulator (``puddle-emulator``, which runs a real H2O-3 node per started H2O-3
system when Java 8-17 and the ``h2o`` package are installed) this trains for real; against a
real Puddle, the same. Needs ``airflow-provider-puddle[h2o]`` on the worker.

Knobs:

- ``PUDDLE_POLL_INTERVAL`` (environment, read when the file is parsed): seconds between status checks (default 5).
- ``PUDDLE_H2O3_VERSION`` (environment): the H2O-3 image version; default: the installed ``h2o`` client's, as the
  client and the server should match.
- Param ``artifacts_dir``: where the MOJO goes; default ``$PUDDLE_ARTIFACTS_DIR``, else
  ``$AIRFLOW_HOME/puddle-artifacts``. Each run writes under a folder named after its run id.
- Param ``fail_training``: make training fail after connecting, to watch the teardown clean up.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowException

from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.operators.puddle import PuddleCreateSystemOperator, PuddleTerminateSystemOperator

log = logging.getLogger(__name__)

POLL_INTERVAL = float(os.environ.get("PUDDLE_POLL_INTERVAL", "5"))
CONN_ID = "puddle_default"
FEATURES = ["AGE", "RACE", "PSA", "GLEASON", "DPROS", "DCAPS", "VOL"]
TARGET = "CAPSULE"
SYSTEM_NAME = "h2o3-{{ run_system_suffix(run_id) }}"


def h2o3_version() -> str:
    """``PUDDLE_H2O3_VERSION``, else the installed ``h2o`` client's version (3.46.0.11 without one)."""
    try:
        installed = importlib.metadata.version("h2o")
    except importlib.metadata.PackageNotFoundError:
        installed = "3.46.0.11"
    return os.environ.get("PUDDLE_H2O3_VERSION") or installed


def default_artifacts_dir() -> str:
    """``$PUDDLE_ARTIFACTS_DIR``, else ``$AIRFLOW_HOME/puddle-artifacts``."""
    home = os.environ.get("AIRFLOW_HOME") or str(Path("~/airflow").expanduser())
    return os.environ.get("PUDDLE_ARTIFACTS_DIR") or str(Path(home) / "puddle-artifacts")


def run_system_suffix(run_id: str) -> str:
    """12 hex digits that identify a DAG run: one system per run, stable across retries."""
    return hashlib.sha256(f"puddle_h2o3_train_pipeline/{run_id}".encode()).hexdigest()[:12]


@task(task_id="train")
def train(system: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train a 50-tree GBM on ``prostate`` on the system's H2O-3 and export its MOJO.

    Returns the metrics and the MOJO's path; never the system's password.
    """
    from h2o.estimators import H2OGradientBoostingEstimator

    params = params or {}
    run_id = get_current_context()["run_id"]
    out_dir = Path(str(params.get("artifacts_dir") or default_artifacts_dir())) / re.sub(r"[^\w.-]", "_", run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    with PuddleHook(puddle_conn_id=CONN_ID) as hook, hook.h2o_session(system["id"]) as h2o:
        version = h2o.cluster().version
        log.info("Connected to H2O-3 %s on system %s", version, system["name"])
        if params.get("fail_training"):
            raise AirflowException("training failed (the run asked for it with fail_training)")
        frame = h2o.load_dataset("prostate")
        frame[TARGET] = frame[TARGET].asfactor()
        training, validation = frame.split_frame(ratios=[0.8], seed=42)
        model = H2OGradientBoostingEstimator(ntrees=50, max_depth=5, seed=42, model_id=f"gbm_{system['name']}")
        model.train(x=FEATURES, y=TARGET, training_frame=training, validation_frame=validation)
        performance = model.model_performance(valid=True)
        auc, logloss = float(performance.auc()), float(performance.logloss())
        mojo = model.download_mojo(path=str(out_dir))
        log.info("Trained GBM %s: AUC %.4f, logloss %.4f; MOJO at %s", model.model_id, auc, logloss, mojo)
    return {
        "system_id": system["id"],
        "system_name": system["name"],
        "h2o_version": version,
        "model_id": model.model_id,
        "auc": round(auc, 4),
        "logloss": round(logloss, 4),
        "mojo_path": str(mojo),
    }


# A retry reconnects to the system the first try asked for, by id, and keeps owning it (the task
# state store): use retries. They also recover from an Airflow race (apache/airflow#72716) that
# can fail a task the moment it defers.
RETRIES: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(seconds=5)}


with DAG(
    dag_id="puddle_h2o3_train_pipeline",
    description="Create an H2O-3 system, train a GBM on it and export the MOJO, terminate it (even on failure)",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["puddle", "example", "h2o-3"],
    user_defined_macros={"run_system_suffix": run_system_suffix},
    params={
        "artifacts_dir": Param("", type="string", description="Where the MOJO goes (empty: the default)"),
        "fail_training": Param(False, type="boolean", description="Make training fail, to watch the teardown"),
    },
) as dag:
    create_system = PuddleCreateSystemOperator(
        task_id="create_system",
        puddle_conn_id=CONN_ID,
        name=SYSTEM_NAME,
        product="h2o3",
        version=h2o3_version(),
        instance_type_name="m5.2xlarge",
        tags={"Team": "data-science"},
        idle_interval=60,
        terminate_on_failure=True,
        deferrable=True,
        **RETRIES,
        poll_interval=POLL_INTERVAL,
    ).as_setup()

    trained = train(create_system.output)

    terminate_system = PuddleTerminateSystemOperator(
        task_id="terminate_system",
        puddle_conn_id=CONN_ID,
        system_id="{{ ti.xcom_pull(task_ids='create_system')['id'] }}",
        poll_interval=POLL_INTERVAL,
        **RETRIES,
    ).as_teardown(setups=create_system)

    trained >> terminate_system
