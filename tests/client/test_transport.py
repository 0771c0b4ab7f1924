"""Address parsing, the retry decision and backoff: the transport's pure logic."""

from __future__ import annotations

import grpc
import pytest

from airflow_puddle._proto.puddle.v2 import system_service_pb2
from airflow_puddle.client import RetryPolicy
from airflow_puddle.client._transport import Rpc, Target, decide


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("http://127.0.0.1:50051", Target("127.0.0.1", 50051, tls=False)),
        ("https://puddle.example.com", Target("puddle.example.com", 443, tls=True)),
        ("https://puddle.example.com:8443", Target("puddle.example.com", 8443, tls=True)),
        ("puddle.example.com:443", Target("puddle.example.com", 443, tls=True)),
        ("  http://localhost:1/ ", Target("localhost", 1, tls=False)),
    ],
)
def test_target_parse(address: str, expected: Target) -> None:
    assert Target.parse(address) == expected


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "server_address: is required"),
        ("ftp://x:1", "scheme must be http or https"),
        ("http://host", "a port is required"),
        ("host-only", "a port is required"),
        ("http://host:99999", "invalid port"),
        ("https://host/api", "must not have a path"),
    ],
)
def test_target_parse_rejects(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Target.parse(address)


READ = Rpc("SystemService", "GetSystem", system_service_pb2.GetSystemRequest(), idempotent=True)
WRITE = Rpc("SystemService", "StopSystem", system_service_pb2.SystemIdRequest(), idempotent=False)
C = grpc.StatusCode


@pytest.mark.parametrize(
    ("rpc", "code", "attempt", "relogged", "expected"),
    [
        (READ, C.UNAVAILABLE, 1, False, "retry"),
        (READ, C.DEADLINE_EXCEEDED, 1, False, "retry"),
        (READ, C.RESOURCE_EXHAUSTED, 3, False, "retry"),
        (READ, C.UNAVAILABLE, 4, False, "raise"),  # attempts used up
        (READ, C.INTERNAL, 1, False, "raise"),
        (READ, C.NOT_FOUND, 1, False, "raise"),
        (WRITE, C.UNAVAILABLE, 1, False, "raise"),  # mutations are not blindly retried
        (WRITE, C.UNAUTHENTICATED, 1, False, "relogin"),
        (READ, C.UNAUTHENTICATED, 1, False, "relogin"),
        (READ, C.UNAUTHENTICATED, 1, True, "raise"),  # one fresh login, then AuthError
    ],
)
def test_decide(rpc: Rpc, code: grpc.StatusCode, attempt: int, relogged: bool, expected: str) -> None:
    assert decide(rpc, code, attempt, relogged, RetryPolicy(max_attempts=4)) == expected


def test_backoff_grows_with_jitter_and_caps() -> None:
    policy = RetryPolicy(initial_backoff_s=0.1, max_backoff_s=1.0, multiplier=2.0, jitter=0.25)
    for attempt, base in [(1, 0.1), (2, 0.2), (3, 0.4), (10, 1.0)]:
        delays = {policy.backoff(attempt) for _ in range(50)}
        assert all(base * 0.75 <= d <= base * 1.25 for d in delays)
        assert len(delays) > 1  # jittered


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
