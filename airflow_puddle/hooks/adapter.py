"""The one adapter: the provider's clients over H2O's ``puddle.client`` (``extra.client=puddle``).

Everything above the hook gets our client classes' interface either way. Here, each
documented call of the official package is one :class:`~airflow_puddle.client.extending.Call` step
that an op yields: the sync driver calls it, the async driver runs it in a small bounded
thread pool (the official package is sync only). The ops that give the provider more than
the documented API (``wait``, ``check``, ``discard``, the ``Async*`` twins) are our client's own,
unchanged: they reach Puddle only through the ops overridden here (``_fetch``, ``_list``,
``_apply``, ...), so there is still one wait loop (``SystemsOps._wait``). Input is checked
by our ops' rules before these are called; what the official calls return is translated to our models by
documented names (:mod:`airflow_puddle.hooks.translate`) and what they raise to our errors
(:func:`map_official_error`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Generator
from types import ModuleType
from typing import Any, NoReturn

import grpc

from airflow_puddle.client.async_clients import AsyncSystemsClient
from airflow_puddle.client.clients import ImagesClient, InstanceTypesClient, SystemsClient, TagsClient
from airflow_puddle.client.extending import Call, CreateArgs, Op, Rpc
from airflow_puddle.client.models import CUConsumptionInfo, Image, InstanceType, System, Tag, TagData
from airflow_puddle.domain.clouds import CloudProvider
from airflow_puddle.domain.errors import (
    AlreadyExistsError,
    AuthError,
    NotFoundError,
    PreconditionFailedError,
    PuddleError,
    PuddleUnavailableError,
    SystemFailedError,
    ValidationFailedError,
    from_rpc_error,
)
from airflow_puddle.domain.products import ALL_PRODUCTS
from airflow_puddle.hooks import translate

OFFICIAL_PACKAGE = "puddle.client"


class OfficialClientMissingError(ImportError):
    """``extra.client=puddle`` but the official package is not installed."""


def import_official() -> ModuleType:
    """The official ``puddle.client`` package (imported once by Python, then cached)."""
    try:
        return importlib.import_module(OFFICIAL_PACKAGE)
    except ImportError as err:
        raise OfficialClientMissingError(
            f"extra.client=puddle needs H2O's Puddle client package {OFFICIAL_PACKAGE!r} (distributed with "
            f"Puddle, not on PyPI), which cannot be imported here ({err}). Install it where the tasks and the "
            f"triggerer run, or set extra.client=builtin"
        ) from None


# --------------------------------------------------------------------------- errors

_DOCUMENTED_ERRORS: dict[str, type[PuddleError]] = {
    "ValidationFailedError": ValidationFailedError,
    "PreconditionFailedError": PreconditionFailedError,
    "SystemFailedError": SystemFailedError,
    "AuthError": AuthError,
}
"""The official package's documented exception classes, by class name (their module is not documented)."""


def map_official_error(exc: BaseException) -> BaseException:
    """Our error for one the official client raised; the exception itself when nothing fits.

    Documented classes map by name (anywhere in the class's MRO); a raw ``grpc.RpcError``
    maps by status code as our own client's would; connection errors and timeouts count as
    Puddle being unavailable, which a wait rides out until its deadline.
    """
    if isinstance(exc, PuddleError):
        return exc
    for cls in type(exc).__mro__:
        ours = _DOCUMENTED_ERRORS.get(cls.__name__)
        if ours is ValidationFailedError:
            return ValidationFailedError.from_message(str(exc))
        if ours is not None:
            return ours(str(exc))
    if isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        if code == grpc.StatusCode.UNIMPLEMENTED:  # not "set extra.client=puddle": it is set
            return PuddleError(f"the Puddle server does not implement this call: {exc}", code=code)
        return from_rpc_error(exc)
    if isinstance(exc, ConnectionError | TimeoutError):
        return PuddleUnavailableError(f"{type(exc).__name__}: {exc}")
    return exc


