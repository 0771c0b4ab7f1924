"""PuddleHook: an Airflow connection in, authorized Puddle clients out (sync and async).

The connection's settings are read and checked by :mod:`airflow_puddle.hooks.settings`; the
operators' and sensors' mixin is :mod:`airflow_puddle.hooks.user`.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import ModuleType
from typing import Any

from airflow.sdk import BaseHook

from airflow_puddle.client import (
    AsyncSystemsClient,
    Authorizer,
    ImagesClient,
    InstanceTypesClient,
    SystemsClient,
    TagsClient,
)
from airflow_puddle.client.extending import BLOCKING_CALLS
from airflow_puddle.domain.clouds import cloud_by_id
from airflow_puddle.hooks.adapter import OfficialKit
from airflow_puddle.hooks.form import UI_FIELD_BEHAVIOUR
from airflow_puddle.hooks.h2o import h2o_session
from airflow_puddle.hooks.masking import mask_secret_quietly
from airflow_puddle.hooks.settings import PuddleConnectionError, PuddleSettings


@dataclass(frozen=True)
class SystemCredentials:
    """How to reach a system's DAI: its URL and login. ``password`` stays out of ``repr``."""

    url: str
    username: str
    password: str = field(repr=False)


class PuddleHook(BaseHook):
    """Authorized Puddle clients for one Airflow connection.

    The sync clients share one channel and one login; use the hook as a context
    manager (``with PuddleHook(...) as hook:``) to close that channel at the end.
    The async twins, for triggers, are built from ``await aget_connection(...)``
    so no sync lookup runs on the event loop, each on its own channel.

    :param puddle_conn_id: The ``puddle`` connection to use.
    :param cloud: Cloud id overriding the connection's ``cloud`` extra.
    """

    conn_name_attr = "puddle_conn_id"
    default_conn_name = "puddle_default"
    conn_type = "puddle"
    hook_name = "Puddle"

    def __init__(self, puddle_conn_id: str = default_conn_name, cloud: str | None = None) -> None:
        super().__init__()
        self.puddle_conn_id = puddle_conn_id
        self._cloud = cloud_by_id(cloud) if cloud else None

    # ------------------------------------------------------------------ settings

    @cached_property
    def settings(self) -> PuddleSettings:
        """The connection's checked settings (sync lookup: not for triggers)."""
        return self._with_cloud(PuddleSettings.from_connection(self.get_connection(self.puddle_conn_id)))

    async def asettings(self) -> PuddleSettings:
        """Async version of :attr:`settings` (read in a worker thread: it may import ``puddle.client``)."""
        conn = await self.aget_connection(self.puddle_conn_id)
        read = await asyncio.get_running_loop().run_in_executor(BLOCKING_CALLS, PuddleSettings.from_connection, conn)
        return self._with_cloud(read)

    def _with_cloud(self, settings: PuddleSettings) -> PuddleSettings:
        return settings if self._cloud is None else replace(settings, cloud=self._cloud)

    # ------------------------------------------------------------------ sync clients

    @cached_property
    def authorizer(self) -> Authorizer:
        """One authorizer (one channel, one login) for every client of this hook (builtin client)."""
        return self.settings.authorizer()

    @cached_property
    def official(self) -> OfficialKit:
        """One official ``Authorizer`` for every client of this hook (``extra.client=puddle``)."""
        return self.settings.official_kit()

    def get_systems_client(self) -> SystemsClient:
        """A :class:`SystemsClient` on the connection's cloud (over the official client with ``client=puddle``)."""
        if self.settings.official:
            return self.official.systems()
        return SystemsClient(self.settings.cloud, authorizer=self.authorizer)

    def get_images_client(self) -> ImagesClient:
        """An :class:`ImagesClient` on the connection's cloud."""
        if self.settings.official:
            return self.official.images()
        return ImagesClient(self.settings.cloud, authorizer=self.authorizer)

    def get_instance_types_client(self) -> InstanceTypesClient:
        """An :class:`InstanceTypesClient` on the connection's cloud."""
        if self.settings.official:
            return self.official.instance_types()
        return InstanceTypesClient(self.settings.cloud, authorizer=self.authorizer)

    def get_tags_client(self) -> TagsClient:
        """A :class:`TagsClient`."""
        if self.settings.official:
            return self.official.tags()
        return TagsClient(authorizer=self.authorizer)

    def get_system_credentials(self, system_id: str) -> SystemCredentials:
        """URL and DAI login of a started system, fetched now; the password is masked in task logs.

        The password is registered with the masker without being echoed by Airflow's DEBUG logging.
        """
        system = self.get_systems_client().get(system_id)
        if system is None:
            raise PuddleConnectionError(f"system_id: no system {system_id!r} on {self.settings.server_address}")
        if system.password:
            mask_secret_quietly(system.password)
        return SystemCredentials(system.default_url, system.username, system.password)

    def h2o_session(self, system_id: str) -> AbstractContextManager[ModuleType]:
        """``with hook.h2o_session(system_id) as h2o:``: the ``h2o`` client connected to a Started H2O-3
        system with its login (password masked), disconnected at exit. Needs ``airflow-provider-puddle[h2o]``."""
        return h2o_session(self, system_id)

    # ------------------------------------------------------------------ async clients

    async def aget_systems_client(self) -> AsyncSystemsClient:
        """Async version of :meth:`get_systems_client`: a fresh async client on its own channel."""
        settings = await self.asettings()
        if settings.official:  # its Authorizer may log in when built: not on the event loop
            kit = await asyncio.get_running_loop().run_in_executor(BLOCKING_CALLS, settings.official_kit)
            return kit.async_systems()
        return AsyncSystemsClient(settings.cloud, authorizer=settings.async_authorizer())

    # ------------------------------------------------------------------ Airflow UI

    def test_connection(self) -> tuple[bool, str]:
        """Log in and list systems: what the UI's Test button runs."""
        try:
            systems = self.get_systems_client()
            count = len(systems.list())
            user = getattr(systems.user, "name", None) or "?"
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, f"Logged in to {self.settings.server_address} as {user}; {count} system(s) visible"

    def close(self) -> None:
        """Close the shared channel, if one was opened (a later call opens it again)."""
        if "authorizer" in self.__dict__:
            self.authorizer.close()

    def __enter__(self) -> PuddleHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide the generic connection fields (Airflow 3 reads the provider info's copy)."""
        return UI_FIELD_BEHAVIOUR
