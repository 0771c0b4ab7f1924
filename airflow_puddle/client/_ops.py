"""The Puddle operations, written once, for both drivers.

Each operation is a generator (an "op") in a base class: it yields the RPCs to
make and the sleeps to take, receives the responses, and returns the result.
It holds all the logic: validation, request building, model wrapping. A wait is the one wait
loop of :mod:`airflow_puddle.client.waiting` over :class:`GetLooks` (one GetSystem per interval).
The drivers that run ops (:class:`SyncDriver`, :class:`AsyncDriver`) and the steps
they understand live in :mod:`airflow_puddle.client._drivers`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import ClassVar

from airflow_puddle._proto.puddle.v2 import (
    image_service_pb2,
    instance_type_service_pb2,
    system_service_pb2,
    tag_service_pb2,
)
from airflow_puddle.client._drivers import Op, Sleep
from airflow_puddle.client._transport import Rpc
from airflow_puddle.client.address import Target
from airflow_puddle.client.auth import Authorizer, BaseAuthorizer
from airflow_puddle.client.models import (
    CUConsumptionInfo,
    Image,
    InstanceType,
    LoginUser,
    System,
    Tag,
    TagData,
)
from airflow_puddle.client.waiting import Seen, WaitOutcome, WaitProgress, WaitTracker, log_progress
from airflow_puddle.domain import defaults, validation
from airflow_puddle.domain.clouds import CloudProvider, cloud_by_id
from airflow_puddle.domain.errors import (
    NotFoundError,
    PreconditionFailedError,
    PuddleTimeoutError,
    PuddleUnavailableError,
)
from airflow_puddle.domain.lifecycle import (
    SETTLED,
    STABLE_SYSTEM_STATUSES,
    WaitTarget,
    check_wait_target,
)
from airflow_puddle.domain.products import Product

log = logging.getLogger("airflow_puddle.client")

__all__ = ["CreateArgs", "ImagesOps", "InstanceTypesOps", "SystemsOps", "TagsOps"]


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


class ImagesOps(BaseCloudClient):
    def _list_available(self) -> Op[list[Image]]:
        request = image_service_pb2.ListAvailableImagesRequest(cloud=self._cloud.id)
        response = yield Rpc("ImageService", "ListAvailableImages", request, idempotent=True)
        return [Image(i) for i in response.images]


class InstanceTypesOps(BaseCloudClient):
    def _list_available(self) -> Op[list[InstanceType]]:
        request = instance_type_service_pb2.ListAvailableInstanceTypesRequest(cloud=self._cloud.id)
        response = yield Rpc("InstanceTypeService", "ListAvailableInstanceTypes", request, idempotent=True)
        return [InstanceType(t) for t in response.instance_types]


class TagsOps(BasePuddleClient):
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


class GetLooks:
    """A client wait's looks (:class:`~airflow_puddle.client.waiting.Looks`): one GetSystem per poll
    interval, a timer's sleep between two, never past the deadline."""

    def __init__(self, get: Callable[[str], Op[System | None]], poll_interval_s: float = 0.0) -> None:
        self._get, self._interval, self._rest = get, poll_interval_s, False

    def next(self, tracker: WaitTracker) -> Op[tuple[Seen, float]]:
        if self._rest:
            yield Sleep(tracker.sleep_for(self._interval, time.time()))
        self._rest = True
        seen = yield from self.now(tracker)
        return seen, time.time()

    def now(self, tracker: WaitTracker) -> Op[Seen]:
        try:
            return (yield from self._get(tracker.system_id))
        except PuddleUnavailableError as err:
            return err


@dataclasses.dataclass(frozen=True)
class CreateArgs:
    """A create's checked arguments: an image id or product + version, an instance type id or name."""

    name: str
    disk_size_gb: int
    image_id: str | None
    product: str | None
    version: str | None
    instance_type_id: str | None
    instance_type_name: str | None
    idle_interval: int
    tags: list[TagData]


