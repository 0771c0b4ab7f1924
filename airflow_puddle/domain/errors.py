"""The Puddle error hierarchy, shared by the client and the emulator.

Each error carries the gRPC status code it travels as. The emulator aborts with
``error.code``; the client turns an ``RpcError`` back into the same class with
:func:`from_rpc_error`. That pairing is the only place codes are chosen.
"""

from __future__ import annotations

import re

import grpc


class PuddleError(Exception):
    """Root of every error this client raises."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str = "", *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ValidationFailedError(PuddleError, ValueError):
    """Input fails validation (a bad name, a disk size out of range, ...)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule

    @classmethod
    def from_message(cls, message: str) -> ValidationFailedError:
        """The error a ``"field: rule"`` message describes (what travels as an INVALID_ARGUMENT's details)."""
        return cls(*split_field(message))


def split_field(message: str, default: str = "request") -> tuple[str, str]:
    """``(field, rule)`` of a ``"field: rule"`` message; ``(default, message)`` when it names no field."""
    field, _, rule = message.partition(": ")
    return (field, rule) if rule else (default, message)


class PreconditionFailedError(PuddleError):
    """The operation does not fit the system's current state."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class NotFoundError(PuddleError, LookupError):
    """No system (or other object) with that id."""

    code = grpc.StatusCode.NOT_FOUND


class AuthError(PuddleError):
    """Login failed, or the token was rejected even after a fresh login."""

    code = grpc.StatusCode.UNAUTHENTICATED


class TlsHandshakeError(PuddleError):
    """The TLS handshake with the server failed (a plaintext server, an untrusted certificate); not transient."""

    code = grpc.StatusCode.UNAVAILABLE


class SystemFailedError(PuddleError):
    """The system entered the failed state (or the upload failed) while being waited on."""

    code = grpc.StatusCode.ABORTED


class PuddleTimeoutError(PuddleError, TimeoutError):
    """A ``wait_for_*`` call gave up before the system reached its goal."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class PuddleUnavailableError(PuddleError, ConnectionError):
    """The backend could not be reached, or kept failing transiently."""

    code = grpc.StatusCode.UNAVAILABLE


class AlreadyExistsError(PreconditionFailedError):
    """A system of that name already exists (and is not terminated): a failed precondition of create."""

    code = grpc.StatusCode.ALREADY_EXISTS


class MessageTooLargeError(PuddleError):
    """A request or response is over a gRPC message size limit: asking again cannot help."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class NotAnEmulatorError(PuddleError):
    """The server does not speak this project's wire contract: a real Puddle, reached with the builtin client."""

    code = grpc.StatusCode.UNIMPLEMENTED


NOT_AN_EMULATOR = ("this server is not a Puddle emulator (it does not implement {method}); "
                   "set extra.client=puddle to use the official puddle.client package")


TRANSIENT_CODES: frozenset[grpc.StatusCode] = frozenset({
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    # A CANCELLED that reaches the client came from the server side (a server shutting
    # down, a dropped stream): a call the client cancels raises no RpcError here.
    grpc.StatusCode.CANCELLED,
})
"""Codes worth asking again: a read retries them, a wait polls on through them until its deadline."""

_TOO_LARGE = re.compile(r"(?:Received|Sent) message larger than max \((\d+) vs\. (\d+)\)")


def too_large(code: grpc.StatusCode, details: str) -> re.Match[str] | None:
    """The sizes when ``details`` says a message was over gRPC's size limit (RESOURCE_EXHAUSTED, not transient)."""
    return _TOO_LARGE.search(details) if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None


_HANDSHAKE = re.compile(r"(?:tls|ssl) handshake failed|security handshaker", re.IGNORECASE)


def handshake_failed(code: grpc.StatusCode, details: str) -> bool:
    """Whether ``details`` says the TLS handshake failed (a wrong scheme, an untrusted certificate): not transient."""
    return code == grpc.StatusCode.UNAVAILABLE and _HANDSHAKE.search(details) is not None


def tls_fix(details: str, *, bare: bool = False) -> str:
    """What to change when a TLS handshake failed with ``details``; ``bare``: the address had no scheme."""
    if "WRONG_VERSION_NUMBER" in details or "HTTP_REQUEST" in details or "packet length too long" in details:
        if bare:
            return ("a bare host:port means TLS, and the server does not speak TLS: for a plaintext server "
                    "(such as the emulator) write http://HOST:PORT")
        return "the server does not speak TLS: for a plaintext server (such as the emulator) use http://"
    if "CERTIFICATE_VERIFY_FAILED" in details:
        return "the server's certificate is not trusted: give its CA's PEM text as ca_cert (extra.ca_cert)"
    if "security handshaker" in details:
        return "the TLS settings are unusable: ca_cert must hold PEM certificate text"
    return "check the address's scheme (http:// for a plaintext server) and ca_cert"


def is_transient(code: grpc.StatusCode, details: str = "") -> bool:
    """Whether asking again may succeed: a transient code that is not a message over the size limit
    nor a failed TLS handshake."""
    return code in TRANSIENT_CODES and too_large(code, details) is None and not handshake_failed(code, details)


_BY_CODE: dict[grpc.StatusCode, type[PuddleError]] = {
    grpc.StatusCode.FAILED_PRECONDITION: PreconditionFailedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNAUTHENTICATED: AuthError,
    grpc.StatusCode.PERMISSION_DENIED: AuthError,
    **{code: PuddleUnavailableError for code in TRANSIENT_CODES},
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
}


def from_rpc_error(err: grpc.RpcError, method: str = "") -> PuddleError:
    """Map a failed RPC to the matching :class:`PuddleError` subclass."""
    code: grpc.StatusCode = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details: str = (err.details() if hasattr(err, "details") else "") or str(code.name)
    where = f"{method}: " if method else ""
    sizes = too_large(code, details)
    if sizes is not None:
        got, limit = sizes.groups()
        return MessageTooLargeError(f"{where}message too large: {int(got):,} bytes, over the limit of "
                                    f"{int(limit):,} bytes", code=code)
    if handshake_failed(code, details):
        return TlsHandshakeError(f"{where}TLS handshake failed, which retrying cannot fix: {tls_fix(details)} "
                                 f"({details})", code=code)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return NotAnEmulatorError(NOT_AN_EMULATOR.format(method=method or "this call"), code=code)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return ValidationFailedError.from_message(details)
    cls = _BY_CODE.get(code, PuddleError)
    return cls(f"{where}{details}", code=code)
