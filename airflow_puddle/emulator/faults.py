"""Injected failures and latency for the emulator's RPCs (in memory, thread-safe).

Rules are keyed by the bare RPC name (``"GetSystem"``) or ``"*"`` for every
method; a rule for the exact method wins over ``"*"``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc

from airflow_puddle.client.errors import ValidationFailedError

ANY_METHOD = "*"


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
        raise ValidationFailedError("code", "a fault needs a failing status code, not OK")
    return code


def _check_method(method: str) -> str:
    method = method.strip()
    if not method:
        raise ValidationFailedError("method", "is required (an RPC name such as GetSystem, or *)")
    return method


class FaultRegistry:
    """Failures and latency to apply to matching RPCs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, _Fault] = {}
        self._latency: dict[str, float] = {}

    def inject(
        self, method: str, code: str | grpc.StatusCode, count: int = 1, message: str = ""
    ) -> None:
        """Fail the next ``count`` calls of ``method`` with ``code`` (replaces its earlier fault)."""
        method = _check_method(method)
        status = parse_status_code(code)
        if count < 1:
            raise ValidationFailedError("count", f"must be at least 1, got {count}")
        with self._lock:
            self._faults[method] = _Fault(status, count, message or f"injected fault: {status.name}")

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay every call of ``method`` by ``seconds``; 0 removes the delay."""
        method = _check_method(method)
        if seconds < 0:
            raise ValidationFailedError("seconds", f"must not be negative, got {seconds}")
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


def parse_fault_spec(spec: str) -> tuple[str, grpc.StatusCode, int]:
    """Parse ``METHOD:CODE:COUNT`` (COUNT optional, default 1), as the CLI's ``--fault`` takes it."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(f"expected METHOD:CODE[:COUNT], got {spec!r}")
    try:
        count = int(parts[2]) if len(parts) == 3 else 1
    except ValueError:
        raise ValueError(f"COUNT must be a whole number in {spec!r}") from None
    if count < 1:
        raise ValueError(f"COUNT must be at least 1 in {spec!r}")
    try:
        code = parse_status_code(parts[1])
    except ValidationFailedError as err:
        raise ValueError(f"{err.rule} in {spec!r}") from None
    return parts[0], code, count


def parse_latency_spec(spec: str) -> tuple[str, float]:
    """Parse ``METHOD:SECONDS``, as the CLI's ``--latency`` takes it."""
    method, sep, seconds = spec.rpartition(":")
    if not sep or not method:
        raise ValueError(f"expected METHOD:SECONDS, got {spec!r}")
    try:
        value = float(seconds)
    except ValueError:
        raise ValueError(f"SECONDS must be a number in {spec!r}") from None
    if value < 0:
        raise ValueError(f"SECONDS must not be negative in {spec!r}")
    return method, value
