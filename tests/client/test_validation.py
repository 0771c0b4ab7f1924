"""The validation table: every rule fails before anything is sent, naming field and rule.

The client under test points at a port where nothing listens: a rule that let the
call through would surface as an unavailable backend instead of a validation error.
The same table sent straight to the emulator (skipping the client) gets
INVALID_ARGUMENT with the same message.
"""

from __future__ import annotations

import re
from typing import Any

import grpc
import pytest

from airflow_puddle._proto.puddle.v2 import (
    auth_service_pb2,
    auth_service_pb2_grpc,
    system_service_pb2,
    system_service_pb2_grpc,
)
from airflow_puddle.client import CLOUD_AWS, PRODUCT_DAI, Authorizer, SystemsClient
from airflow_puddle.client.models import TagData
from airflow_puddle.domain.errors import ValidationFailedError
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

GOOD: dict[str, Any] = {"name": "ok-name-1", "product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge"}

TABLE = [
    ({"name": ""}, "name", "is required"),
    ({"name": "Upper"}, "name", "lowercase letters, digits and hyphens"),
    ({"name": "under_score"}, "name", "lowercase letters, digits and hyphens"),
    ({"name": "a" * 64}, "name", "at most 63 characters \\(a DNS label\\)"),
    ({"name": "trailing-newline\n"}, "name", "lowercase letters, digits and hyphens"),
    ({"name": "-leading"}, "name", "start and end with a letter or digit"),
    ({"name": "trailing-"}, "name", "start and end with a letter or digit"),
    ({"name": "ünïcode"}, "name", "lowercase letters, digits and hyphens"),
    ({"name": "dot.ted"}, "name", "lowercase letters, digits and hyphens"),
    ({"name": None}, "name", "is required"),
    ({"name": 7}, "name", "is required"),
    ({"disk_size_gb": True}, "disk_size_gb", "whole number of GB"),
    ({"disk_size_gb": 300.0}, "disk_size_gb", "whole number of GB"),
    ({"disk_size_gb": float("nan")}, "disk_size_gb", "whole number of GB"),
    ({"disk_size_gb": 10**30}, "disk_size_gb", "between 256 and 1024 GB"),
    ({"idle_interval": -1}, "idle_interval", "between 1 and 240 minutes"),
    ({"idle_interval": float("inf")}, "idle_interval", "whole number of minutes"),
    ({"image": "img-1"}, "image", "give image, or product and version, not both"),
    ({"instance_type": "it-1"}, "instance_type", "give instance_type or instance_type_name, not both"),
    ({"version": 1.11}, "version", "must be a string such as '1.11.1', got 1.11"),
    ({"instance_type_name": 5}, "instance_type_name", "must be a string such as 'm5.2xlarge', got 5"),
    ({"product": 5}, "product", "must be a product object or its id"),
    ({"tags": "Team=ml"}, "tags", "must be a list of TagData"),
    ({"tags": [("Team", "ml")]}, "tags", "must be a list of TagData"),
    ({"disk_size_gb": 255}, "disk_size_gb", "between 256 and 1024 GB"),
    ({"disk_size_gb": 1025}, "disk_size_gb", "between 256 and 1024 GB"),
    ({"disk_size_gb": "300"}, "disk_size_gb", "whole number of GB"),
    ({"idle_interval": 0}, "idle_interval", "between 1 and 240 minutes"),
    ({"idle_interval": 241}, "idle_interval", "between 1 and 240 minutes"),
    ({"product": None, "version": None}, "image", "set image, or product and version"),
    ({"version": None}, "version", "is required when image is not set"),
    ({"product": None}, "product", "is required when image is not set"),
    ({"instance_type_name": None}, "instance_type", "set instance_type or instance_type_name"),
    # hardening round 2: values only the server refused, rendered nothing, tags that were stored as str()
    ({"product": "spark"}, "product", "must be one of dai, h2o3, got 'spark'"),
    ({"product": "None"}, "product", "got 'None': a template that rendered nothing"),
    ({"version": "None"}, "version", "got 'None': a template that rendered nothing"),
    ({"instance_type_name": "null"}, "instance_type_name", "a template that rendered nothing"),
    ({"image": "None", "product": None, "version": None}, "image", "a template that rendered nothing"),
    *[({"tags": [TagData("Team", bad)]}, "tags", "value of tag 'Team' must be a non-empty string")
      for bad in (None, 5, True, ["ml"], "", "  ", "None")],
    ({"tags": [TagData("Team", "x" * 257)]}, "tags", "value of tag 'Team' must be at most 256 characters, got 257"),
    ({"tags": [TagData("Team", "x" * 1024 * 1024)]}, "tags", "at most 256 characters, got 1,048,576"),
    ({"tags": [TagData("L" * 129, "ml")]}, "tags", "must be at most 128 characters, got 129"),
    ({"tags": [TagData(f"t{i}", "v") for i in range(51)]}, "tags", "at most 50 tags"),
]


