"""Thin gRPC servicers over :class:`~airflow_puddle.emulator.state.PuddleBackend`.

Each method reads the request, calls the backend and maps the typed rows it returns
to protobuf messages (:mod:`~airflow_puddle.emulator.mapping`). The caller's token is
checked once, by the server's auth interceptor, which hands the :class:`User` over
through :func:`acting_as`; servicers read it with :func:`current_user`. The one error
adapter, :func:`puddle_errors`, turns a :class:`PuddleError` raised below into
``context.abort(err.code, err.message)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import grpc

from airflow_puddle._proto.puddle.v2 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    auth_service_pb2,
    auth_service_pb2_grpc,
    image_service_pb2,
    image_service_pb2_grpc,
    instance_type_service_pb2,
    instance_type_service_pb2_grpc,
    system_service_pb2,
    system_service_pb2_grpc,
    tag_service_pb2,
    tag_service_pb2_grpc,
)
from airflow_puddle.domain.errors import AuthError, PuddleError
from airflow_puddle.domain.wire import TOKEN_METADATA_KEY
from airflow_puddle.emulator.faults import FaultRegistry
from airflow_puddle.emulator.mapping import (
    SystemMessages,
    experiment_to_proto,
    image_to_proto,
    instance_type_to_proto,
    tag_to_proto,
)
from airflow_puddle.emulator.rows import User
from airflow_puddle.emulator.state import PuddleBackend

_Self = TypeVar("_Self")
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

_caller: ContextVar[User | None] = ContextVar("puddle_caller", default=None)


def puddle_errors(
    method: Callable[[_Self, _Req, grpc.ServicerContext], _Resp],
) -> Callable[[_Self, _Req, grpc.ServicerContext], _Resp]:
    """Abort the RPC with the error's own code and message when the method raises a PuddleError."""

    @functools.wraps(method)
    def wrapper(self: _Self, request: _Req, context: grpc.ServicerContext) -> _Resp:
        try:
            return method(self, request, context)
        except PuddleError as err:
            context.abort(err.code, err.message)

    return wrapper


