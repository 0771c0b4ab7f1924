"""The emulator's settings and admin values, each checked once, naming the argument and the rule.

Settings (constructor arguments, and through them the CLI flags) raise
:class:`EmulatorConfigError`, a ``ValueError``. Admin requests raise the shared
:class:`~airflow_puddle.domain.errors.ValidationFailedError`, which the servicers send
as ``INVALID_ARGUMENT``. Nothing is stored or applied before its check passes.
"""

from __future__ import annotations

import ipaddress
import math
import ssl
import tempfile
from pathlib import Path
from typing import Any

from airflow_puddle.domain.errors import ValidationFailedError
from airflow_puddle.domain.validation import validate_seconds

MAX_PORT = 65535
MAX_ADVANCE_SECONDS = 10 * 365 * 24 * 3600
"""The furthest one ``AdvanceClock`` call moves the clock: ten years."""
LATEST_TIME = 253402300799.0
"""The emulator's clock never passes 9999-12-31T23:59:59Z, the last instant a protobuf Timestamp holds."""
MAX_LATENCY_SECONDS = 600.0
"""The longest injected latency: ten minutes (a shutdown cuts it short)."""
MAX_STEP_SECONDS = 3600.0
"""The longest a lifecycle state lasts (``--step-seconds``): an hour, so a system always boots and terminates."""
MAX_TOKEN_TTL_SECONDS = MAX_ADVANCE_SECONDS
"""The longest a token lives: ten years."""
MAX_FAULT_COUNT = 1_000_000
MAX_FAULT_MESSAGE_CHARS = 1024
"""An injected fault's message travels in the status trailer, which clients cap (8 KiB by default)."""


class EmulatorConfigError(ValueError):
    """A setting of the emulator breaks a rule; ``argument`` names the constructor argument."""

    def __init__(self, argument: str, rule: str) -> None:
        super().__init__(f"{argument}: {rule}")
        self.argument = argument
        self.rule = rule


def setting_seconds(argument: str, value: object, *, maximum: float | None = None) -> float:
    """A duration setting: a finite number of seconds above zero, at most ``maximum``."""
    try:
        return validate_seconds(argument, value, maximum=maximum)
    except ValidationFailedError as err:
        raise EmulatorConfigError(argument, err.rule) from None


def setting_int(argument: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """A whole-number setting in ``minimum..maximum`` (booleans refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise EmulatorConfigError(argument, f"must be a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise EmulatorConfigError(argument, f"must be {bound}, got {value}")
    return value


def setting_text(argument: str, value: object) -> str:
    """A required text setting: a string that is not empty or blank."""
    if not isinstance(value, str) or not value.strip():
        raise EmulatorConfigError(argument, f"must not be empty, got {value!r}")
    return value


def setting_port(port: object) -> int:
    """A TCP port to bind: 0 (pick a free one) to 65535."""
    return setting_int("port", port, minimum=0, maximum=MAX_PORT)


def setting_host(host: object) -> str:
    """The address to bind, without brackets (``[::1]`` becomes ``::1``)."""
    text = setting_text("host", host).strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if not bare or any(c in bare for c in "[]/ \t"):
        raise EmulatorConfigError("host", f"must be a host name or IP address, got {host!r}")
    if ":" in bare:
        try:
            ipaddress.IPv6Address(bare)
        except ValueError:
            rule = f"has a ':' but is not an IPv6 address (the port is a separate setting), got {host!r}"
            raise EmulatorConfigError("host", rule) from None
    return bare


def bind_target(host: str, port: int) -> str:
    """``HOST:PORT`` for gRPC to bind, IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_address(host: str, port: int, *, tls: bool = False) -> str:
    """The address a client dials: ``http://HOST:PORT`` (``https://`` with TLS), IPv6 in brackets."""
    return f"{'https' if tls else 'http'}://{bind_target(host, port)}"


def setting_step_seconds(value: object) -> float:
    """How long each lifecycle state lasts: above zero, at most :data:`MAX_STEP_SECONDS`."""
    return setting_seconds("step_seconds", value, maximum=MAX_STEP_SECONDS)


def setting_tls(tls: Any) -> tuple[bytes, bytes] | None:
    """``(certificate chain PEM, private key PEM)``, both non-empty bytes that TLS can use, or None.

    A file that is not a certificate is ``tls_cert``'s error, a key that is not one (or not the
    certificate's) ``tls_key``'s, said here rather than as a port gRPC could not bind.
    """
    if tls is None:
        return None
    if not isinstance(tls, tuple) or len(tls) != 2 or not all(isinstance(p, bytes) and p.strip() for p in tls):
        raise EmulatorConfigError("tls", "must be (certificate chain PEM, private key PEM), both non-empty bytes")
    cert, key = tls
    try:
        ssl.create_default_context(cadata=cert.decode("ascii"))
    except (ssl.SSLError, ValueError) as err:
        raise EmulatorConfigError("tls_cert", f"is not a PEM certificate chain ({_ssl_reason(err)})") from None
    with tempfile.TemporaryDirectory(prefix="puddle-tls-") as folder:
        cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_file.write_bytes(cert)
        key_file.write_bytes(key)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)
        except (ssl.SSLError, ValueError) as err:
            raise EmulatorConfigError(
                "tls_key", f"is not a PEM private key of the certificate ({_ssl_reason(err)})") from None
    return tls


def _ssl_reason(err: Exception) -> str:
    return str(getattr(err, "reason", None) or err.__class__.__name__)


def admin_seconds(field: str, value: object, *, maximum: float) -> float:
    """An admin request's seconds: finite, not negative, at most ``maximum``."""
    seconds = validate_seconds(field, value, allow_zero=True)
    if seconds > maximum:
        raise ValidationFailedError(field, f"must be at most {maximum:g} seconds, got {value!r}")
    return seconds


def advance_seconds(seconds: object, now: float) -> float:
    """An ``AdvanceClock`` step from ``now``: finite, 0..ten years, and not past :data:`LATEST_TIME`."""
    step = admin_seconds("seconds", seconds, maximum=MAX_ADVANCE_SECONDS)
    if not math.isfinite(now + step) or now + step > LATEST_TIME:
        raise ValidationFailedError("seconds", f"would move the clock past 9999-12-31, got {seconds!r}")
    return step


def fault_count(count: object) -> int:
    """How many calls an injected fault fails: 1 to :data:`MAX_FAULT_COUNT`."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValidationFailedError("count", f"must be a whole number, got {count!r}")
    if not 1 <= count <= MAX_FAULT_COUNT:
        raise ValidationFailedError("count", f"must be between 1 and {MAX_FAULT_COUNT}, got {count}")
    return count


def fault_message(message: object) -> str:
    """An injected fault's message: a string of at most :data:`MAX_FAULT_MESSAGE_CHARS` characters."""
    if not isinstance(message, str):
        raise ValidationFailedError("message", f"must be a string, got {message!r}")
    if len(message) > MAX_FAULT_MESSAGE_CHARS:
        raise ValidationFailedError(
            "message", f"must be at most {MAX_FAULT_MESSAGE_CHARS} characters, got {len(message)}"
        )
    return message
