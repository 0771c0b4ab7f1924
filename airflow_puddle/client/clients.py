"""The Puddle clients, sync and async, written once.

Each operation is a generator (an "op") in a base class: it yields the RPCs to
make and the sleeps to take, receives the responses, and returns the result.
It holds all the logic: validation, request building, model wrapping, waits.
The sync classes drive ops with blocking calls and ``time.sleep``; the ``Async*``
twins drive the very same ops with ``grpc.aio`` and ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Generator, Iterable
from typing import Any, ClassVar, TypeVar

from airflow_puddle._proto.puddle.v2 import (
    image_service_pb2,
    instance_type_service_pb2,
    system_service_pb2,
    tag_service_pb2,
)
from airflow_puddle.client import validation
from airflow_puddle.client._transport import AsyncChannel, Rpc, SyncChannel, Target
from airflow_puddle.client.auth import AsyncAuthorizer, Authorizer, BaseAuthorizer
from airflow_puddle.client.clouds import CloudProvider, cloud_by_id
from airflow_puddle.client.errors import (
    NotFoundError,
    PreconditionFailedError,
    PuddleError,
    PuddleTimeoutError,
    SystemFailedError,
)
from airflow_puddle.client.models import (
    CONFIG_UPLOADED,
    STABLE_SYSTEM_STATUSES,
    CUConsumptionInfo,
    Image,
    InstanceType,
    LoginUser,
    System,
    Tag,
    TagData,
    wait_verdict,
)
from airflow_puddle.client.products import Product

log = logging.getLogger("airflow_puddle.client")

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Sleep:
    """An op's request to pause before its next RPC."""

    seconds: float


Op = Generator[Rpc | Sleep, Any, T]


# --------------------------------------------------------------------------- bases (no I/O)


class BasePuddleClient:
    """Address, authorizer and channel shared by every client."""

    _authorizer_type: ClassVar[type[BaseAuthorizer]] = Authorizer

    def __init__(self, server_address: str | None = None, authorizer: BaseAuthorizer | None = None) -> None:
        if authorizer is None:
            authorizer = self._authorizer_type(server_address)
        elif not isinstance(authorizer, self._authorizer_type):
            raise TypeError(
                f"authorizer: {type(self).__name__} needs a {self._authorizer_type.__name__}, "
                f"got {type(authorizer).__name__}"
            )
        self._authorizer = authorizer
        self._server_address = server_address or authorizer.server_address
        target = Target.parse(self._server_address)
        if target == authorizer.config.target:
            self._channel = authorizer.channel
        else:
            self._channel = type(authorizer.channel)(dataclasses.replace(authorizer.config, target=target))

    @property
    def authorizer(self) -> BaseAuthorizer:
        """The authorizer used by this client."""
        return self._authorizer

    @property
    def server_address(self) -> str:
        """Backend address."""
        return self._server_address

    @property
    def user(self) -> LoginUser | None:
        """Currently logged in user, might be None."""
        return self._authorizer.user


class BaseCloudClient(BasePuddleClient):
    """A client tied to one cloud provider."""

    def __init__(
        self,
        cloud: CloudProvider | str,
        server_address: str | None = None,
        authorizer: BaseAuthorizer | None = None,
    ) -> None:
        self._cloud = cloud if isinstance(cloud, CloudProvider) else cloud_by_id(cloud)
        super().__init__(server_address, authorizer)

    @property
    def cloud(self) -> CloudProvider:
        """The cloud this client is tied to."""
        return self._cloud


class _ImagesOps(BaseCloudClient):
    def _list_available(self) -> Op[list[Image]]:
        request = image_service_pb2.ListAvailableImagesRequest(cloud=self._cloud.id)
        response = yield Rpc("ImageService", "ListAvailableImages", request, idempotent=True)
        return [Image(i) for i in response.images]


class _InstanceTypesOps(BaseCloudClient):
    def _list_available(self) -> Op[list[InstanceType]]:
        request = instance_type_service_pb2.ListAvailableInstanceTypesRequest(cloud=self._cloud.id)
        response = yield Rpc("InstanceTypeService", "ListAvailableInstanceTypes", request, idempotent=True)
        return [InstanceType(t) for t in response.instance_types]