def token_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The ``x-puddle-token`` value in call metadata, if any."""
    for key, value in metadata or ():
        if key == TOKEN_METADATA_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


@contextmanager
def acting_as(user: User) -> Iterator[None]:
    """Make ``user`` the caller of the RPC running in this block (set by the auth interceptor)."""
    reset = _caller.set(user)
    try:
        yield
    finally:
        _caller.reset(reset)


def current_user() -> User:
    """The caller the auth interceptor let in; ``AuthError`` when no interceptor checked a token."""
    user = _caller.get()
    if user is None:
        raise AuthError(f"missing {TOKEN_METADATA_KEY} metadata")
    return user


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    """Login and logout; needs no token."""

    def __init__(self, backend: PuddleBackend) -> None:
        self._backend = backend

    @puddle_errors
    def Login(
        self, request: auth_service_pb2.LoginRequest, context: grpc.ServicerContext
    ) -> auth_service_pb2.LoginResponse:
        result = self._backend.login(request.api_key_id, request.api_secret_key)
        user = auth_service_pb2.LoginUser(id=result.user.id, name=result.user.name, email=result.user.email)
        return auth_service_pb2.LoginResponse(token=result.token, expires_at=result.expires_at, user=user)

    @puddle_errors
    def Logout(
        self, request: auth_service_pb2.LogoutRequest, context: grpc.ServicerContext
    ) -> auth_service_pb2.LogoutResponse:
        self._backend.logout(request.token)
        return auth_service_pb2.LogoutResponse()


class SystemServicer(system_service_pb2_grpc.SystemServiceServicer):
    """Systems of the calling user."""

    def __init__(self, backend: PuddleBackend) -> None:
        self._backend = backend
        self._systems = SystemMessages(backend.now)

    @puddle_errors
    def CreateSystem(
        self, request: system_service_pb2.CreateSystemRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.CreateSystemResponse:
        system = self._backend.create_system(
            current_user(),
            cloud=request.cloud,
            name=request.name,
            disk_size_gb=request.disk_size_gb,
            idle_interval=request.idle_interval,
            image_id=request.image_id,
            product=request.product,
            version=request.version,
            instance_type_id=request.instance_type_id,
            instance_type_name=request.instance_type_name,
            tags=[(t.label, t.value) for t in request.tags],
        )
        return system_service_pb2.CreateSystemResponse(system=self._systems.one(system))

    @puddle_errors
    def GetSystem(
        self, request: system_service_pb2.GetSystemRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.GetSystemResponse:
        system, experiments = self._backend.get_system(current_user(), request.system_id)
        return system_service_pb2.GetSystemResponse(
            system=self._systems.one(system), models=[experiment_to_proto(e) for e in experiments]
        )

    @puddle_errors
    def ListSystems(
        self, request: system_service_pb2.ListSystemsRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.ListSystemsResponse:
        systems = self._backend.list_systems(current_user(), request.cloud, request.name)
        response = system_service_pb2.ListSystemsResponse()
        self._systems.add_all(response.systems, systems, config_toml=request.include_config_toml)
        return response

    @puddle_errors
    def StartSystem(
        self, request: system_service_pb2.SystemIdRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.SystemResponse:
        system = self._backend.start_system(current_user(), request.system_id)
        return system_service_pb2.SystemResponse(system=self._systems.one(system))

    @puddle_errors
    def StopSystem(
        self, request: system_service_pb2.SystemIdRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.SystemResponse:
        system = self._backend.stop_system(current_user(), request.system_id)
        return system_service_pb2.SystemResponse(system=self._systems.one(system))

    @puddle_errors
    def RestartSystem(
        self, request: system_service_pb2.SystemIdRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.SystemResponse:
        system = self._backend.restart_system(current_user(), request.system_id)
        return system_service_pb2.SystemResponse(system=self._systems.one(system))

    @puddle_errors
    def TerminateSystem(
        self, request: system_service_pb2.SystemIdRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.SystemResponse:
        system = self._backend.terminate_system(current_user(), request.system_id)
        return system_service_pb2.SystemResponse(system=self._systems.one(system))

    @puddle_errors
    def FailSystem(
        self, request: system_service_pb2.SystemIdRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.SystemResponse:
        system = self._backend.fail_system(current_user(), request.system_id)
        return system_service_pb2.SystemResponse(system=self._systems.one(system))

    @puddle_errors
    def RefreshIdleTimeout(
        self, request: system_service_pb2.SystemIdRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.SystemResponse:
        system = self._backend.refresh_idle_timeout(current_user(), request.system_id)
        return system_service_pb2.SystemResponse(system=self._systems.one(system))

    @puddle_errors
    def UpdateConfigToml(
        self, request: system_service_pb2.UpdateConfigTomlRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.SystemResponse:
        system = self._backend.update_config_toml(current_user(), request.system_id, request.config_toml)
        return system_service_pb2.SystemResponse(system=self._systems.one(system))

    @puddle_errors
    def GetCUConsumptionInfo(
        self, request: system_service_pb2.GetCUConsumptionInfoRequest, context: grpc.ServicerContext
    ) -> system_service_pb2.GetCUConsumptionInfoResponse:
        info = self._backend.cu_info(current_user())
        return system_service_pb2.GetCUConsumptionInfoResponse(
            available_cu=info.available_cu,
            consumed_cu=info.consumed_cu,
            systems_consumption_info=[
                system_service_pb2.SystemConsumptionInfo(system_id=s.system_id, system_name=s.system_name, cu=s.cu)
                for s in info.systems
            ],
        )


class ImageServicer(image_service_pb2_grpc.ImageServiceServicer):
    """The image catalogue."""

    def __init__(self, backend: PuddleBackend) -> None:
        self._backend = backend

    @puddle_errors
    def ListAvailableImages(
        self, request: image_service_pb2.ListAvailableImagesRequest, context: grpc.ServicerContext
    ) -> image_service_pb2.ListAvailableImagesResponse:
        images = self._backend.list_images(request.cloud)
        return image_service_pb2.ListAvailableImagesResponse(images=[image_to_proto(i) for i in images])


class InstanceTypeServicer(instance_type_service_pb2_grpc.InstanceTypeServiceServicer):
    """The instance type catalogue."""

    def __init__(self, backend: PuddleBackend) -> None:
        self._backend = backend

    @puddle_errors
    def ListAvailableInstanceTypes(
        self,
        request: instance_type_service_pb2.ListAvailableInstanceTypesRequest,
        context: grpc.ServicerContext,
    ) -> instance_type_service_pb2.ListAvailableInstanceTypesResponse:
        types = self._backend.list_instance_types(request.cloud)
        return instance_type_service_pb2.ListAvailableInstanceTypesResponse(
            instance_types=[instance_type_to_proto(t) for t in types]
        )


class TagServicer(tag_service_pb2_grpc.TagServiceServicer):
    """Tag definitions."""

    def __init__(self, backend: PuddleBackend) -> None:
        self._backend = backend

    @puddle_errors
    def ListTags(
        self, request: tag_service_pb2.ListTagsRequest, context: grpc.ServicerContext
    ) -> tag_service_pb2.ListTagsResponse:
        return tag_service_pb2.ListTagsResponse(tags=[tag_to_proto(t) for t in self._backend.list_tags()])


class EmulatorAdminServicer(admin_service_pb2_grpc.EmulatorAdminServiceServicer):
    """Emulator-only admin surface: faults, latency, failed transitions, token expiry, clock, call counts.

    It takes no token and is exempt from injected faults, so tests can always
    reach it. It is meant for a server on loopback; anyone who can reach the
    port can use it.
    """

    def __init__(self, backend: PuddleBackend, faults: FaultRegistry) -> None:
        self._backend = backend
        self._faults = faults

    @puddle_errors
    def InjectFault(
        self, request: admin_service_pb2.InjectFaultRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.AdminResponse:
        self._faults.inject(request.method, request.code, request.count, request.message)
        return admin_service_pb2.AdminResponse(
            detail=f"the next {request.count} call(s) of {request.method} fail with {request.code}"
        )

    @puddle_errors
    def SetLatency(
        self, request: admin_service_pb2.SetLatencyRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.AdminResponse:
        self._faults.set_latency(request.method, request.seconds)
        return admin_service_pb2.AdminResponse(detail=f"latency of {request.method}: {request.seconds:g}s")

    @puddle_errors
    def FailNextTransition(
        self, request: admin_service_pb2.FailNextTransitionRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.AdminResponse:
        self._backend.fail_next_transition(request.system_id, config_upload=request.config_upload)
        what = "config upload" if request.config_upload else "transition"
        return admin_service_pb2.AdminResponse(detail=f"the next {what} of {request.system_id} fails")

    @puddle_errors
    def ExpireTokens(
        self, request: admin_service_pb2.ExpireTokensRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.AdminResponse:
        count = self._backend.expire_tokens()
        return admin_service_pb2.AdminResponse(detail=f"expired {count} token(s)")

    @puddle_errors
    def AdvanceClock(
        self, request: admin_service_pb2.AdvanceClockRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.AdminResponse:
        now = self._backend.advance_clock(request.seconds)
        return admin_service_pb2.AdminResponse(detail=f"clock advanced by {request.seconds:g}s to {now:.0f}")

    @puddle_errors
    def ClearFaults(
        self, request: admin_service_pb2.ClearFaultsRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.AdminResponse:
        self._faults.clear()
        return admin_service_pb2.AdminResponse(detail="faults and latency cleared")

    def CallCounts(
        self, request: admin_service_pb2.CallCountsRequest, context: grpc.ServicerContext
    ) -> admin_service_pb2.CallCountsResponse:
        return admin_service_pb2.CallCountsResponse(answered=self._faults.answered_counts())


def add_servicers(server: grpc.Server, backend: PuddleBackend, faults: FaultRegistry) -> list[str]:
    """Register every Puddle servicer on ``server``; returns their full service names."""
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(backend), server)
    system_service_pb2_grpc.add_SystemServiceServicer_to_server(SystemServicer(backend), server)
    image_service_pb2_grpc.add_ImageServiceServicer_to_server(ImageServicer(backend), server)
    instance_type_service_pb2_grpc.add_InstanceTypeServiceServicer_to_server(InstanceTypeServicer(backend), server)
    tag_service_pb2_grpc.add_TagServiceServicer_to_server(TagServicer(backend), server)
    admin_service_pb2_grpc.add_EmulatorAdminServiceServicer_to_server(
        EmulatorAdminServicer(backend, faults), server
    )
    return [
        module.DESCRIPTOR.services_by_name[name].full_name
        for module, name in (
            (auth_service_pb2, "AuthService"),
            (system_service_pb2, "SystemService"),
            (image_service_pb2, "ImageService"),
            (instance_type_service_pb2, "InstanceTypeService"),
            (tag_service_pb2, "TagService"),
            (admin_service_pb2, "EmulatorAdminService"),
        )
    ]
