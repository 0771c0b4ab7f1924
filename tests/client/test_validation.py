"""The validation table: every rule fails before anything is sent, naming field and rule.

The client under test points at a port where nothing listens: a rule that let the
call through would surface as an unavailable backend instead of a validation error.
The same table sent straight to the emulator (skipping the client) gets
INVALID_ARGUMENT with the same message.
"""

from __future__ import annotations

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
from airflow_puddle.client.errors import ValidationFailedError
from airflow_puddle.client.models import TagData
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

GOOD: dict[str, Any] = {"name": "ok-name-1", "product": "dai", "version": "1.11.1", "instance_type_name": "m5.2xlarge"}

TABLE = [
    ({"name": ""}, "name", "is required"),
    ({"name": "Upper"}, "name", "lowercase letters, digits and hyphens"),
    ({"name": "under_score"}, "name", "lowercase letters, digits and hyphens"),
    ({"name": "a" * 65}, "name", "at most 64 characters"),
    ({"disk_size_gb": 255}, "disk_size_gb", "between 256 and 1024 GB"),
    ({"disk_size_gb": 1025}, "disk_size_gb", "between 256 and 1024 GB"),
    ({"disk_size_gb": "300"}, "disk_size_gb", "whole number of GB"),
    ({"idle_interval": 0}, "idle_interval", "between 1 and 240 minutes"),
    ({"idle_interval": 241}, "idle_interval", "between 1 and 240 minutes"),
    ({"product": None, "version": None}, "image", "set image, or product and version"),
    ({"version": None}, "version", "is required when image is not set"),
    ({"product": None}, "product", "is required when image is not set"),
    ({"instance_type_name": None}, "instance_type", "set instance_type or instance_type_name"),
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
    with pytest.raises(ValidationFailedError, match="system_id: is required"):
        client.start("")
    with pytest.raises(ValidationFailedError, match="config_toml: is not valid TOML"):
        client.update_config_toml("abc", "this is = = not toml")


@pytest.mark.parametrize(("override", "field", "rule"), [row for row in TABLE if row[1] != "disk_size_gb"
                                                         or isinstance(row[0]["disk_size_gb"], int)])
def test_emulator_rejects_the_same_table(emulator: Any, override: dict[str, Any], field: str, rule: str) -> None:
    channel = grpc.insecure_channel(emulator.address.removeprefix("http://"))
    token = auth_service_pb2_grpc.AuthServiceStub(channel).Login(
        auth_service_pb2.LoginRequest(api_key_id=DEFAULT_API_KEY_ID, api_secret_key=DEFAULT_API_SECRET_KEY)
    ).token
    values = {"disk_size_gb": 256, "idle_interval": 60, **GOOD, **override}
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
    assert rule in info.value.details()