@pytest.mark.parametrize(("override", "field", "rule"), TABLE)
def test_client_rejects_before_sending(override: dict[str, Any], field: str, rule: str) -> None:
    auth = Authorizer("http://127.0.0.1:9", "id", "secret")  # nothing listens there
    client = SystemsClient(CLOUD_AWS, authorizer=auth)
    with pytest.raises(ValidationFailedError, match=rule) as info:
        client.create(**{**GOOD, **override})
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert auth.token is None  # not even a login left the machine


def test_client_accepts_models_and_checks_tags_and_ids() -> None:
    client = SystemsClient(CLOUD_AWS, authorizer=Authorizer("http://127.0.0.1:9", "id", "secret"))
    with pytest.raises(ValidationFailedError, match="tags: tag 'Team' is given twice"):
        client.create(**{**GOOD, "product": PRODUCT_DAI}, tags=[TagData("Team", "a"), TagData("Team", "b")])
    with pytest.raises(ValidationFailedError, match="tags: every tag needs a non-empty label"):
        client.create(**GOOD, tags=[TagData(" ", "a")])
    for bad_id in ("", "  ", None, 5, "None", "null", "[1, 2]", "{'id': 'x'}", "a b", "x" * 129, "-x"):
        with pytest.raises(ValidationFailedError, match="system_id: "):
            client.terminate(bad_id)
        with pytest.raises(ValidationFailedError, match="system_id: "):
            client.get(bad_id)
    with pytest.raises(ValidationFailedError, match="config_toml: must be at most 1,048,576 bytes"):
        client.update_config_toml("abc", "a = '" + "x" * (1024 * 1024) + "'")
    with pytest.raises(ValidationFailedError, match="config_toml: must be a string"):
        client.update_config_toml("abc", {"a": 1})
    with pytest.raises(ValidationFailedError, match="config_toml: is not valid TOML"):
        client.update_config_toml("abc", "this is = = not toml")


def test_tag_limits_hold_at_the_emulator_too(emulator: Any) -> None:
    """Sent straight to the emulator, a tag value over 256 characters is refused and nothing is created.

    An empty value is how the wire says "not given" (the tag's default), so the emulator takes it."""
    channel = grpc.insecure_channel(emulator.address.removeprefix("http://"))
    token = auth_service_pb2_grpc.AuthServiceStub(channel).Login(
        auth_service_pb2.LoginRequest(api_key_id=DEFAULT_API_KEY_ID, api_secret_key=DEFAULT_API_SECRET_KEY)
    ).token
    stub, metadata = system_service_pb2_grpc.SystemServiceStub(channel), (("x-puddle-token", token),)
    for value, rule in (("x" * 257, "must be at most 256 characters"), ("None", "must be a non-empty string"),
                        (" ", "must be a non-empty string")):
        request = system_service_pb2.CreateSystemRequest(
            cloud="aws", disk_size_gb=256, idle_interval=60, **GOOD,
            tags=[system_service_pb2.TagData(label="Team", value=value)])
        with pytest.raises(grpc.RpcError) as info:
            stub.CreateSystem(request, metadata=metadata)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith("tags: value of tag 'Team' ") and rule in info.value.details()
    assert not stub.ListSystems(system_service_pb2.ListSystemsRequest(), metadata=metadata).systems
    channel.close()


