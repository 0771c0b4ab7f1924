"""Injected failures and latency for the emulator's RPCs, and how many calls of each were answered OK
(in memory, thread-safe).

Rules are keyed by the bare name of a Puddle RPC (``"GetSystem"``) or ``"*"`` for every
method; a rule for the exact method wins over ``"*"``. An unknown name, a non-finite,
negative or over-long latency (:data:`~airflow_puddle.emulator.limits.MAX_LATENCY_SECONDS`)
or a count out of range is refused with ``ValidationFailedError`` naming the field.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc

from airflow_puddle._proto.puddle.v2 import (
    auth_service_pb2,
    image_service_pb2,
    instance_type_service_pb2,
    system_service_pb2,
    tag_service_pb2,
)
from airflow_puddle.domain.errors import ValidationFailedError
from airflow_puddle.emulator.limits import MAX_LATENCY_SECONDS, admin_seconds, fault_count, fault_message

ANY_METHOD = "*"
FAULTABLE_METHODS = frozenset(
    method.name
    for module in (auth_service_pb2, image_service_pb2, instance_type_service_pb2, system_service_pb2, tag_service_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
)
"""The RPCs faults and latency apply to: every Puddle RPC (the admin service is exempt)."""


@dataclass
class _Fault:
    code: grpc.StatusCode
    remaining: int
    message: str


def parse_status_code(name: str | grpc.StatusCode) -> grpc.StatusCode:
    """A non-OK ``grpc.StatusCode`` from its name (``"UNAVAILABLE"``, any case)."""
    if isinstance(name, grpc.StatusCode):
        code = name
    else:
        try:
            code = grpc.StatusCode[name.strip().upper()]
        except KeyError:
            raise ValidationFailedError("code", f"unknown gRPC status code {name!r}") from None
    if code == grpc.StatusCode.OK:
        raise ValidationFailedError("code", "must be a failing status code, not OK")
    return code


def _check_method(method: object) -> str:
    if not isinstance(method, str) or not method.strip():
        raise ValidationFailedError("method", f"is required (an RPC name such as GetSystem, or *), got {method!r}")
    method = method.strip()
    if method != ANY_METHOD and method not in FAULTABLE_METHODS:
        raise ValidationFailedError("method", f"is not a Puddle RPC (such as GetSystem, or *), got {method!r}")
    return method


class FaultRegistry:
    """Failures and latency to apply to matching RPCs; the count of calls answered OK, by method."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, _Fault] = {}
        self._latency: dict[str, float] = {}
        self._answered: dict[str, int] = {}

    def inject(
        self, method: str, code: str | grpc.StatusCode, count: int = 1, message: str = ""
    ) -> None:
        """Fail the next ``count`` calls of ``method`` with ``code`` (replaces its earlier fault)."""
        method = _check_method(method)
        status = parse_status_code(code)
        count = fault_count(count)
        message = fault_message(message)
        with self._lock:
            self._faults[method] = _Fault(status, count, message or f"injected fault: {status.name}")

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay every call of ``method`` by ``seconds`` (at most ten minutes); 0 removes the delay."""
        method = _check_method(method)
        seconds = admin_seconds("seconds", seconds, maximum=MAX_LATENCY_SECONDS)
        with self._lock:
            if seconds == 0:
                self._latency.pop(method, None)
            else:
                self._latency[method] = float(seconds)

    def clear(self) -> None:
        """Remove every fault and latency rule."""
        with self._lock:
            self._faults.clear()
            self._latency.clear()

    def check(self, method: str) -> tuple[grpc.StatusCode, str] | None:
        """The failure this call of ``method`` must end with, if any (uses up one count)."""
        with self._lock:
            key = method if method in self._faults else ANY_METHOD
            fault = self._faults.get(key)
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._faults[key]
            return fault.code, fault.message

    def latency(self, method: str) -> float:
        """Seconds to delay a call of ``method``."""
        with self._lock:
            return self._latency.get(method, self._latency.get(ANY_METHOD, 0.0))

    def answered(self, method: str) -> None:
        """Count one call of ``method`` answered OK (not faulted, not refused)."""
        with self._lock:
            self._answered[method] = self._answered.get(method, 0) + 1

    def answered_counts(self) -> dict[str, int]:
        """Calls answered OK since the emulator started, by method (``ClearFaults`` keeps them)."""
        with self._lock:
            return dict(self._answered)


def parse_fault_spec(spec: str) -> tuple[str, grpc.StatusCode, int]:
    """Parse ``METHOD:CODE:COUNT`` (COUNT optional, default 1), as the CLI's ``--fault`` takes it.

    ``ValueError`` naming the part and the rule, as ``ValidationFailedError`` would for the admin RPC.
    """
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"expected METHOD:CODE[:COUNT], got {spec!r}")
    try:
        count = int(parts[2]) if len(parts) == 3 else 1
    except ValueError:
        raise ValueError(f"COUNT must be a whole number, got {parts[2]!r} in {spec!r}") from None
    try:
        return _check_method(parts[0]), parse_status_code(parts[1]), fault_count(count)
    except ValidationFailedError as err:
        raise ValueError(f"{err.field.upper()} {err.rule} in {spec!r}") from None


def parse_latency_spec(spec: str) -> tuple[str, float]:
    """Parse ``METHOD:SECONDS``, as the CLI's ``--latency`` takes it (``ValueError`` naming the part and rule)."""
    method, sep, seconds = spec.rpartition(":")
    if not sep:
        raise ValueError(f"expected METHOD:SECONDS, got {spec!r}")
    try:
        value = float(seconds)
    except ValueError:
        raise ValueError(f"SECONDS must be a number, got {seconds!r} in {spec!r}") from None
    try:
        return _check_method(method), admin_seconds("seconds", value, maximum=MAX_LATENCY_SECONDS)
    except ValidationFailedError as err:
        raise ValueError(f"{err.field.upper()} {err.rule} in {spec!r}") from None
