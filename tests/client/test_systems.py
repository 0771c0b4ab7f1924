"""Every documented client call, through the sync client and its async twin, over real gRPC."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from airflow_puddle.client import (
    CLOUD_GCP,
    PRODUCT_DAI,
    PRODUCT_H2O3,
    AsyncAuthorizer,
    AsyncImagesClient,
    AsyncInstanceTypesClient,
    AsyncSystemsClient,
    AsyncTagsClient,
    Authorizer,
    ImagesClient,
    InstanceTypesClient,
    SystemsClient,
    TagsClient,
)
from airflow_puddle.client.models import Image, InstanceType, System, Tag, TagData
from airflow_puddle.domain.errors import (
    AlreadyExistsError,
    NotFoundError,
    PreconditionFailedError,
    PuddleTimeoutError,
    SystemFailedError,
    ValidationFailedError,
)
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

DAI = {"product": PRODUCT_DAI, "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [TagData("Team", "ml")]}


def _started(systems: Any, name: str, **kw: Any) -> System:
    system = systems.create(name, **{**DAI, **kw})
    return systems.wait_for_system_started(system.id)


def test_full_lifecycle(systems: Any) -> None:
    created = systems.create("lifecycle", **DAI)
    assert created.status == System.SYSTEM_STATUS_INITIALIZING.code
    assert created.in_transition and created.can_fail and not created.can_launch
    assert (created.disk_size_gb, created.idle_timeout_interval) == (256, 60)  # documented defaults

    system = systems.wait_for_system_started(created.id)
    assert system.status == System.SYSTEM_STATUS_STARTED.code and system.status_text == "Started"
    assert system.vm_status == System.VM_STATUS_RUNNING.code
    assert system.product_status == System.PRODUCT_STATUS_READY.code
    assert system.provisioned and not system.in_transition and not system.can_fail
    assert system.default_url.startswith("https://") and system.ip_address and system.public_ip
    assert system.private_ip and system.username and system.password and system.cloud_id
    assert system.instance_type == "m5.2xlarge" and system.cloud == "aws" and system.product == "dai"
    assert system.version == "1.11.1" and not system.gpu and system.gpu_count == 0
    assert system.owner_name and system.owner_id and system.created > 0 and system.updated >= system.created
    assert system.idle_timeout > system.created and system.current_session_cost >= 0
    assert system.previous_sessions_cost == 0 and system.tags == [TagData("Team", "ml")]
    assert system.auth_type and isinstance(system.snapshots, list)

    fetched = systems.get(system.id)
    assert fetched.id == system.id and fetched.models is not None
    assert all(m.id and m.dataset and 0 <= m.progress <= 1 for m in fetched.models)
    assert systems.find_by_name("lifecycle").id == system.id
    assert systems.find_by_name("no-such-system") is None
    assert [s.id for s in systems.list()] == [system.id]

    systems.stop(system.id)
    stopped = systems.wait_for_system_stopped(system.id)
    assert stopped.vm_status == System.VM_STATUS_DEALLOCATED.code and stopped.can_launch
    with pytest.raises(PreconditionFailedError, match="Stopped"):
        systems.restart(system.id)

    systems.start(system.id)
    assert systems.wait_for_system_started(system.id).status == System.SYSTEM_STATUS_STARTED.code

    systems.restart(system.id)
    assert systems.get(system.id).status == System.SYSTEM_STATUS_REBOOTING.code
    systems.wait_for_system_started(system.id)

    systems.terminate(system.id)
    gone = systems.wait_for_system_terminated(system.id)
    assert gone.status == System.SYSTEM_STATUS_TERMINATED.code and gone.vm_status_text == "Terminated"
    assert systems.list() == [] and systems.find_by_name("lifecycle") is None
    with pytest.raises(NotFoundError, match="terminated"):
        systems.start(system.id)


def test_config_toml_upload_then_applied_on_restart(systems: Any) -> None:
    system = _started(systems, "config")
    updated = systems.update_config_toml(system.id, 'max_runtime_minutes = 60\nenabled_file_systems = "file"\n')
    assert updated.config_status == System.CONFIG_STATUS_UPLOADING.code
    uploaded = systems.wait_for_config_toml_uploaded(system.id)
    assert uploaded.config_status == System.CONFIG_STATUS_UPLOADED.code
    assert "max_runtime_minutes = 60" in uploaded.config_toml
    systems.restart(system.id)
    assert systems.wait_for_system_started(system.id).config_status == System.CONFIG_STATUS_OK.code


def test_config_upload_failure_fails_the_wait(systems: Any, admin: Any) -> None:
    system = _started(systems, "config-fail")
    admin.fail_next_transition(system.id, config_upload=True)
    systems.update_config_toml(system.id, "a = 1")
    with pytest.raises(SystemFailedError, match="upload Upload failed"):
        systems.wait_for_config_toml_uploaded(system.id)
    assert systems.get(system.id).config_status_text == System.CONFIG_STATUS_FAILED.text


def test_fail_only_in_transition_and_wait_for_failed(systems: Any) -> None:
    system = systems.create("to-fail", **DAI)
    systems.fail(system.id)
    failed = systems.wait_for_system_failed(system.id)
    assert failed.status == System.SYSTEM_STATUS_FAILED.code and not failed.can_fail
    with pytest.raises(PreconditionFailedError):
        systems.fail(system.id)
    systems.stop(system.id)  # a failed system may be stopped
    systems.wait_for_system_stopped(system.id)


def test_injected_failure_fails_started_wait_at_once(systems: Any, admin: Any) -> None:
    system = systems.create("doomed", **DAI)
    admin.fail_next_transition(system.id)
    with pytest.raises(SystemFailedError, match="Failed"):
        systems.wait_for_system_started(system.id)


def test_wait_timeout_is_a_timeout_error(systems: Any, admin: Any) -> None:
    system = systems.create("slow", **DAI)
    with pytest.raises(TimeoutError) as info:
        systems.wait_for_system_started(system.id, timeout_s=0.05, poll_interval_s=0.01)
    assert isinstance(info.value, PuddleTimeoutError) and "waiting for started" in str(info.value)


def test_wait_on_missing_system(systems: Any) -> None:
    with pytest.raises(NotFoundError):
        systems.wait_for_system_started("does-not-exist")
    assert systems.get("does-not-exist") is None
    with pytest.raises(NotFoundError):
        systems.stop("does-not-exist")


def test_refresh_idle_timeout_and_idle_stop(systems: Any, admin: Any) -> None:
    system = _started(systems, "idle", idle_interval=1)
    admin.advance_clock(30)
    refreshed = systems.refresh_idle_timeout(system.id)
    assert refreshed.idle_timeout >= system.idle_timeout + 29
    admin.advance_clock(61)
    stopped = systems.wait_for_system_stopped(system.id)
    assert stopped.status == System.SYSTEM_STATUS_STOPPED.code
    with pytest.raises(PreconditionFailedError):
        systems.refresh_idle_timeout(system.id)


def test_cu_consumption(systems: Any) -> None:
    before = systems.get_cu_consumption_info()
    assert before.consumed_cu == 0 and before.available_cu > 0 and before.systems_consumption_info == []
    system = _started(systems, "cu")
    after = systems.get_cu_consumption_info()
    assert after.consumed_cu > 0 and after.available_cu == before.available_cu - after.consumed_cu
    (info,) = after.systems_consumption_info
    assert (info.system_id, info.system_name, info.cu) == (system.id, "cu", after.consumed_cu)


def test_cu_capacity_is_respected(systems: Any) -> None:
    gpu = {**DAI, "instance_type_name": "p3.2xlarge"}
    first = systems.create("big-0", **gpu)
    fits = systems.get_cu_consumption_info().available_cu // first.cu
    for i in range(fits):
        systems.create(f"big-{i + 1}", **gpu)
    assert systems.get_cu_consumption_info().available_cu < first.cu
    with pytest.raises(PreconditionFailedError, match="CU"):
        systems.create("one-too-many", **gpu)


def test_duplicate_name_and_unknown_instance_type(systems: Any) -> None:
    systems.create("twin", **DAI)
    with pytest.raises(AlreadyExistsError, match="twin") as dup:
        systems.create("twin", **DAI)
    assert isinstance(dup.value, PreconditionFailedError)  # callers catching the broader class still do
    with pytest.raises(ValidationFailedError) as info:
        systems.create("odd", **{**DAI, "instance_type_name": "z9.huge"})
    assert info.value.field == "instance_type_name" and "m5.2xlarge" in info.value.rule


def test_create_with_models_from_the_catalogue(emulator: Any, wrap: Any, flavour: str) -> None:
    sync = flavour == "sync"
    auth = (Authorizer if sync else AsyncAuthorizer)(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    images = wrap((ImagesClient if sync else AsyncImagesClient)(CLOUD_GCP, authorizer=auth))
    types = wrap((InstanceTypesClient if sync else AsyncInstanceTypesClient)(CLOUD_GCP, authorizer=auth))
    tags = wrap((TagsClient if sync else AsyncTagsClient)(authorizer=auth))
    systems = wrap((SystemsClient if sync else AsyncSystemsClient)(CLOUD_GCP, authorizer=auth))

    all_images = images.list_available()
    assert all(isinstance(i, Image) and i.id and i.version and i.text for i in all_images)
    assert {i.product for i in all_images} == {PRODUCT_DAI.id, PRODUCT_H2O3.id}
    image = next(i for i in all_images if i.product == "h2o3" and i.status_code == Image.IMAGE_STATUS_AVAILABLE.code)
    assert image.status_text == "Available" and image.selected_version

    all_types = types.list_available()
    assert any(t.gpu and t.gpu_count > 0 and t.gpu_type for t in all_types)
    assert any(not t.gpu for t in all_types) and all(isinstance(t, InstanceType) and t.price > 0 for t in all_types)
    cpu = next(t for t in all_types if not t.gpu)

    all_tags = tags.list()
    assert all(isinstance(t, Tag) and t.label and t.status_text == "OK" for t in all_tags)
    assert any(t.required for t in all_tags) and all(t.created > 0 for t in all_tags)
    assert tags.tag_data_to_pb_tag_data([TagData("a", "b")])[0].label == "a"
    assert tags.tag_data_to_pb_tag_data(None) is None

    system = systems.create("h2o", image=image, instance_type=cpu, disk_size_gb=512, idle_interval=240,
                            tags=[TagData("Team", "ml")])
    started = systems.wait_for_system_started(system.id)
    assert (started.product, started.version, started.instance_type) == ("h2o3", image.version, cpu.text)
    assert started.cloud == "gcp" and started.disk_size_gb == 512 and started.idle_timeout_interval == 240
    assert systems.get(system.id).models == []  # H2O-3 has no DAI experiments
    assert systems.user is not None and systems.user.name and systems.authorizer is auth
    assert systems.server_address == emulator.address


def test_twins_expose_the_same_api() -> None:
    pairs = [(SystemsClient, AsyncSystemsClient), (ImagesClient, AsyncImagesClient),
             (InstanceTypesClient, AsyncInstanceTypesClient), (TagsClient, AsyncTagsClient)]
    for sync_cls, async_cls in pairs:
        public = {n for n in dir(sync_cls) if not n.startswith("_")}
        assert public == {n for n in dir(async_cls) if not n.startswith("_")}
        for name in public:
            s, a = getattr(sync_cls, name), getattr(async_cls, name)
            if inspect.isfunction(s):
                assert inspect.signature(s) == inspect.signature(a), name
                assert inspect.iscoroutinefunction(a) or not inspect.iscoroutinefunction(s), name
    assert SystemsClient.DEFAULT_DISK_SIZE == 256 and SystemsClient.DEFAULT_IDLE_TIMEOUT_MIN == 60


def test_discard_terminates_whatever_the_state(systems: Any) -> None:
    booting = systems.create("discard-me", **DAI)
    assert systems.get(booting.id).status == System.SYSTEM_STATUS_INITIALIZING.code
    gone = systems.discard(booting.id, timeout_s=10)  # marked failed first, then terminated
    assert gone.status == System.SYSTEM_STATUS_TERMINATING.code
    assert systems.wait_for_system_terminated(booting.id).status_text == "Terminated"
    assert systems.discard(booting.id).status_text == "Terminated"  # again: nothing to do
    assert systems.discard("no-such-system") is None


DOCUMENTED_TYPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "System": {
        "auth_type": str, "can_fail": bool, "can_launch": bool, "cloud": str, "cloud_id": str, "config_status": int,
        "config_status_text": str, "config_toml": str, "config_toml_status": int, "config_toml_status_text": str,
        "created": int, "current_session_cost": float, "default_url": str, "disk_size_gb": int, "gpu": bool,
        "gpu_count": int, "gpu_type": str, "id": str, "idle_timeout": int, "idle_timeout_interval": int,
        "in_transition": bool, "instance_type": str, "ip_address": str, "models": list, "name": str,
        "owner_id": str, "owner_name": str, "password": str, "previous_sessions_cost": float, "private_ip": str,
        "product": str, "product_status": int, "product_status_text": str, "provisioned": bool, "public_ip": str,
        "snapshots": list, "status": int, "status_text": str, "updated": int, "username": str, "version": str,
        "vm_status": int, "vm_status_text": str,
    },
    "DriverlessAIModel": {
        "accuracy": int, "created": int, "dataset": str, "description": str, "id": str, "interpretability": int,
        "progress": float, "score": float, "scorer": str, "status": float, "target": str, "test_score": float,
        "time": int, "training_duration": float, "updated": int,
    },
    "Image": {"id": str, "product": str, "selected_version": str, "status_code": int, "status_text": str,
              "text": str, "version": str},
    "InstanceType": {"gpu": bool, "gpu_count": int, "gpu_type": str, "id": str, "price": float, "text": str},
    "Tag": {"created": int, "default_value": str, "id": str, "input_type": str, "label": str, "required": bool,
            "status": int, "status_text": str, "updated": int},
    "CUConsumptionInfo": {"available_cu": int, "consumed_cu": int, "systems_consumption_info": list},
    "SystemConsumptionInfo": {"cu": int, "system_id": str, "system_name": str},
}


def test_every_documented_property_has_its_documented_type(emulator: Any, wrap: Any, flavour: str) -> None:
    sync = flavour == "sync"
    auth = (Authorizer if sync else AsyncAuthorizer)(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    systems = wrap((SystemsClient if sync else AsyncSystemsClient)(CLOUD_GCP, authorizer=auth))
    dai = next(i for i in wrap((ImagesClient if sync else AsyncImagesClient)(CLOUD_GCP, authorizer=auth))
               .list_available() if i.product == "dai" and i.status_text == "Available")
    gpu = next(t for t in wrap((InstanceTypesClient if sync else AsyncInstanceTypesClient)(CLOUD_GCP, authorizer=auth))
               .list_available() if t.gpu)
    system = systems.wait_for_system_started(systems.create("typed", image=dai, instance_type=gpu,
                                                            tags=[TagData("Team", "ml")]).id)
    system = systems.get(system.id)
    cu = systems.get_cu_consumption_info()
    tag = wrap((TagsClient if sync else AsyncTagsClient)(authorizer=auth)).list()[0]
    assert system.models, "a started DAI system shows its experiments"
    objects = {"System": system, "DriverlessAIModel": system.models[0], "Image": dai, "InstanceType": gpu,
               "Tag": tag, "CUConsumptionInfo": cu, "SystemConsumptionInfo": cu.systems_consumption_info[0]}
    for cls_name, props in DOCUMENTED_TYPES.items():
        obj = objects[cls_name]
        assert type(obj).__name__ == cls_name
        for prop, expected in props.items():
            value = getattr(obj, prop)
            assert isinstance(value, expected) and not (expected is int and isinstance(value, bool)), (
                f"{cls_name}.{prop} = {value!r} is not {expected}")
    assert system.gpu and system.gpu_count == gpu.gpu_count and system.gpu_type == gpu.gpu_type
