"""A burst of concurrent logins from one asyncio client process all succeed (none CANCELLED)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

import grpc
import pytest

from airflow_puddle._proto.puddle.v2 import auth_service_pb2, auth_service_pb2_grpc

from .conftest import API_KEY_ID, API_SECRET_KEY, CliEmulator


async def login_burst(address: str, calls: int, channels: int = 1) -> collections.Counter[str]:
    """Send ``calls`` Login RPCs at once over ``channels`` grpc.aio channels; counts of the status codes."""
    opened = [grpc.aio.insecure_channel(address) for _ in range(channels)]
    stubs = [auth_service_pb2_grpc.AuthServiceStub(channel) for channel in opened]
    request = auth_service_pb2.LoginRequest(api_key_id=API_KEY_ID, api_secret_key=API_SECRET_KEY)

    async def one(n: int) -> str:
        try:
            await stubs[n % channels].Login(request, timeout=60)
        except grpc.aio.AioRpcError as err:
            return err.code().name
        return "OK"

    try:
        return collections.Counter(await asyncio.gather(*(one(n) for n in range(calls))))
    finally:
        for channel in opened:
            await channel.close()


@pytest.mark.parametrize("channels", [1, 4])
async def test_3000_concurrent_logins_all_succeed(run_emulator: Callable[..., CliEmulator], channels: int) -> None:
    """gRPC core cancels calls past 1,000 queued by default; the emulator raises that limit."""
    emulator = run_emulator()
    outcome = await login_burst(emulator.address(), 3000, channels)
    assert outcome == {"OK": 3000}
    assert emulator.terminate() == 0
