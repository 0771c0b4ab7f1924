"""The e2e package's deployment (:mod:`tests.e2e.deployment`), started once for the tests that use it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, SystemsClient
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.emulator.server import EmulatorServer
from tests.e2e.deployment import Stack, running_stack


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    """Airflow's components and the emulators, shared by this package's tests, stopped after the last."""
    with running_stack() as started:
        yield started


@pytest.fixture
def client_for() -> Iterator[Callable[[EmulatorServer], SystemsClient]]:
    authorizers: list[Authorizer] = []

    def make(emulator: EmulatorServer) -> SystemsClient:
        auth = Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
        authorizers.append(auth)
        return SystemsClient(CLOUD_AWS, authorizer=auth)

    yield make
    for auth in authorizers:
        auth.close()
