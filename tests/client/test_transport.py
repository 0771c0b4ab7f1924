"""Address parsing, the retry decision and backoff: the transport's pure logic."""

from __future__ import annotations

import grpc
import pytest

from airflow_puddle._proto.puddle.v2 import system_service_pb2
from airflow_puddle.client import RetryPolicy
from airflow_puddle.client._transport import Rpc, decide
from airflow_puddle.client.address import Target


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


class _Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


TOO_LARGE = "Received message larger than max (5242880 vs. 4194304)"


@pytest.mark.parametrize(
    ("rpc", "code", "attempt", "relogged", "expected"),
    [
        (READ, C.UNAVAILABLE, 1, False, "retry"),
        (READ, C.CANCELLED, 1, False, "retry"),  # the server's side cancelled it (shutdown)
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
    assert decide(rpc, _Failed(code, "x"), attempt, relogged, RetryPolicy(max_attempts=4)) == expected


def test_a_message_over_the_size_limit_is_not_transient() -> None:
    from airflow_puddle.domain.errors import MessageTooLargeError, PuddleUnavailableError, from_rpc_error

    err = _Failed(C.RESOURCE_EXHAUSTED, TOO_LARGE)
    assert decide(READ, err, 1, False, RetryPolicy()) == "raise"
    mapped = from_rpc_error(err, "ListSystems")
    assert isinstance(mapped, MessageTooLargeError) and not isinstance(mapped, PuddleUnavailableError)
    assert str(mapped) == "ListSystems: message too large: 5,242,880 bytes, over the limit of 4,194,304 bytes"
    quota = from_rpc_error(_Failed(C.RESOURCE_EXHAUSTED, "quota"), "GetSystem")
    assert isinstance(quota, PuddleUnavailableError)  # other RESOURCE_EXHAUSTED stays transient


def test_backoff_grows_with_jitter_and_caps() -> None:
    policy = RetryPolicy(initial_backoff_s=0.1, max_backoff_s=1.0, multiplier=2.0, jitter=0.25)
    for attempt, base in [(1, 0.1), (2, 0.2), (3, 0.4), (10, 1.0)]:
        delays = {policy.backoff(attempt) for _ in range(50)}
        assert all(base * 0.75 <= d <= base * 1.25 for d in delays)
        assert len(delays) > 1  # jittered


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
