"""TLS: the client verifies a server certificate against the CA PEM it is given."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_puddle.client import (
    CLOUD_AWS,
    AsyncAuthorizer,
    AsyncSystemsClient,
    Authorizer,
    RetryPolicy,
    SystemsClient,
)
from airflow_puddle.domain.errors import PuddleUnavailableError, TlsHandshakeError
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, EmulatorServer


def self_signed(common_name: str) -> tuple[bytes, bytes]:
    """A throwaway certificate for localhost / 127.0.0.1, and its key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def tls_emulator(tmp_path: Path) -> Iterator[tuple[EmulatorServer, bytes]]:
    cert, key = self_signed("puddle-emulator-test")
    with EmulatorServer(port=0, db_path=str(tmp_path / "tls.sqlite"), tls=(cert, key)) as server:
        yield server, cert


def test_tls_with_the_callers_ca(tls_emulator: tuple[EmulatorServer, bytes]) -> None:
    server, cert = tls_emulator
    assert server.address.startswith("https://127.0.0.1:")
    auth = Authorizer(server.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, ca_cert=cert.decode())
    assert SystemsClient(CLOUD_AWS, authorizer=auth).list() == []
    bare = server.address.removeprefix("https://")  # host:port means TLS too
    auth = Authorizer(bare, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, ca_cert=cert.decode())
    assert SystemsClient(CLOUD_AWS, authorizer=auth).list() == []


def test_tls_rejects_an_unknown_ca(tls_emulator: tuple[EmulatorServer, bytes]) -> None:
    server, _ = tls_emulator
    other, _ = self_signed("someone-else")
    auth = Authorizer(server.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, ca_cert=other.decode())
    with pytest.raises(TlsHandshakeError, match="certificate is not trusted: give its CA's PEM text as ca_cert"):
        SystemsClient(CLOUD_AWS, authorizer=auth).list()


def test_a_bare_address_to_a_plaintext_server_fails_at_once_saying_why(emulator: EmulatorServer,
                                                                      flavour: str, wrap: Any) -> None:
    """A bare host:port means TLS; against a plaintext server the handshake fails and is not retried."""
    bare = emulator.address.removeprefix("http://")
    auth_cls = Authorizer if flavour == "sync" else AsyncAuthorizer
    systems_cls = SystemsClient if flavour == "sync" else AsyncSystemsClient
    systems = wrap(systems_cls(CLOUD_AWS, authorizer=auth_cls(bare, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)))
    with pytest.raises(TlsHandshakeError) as info:
        systems.list()
    assert "a bare host:port means TLS" in str(info.value) and f"write http://{bare[:9]}" not in str(info.value)
    assert "write http://HOST:PORT" in str(info.value) and "gave up after" not in str(info.value)
    with pytest.raises(TlsHandshakeError):  # a wait does not ride it out until its deadline either
        systems.wait_for_system_started("0b7e4a3c-0000-4000-8000-000000000000")


@pytest.mark.parametrize(("address", "ca_cert", "message"), [
    ("http://127.0.0.1:9", "cert", "ca_cert: given for a plaintext http:// address, which would ignore it"),
    ("https://127.0.0.1:9", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
     "ca_cert: is not a valid PEM certificate"),
    ("127.0.0.1:9", "/etc/ssl/ca.pem", "ca_cert: must be PEM text"),
])
def test_tls_settings_that_cannot_work_are_refused_when_built(address: str, ca_cert: str, message: str) -> None:
    pem = self_signed("x")[0].decode() if ca_cert == "cert" else ca_cert
    with pytest.raises(ValueError, match=message):
        Authorizer(address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, ca_cert=pem)


def test_plaintext_client_cannot_talk_to_a_tls_server(tls_emulator: tuple[EmulatorServer, bytes]) -> None:
    server, _ = tls_emulator
    plain = server.address.replace("https://", "http://")
    auth = Authorizer(plain, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, timeout_s=2.0,
                      retry_policy=RetryPolicy(max_attempts=1))
    with pytest.raises(PuddleUnavailableError):
        SystemsClient(CLOUD_AWS, authorizer=auth).list()
