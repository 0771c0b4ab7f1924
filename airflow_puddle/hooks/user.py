"""The mixin for operators and sensors: a :class:`~airflow_puddle.hooks.puddle.PuddleHook` and its systems client."""

from __future__ import annotations

from functools import cached_property

from airflow_puddle.hooks.api import SystemsClient
from airflow_puddle.hooks.puddle import PuddleHook


class PuddleHookUser:
    """For operators and sensors: a :class:`PuddleHook` for ``puddle_conn_id`` and its systems client.

    Use ``with self.hook:`` around each step of a task, so its channel is closed when the step ends.
    """

    puddle_conn_id: str
    cloud: str | None

    @cached_property
    def hook(self) -> PuddleHook:
        """The hook for ``puddle_conn_id`` (and ``cloud``, when given)."""
        return PuddleHook(self.puddle_conn_id, cloud=self.cloud)

    @cached_property
    def _client(self) -> SystemsClient:
        return self.hook.get_systems_client()
