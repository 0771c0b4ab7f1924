"""TLS: the client verifies a server certificate against the CA PEM it is given."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_puddle.client import CLOUD_AWS, Authorizer, RetryPolicy, SystemsClient
from airflow_puddle.client.errors import PuddleUnavailableError
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
    fast = {"timeout_s": 2.0, "retry_policy": RetryPolicy(max_attempts=1)}
    auth = Authorizer(server.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, ca_cert=other.decode(), **fast)
    with pytest.raises(PuddleUnavailableError):
        SystemsClient(CLOUD_AWS, authorizer=auth).list()


def test_plaintext_client_cannot_talk_to_a_tls_server(tls_emulator: tuple[EmulatorServer, bytes]) -> None:
    server, _ = tls_emulator
    plain = server.address.replace("https://", "http://")
    auth = Authorizer(plain, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY, timeout_s=2.0,
                      retry_policy=RetryPolicy(max_attempts=1))
    with pytest.raises(PuddleUnavailableError):
        SystemsClient(CLOUD_AWS, authorizer=auth).list()
