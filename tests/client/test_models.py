"""Models, status tables, clouds and products: the documented names and values."""

from __future__ import annotations

import json

import pytest

from airflow_puddle._proto.puddle.v2 import common_pb2, system_service_pb2
from airflow_puddle.client import CLOUD_AWS, CLOUD_AZURE, CLOUD_GCP, PRODUCT_DAI, PRODUCT_H2O3
from airflow_puddle.client.clouds import cloud_by_id
from airflow_puddle.client.models import Image, System, Tag, TagData

DOCUMENTED_SYSTEM_CONSTANTS = [
    "SYSTEM_STATUS_FAILED", "SYSTEM_STATUS_FAILING", "SYSTEM_STATUS_INITIALIZING", "SYSTEM_STATUS_REBOOTING",
    "SYSTEM_STATUS_RESTARTING_DAI", "SYSTEM_STATUS_SCALING", "SYSTEM_STATUS_SNAPSHOTTING", "SYSTEM_STATUS_STARTED",
    "SYSTEM_STATUS_STARTING", "SYSTEM_STATUS_STOPPED", "SYSTEM_STATUS_STOPPING", "SYSTEM_STATUS_TERMINATED",
    "SYSTEM_STATUS_TERMINATING", "SYSTEM_STATUS_UNKNOWN",
    "VM_STATUS_DEALLOCATED", "VM_STATUS_DEALLOCATING", "VM_STATUS_INVALID_VALUE_FROM_BACKEND",
    "VM_STATUS_PROVISIONING", "VM_STATUS_RUNNING", "VM_STATUS_STARTING", "VM_STATUS_TERMINATED",
    "VM_STATUS_TERMINATING", "VM_STATUS_UNKNOWN", "VM_STATUS_WAITING", "VM_STATUS_WAITING_FOR_SOURCE_SNAPSHOT",
    "PRODUCT_STATUS_READY", "PRODUCT_STATUS_UNKNOWN", "PRODUCT_STATUS_VM_UNAVAILABLE",
    "PRODUCT_STATUS_WAITING_FOR_PRODUCT", "PRODUCT_STATUS_WAITING_FOR_VM",
    "CONFIG_STATUS_FAILED", "CONFIG_STATUS_OK", "CONFIG_STATUS_UNKNOWN", "CONFIG_STATUS_UPLOADED",
    "CONFIG_STATUS_UPLOADING", "CONFIG_TOML_STATUS_FAILED", "CONFIG_TOML_STATUS_OK", "CONFIG_TOML_STATUS_UNKNOWN",
    "CONFIG_TOML_STATUS_UPLOADED", "CONFIG_TOML_STATUS_UPLOADING",
]


@pytest.mark.parametrize("name", DOCUMENTED_SYSTEM_CONSTANTS)
def test_system_constants_exist_with_their_family(name: str) -> None:
    family = {"SYSTEM": System.Status, "VM": System.VmStatus, "PRODUCT": System.ProductStatus,
              "CONFIG": System.ConfigTomlStatus}[name.split("_")[0]]
    status = getattr(System, name)
    assert isinstance(status, family)
    assert isinstance(status.code, int) and status.text


def test_status_codes_match_the_wire_enums() -> None:
    for status in System.ALL_STATES:
        assert common_pb2.SystemStatus.Name(status.code).startswith("SYSTEM_STATUS_")
        assert getattr(System, common_pb2.SystemStatus.Name(status.code)) == status
    assert len(System.ALL_STATES) == len(common_pb2.SystemStatus.values())
    assert len(System.ALL_CONFIG_STATES) == 5 and System.ALL_TOML_CONFIG_STATES == System.ALL_CONFIG_STATES
    assert len(Image.ALL_STATES) == 7 and len(Tag.ALL_STATES) == 3
    assert Image.IMAGE_STATUS_AVAILABLE.code == common_pb2.IMAGE_STATUS_AVAILABLE
    assert Tag.TAG_STATUS_OK.code == common_pb2.TAG_STATUS_OK


def test_statuses_compare_by_family_and_code() -> None:
    assert System.SYSTEM_STATUS_STARTED == System.Status(System.SYSTEM_STATUS_STARTED.code, "x")
    assert System.SYSTEM_STATUS_STARTED != System.VmStatus(System.SYSTEM_STATUS_STARTED.code, "x")
    assert len({System.CONFIG_STATUS_OK, System.CONFIG_TOML_STATUS_OK}) == 1


def test_system_properties_and_json_safe_dict_without_password() -> None:
    pb = system_service_pb2.System(
        id="s1", name="train", status=common_pb2.SYSTEM_STATUS_STARTED, vm_status=42,
        config_status=common_pb2.CONFIG_STATUS_UPLOADED, password="hunter2", username="h2oai",
        tags=[system_service_pb2.TagData(label="Team", value="ds")],
    )
    system = System(pb, [system_service_pb2.DAIModel(id="m1", score=0.5)])
    assert system.status_text == "Started"
    assert system.vm_status_text == System.VM_STATUS_INVALID_VALUE_FROM_BACKEND.text
    assert system.config_toml_status == system.config_status == System.CONFIG_STATUS_UPLOADED.code
    assert system.password == "hunter2"
    assert system.models is not None and system.models[0].id == "m1"
    assert system.tags == [TagData("Team", "ds")]
    data = system.to_dict()
    assert "password" not in data and "hunter2" not in json.dumps(data)
    assert data["status_text"] == "Started" and data["tags"] == {"Team": "ds"}
    assert System(pb).models is None


def test_clouds_and_products() -> None:
    assert (CLOUD_AWS.id, CLOUD_AZURE.id, CLOUD_GCP.id) == ("aws", "azure", "gcp")
    assert CLOUD_AWS.display_name == "AWS"
    assert cloud_by_id("gcp") is CLOUD_GCP
    with pytest.raises(ValueError, match="cloud: must be one of aws, azure, gcp"):
        cloud_by_id("ibm")
    assert (PRODUCT_DAI.id, PRODUCT_DAI.label) == ("dai", "Driverless AI")
    assert (PRODUCT_H2O3.id, PRODUCT_H2O3.label) == ("h2o3", "H2O-3")
