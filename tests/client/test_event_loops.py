"""An async client outlives an ``asyncio.run()``: a later loop gets a fresh channel; two live loops are refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, AsyncAuthorizer, AsyncSystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

DAI = {"product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}


def _client(emulator: Any) -> AsyncSystemsClient:
    return AsyncSystemsClient(CLOUD_AWS, authorizer=AsyncAuthorizer(emulator.address, DEFAULT_API_KEY_ID,
                                                                    DEFAULT_API_SECRET_KEY))


def test_one_async_client_serves_one_asyncio_run_after_another(emulator: Any) -> None:
    client = _client(emulator)
    created = asyncio.run(client.create("two-loops", **DAI))
    started = asyncio.run(client.wait_for_system_started(created.id))  # "Event loop is closed" before
    assert started.status_text == "Started"
    assert [s.id for s in asyncio.run(client.list())] == [created.id]
    asyncio.run(client.authorizer.close())


def test_one_async_client_on_two_running_loops_is_refused_clearly(emulator: Any, loop_thread: Any) -> None:
    client = _client(emulator)
    assert loop_thread.run(client.list()) == []  # its channel now belongs to the thread's running loop
    with pytest.raises(RuntimeError, match="belongs to one loop at a time: build one per loop"):
        asyncio.run(client.list())
    loop_thread.run(client.authorizer.close())
