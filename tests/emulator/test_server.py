"""The emulator over real gRPC on loopback, through the generated stubs (no client library)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from airflow_puddle._proto.puddle.v2 import (
    admin_service_pb2,
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
from airflow_puddle.client.models import System
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, EmulatorServer

from .conftest import API_KEY_ID, API_SECRET_KEY

Metadata = tuple[tuple[str, str], ...]
STARTED = System.SYSTEM_STATUS_STARTED.code


def _create_request(name: str = "sys-a", **overrides: object) -> system_service_pb2.CreateSystemRequest:
    fields: dict = {
        "cloud": "aws", "name": name, "disk_size_gb": 256, "product": "dai", "version": "1.11.1",
        "instance_type_name": "m5.2xlarge", "idle_interval": 60,
        "tags": [system_service_pb2.TagData(label="Team", value="ml")],
    }
    fields.update(overrides)
    return system_service_pb2.CreateSystemRequest(**fields)


def _wait_for(
    get: Callable[[], system_service_pb2.System], status: int, timeout: float = 10.0
) -> system_service_pb2.System:
    deadline = time.monotonic() + timeout
    while True:
        system = get()
        if system.status == status or time.monotonic() > deadline:
            return system
        time.sleep(0.05)


def _code(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details() or ""


def test_login_with_good_and_bad_secret(channel: grpc.Channel, server: EmulatorServer) -> None:
    auth = auth_service_pb2_grpc.AuthServiceStub(channel)
    ok = auth.Login(auth_service_pb2.LoginRequest(api_key_id=API_KEY_ID, api_secret_key=API_SECRET_KEY))
    assert ok.token
    assert ok.expires_at > time.time() + 3000
    assert ok.user.name == "demo"
    assert ok.user.id
    code, details = _code(
        lambda: auth.Login(auth_service_pb2.LoginRequest(api_key_id=API_KEY_ID, api_secret_key="nope"))
    )
    assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, "invalid API key id or secret")
    auth.Logout(auth_service_pb2.LogoutRequest(token=ok.token))
    assert server.backend is not None


def test_calls_need_a_valid_token(channel: grpc.Channel, system_stub, md: Metadata) -> None:
    request = system_service_pb2.ListSystemsRequest()
    assert _code(lambda: system_stub.ListSystems(request)) == (
        grpc.StatusCode.UNAUTHENTICATED, "missing x-puddle-token metadata")
    assert _code(lambda: system_stub.ListSystems(request, metadata=(("x-puddle-token", "forged"),))) == (
        grpc.StatusCode.UNAUTHENTICATED, "token expired or invalid")
    tags = tag_service_pb2_grpc.TagServiceStub(channel)
    assert _code(lambda: tags.ListTags(tag_service_pb2.ListTagsRequest()))[0] == grpc.StatusCode.UNAUTHENTICATED
    assert system_stub.ListSystems(request, metadata=md).systems == []


def test_create_and_poll_until_started(system_stub, md: Metadata) -> None:
    created = system_stub.CreateSystem(_create_request(), metadata=md).system
    assert created.status == System.SYSTEM_STATUS_INITIALIZING.code

    def get() -> system_service_pb2.System:
        return system_stub.GetSystem(system_service_pb2.GetSystemRequest(system_id=created.id), metadata=md).system

    started = _wait_for(get, STARTED)
    assert started.status == STARTED
    assert started.default_url
    assert started.password
    response = system_stub.GetSystem(system_service_pb2.GetSystemRequest(system_id=created.id), metadata=md)
    assert len(response.models) == 2
    listed = system_stub.ListSystems(system_service_pb2.ListSystemsRequest(cloud="aws"), metadata=md).systems
    assert [s.id for s in listed] == [created.id]
    cu = system_stub.GetCUConsumptionInfo(system_service_pb2.GetCUConsumptionInfoRequest(), metadata=md)
    assert (cu.consumed_cu, cu.available_cu) == (4, 60)
    assert [(s.system_id, s.cu) for s in cu.systems_consumption_info] == [(created.id, 4)]

    stopped = system_stub.StopSystem(system_service_pb2.SystemIdRequest(system_id=created.id), metadata=md).system
    assert stopped.status == System.SYSTEM_STATUS_STOPPING.code
    assert _wait_for(get, System.SYSTEM_STATUS_STOPPED.code).status == System.SYSTEM_STATUS_STOPPED.code


def test_errors_travel_with_their_codes(system_stub, md: Metadata) -> None:
    code, details = _code(lambda: system_stub.CreateSystem(_create_request(disk_size_gb=5), metadata=md))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == "disk_size_gb: must be between 256 and 1024 GB, got 5"
    code, details = _code(
        lambda: system_stub.CreateSystem(_create_request(instance_type_name="huge"), metadata=md)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("instance_type_name: ")
    code, details = _code(
        lambda: system_stub.GetSystem(system_service_pb2.GetSystemRequest(system_id="nope"), metadata=md)
    )
    assert (code, details) == (grpc.StatusCode.NOT_FOUND, "system 'nope' not found")
    created = system_stub.CreateSystem(_create_request(), metadata=md).system
    code, details = _code(
        lambda: system_stub.StartSystem(system_service_pb2.SystemIdRequest(system_id=created.id), metadata=md)
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "it is Initializing, needs Stopped" in details


def test_catalogue_services(channel: grpc.Channel, md: Metadata) -> None:
    images = image_service_pb2_grpc.ImageServiceStub(channel).ListAvailableImages(
        image_service_pb2.ListAvailableImagesRequest(cloud="azure"), metadata=md).images
    assert images
    assert {i.cloud for i in images} == {"azure"}
    types = instance_type_service_pb2_grpc.InstanceTypeServiceStub(channel).ListAvailableInstanceTypes(
        instance_type_service_pb2.ListAvailableInstanceTypesRequest(cloud="gcp"), metadata=md).instance_types
    assert "a2-highgpu-1g" in {t.text for t in types}
    tags = tag_service_pb2_grpc.TagServiceStub(channel).ListTags(tag_service_pb2.ListTagsRequest(), metadata=md)
    assert [t.label for t in tags.tags if t.required] == ["Team"]


def test_inject_fault_fails_then_recovers(admin_stub, system_stub, md: Metadata) -> None:
    created = system_stub.CreateSystem(_create_request(), metadata=md).system
    detail = admin_stub.InjectFault(
        admin_service_pb2.InjectFaultRequest(method="GetSystem", code="UNAVAILABLE", count=2, message="flaky")
    ).detail
    assert "GetSystem" in detail
    request = system_service_pb2.GetSystemRequest(system_id=created.id)
    for _ in range(2):
        assert _code(lambda: system_stub.GetSystem(request, metadata=md)) == (grpc.StatusCode.UNAVAILABLE, "flaky")
    assert system_stub.GetSystem(request, metadata=md).system.id == created.id

    admin_stub.InjectFault(admin_service_pb2.InjectFaultRequest(method="*", code="internal", count=1))
    assert _code(lambda: system_stub.ListSystems(system_service_pb2.ListSystemsRequest(), metadata=md)) == (
        grpc.StatusCode.INTERNAL, "injected fault: INTERNAL")
    admin_stub.InjectFault(admin_service_pb2.InjectFaultRequest(method="*", code="UNAVAILABLE", count=5))
    admin_stub.ClearFaults(admin_service_pb2.ClearFaultsRequest())  # the admin service is never faulted
    assert system_stub.GetSystem(request, metadata=md).system.id == created.id

    code, details = _code(
        lambda: admin_stub.InjectFault(admin_service_pb2.InjectFaultRequest(method="GetSystem", code="NOPE", count=1))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("code: ")


def test_set_latency(admin_stub, system_stub, md: Metadata) -> None:
    request = system_service_pb2.ListSystemsRequest()
    admin_stub.SetLatency(admin_service_pb2.SetLatencyRequest(method="ListSystems", seconds=0.3))
    started = time.monotonic()
    system_stub.ListSystems(request, metadata=md)
    assert time.monotonic() - started >= 0.3
    assert _code(lambda: system_stub.ListSystems(request, metadata=md, timeout=0.1))[0] == (
        grpc.StatusCode.DEADLINE_EXCEEDED)
    admin_stub.SetLatency(admin_service_pb2.SetLatencyRequest(method="ListSystems", seconds=0))
    started = time.monotonic()
    system_stub.ListSystems(request, metadata=md)
    assert time.monotonic() - started < 0.25


def test_expire_tokens(admin_stub, system_stub, md: Metadata) -> None:
    request = system_service_pb2.ListSystemsRequest()
    system_stub.ListSystems(request, metadata=md)
    assert admin_stub.ExpireTokens(admin_service_pb2.ExpireTokensRequest()).detail == "expired 1 token(s)"
    assert _code(lambda: system_stub.ListSystems(request, metadata=md)) == (
        grpc.StatusCode.UNAUTHENTICATED, "token expired or invalid")


def test_fail_next_transition_and_advance_clock(admin_stub, system_stub, md: Metadata) -> None:
    created = system_stub.CreateSystem(_create_request(), metadata=md).system
    admin_stub.FailNextTransition(admin_service_pb2.FailNextTransitionRequest(system_id=created.id))
    admin_stub.AdvanceClock(admin_service_pb2.AdvanceClockRequest(seconds=10))  # 50 steps of 0.2 s
    system = system_stub.GetSystem(system_service_pb2.GetSystemRequest(system_id=created.id), metadata=md).system
    assert system.status == System.SYSTEM_STATUS_FAILED.code
    code, _ = _code(lambda: admin_stub.FailNextTransition(admin_service_pb2.FailNextTransitionRequest(system_id="x")))
    assert code == grpc.StatusCode.NOT_FOUND


def test_call_counts_count_the_calls_answered_ok(admin_stub, system_stub, md: Metadata) -> None:
    """What the reliability runs count restarts with: a refused or faulted call is not counted."""
    created = system_stub.CreateSystem(_create_request(), metadata=md).system
    restart = system_service_pb2.SystemIdRequest(system_id=created.id)
    code, _ = _code(lambda: system_stub.RestartSystem(restart, metadata=md))  # still Initializing
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    _wait_for(lambda: system_stub.GetSystem(system_service_pb2.GetSystemRequest(system_id=created.id),
                                            metadata=md).system, STARTED)
    admin_stub.InjectFault(admin_service_pb2.InjectFaultRequest(method="RestartSystem", code="UNAVAILABLE", count=1))
    assert _code(lambda: system_stub.RestartSystem(restart, metadata=md))[0] == grpc.StatusCode.UNAVAILABLE
    system_stub.RestartSystem(restart, metadata=md)
    counts = admin_stub.CallCounts(admin_service_pb2.CallCountsRequest()).answered
    assert counts["RestartSystem"] == 1 and counts["CreateSystem"] == 1 and counts["Login"] == 1
    assert "StopSystem" not in counts


def test_concurrent_calls(system_stub, md: Metadata) -> None:
    """Parallel creates, polls and stops through the threaded server share one database safely."""

    def worker(n: int) -> int:
        system = system_stub.CreateSystem(_create_request(f"par-{n}"), metadata=md).system
        request = system_service_pb2.GetSystemRequest(system_id=system.id)
        for _ in range(20):
            system_stub.GetSystem(request, metadata=md)
            system_stub.ListSystems(system_service_pb2.ListSystemsRequest(), metadata=md)
        started = _wait_for(lambda: system_stub.GetSystem(request, metadata=md).system, STARTED)
        system_stub.StopSystem(system_service_pb2.SystemIdRequest(system_id=system.id), metadata=md)
        return started.status

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(worker, range(8))) == [STARTED] * 8
    listed = system_stub.ListSystems(system_service_pb2.ListSystemsRequest(), metadata=md).systems
    assert len(listed) == 8


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "puddle.v2.SystemService", "puddle.v2.AuthService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert names >= {
        "puddle.v2.AuthService", "puddle.v2.SystemService", "puddle.v2.ImageService",
        "puddle.v2.InstanceTypeService", "puddle.v2.TagService", "puddle.v2.EmulatorAdminService",
        "grpc.health.v1.Health",
    }


def test_server_properties(tmp_path: Path) -> None:
    server = EmulatorServer(db_path=str(tmp_path / "p.sqlite"))
    with pytest.raises(RuntimeError):
        _ = server.port
    with server:
        assert server.address == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        with pytest.raises(RuntimeError):
            server.start()
        assert server.faults.latency("GetSystem") == 0
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            login = auth_service_pb2_grpc.AuthServiceStub(ch).Login(
                auth_service_pb2.LoginRequest(api_key_id=DEFAULT_API_KEY_ID, api_secret_key=DEFAULT_API_SECRET_KEY)
            )
            assert login.token


# --------------------------------------------------------------------------- the console script


def _login(address: str) -> tuple[grpc.Channel, Metadata]:
    channel = grpc.insecure_channel(address)
    token = auth_service_pb2_grpc.AuthServiceStub(channel).Login(
        auth_service_pb2.LoginRequest(api_key_id=API_KEY_ID, api_secret_key=API_SECRET_KEY)
    ).token
    return channel, (("x-puddle-token", token),)


def test_console_script_survives_sigterm_mid_transition(run_emulator) -> None:
    first = run_emulator("--step-seconds", "1", "--fault", "ListSystems:UNAVAILABLE:1")
    channel, md = _login(first.address())
    with channel:
        stub = system_service_pb2_grpc.SystemServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:  # the --fault rule is in force
            stub.ListSystems(system_service_pb2.ListSystemsRequest(), metadata=md)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        created = stub.CreateSystem(_create_request(), metadata=md).system
        created_at = time.monotonic()
    assert first.terminate() == 0
    assert "received SIGTERM" in first.stderr
    assert API_SECRET_KEY not in first.stderr

    second = run_emulator("--step-seconds", "1")
    channel, md = _login(second.address())  # a token from before the restart would do too
    with channel:
        stub = system_service_pb2_grpc.SystemServiceStub(channel)

        def get() -> system_service_pb2.System:
            return stub.GetSystem(system_service_pb2.GetSystemRequest(system_id=created.id), metadata=md).system

        seen = get()
        if time.monotonic() - created_at < 2.5:  # still within the create steps
            assert seen.status == System.SYSTEM_STATUS_INITIALIZING.code
        assert _wait_for(get, STARTED).status == STARTED
    assert second.terminate() == 0
