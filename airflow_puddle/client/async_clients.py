"""The ``Async*`` twins of the clients: the same ops, run by :class:`AsyncDriver` over ``grpc.aio``."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from airflow_puddle.client._drivers import AsyncDriver
from airflow_puddle.client._ops import ImagesOps, InstanceTypesOps, SystemsOps, TagsOps
from airflow_puddle.client.auth import AsyncAuthorizer, BaseAuthorizer
from airflow_puddle.client.models import CUConsumptionInfo, Image, InstanceType, System, Tag, TagData
from airflow_puddle.client.waiting import WaitOutcome, WaitProgress
from airflow_puddle.domain.defaults import DISCARD_TIMEOUT_S
from airflow_puddle.domain.lifecycle import CONFIG_UPLOADED, WaitTarget
from airflow_puddle.domain.products import Product


class _AsyncClient(AsyncDriver):
    """What every async twin shares: an :class:`AsyncAuthorizer`, whose ``close`` is awaited."""

    _authorizer_type: ClassVar[type[BaseAuthorizer]] = AsyncAuthorizer

    @property
    def authorizer(self) -> AsyncAuthorizer:
        """The authorizer used by this client; with ``extra.client=puddle``, the adapter's stand-in for one."""
        return self._authorizer  # type checked by the base's constructor


class AsyncImagesClient(_AsyncClient, ImagesOps):
    """Async version of :class:`ImagesClient`."""

    async def list_available(self) -> list[Image]:
        """Async version of :meth:`ImagesClient.list_available`."""
        return await self._run(self._list_available())


class AsyncInstanceTypesClient(_AsyncClient, InstanceTypesOps):
    """Async version of :class:`InstanceTypesClient`."""

    async def list_available(self) -> list[InstanceType]:
        """Async version of :meth:`InstanceTypesClient.list_available`."""
        return await self._run(self._list_available())


class AsyncTagsClient(_AsyncClient, TagsOps):
    """Async version of :class:`TagsClient`."""

    async def list(self) -> list[Tag]:
        """Async version of :meth:`TagsClient.list`."""
        return await self._run(self._list())


class AsyncSystemsClient(_AsyncClient, SystemsOps):
    """Async version of :class:`SystemsClient`, for triggers."""

    async def create(
        self,
        name: str,
        disk_size_gb: int = SystemsOps.DEFAULT_DISK_SIZE,
        image: Image | str | None = None,
        product: Product | str | None = None,
        version: str | None = None,
        instance_type: InstanceType | str | None = None,
        instance_type_name: str | None = None,
        idle_interval: int = SystemsOps.DEFAULT_IDLE_TIMEOUT_MIN,
        tags: list[TagData] | None = None,
    ) -> System:
        """Async version of :meth:`SystemsClient.create`."""
        args = self._create_args(name, disk_size_gb, image, product, version, instance_type, instance_type_name,
                                 idle_interval, tags)  # checked here, before anything is sent
        return await self._run(self._create(args))

    async def fail(self, system_id: str) -> System:
        """Async version of :meth:`SystemsClient.fail`."""
        return await self._run(self._mutate("FailSystem", system_id))

    async def start(self, system_id: str) -> System:
        """Async version of :meth:`SystemsClient.start`."""
        return await self._run(self._mutate("StartSystem", system_id))

    async def stop(self, system_id: str) -> System:
        """Async version of :meth:`SystemsClient.stop`."""
        return await self._run(self._mutate("StopSystem", system_id))

    async def restart(self, system_id: str) -> System:
        """Async version of :meth:`SystemsClient.restart`."""
        return await self._run(self._mutate("RestartSystem", system_id))

    async def terminate(self, system_id: str) -> System:
        """Async version of :meth:`SystemsClient.terminate`."""
        return await self._run(self._mutate("TerminateSystem", system_id))

    async def refresh_idle_timeout(self, system_id: str) -> System:
        """Async version of :meth:`SystemsClient.refresh_idle_timeout`."""
        return await self._run(self._mutate("RefreshIdleTimeout", system_id))

    async def get(self, system_id: str) -> System | None:
        """Async version of :meth:`SystemsClient.get`."""
        return await self._run(self._get(system_id))

    async def find_by_name(self, name: str) -> System | None:
        """Async version of :meth:`SystemsClient.find_by_name`."""
        return await self._run(self._find_by_name(name))

    async def list(self) -> list[System]:
        """Async version of :meth:`SystemsClient.list`."""
        return await self._run(self._list())

    async def update_config_toml(self, system_id: str, config_toml: str) -> System:
        """Async version of :meth:`SystemsClient.update_config_toml`."""
        return await self._run(self._update_config_toml(system_id, config_toml))

    async def get_cu_consumption_info(self) -> CUConsumptionInfo:
        """Async version of :meth:`SystemsClient.get_cu_consumption_info`."""
        return await self._run(self._cu_info())

    async def discard(self, system_id: str, *, timeout_s: float = DISCARD_TIMEOUT_S) -> System | None:
        """Async version of :meth:`SystemsClient.discard`."""
        return await self._run(self._discard(system_id, timeout_s))

    async def wait(
        self,
        system_id: str,
        target: WaitTarget,
        *,
        deadline: float | None = None,
        timeout_s: float | None = None,
        poll_interval_s: float | None = None,
        on_state: Callable[[WaitProgress], None] | None = None,
    ) -> WaitOutcome:
        """Async version of :meth:`SystemsClient.wait`."""
        checked, end, interval = self._wait_args(target, deadline, timeout_s, poll_interval_s)
        return await self._run(self._wait(system_id, checked, end, interval, on_state))

    async def check(
        self, system_id: str, target: WaitTarget, *, on_state: Callable[[WaitProgress], None] | None = None,
        deadline: float | None = None,
    ) -> WaitOutcome | None:
        """Async version of :meth:`SystemsClient.check`."""
        return await self._run(self._check(system_id, target, on_state, deadline))

    async def _wait_for(self, system_id: str, target: WaitTarget, poll_interval_s: float | None,
                        timeout_s: float | None) -> System:
        outcome = await self.wait(system_id, target, timeout_s=timeout_s, poll_interval_s=poll_interval_s)
        return outcome.result()  # type: ignore[return-value]  # None only when waiting for terminated

    async def wait_for_system_started(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Async version of :meth:`SystemsClient.wait_for_system_started`."""
        return await self._wait_for(system_id, "started", poll_interval_s, timeout_s)

    async def wait_for_system_stopped(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Async version of :meth:`SystemsClient.wait_for_system_stopped`."""
        return await self._wait_for(system_id, "stopped", poll_interval_s, timeout_s)

    async def wait_for_system_terminated(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System | None:
        """Async version of :meth:`SystemsClient.wait_for_system_terminated`."""
        return await self._wait_for(system_id, "terminated", poll_interval_s, timeout_s)

    async def wait_for_system_failed(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Async version of :meth:`SystemsClient.wait_for_system_failed`."""
        return await self._wait_for(system_id, "failed", poll_interval_s, timeout_s)

    async def wait_for_config_toml_uploaded(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Async version of :meth:`SystemsClient.wait_for_config_toml_uploaded`."""
        return await self._wait_for(system_id, CONFIG_UPLOADED, poll_interval_s, timeout_s)
