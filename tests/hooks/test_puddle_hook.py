"""PuddleHook: connection parsing, shared clients, the async path and the Test button."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_puddle.client import CLOUD_AZURE, AsyncSystemsClient
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.hooks.settings import PuddleConnectionError, PuddleSettings
from tests.client.test_tls import self_signed
from tests.conftest import connection_json

PEM = self_signed("puddle-hook-test")[0].decode()
GARBAGE_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def conn(**kw: Any) -> Connection:
    base: dict[str, Any] = {"conn_id": "p", "conn_type": "puddle", "host": "https://puddle.example.com",
                            "login": "key", "password": "s3cr3t-value"}
    extra = kw.pop("extra", None)
    base.update(kw)
    if extra is not None:
        base["extra"] = json.dumps(extra) if isinstance(extra, dict) else extra
    return Connection(**base)


@pytest.mark.parametrize(
    ("fields", "address", "cloud"),
    [
        ({}, "https://puddle.example.com", "aws"),
        ({"host": "http://127.0.0.1", "port": 50051}, "http://127.0.0.1:50051", "aws"),
        ({"host": "http://127.0.0.1:50051"}, "http://127.0.0.1:50051", "aws"),
        ({"host": "puddle.example.com", "port": 443, "extra": {"cloud": "gcp"}}, "puddle.example.com:443", "gcp"),
        ({"extra": {"cloud": "azure", "ca_cert": PEM, "timeout": "12.5"}}, "https://puddle.example.com", "azure"),
    ],
)
def test_settings_from_connection(fields: dict[str, Any], address: str, cloud: str) -> None:
    settings = PuddleSettings.from_connection(conn(**fields))
    assert (settings.server_address, settings.cloud.id) == (address, cloud)
    assert settings.api_key_id == "key" and settings.api_secret_key == "s3cr3t-value"
    assert "s3cr3t" not in repr(settings) and "MIIB" not in repr(settings)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"host": ""}, "host is required"),
        ({"host": "ftp://x", "port": 1}, "host: scheme must be http or https"),
        ({"host": "http://127.0.0.1"}, "host: a port is required"),
        ({"host": "http://127.0.0.1:1", "port": 2}, "port in host or in port, not both"),
        ({"login": None}, "login \\(the API key ID\\) is required"),
        ({"password": None}, "password \\(the API secret key\\) is required"),
        ({"extra": "{not json"}, "extra: must be a JSON object"),
        ({"extra": {"cloud": "ibm"}}, "extra.cloud: must be one of aws, azure, gcp"),
        ({"extra": {"ca_cert": "/etc/ssl/ca.pem"}}, "extra.ca_cert: must be PEM text"),
        ({"extra": {"timeout": "soon"}}, "extra.timeout: must be a number of seconds"),
        ({"extra": {"timeout": 0}}, "extra.timeout: must be more than 0 seconds"),
        ({"extra": {"region": "eu"}}, "extra: unknown field\\(s\\) \\['region'\\]"),
        ({"extra": {"timeout": "nan"}}, "extra.timeout: must be a finite number"),
        ({"extra": {"timeout": True}}, "extra.timeout: must be a number of seconds"),
        ({"extra": {"retries": -1}}, "extra.retries: must be a whole number from 0 to 20"),
        ({"extra": {"retries": 2.5}}, "extra.retries: must be a whole number from 0 to 20"),
        ({"extra": {"retries": True}}, "extra.retries: must be a whole number from 0 to 20"),
        ({"extra": {"retries": 1000}}, "extra.retries: must be a whole number from 0 to 20"),
        ({"extra": {"retry_max_wait": 0}}, "extra.retry_max_wait: must be more than 0 seconds"),
        ({"extra": {"retry_max_wait": "inf"}}, "extra.retry_max_wait: must be a finite number"),
        # hardening round 2: bounds, TLS settings that would be ignored or fail late, host and port joining
        ({"extra": {"timeout": 1e10}}, "extra.timeout: must be at most 10 minutes \\(600 seconds\\), got 1"),
        ({"extra": {"timeout": "601"}}, "extra.timeout: must be at most 10 minutes"),
        ({"extra": {"retry_max_wait": 1e9}}, "extra.retry_max_wait: must be at most 5 minutes"),
        ({"extra": {"ca_cert": GARBAGE_PEM}}, "extra.ca_cert: is not a valid PEM certificate"),
        ({"host": "http://127.0.0.1", "port": 1, "extra": {"ca_cert": PEM}},
         "extra.ca_cert: given for a plaintext http:// address, which would ignore it; use https://"),
        ({"host": "http://::1", "port": 50051}, "host: an IPv6 address needs brackets, as in http://\\[::1\\]"),
        ({"host": "::1", "port": 50051}, "host: an IPv6 address needs brackets"),
        ({"host": "http://::1:50051"}, "host: an IPv6 address needs brackets"),
        ({"host": "http://127.0.0.1?x=1", "port": 50051}, "host: must not have a query string"),
        ({"host": "https://puddle.example.com/?a=b"}, "host: must not have a query string"),
    ],
)
def test_bad_connection_fields_are_named(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(PuddleConnectionError, match=message) as info:
        PuddleSettings.from_connection(conn(**fields))
    assert "'p'" in str(info.value) and "s3cr3t" not in str(info.value)


def test_retry_settings_reach_the_retry_policy_and_keep_its_classifier(puddle_conn: str, emulator: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = PuddleSettings.from_connection(conn(extra={"retries": 0, "retry_max_wait": "2.5"}))
    assert (settings.retry.max_attempts, settings.retry.max_backoff_s) == (1, 2.5)
    assert PuddleSettings.from_connection(conn()).retry.max_attempts == 5  # the client's default
    # Through a real call: with retries=0 one UNAVAILABLE fails a read at once, with 3 it is retried
    # (the classifier stays: UNAVAILABLE is still retryable).
    from tests.conftest import Admin

    admin = Admin(emulator.address)
    for retries, fails in ((0, True), (3, False)):
        monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(emulator.address, retries=retries,
                                                                          retry_max_wait=0.05))
        with PuddleHook() as hook:
            systems = hook.get_systems_client()
            systems.list()  # logged in
            admin.inject_fault("ListSystems", "UNAVAILABLE", 1)
            if fails:
                with pytest.raises(ConnectionError, match="gave up after 1 attempts"):
                    systems.list()
            else:
                assert systems.list() == []
    admin.close()


def test_the_hook_closes_its_channel_as_a_context_manager(puddle_conn: str, emulator: Any) -> None:
    with PuddleHook() as hook:
        systems = hook.get_systems_client()
        assert systems.list() == []
        channel = hook.authorizer.channel
        assert channel._channel is not None
    assert channel._channel is None  # closed on exit
    assert systems.list() == []  # and opened again if the hook is used after


def test_clients_share_one_login_and_channel(puddle_conn: str, emulator: Any) -> None:
    hook = PuddleHook()
    systems, images = hook.get_systems_client(), hook.get_images_client()
    types, tags = hook.get_instance_types_client(), hook.get_tags_client()
    assert systems.authorizer is images.authorizer is types.authorizer is tags.authorizer
    assert systems.list() == [] and images.list_available() and types.list_available() and tags.list()
    token = systems.authorizer.token
    assert token and images.authorizer.token == token  # one login served all four
    hook.close()


def test_cloud_override(puddle_conn: str) -> None:
    assert PuddleHook(cloud="azure").get_systems_client().cloud == CLOUD_AZURE
    with pytest.raises(ValueError, match="cloud: must be one of"):
        PuddleHook(cloud="mars")


def test_test_connection(puddle_conn: str, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = PuddleHook().test_connection()
    assert ok and "as demo" in message and "0 system(s)" in message
    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DEFAULT", connection_json(emulator.address, secret="wrong"))
    ok, message = PuddleHook().test_connection()
    assert not ok and message.startswith("AuthError") and "wrong" not in message


async def test_async_client_from_async_connection_lookup(puddle_conn: str, emulator: Any) -> None:
    client = await PuddleHook().aget_systems_client()
    assert isinstance(client, AsyncSystemsClient)
    assert await client.list() == []
    assert client.user is not None and client.authorizer.token
    await client.authorizer.close()


def test_provider_info_lists_the_connection_type() -> None:
    from airflow_puddle import get_provider_info

    info = get_provider_info()
    (ctype,) = info["connection-types"]
    assert ctype["connection-type"] == PuddleHook.conn_type == "puddle"
    assert ctype["hook-class-name"] == "airflow_puddle.hooks.puddle.PuddleHook"
    assert set(ctype["conn-fields"]) == {"client", "cloud", "ca_cert", "timeout", "retries", "retry_max_wait"}
    assert ctype["ui-field-behaviour"]["relabeling"]["login"] == "API key ID"
    assert PuddleHook.get_ui_field_behaviour() is ctype["ui-field-behaviour"]
    assert info["extra-links"] == ["airflow_puddle.links.puddle.PuddleSystemLink"]
    for section in ("hooks", "operators", "sensors", "triggers"):
        for module in info[section][0]["python-modules"]:
            __import__(module)
    assert DEFAULT_API_KEY_ID and DEFAULT_API_SECRET_KEY  # the demo pair the README documents


def test_the_connection_form_hides_unused_fields_as_airflow_reads_them() -> None:
    from airflow.providers_manager import ProvidersManager

    # What the Airflow 3 connection form gets: hyphenated keys in the provider info, or nothing hidden.
    behaviour = ProvidersManager().field_behaviours["puddle"]
    assert behaviour["hidden_fields"] == ["schema"]
    assert behaviour["relabeling"] == {"login": "API key ID", "password": "API secret key", "host": "Server address"}
    assert "emulator" in behaviour["placeholders"]["host"]


def test_system_credentials_are_fetched_at_run_time_and_masked(
        puddle_conn: str, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import MaskSecret

    from airflow_puddle.client.models import TagData

    hook = PuddleHook()
    systems = hook.get_systems_client()
    system = systems.create("creds", product="dai", version="1.11.1", instance_type_name="m5.2xlarge",
                            tags=[TagData("Team", "ml")])
    started = systems.wait_for_system_started(system.id)

    class Supervisor:
        """Stands in for the supervisor's comms: records what the task sends it."""

        def __init__(self) -> None:
            self.sent: list[Any] = []

        def send(self, msg: Any) -> None:
            self.sent.append(msg)

    supervisor = Supervisor()
    with monkeypatch.context() as patch:
        patch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)
        creds = hook.get_system_credentials(system.id)
    assert (creds.url, creds.username, creds.password) == (started.default_url, started.username, started.password)
    assert creds.password not in repr(creds)
    assert creds.password not in str(redact(f"logged by mistake: {creds.password}"))
    # The supervisor is told (so it masks the task log), by a MaskSecret that does not show the value:
    # what Airflow logs about the message at DEBUG is its repr.
    (told,) = supervisor.sent
    assert isinstance(told, MaskSecret) and told.value == creds.password
    assert told.model_dump() == MaskSecret(value=creds.password).model_dump()
    assert creds.password not in repr(told) and creds.password not in str(told)
    with pytest.raises(PuddleConnectionError, match="system_id: no system 'nope'"):
        hook.get_system_credentials("nope")
