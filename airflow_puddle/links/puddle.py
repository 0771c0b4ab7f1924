"""PuddleSystemLink: the "Puddle System" button on a task, to the system's URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class PuddleSystemLink(BaseOperatorLink):
    """Links a task to the URL of the system it acted on, kept in XCom under the link's own ``xcom_key``."""

    name = "Puddle System"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""

    @classmethod
    def persist(cls, context: Any, url: str) -> None:
        """Store the system's ``url`` (maybe empty, while it boots) for :meth:`get_link` and the UI."""
        context["ti"].xcom_push(key=cls().xcom_key, value=url)