class _TagsOps(BasePuddleClient):
    def _list(self) -> Op[list[Tag]]:
        response = yield Rpc("TagService", "ListTags", tag_service_pb2.ListTagsRequest(), idempotent=True)
        return [Tag(t) for t in response.tags]

    def tag_data_to_pb_tag_data(self, tags: list[TagData] | None) -> list[system_service_pb2.TagData] | None:
        """Translate :class:`TagData` models into the wire messages."""
        return tag_data_to_pb(tags)


def tag_data_to_pb(tags: Iterable[TagData] | None) -> list[system_service_pb2.TagData] | None:
    """Translate :class:`TagData` models into the wire messages (None stays None)."""
    if tags is None:
        return None
    return [system_service_pb2.TagData(label=t.label, value=t.value) for t in tags]


def _id_of(value: object, field: str) -> str | None:
    """Accept a model (``.id``) or a plain id string for ``field``."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    ident = getattr(value, "id", None)
    if not isinstance(ident, str):
        raise validation.ValidationFailedError(field, f"must be a {field} object or its id, got {value!r}")
    return ident


class _SystemsOps(BaseCloudClient):
    DEFAULT_DISK_SIZE = 256
    """Default disk size in GB."""
    DEFAULT_IDLE_TIMEOUT_MIN = 60
    """Default idle timeout in minutes."""
    POLL_INTERVAL_S: float = 5
    """Polling interval in seconds."""
    POLL_TIMEOUT_MINUTES: float = 20
    """Minutes to wait for an operation (such as a system start) to complete."""

    def _create(
        self,
        name: str,
        disk_size_gb: int | None,
        image: Image | str | None,
        product: Product | str | None,
        version: str | None,
        instance_type: InstanceType | str | None,
        instance_type_name: str | None,
        idle_interval: int | None,
        tags: list[TagData] | None,
    ) -> Op[System]:
        disk = self.DEFAULT_DISK_SIZE if disk_size_gb is None else disk_size_gb
        idle = self.DEFAULT_IDLE_TIMEOUT_MIN if idle_interval is None else idle_interval
        tag_list = list(tags or [])
        if any(not isinstance(t, TagData) for t in tag_list):
            raise validation.ValidationFailedError("tags", "must be a list of TagData")
        image_id = _id_of(image, "image")
        product_id = _id_of(product, "product")
        instance_type_id = _id_of(instance_type, "instance_type")
        validation.validate_create(
            name=name, disk_size_gb=disk, image_id=image_id, product=product_id, version=version,
            instance_type_id=instance_type_id, instance_type_name=instance_type_name,
            idle_interval=idle, tags=[(t.label, t.value) for t in tag_list],
        )
        request = system_service_pb2.CreateSystemRequest(
            cloud=self._cloud.id, name=name, disk_size_gb=disk, image_id=image_id or "",
            product="" if image_id else product_id or "", version="" if image_id else version or "",
            instance_type_id=instance_type_id or "",
            instance_type_name="" if instance_type_id else instance_type_name or "",
            idle_interval=idle, tags=tag_data_to_pb(tag_list),
        )
        response = yield Rpc("SystemService", "CreateSystem", request, idempotent=False)
        return System(response.system)

    def _mutate(self, method: str, system_id: str) -> Op[System]:
        validation.validate_system_id(system_id)
        request = system_service_pb2.SystemIdRequest(system_id=system_id)
        response = yield Rpc("SystemService", method, request, idempotent=False)
        return System(response.system)

    def _get(self, system_id: str) -> Op[System | None]:
        validation.validate_system_id(system_id)
        request = system_service_pb2.GetSystemRequest(system_id=system_id)
        try:
            response = yield Rpc("SystemService", "GetSystem", request, idempotent=True)
        except NotFoundError:
            return None
        return System(response.system, list(response.models))

    def _list(self) -> Op[list[System]]:
        response = yield Rpc("SystemService", "ListSystems", system_service_pb2.ListSystemsRequest(),
                             idempotent=True)
        return [System(s) for s in response.systems]

    def _find_by_name(self, name: str) -> Op[System | None]:
        validation.validate_name(name)
        systems = yield from self._list()
        for system in systems:
            if system.name == name:
                return system
        return None

    def _update_config_toml(self, system_id: str, config_toml: str) -> Op[System]:
        validation.validate_system_id(system_id)
        validation.validate_config_toml(config_toml)
        request = system_service_pb2.UpdateConfigTomlRequest(system_id=system_id, config_toml=config_toml)
        response = yield Rpc("SystemService", "UpdateConfigToml", request, idempotent=False)
        return System(response.system)

    def _cu_info(self) -> Op[CUConsumptionInfo]:
        request = system_service_pb2.GetCUConsumptionInfoRequest()
        response = yield Rpc("SystemService", "GetCUConsumptionInfo", request, idempotent=True)
        return CUConsumptionInfo(response)

    def _discard(self, system_id: str, timeout_s: float) -> Op[System | None]:
        system = yield from self._get(system_id)
        gone = (System.SYSTEM_STATUS_TERMINATED.code, System.SYSTEM_STATUS_TERMINATING.code)
        if system is None or system.status in gone:
            return system
        if system.status not in STABLE_SYSTEM_STATUSES and system.can_fail:
            log.info("system %s (%s) is %s: marking it failed so it can be terminated",
                     system.name, system_id, system.status_text)
            with contextlib.suppress(PreconditionFailedError):  # it may have settled meanwhile
                yield from self._mutate("FailSystem", system_id)
        start = time.monotonic()
        while system is not None and system.status not in STABLE_SYSTEM_STATUSES:
            if time.monotonic() - start >= timeout_s:
                raise PuddleTimeoutError(f"system {system.name} ({system_id}) still {system.status_text} "
                                         f"after {timeout_s:.0f}s; cannot terminate it yet")
            yield Sleep(min(self.POLL_INTERVAL_S, timeout_s))
            system = yield from self._get(system_id)
        if system is None or system.status == System.SYSTEM_STATUS_TERMINATED.code:
            return system
        return (yield from self._mutate("TerminateSystem", system_id))

    def _wait(self, system_id: str, target: str, poll_interval_s: float | None, timeout_s: float | None) -> Op[System]:
        interval = self.POLL_INTERVAL_S if poll_interval_s is None else poll_interval_s
        limit = self.POLL_TIMEOUT_MINUTES * 60 if timeout_s is None else timeout_s
        config = target == CONFIG_UPLOADED
        start = time.monotonic()
        seen: str | None = None
        while True:
            system = yield from self._get(system_id)
            if system is None:
                raise NotFoundError(f"system {system_id!r} not found while waiting for {target}")
            elapsed = time.monotonic() - start
            state = system.config_status_text if config else system.status_text
            if state != seen:
                log.info("system %s (%s): %s after %.0fs", system.name, system_id, state, elapsed)
                seen = state
            verdict = wait_verdict(target, system.status, system.config_status)
            if verdict == "success":
                return system
            if verdict == "failed":
                what = f"config.toml upload {state}" if config else f"entered {state}"
                raise SystemFailedError(f"system {system.name} ({system_id}) {what} while waiting for {target}")
            if elapsed >= limit:
                raise PuddleTimeoutError(
                    f"system {system.name} ({system_id}) still {state} after {elapsed:.0f}s waiting for {target}"
                )
            yield Sleep(max(0.0, min(interval, limit - elapsed)))


# --------------------------------------------------------------------------- drivers


class _Sync:
    _channel: SyncChannel
    _authorizer: Any

    def _run(self, op: Op[T]) -> T:
        value: Any = None
        error: PuddleError | None = None
        while True:
            try:
                step = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                else:
                    value = self._channel.call(step, self._authorizer.token_for_call)
            except PuddleError as exc:
                error = exc


class _Async:
    _channel: AsyncChannel
    _authorizer: Any

    async def _run(self, op: Op[T]) -> T:
        """Async version of the sync driver."""
        value: Any = None
        error: PuddleError | None = None
        while True:
            try:
                step = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                else:
                    value = await self._channel.call(step, self._authorizer.token_for_call)
            except PuddleError as exc:
                error = exc


# --------------------------------------------------------------------------- public clients


class ImagesClient(_Sync, _ImagesOps):
    """Client used to query images in Puddle."""

    def list_available(self) -> list[Image]:
        """All images available to the authenticated user on this client's cloud."""
        return self._run(self._list_available())


