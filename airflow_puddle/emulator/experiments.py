"""Fake Driverless AI experiments: fixed, derived from the system id, so every read agrees."""

from __future__ import annotations

import hashlib
import uuid

from airflow_puddle.domain.products import PRODUCT_DAI
from airflow_puddle.domain.statuses import SystemStatuses
from airflow_puddle.emulator.rows import ExperimentRow, SystemRow

_FAKE_EXPERIMENTS = (
    ("credit-card-default", "creditcard_train.csv", "default payment next month", "AUC"),
    ("house-prices", "house_prices_train.csv", "SalePrice", "RMSE"),
)


def dai_experiments(s: SystemRow) -> list[ExperimentRow]:
    """A started DAI system's experiments (none for any other system).

    On a system tagged ``Purpose=training`` the last experiment is still running (progress 0.5).
    """
    if s.product != PRODUCT_DAI.id or s.status != SystemStatuses.SYSTEM_STATUS_STARTED.code:
        return []
    training = ("Purpose", "training") in s.tags
    experiments = []
    for n, (description, dataset, target, scorer) in enumerate(_FAKE_EXPERIMENTS):
        running = training and n == len(_FAKE_EXPERIMENTS) - 1
        digest = hashlib.sha256(f"{s.id}/{n}".encode()).digest()
        score = 0.7 + digest[0] / 1000
        created = int(s.created) + 600 * (n + 1)
        experiments.append(
            ExperimentRow(
                id=str(uuid.UUID(bytes=digest[:16])), description=description, dataset=dataset,
                target=target, scorer=scorer, accuracy=7, time=3 + n, interpretability=6,
                progress=0.5 if running else 1.0, status=0.0, score=score, test_score=score - 0.01,
                training_duration=300.0 + digest[1], created=created, updated=created + 300,
            )
        )
    return experiments