def _sendable(override: dict[str, Any]) -> bool:
    """Whether a row can be put in a CreateSystemRequest at all (strings and in-range ints only)."""
    ints = {"disk_size_gb", "idle_interval"}
    return all(v is None or (type(v) is int and k in ints and -2**31 <= v < 2**31) or (type(v) is str and k not in ints)
               for k, v in override.items()) and "tags" not in override


@pytest.mark.parametrize(("override", "field", "rule"), [row for row in TABLE if _sendable(row[0])])
def test_emulator_rejects_the_same_table(emulator: Any, override: dict[str, Any], field: str, rule: str) -> None:
    channel = grpc.insecure_channel(emulator.address.removeprefix("http://"))
    token = auth_service_pb2_grpc.AuthServiceStub(channel).Login(
        auth_service_pb2.LoginRequest(api_key_id=DEFAULT_API_KEY_ID, api_secret_key=DEFAULT_API_SECRET_KEY)
    ).token
    wire = {"image": "image_id", "instance_type": "instance_type_id"}
    values = {"disk_size_gb": 256, "idle_interval": 60, **GOOD, **{wire.get(k, k): v for k, v in override.items()}}
    request = system_service_pb2.CreateSystemRequest(
        cloud="aws", **{k: v for k, v in values.items() if v is not None}
    )
    with pytest.raises(grpc.RpcError) as info:
        system_service_pb2_grpc.SystemServiceStub(channel).CreateSystem(
            request, metadata=(("x-puddle-token", token),)
        )
    channel.close()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(f"{field}: ")
    assert re.search(rule, info.value.details())


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    (("http://127.0.0.1:9", "id", ""), {}, "api_secret_key: must be a non-empty string when given"),
    (("http://127.0.0.1:9", "", "secret"), {}, "api_key_id: must be a non-empty string when given"),
    (("", "id", "secret"), {}, "server_address: must be a non-empty string when given"),
    (("http://user:hunter2@127.0.0.1:9", "id", "secret"), {}, "server_address: must not contain user info"),
    (("https://hunter2@puddle.example.com", "id", "secret"), {}, "server_address: must not contain user info"),
    (("http://127.0.0.1:9", "id", "secret"), {"timeout_s": float("nan")}, "timeout_s: must be a finite"),
    (("http://127.0.0.1:9", "id", "secret"), {"timeout_s": 0}, "timeout_s: must be more than 0 seconds"),
    (("http://127.0.0.1:9", "id", "secret"), {"timeout_s": True}, "timeout_s: must be a number of seconds"),
])
def test_authorizer_refuses_bad_arguments_without_echoing_secrets(
    monkeypatch: pytest.MonkeyPatch, args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    # An explicit empty value must not fall back to the environment's.
    for var in ("PUDDLE_SERVER_ADDRESS", "PUDDLE_API_KEY_ID", "PUDDLE_API_SECRET_KEY"):
        monkeypatch.setenv(var, "from-env" if var != "PUDDLE_SERVER_ADDRESS" else "http://127.0.0.1:9")
    with pytest.raises(ValueError, match=message) as info:
        Authorizer(*args, **kwargs)
    assert "hunter2" not in str(info.value)


def test_only_none_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUDDLE_API_SECRET_KEY", "env-secret")
    auth = Authorizer("http://127.0.0.1:9", "id", None)
    assert auth._api_secret_key == "env-secret"
    assert "env-secret" not in repr(auth)


@pytest.mark.parametrize(("address", "authority", "tls"), [
    ("[::1]:50051", "[::1]:50051", True),
    ("http://[::1]:50051", "[::1]:50051", False),
    ("https://[2001:db8::1]", "[2001:db8::1]:443", True),
    ("http://127.0.0.1:50051", "127.0.0.1:50051", False),
])
def test_ipv6_addresses(address: str, authority: str, tls: bool) -> None:
    from airflow_puddle.client.address import Target

    target = Target.parse(address)
    assert (target.authority, target.tls) == (authority, tls)
