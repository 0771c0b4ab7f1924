"""Where the backend is: the server address rule and the CA certificate check, no I/O.

:meth:`Target.parse` reads ``server_address`` (``http://`` plaintext, ``https://`` or a bare
``host:port`` TLS); :func:`check_ca_cert` checks ``ca_cert`` against it. The transport builds
its channel from a :class:`Target`; the hook checks a connection's address with the same rules.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Target:
    """Where the backend is and whether to speak TLS to it.

    ``http://host:port`` is plaintext (the emulator on loopback); ``https://host[:port]``
    and a bare ``host:port`` use TLS.
    """

    host: str
    port: int
    tls: bool
    bare: bool = field(default=False, compare=False)
    """The address had no scheme (``host:port``): TLS, which a failed handshake's message explains."""

    @property
    def authority(self) -> str:
        """``host:port`` as gRPC takes it (an IPv6 host in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, address: str) -> Target:
        if not isinstance(address, str) or not address.strip():
            raise ValueError("server_address: is required (e.g. https://puddle.example.com)")
        raw = address.strip()
        scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
        if scheme not in ("", "http", "https"):
            raise ValueError(f"server_address: scheme must be http or https, got {scheme!r}")
        parts = urlsplit(raw if scheme else f"//{raw}", allow_fragments=True)
        if "@" in parts.netloc:  # never echo it: user info may hold a secret
            raise ValueError("server_address: must not contain user info (user:password@); "
                             "give the API key pair to the Authorizer")
        if parts.netloc.count(":") >= 2 and not parts.netloc.startswith("["):
            raise ValueError(f"server_address: an IPv6 address needs brackets, as in http://[::1]:50051, "
                             f"got {address!r}")
        if parts.query or parts.fragment or raw.endswith(("?", "#")):
            raise ValueError(f"server_address: must not have a query string or fragment (?...#...), got {address!r}")
        if not parts.hostname:
            raise ValueError(f"server_address: no host in {address!r}")
        if parts.path not in ("", "/"):
            raise ValueError(f"server_address: must not have a path, got {parts.path!r}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"server_address: invalid port in {address!r}") from None
        if port is None:
            if scheme != "https":
                raise ValueError(f"server_address: a port is required in {address!r}")
            port = 443
        return cls(parts.hostname, port, tls=scheme != "http", bare=not scheme)


def check_ca_cert(target: Target, ca_cert: str | None) -> None:
    """``ca_cert``: PEM certificate text, for a TLS address only (an ``http://`` one would ignore it)."""
    if ca_cert is None:
        return
    if not target.tls:
        raise ValueError("ca_cert: given for a plaintext http:// address, which would ignore it; use https:// "
                         "(or a bare host:port) to speak TLS, or drop ca_cert")
    if not isinstance(ca_cert, str) or "-----BEGIN CERTIFICATE-----" not in ca_cert:
        raise ValueError("ca_cert: must be PEM text (-----BEGIN CERTIFICATE-----...), not a path")
    try:
        ssl.create_default_context(cadata=ca_cert)
    except (ssl.SSLError, ValueError) as err:
        raise ValueError(f"ca_cert: is not a valid PEM certificate ({err.__class__.__name__}: "
                         f"{getattr(err, 'reason', None) or err})") from None