def _mapped(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` (an official call); what it raises comes out as ours."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        mapped = map_official_error(exc)
        if mapped is exc:
            raise
        raise mapped from exc


class _NoWire:
    """Where our clients keep their channel: the official client has none of ours."""

    def call(self, rpc: Rpc, token: object = None) -> NoReturn:
        raise TypeError(f"{rpc.service}.{rpc.method} is an RPC of the builtin client's wire contract; with "
                        f"extra.client=puddle the adapter must override the op that makes it")


# --------------------------------------------------------------------------- authorizer and kit


class _OfficialAuthorizerBase:
    """The official ``Authorizer`` where our clients keep theirs: its user, and nothing of ours to close."""

    token_for_call = None
    """No token of ours: the official ``Authorizer`` keeps its own (an RPC of ours fails in :class:`_NoWire`)."""

    def __init__(self, official: Any) -> None:
        self.official = official

    @property
    def user(self) -> Any:
        """The official client's logged-in user (its properties are not documented); may be None."""
        return self.official.user

    @property
    def server_address(self) -> str:
        return str(self.official.server_address)


class OfficialAuthorizer(_OfficialAuthorizerBase):
    """Where our sync clients keep their :class:`~airflow_puddle.client.Authorizer`."""

    def close(self) -> None:
        """The official client documents no channel to close."""


class AsyncOfficialAuthorizer(_OfficialAuthorizerBase):
    """Where our async clients keep their :class:`~airflow_puddle.client.AsyncAuthorizer`."""

    async def close(self) -> None:
        """The official client documents no channel to close."""


class OfficialKit:
    """One official ``Authorizer`` (one login) and the official clients built on it, for one cloud."""

    def __init__(self, server_address: str, api_key_id: str, api_secret_key: str, cloud: CloudProvider) -> None:
        self.module = import_official()
        self.cloud = cloud
        self.server_address = server_address
        self.authorizer = _mapped(self.module.Authorizer, server_address, api_key_id, api_secret_key)

    def official_cloud(self) -> Any:
        """Their ``CLOUD_*`` constant with our cloud's id, or ``CloudProvider(display_name, cloud_id)``."""
        for name in ("CLOUD_AWS", "CLOUD_AZURE", "CLOUD_GCP"):  # GCP: newer versions only
            cloud = getattr(self.module, name, None)
            if cloud is not None and cloud.id == self.cloud.id:
                return cloud
        return self.module.CloudProvider(self.cloud.display_name, self.cloud.id)

    def official_product(self, product_id: str) -> Any:
        """Their ``PRODUCT_*`` constant with that id, or ``Product(label, product_id)``."""
        for name in ("PRODUCT_DAI", "PRODUCT_H2O3"):
            product = getattr(self.module, name, None)
            if product is not None and product.id == product_id:
                return product
        label = next((p.label for p in ALL_PRODUCTS if p.id == product_id), product_id)
        return self.module.Product(label, product_id)

    def official_tags(self, tags: list[TagData]) -> list[Any] | None:
        """Their ``models.TagData(label, value)`` for each of ours; None for none."""
        if not tags:
            return None
        tag_data = importlib.import_module(f"{OFFICIAL_PACKAGE}.models").TagData
        return [tag_data(t.label, t.value) for t in tags]

    def official(self, name: str) -> Any:
        """Their ``name`` client: ``SystemsClient(cloud, server_address, authorizer)`` and friends."""
        cls = getattr(self.module, name)
        if name == "TagsClient":
            return _mapped(cls, self.server_address, self.authorizer)
        return _mapped(cls, self.official_cloud(), self.server_address, self.authorizer)

    def systems(self) -> SystemsClient:
        return OfficialSystemsClient(self, "SystemsClient")

    def async_systems(self) -> AsyncSystemsClient:
        return AsyncOfficialSystemsClient(self, "SystemsClient", AsyncOfficialAuthorizer(self.authorizer))

    def images(self) -> ImagesClient:
        return OfficialImagesClient(self, "ImagesClient")

    def instance_types(self) -> InstanceTypesClient:
        return OfficialInstanceTypesClient(self, "InstanceTypesClient")

    def tags(self) -> TagsClient:
        return OfficialTagsClient(self, "TagsClient")


# --------------------------------------------------------------------------- our clients over theirs


class OfficialBase:
    """Replaces our client's construction: the official client instead of a channel of ours."""

    _authorizer: Any
    _channel: Any = _NoWire()

    def __init__(self, kit: OfficialKit, name: str, authorizer: _OfficialAuthorizerBase | None = None) -> None:
        self._kit = kit
        self._official = kit.official(name)
        self._cloud = kit.cloud
        self._authorizer = authorizer or OfficialAuthorizer(kit.authorizer)
        self._server_address = kit.server_address

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Generator[Call, Any, Any]:
        """One documented call of the official client, as a step; its errors come back as ours."""
        return (yield Call(_mapped, (getattr(self._official, name), *args), kwargs))


_ACTIONS = {"FailSystem": "fail", "StartSystem": "start", "StopSystem": "stop", "RestartSystem": "restart",
            "TerminateSystem": "terminate", "RefreshIdleTimeout": "refresh_idle_timeout"}
"""Our ops' method names -> the documented calls."""


class OfficialSystemsOps(OfficialBase):
    """The systems ops our clients (and their wait loop) run, over the official ``SystemsClient``."""

    _create_args: Callable[..., Any]

    def _fetch(self, system_id: str) -> Op[System | None]:
        try:
            system = yield from self._call("get", system_id)
        except NotFoundError:
            return None
        return None if system is None else translate.to_system(system)

    def _list(self, name: str = "") -> Op[list[System]]:
        systems = yield from self._call("list")  # no server-side name filter in the documented API
        return [translate.to_system(s) for s in systems or [] if not name or s.name == name]

    def _lookup(self, name: str) -> Op[System | None]:
        system = yield from self._call("find_by_name", name)
        return None if system is None else translate.to_system(system)

    def _reread(self, system_id: str) -> Op[System]:
        """The system after a change: the documented calls that change one return nothing."""
        system = yield from self._fetch(system_id)
        if system is None:
            raise NotFoundError(f"system {system_id!r} is gone")
        return system

    def _apply(self, method: str, system_id: str) -> Op[System]:
        yield from self._call(_ACTIONS[method], system_id)
        return (yield from self._reread(system_id))

    def _upload(self, system_id: str, config_toml: str) -> Op[System]:
        yield from self._call("update_config_toml", system_id, config_toml)
        return (yield from self._reread(system_id))

    def _cu_info(self) -> Op[CUConsumptionInfo]:
        return translate.to_cu_info((yield from self._call("get_cu_consumption_info")))

    def _create(self, args: CreateArgs) -> Op[System]:
        their_image = (yield from self._pick("ImagesClient", "image", args.image_id)) if args.image_id else None
        their_type = ((yield from self._pick("InstanceTypesClient", "instance_type", args.instance_type_id))
                      if args.instance_type_id else None)
        try:
            created = yield from self._call(
                "create", args.name, disk_size_gb=args.disk_size_gb, image=their_image,
                product=self._kit.official_product(args.product) if args.product else None, version=args.version,
                instance_type=their_type, instance_type_name=args.instance_type_name,
                idle_interval=args.idle_interval, tags=self._kit.official_tags(args.tags))
        except AlreadyExistsError:
            raise
        except PreconditionFailedError as err:  # the documents name no duplicate-name error: look
            if (yield from self._lookup(args.name)) is not None:
                raise AlreadyExistsError(f"a system named {args.name!r} already exists: {err}") from err
            raise
        return translate.to_system(created)

    def _pick(self, client: str, field: str, wanted: str) -> Op[Any]:
        """Their image (or instance type) with that id: what their ``create`` takes."""
        choices = yield Call(_mapped, (self._kit.official(client).list_available,))
        found = next((c for c in choices if c.id == wanted), None)
        if found is None:
            raise ValidationFailedError(field, f"no {field.replace('_', ' ')} {wanted!r} is available")
        return found


class OfficialSystemsClient(OfficialSystemsOps, SystemsClient):
    """:class:`SystemsClient` (wait, check, discard included) over the official ``SystemsClient``."""


class AsyncOfficialSystemsClient(OfficialSystemsOps, AsyncSystemsClient):
    """:class:`AsyncSystemsClient` over the sync-only official client: each call in a worker thread."""


class OfficialImagesClient(OfficialBase, ImagesClient):
    def _list_available(self) -> Op[list[Image]]:
        return [translate.to_image(i) for i in (yield from self._call("list_available"))]


class OfficialInstanceTypesClient(OfficialBase, InstanceTypesClient):
    def _list_available(self) -> Op[list[InstanceType]]:
        return [translate.to_instance_type(t) for t in (yield from self._call("list_available"))]


class OfficialTagsClient(OfficialBase, TagsClient):
    def _list(self) -> Op[list[Tag]]:
        return [translate.to_tag(t) for t in (yield from self._call("list"))]