class SystemsOps(BaseCloudClient):
    DEFAULT_DISK_SIZE = defaults.DISK_SIZE_GB
    """Default disk size in GB."""
    DEFAULT_IDLE_TIMEOUT_MIN = defaults.IDLE_INTERVAL_MIN
    """Default idle timeout in minutes."""
    POLL_INTERVAL_S: float = defaults.POLL_INTERVAL_S
    """Polling interval in seconds."""
    POLL_TIMEOUT_MINUTES: float = defaults.WAIT_TIMEOUT_MIN
    """Minutes to wait for an operation (such as a system start) to complete."""

    def _create(self, args: CreateArgs) -> Op[System]:
        """Create from arguments :meth:`_create_args` checked (the twins call it before anything is sent)."""
        request = system_service_pb2.CreateSystemRequest(
            cloud=self._cloud.id, name=args.name, disk_size_gb=args.disk_size_gb, image_id=args.image_id or "",
            product=args.product or "", version=args.version or "", instance_type_id=args.instance_type_id or "",
            instance_type_name=args.instance_type_name or "", idle_interval=args.idle_interval,
            tags=tag_data_to_pb(args.tags),
        )
        response = yield Rpc("SystemService", "CreateSystem", request, idempotent=False)
        return System(response.system)

    def _create_args(
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
    ) -> CreateArgs:
        """Create's arguments with the defaults filled in, checked (:class:`ValidationFailedError`); no I/O."""
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
        return CreateArgs(name, disk, image_id, None if image_id else product_id, None if image_id else version,
                          instance_type_id, None if instance_type_id else instance_type_name, idle, tag_list)

    # Each op that takes input checks it, then calls the op that reaches Puddle (``_apply``,
    # ``_fetch``, ``_lookup``, ``_upload``, and ``_list``, ``_create``, ``_cu_info``): those are
    # what a client over another backend (the hook's adapter) overrides, with the input checked.

    def _mutate(self, method: str, system_id: str) -> Op[System]:
        validation.validate_system_id(system_id)
        return (yield from self._apply(method, system_id))

    def _apply(self, method: str, system_id: str) -> Op[System]:
        request = system_service_pb2.SystemIdRequest(system_id=system_id)
        response = yield Rpc("SystemService", method, request, idempotent=False)
        return System(response.system)

    def _get(self, system_id: str) -> Op[System | None]:
        validation.validate_system_id(system_id)
        return (yield from self._fetch(system_id))

    def _fetch(self, system_id: str) -> Op[System | None]:
        request = system_service_pb2.GetSystemRequest(system_id=system_id)
        try:
            response = yield Rpc("SystemService", "GetSystem", request, idempotent=True)
        except NotFoundError:
            return None
        return System(response.system, list(response.models))

    def _list(self, name: str = "") -> Op[list[System]]:
        request = system_service_pb2.ListSystemsRequest(name=name)
        response = yield Rpc("SystemService", "ListSystems", request, idempotent=True)
        return [System(s) for s in response.systems]

    def _find_by_name(self, name: str) -> Op[System | None]:
        validation.validate_name(name)
        return (yield from self._lookup(name))

    def _lookup(self, name: str) -> Op[System | None]:
        systems = yield from self._list(name)  # filtered by the server: one small message
        return next((s for s in systems if s.name == name), None)

    def _update_config_toml(self, system_id: str, config_toml: str) -> Op[System]:
        validation.validate_system_id(system_id)
        validation.validate_config_toml(config_toml)
        return (yield from self._upload(system_id, config_toml))

    def _upload(self, system_id: str, config_toml: str) -> Op[System]:
        request = system_service_pb2.UpdateConfigTomlRequest(system_id=system_id, config_toml=config_toml)
        response = yield Rpc("SystemService", "UpdateConfigToml", request, idempotent=False)
        return System(response.system)

    def _cu_info(self) -> Op[CUConsumptionInfo]:
        request = system_service_pb2.GetCUConsumptionInfoRequest()
        response = yield Rpc("SystemService", "GetCUConsumptionInfo", request, idempotent=True)
        return CUConsumptionInfo(response)

    def _discard(self, system_id: str, timeout_s: float) -> Op[System | None]:
        validation.validate_wait_timeout(timeout_s, "timeout_s", allow_zero=True)
        system = yield from self._get(system_id)
        gone = (System.SYSTEM_STATUS_TERMINATED.code, System.SYSTEM_STATUS_TERMINATING.code)
        if system is None or system.status in gone:
            return system
        if system.status not in STABLE_SYSTEM_STATUSES:
            if system.can_fail:
                log.info("system %s (%s) is %s: marking it failed so it can be terminated",
                         system.name, system_id, system.status_text)
                with contextlib.suppress(PreconditionFailedError):  # it may have settled meanwhile
                    yield from self._mutate("FailSystem", system_id)
            outcome = yield from self._wait(system_id, SETTLED, time.time() + timeout_s, self.POLL_INTERVAL_S)
            if outcome.kind in ("timed_out", "unavailable"):
                raise PuddleTimeoutError(f"{outcome.message}; cannot terminate it yet")
            system = outcome.system
        if system is None or system.status == System.SYSTEM_STATUS_TERMINATED.code:
            return system
        return (yield from self._mutate("TerminateSystem", system_id))

    def _wait(
        self,
        system_id: str,
        target: WaitTarget,
        deadline: float,
        poll_interval_s: float,
        on_state: Callable[[WaitProgress], None] | None = None,
    ) -> Op[WaitOutcome]:
        """The one wait loop (:meth:`WaitTracker.follow`) over GetSystem looks, a poll interval apart."""
        validation.validate_system_id(system_id)
        tracker = WaitTracker(system_id, target, deadline, time.time(), on_state or log_progress)
        return (yield from tracker.follow(GetLooks(self._get, poll_interval_s)))

    def _check(
        self, system_id: str, target: WaitTarget, on_state: Callable[[WaitProgress], None] | None,
        deadline: float | None = None,
    ) -> Op[WaitOutcome | None]:
        """One look judged as a wait would judge it: an outcome, or None (Puddle unavailable too)."""
        validation.validate_system_id(system_id)
        until = math.inf if deadline is None else validation.validate_deadline(deadline, time.time())
        tracker = WaitTracker(system_id, check_wait_target(target), until, time.time(), on_state or log_progress)
        return tracker.judge((yield from GetLooks(self._get).now(tracker)), time.time())

    def _wait_args(
        self, target: object, deadline: object, timeout_s: object, poll_interval_s: object
    ) -> tuple[WaitTarget, float, float]:
        """Check a wait's arguments; the deadline is ``deadline``, or now plus ``timeout_s`` (or the default)."""
        checked = check_wait_target(target)
        if deadline is not None and timeout_s is not None:
            raise validation.ValidationFailedError("deadline", "give deadline or timeout_s, not both")
        interval = validation.validate_poll_interval(
            self.POLL_INTERVAL_S if poll_interval_s is None else poll_interval_s, "poll_interval_s")
        if deadline is None:
            limit = self.POLL_TIMEOUT_MINUTES * 60 if timeout_s is None else timeout_s
            deadline = time.time() + validation.validate_wait_timeout(limit, "timeout_s", allow_zero=True)
        return checked, validation.validate_deadline(deadline, time.time()), interval