class InstanceTypesClient(_Sync, _InstanceTypesOps):
    """Client used to query instance types in Puddle."""

    def list_available(self) -> list[InstanceType]:
        """All instance types available to the authenticated user on this client's cloud."""
        return self._run(self._list_available())


class TagsClient(_Sync, _TagsOps):
    """Client used to query the tags in Puddle."""

    def list(self) -> list[Tag]:
        """All tags."""
        return self._run(self._list())


class SystemsClient(_Sync, _SystemsOps):
    """Client used to manage the systems in Puddle.

    Calls that change a system return at once; use the ``wait_for_*`` calls to wait.
    """

    def create(
        self,
        name: str,
        disk_size_gb: int = _SystemsOps.DEFAULT_DISK_SIZE,
        image: Image | str | None = None,
        product: Product | str | None = None,
        version: str | None = None,
        instance_type: InstanceType | str | None = None,
        instance_type_name: str | None = None,
        idle_interval: int = _SystemsOps.DEFAULT_IDLE_TIMEOUT_MIN,
        tags: list[TagData] | None = None,
    ) -> System:
        """Create a system; returns without waiting. Raises :class:`ValidationFailedError`."""
        return self._run(self._create(name, disk_size_gb, image, product, version, instance_type,
                                      instance_type_name, idle_interval, tags))

    def fail(self, system_id: str) -> System:
        """Mark a system in transition as failed. Raises :class:`PreconditionFailedError`."""
        return self._run(self._mutate("FailSystem", system_id))

    def start(self, system_id: str) -> System:
        """Start a stopped system; returns without waiting."""
        return self._run(self._mutate("StartSystem", system_id))

    def stop(self, system_id: str) -> System:
        """Stop a started or failed system; returns without waiting."""
        return self._run(self._mutate("StopSystem", system_id))

    def restart(self, system_id: str) -> System:
        """Restart a started system; returns without waiting."""
        return self._run(self._mutate("RestartSystem", system_id))

    def terminate(self, system_id: str) -> System:
        """Terminate a started, stopped or failed system; cannot be undone."""
        return self._run(self._mutate("TerminateSystem", system_id))

    def refresh_idle_timeout(self, system_id: str) -> System:
        """Push a started system's idle timeout back by its idle interval."""
        return self._run(self._mutate("RefreshIdleTimeout", system_id))

    def get(self, system_id: str) -> System | None:
        """The system with that id (with its DAI models), or None if there is none."""
        return self._run(self._get(system_id))

    def find_by_name(self, name: str) -> System | None:
        """The non-terminated system with that name, or None."""
        return self._run(self._find_by_name(name))

    def list(self) -> list[System]:
        """All non-terminated systems of the current user."""
        return self._run(self._list())

    def update_config_toml(self, system_id: str, config_toml: str) -> System:
        """Upload a new DAI config.toml; it applies at the next start or restart."""
        return self._run(self._update_config_toml(system_id, config_toml))

    def get_cu_consumption_info(self) -> CUConsumptionInfo:
        """Current CU consumption and availability."""
        return self._run(self._cu_info())

    def discard(self, system_id: str, *, timeout_s: float = 120) -> System | None:
        """Terminate a system whatever its state, without waiting for the end.

        A system in transition is marked failed first (as an admin would), then
        terminated once it settles. None if there is no such system.
        """
        return self._run(self._discard(system_id, timeout_s))

    def wait_for_system_started(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Wait until started; :class:`SystemFailedError` if it fails, a ``TimeoutError`` past the limit."""
        return self._run(self._wait(system_id, "started", poll_interval_s, timeout_s))

    def wait_for_system_stopped(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Wait until stopped; :class:`SystemFailedError` if it fails, a ``TimeoutError`` past the limit."""
        return self._run(self._wait(system_id, "stopped", poll_interval_s, timeout_s))

    def wait_for_system_terminated(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Wait until terminated; :class:`SystemFailedError` if it fails, a ``TimeoutError`` past the limit."""
        return self._run(self._wait(system_id, "terminated", poll_interval_s, timeout_s))

    def wait_for_system_failed(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Wait until failed; a ``TimeoutError`` past the limit."""
        return self._run(self._wait(system_id, "failed", poll_interval_s, timeout_s))

    def wait_for_config_toml_uploaded(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Wait until the config.toml upload is done; :class:`SystemFailedError` if it fails."""
        return self._run(self._wait(system_id, CONFIG_UPLOADED, poll_interval_s, timeout_s))


class AsyncImagesClient(_Async, _ImagesOps):
    """Async version of :class:`ImagesClient`."""

    _authorizer_type = AsyncAuthorizer

    async def list_available(self) -> list[Image]:
        """Async version of :meth:`ImagesClient.list_available`."""
        return await self._run(self._list_available())


class AsyncInstanceTypesClient(_Async, _InstanceTypesOps):
    """Async version of :class:`InstanceTypesClient`."""

    _authorizer_type = AsyncAuthorizer

    async def list_available(self) -> list[InstanceType]:
        """Async version of :meth:`InstanceTypesClient.list_available`."""
        return await self._run(self._list_available())


class AsyncTagsClient(_Async, _TagsOps):
    """Async version of :class:`TagsClient`."""

    _authorizer_type = AsyncAuthorizer

    async def list(self) -> list[Tag]:
        """Async version of :meth:`TagsClient.list`."""
        return await self._run(self._list())


class AsyncSystemsClient(_Async, _SystemsOps):
    """Async version of :class:`SystemsClient`, for triggers."""

    _authorizer_type = AsyncAuthorizer

    async def create(
        self,
        name: str,
        disk_size_gb: int = _SystemsOps.DEFAULT_DISK_SIZE,
        image: Image | str | None = None,
        product: Product | str | None = None,
        version: str | None = None,
        instance_type: InstanceType | str | None = None,
        instance_type_name: str | None = None,
        idle_interval: int = _SystemsOps.DEFAULT_IDLE_TIMEOUT_MIN,
        tags: list[TagData] | None = None,
    ) -> System:
        """Async version of :meth:`SystemsClient.create`."""
        return await self._run(self._create(name, disk_size_gb, image, product, version, instance_type,
                                            instance_type_name, idle_interval, tags))

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

    async def discard(self, system_id: str, *, timeout_s: float = 120) -> System | None:
        """Async version of :meth:`SystemsClient.discard`."""
        return await self._run(self._discard(system_id, timeout_s))

    async def wait_for_system_started(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Async version of :meth:`SystemsClient.wait_for_system_started`."""
        return await self._run(self._wait(system_id, "started", poll_interval_s, timeout_s))

    async def wait_for_system_stopped(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Async version of :meth:`SystemsClient.wait_for_system_stopped`."""
        return await self._run(self._wait(system_id, "stopped", poll_interval_s, timeout_s))

    async def wait_for_system_terminated(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Async version of :meth:`SystemsClient.wait_for_system_terminated`."""
        return await self._run(self._wait(system_id, "terminated", poll_interval_s, timeout_s))

    async def wait_for_system_failed(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Async version of :meth:`SystemsClient.wait_for_system_failed`."""
        return await self._run(self._wait(system_id, "failed", poll_interval_s, timeout_s))

    async def wait_for_config_toml_uploaded(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Async version of :meth:`SystemsClient.wait_for_config_toml_uploaded`."""
        return await self._run(self._wait(system_id, CONFIG_UPLOADED, poll_interval_s, timeout_s))
