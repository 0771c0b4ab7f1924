"""PuddleBackend driven directly, on a fake clock with 1-second steps."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_puddle.client.models import Image, System
from airflow_puddle.domain.errors import (
    AlreadyExistsError,
    AuthError,
    NotFoundError,
    PreconditionFailedError,
    ValidationFailedError,
)
from airflow_puddle.emulator import PuddleBackend, seed
from airflow_puddle.emulator.rows import SystemRow, User

from .conftest import API_KEY_ID, API_SECRET_KEY, FakeClock

S = System


def _create(backend: PuddleBackend, user: User, **overrides: Any) -> SystemRow:
    args: dict[str, Any] = {
        "cloud": "aws", "name": "sys-a", "disk_size_gb": 256, "idle_interval": 60, "product": "dai",
        "version": "1.11.1", "instance_type_name": "m5.2xlarge", "tags": [("Team", "ml")],
    }
    args.update(overrides)
    return backend.create_system(user, **args)


def _get(backend: PuddleBackend, user: User, system_id: str) -> SystemRow:
    return backend.get_system(user, system_id)[0]


def _triple(system: SystemRow) -> tuple[int, int, int]:
    return system.status, system.vm_status, system.product_status


def _codes(*states: Any) -> tuple[int, ...]:
    return tuple(s.code for s in states)


def _started(backend: PuddleBackend, user: User, clock: FakeClock, **kw: Any) -> str:
    system_id = _create(backend, user, **kw).id
    clock.tick(3)
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_STARTED.code
    return system_id


def _in_state(backend: PuddleBackend, user: User, clock: FakeClock, state: str) -> str:
    """A system in ``state``: started, stopped, failed or transition (initializing)."""
    if state == "transition":
        return _create(backend, user).id
    if state == "failed":
        system_id = _create(backend, user).id
        backend.fail_system(user, system_id)
        clock.tick(1)
        return system_id
    system_id = _started(backend, user, clock)
    if state == "stopped":
        backend.stop_system(user, system_id)
        clock.tick(1)
    return system_id


# --------------------------------------------------------------------------- lifecycle


def test_create_steps_to_started_and_fills_connection_details(
    backend: PuddleBackend, user: User, clock: FakeClock
) -> None:
    created = _create(backend, user)
    assert _triple(created) == _codes(S.SYSTEM_STATUS_INITIALIZING, S.VM_STATUS_WAITING,
                                      S.PRODUCT_STATUS_WAITING_FOR_VM)
    assert created.in_transition
    assert created.can_fail
    assert not created.can_launch
    assert not created.provisioned
    assert not created.default_url
    assert not created.password
    expected = [
        (S.SYSTEM_STATUS_INITIALIZING, S.VM_STATUS_PROVISIONING, S.PRODUCT_STATUS_WAITING_FOR_VM),
        (S.SYSTEM_STATUS_INITIALIZING, S.VM_STATUS_RUNNING, S.PRODUCT_STATUS_WAITING_FOR_PRODUCT),
        (S.SYSTEM_STATUS_STARTED, S.VM_STATUS_RUNNING, S.PRODUCT_STATUS_READY),
    ]
    for step in expected:
        clock.tick(1)
        assert _triple(_get(backend, user, created.id)) == _codes(*step)

    system, models = backend.get_system(user, created.id)
    assert not system.in_transition
    assert not system.can_fail
    assert not system.can_launch
    assert system.provisioned
    assert system.default_url == "https://sys-a.aws.puddle.local"
    assert system.private_ip.startswith("10.")
    assert system.public_ip.startswith("203.0.113.")
    assert system.ip_address == system.public_ip
    assert system.cloud_id
    assert system.username == "h2oai"
    assert system.auth_type == "local"
    assert len(system.password) >= 12
    assert system.idle_timeout == int(clock.t + 60 * 60)  # reached Started just now
    assert system.config_status == S.CONFIG_STATUS_OK.code
    assert (system.owner_id, system.owner_name) == (user.id, "demo")
    assert (system.instance_type, system.cu, system.gpu) == ("m5.2xlarge", 4, False)
    assert system.tags == (("Team", "ml"),)
    assert len(models) == 2
    assert all(m.id and m.scorer for m in models)
    # deterministic fakes
    assert [m.id for m in backend.get_system(user, created.id)[1]] == [m.id for m in models]


def test_h2o3_system_has_no_models(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    system_id = _started(backend, user, clock, product="h2o3", version="3.46.0.6")
    assert backend.get_system(user, system_id)[1] == []


def test_stop_start_restart_terminate(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    system_id = _started(backend, user, clock)

    stopping = backend.stop_system(user, system_id)
    assert _triple(stopping) == _codes(S.SYSTEM_STATUS_STOPPING, S.VM_STATUS_DEALLOCATING,
                                       S.PRODUCT_STATUS_VM_UNAVAILABLE)
    clock.tick(1)
    stopped = _get(backend, user, system_id)
    assert _triple(stopped) == _codes(S.SYSTEM_STATUS_STOPPED, S.VM_STATUS_DEALLOCATED,
                                      S.PRODUCT_STATUS_VM_UNAVAILABLE)
    assert stopped.can_launch
    assert not stopped.in_transition
    assert backend.get_system(user, system_id)[1] == []  # no experiments while stopped

    starting = backend.start_system(user, system_id)
    assert _triple(starting) == _codes(S.SYSTEM_STATUS_STARTING, S.VM_STATUS_STARTING,
                                       S.PRODUCT_STATUS_WAITING_FOR_VM)
    clock.tick(1)
    assert _triple(_get(backend, user, system_id)) == _codes(
        S.SYSTEM_STATUS_STARTING, S.VM_STATUS_RUNNING, S.PRODUCT_STATUS_WAITING_FOR_PRODUCT)
    clock.tick(1)
    started = _get(backend, user, system_id)
    assert _triple(started) == _codes(S.SYSTEM_STATUS_STARTED, S.VM_STATUS_RUNNING, S.PRODUCT_STATUS_READY)
    assert started.idle_timeout == int(clock.t + 3600)

    rebooting = backend.restart_system(user, system_id)
    assert _triple(rebooting) == _codes(S.SYSTEM_STATUS_REBOOTING, S.VM_STATUS_STARTING,
                                        S.PRODUCT_STATUS_WAITING_FOR_PRODUCT)
    clock.tick(1)
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_STARTED.code

    terminating = backend.terminate_system(user, system_id)
    assert _triple(terminating) == _codes(S.SYSTEM_STATUS_TERMINATING, S.VM_STATUS_TERMINATING,
                                          S.PRODUCT_STATUS_VM_UNAVAILABLE)
    assert [s.id for s in backend.list_systems(user)] == [system_id]
    clock.tick(1)
    terminated = _get(backend, user, system_id)
    assert _triple(terminated) == _codes(S.SYSTEM_STATUS_TERMINATED, S.VM_STATUS_TERMINATED,
                                         S.PRODUCT_STATUS_VM_UNAVAILABLE)
    assert backend.list_systems(user) == []
    with pytest.raises(NotFoundError, match="terminated"):
        backend.terminate_system(user, system_id)
    with pytest.raises(NotFoundError):
        backend.start_system(user, system_id)


def test_fail_a_system_in_transition(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    system_id = _create(backend, user).id
    clock.tick(1)
    failing = backend.fail_system(user, system_id)
    assert _triple(failing) == _codes(S.SYSTEM_STATUS_FAILING, S.VM_STATUS_PROVISIONING,
                                      S.PRODUCT_STATUS_WAITING_FOR_VM)
    assert backend.fail_system(user, system_id).status == S.SYSTEM_STATUS_FAILING.code  # already failing
    clock.tick(1)
    failed = _get(backend, user, system_id)
    assert _triple(failed) == _codes(S.SYSTEM_STATUS_FAILED, S.VM_STATUS_PROVISIONING,
                                     S.PRODUCT_STATUS_WAITING_FOR_VM)
    assert not failed.can_fail
    assert not failed.provisioned
    with pytest.raises(PreconditionFailedError, match=r"cannot fail system 'sys-a' .*it is Failed"):
        backend.fail_system(user, system_id)


# Every (action, starting state) pair and whether it is allowed.
PRECONDITIONS = [
    ("start", "stopped", True), ("start", "started", False), ("start", "failed", False),
    ("start", "transition", False),
    ("stop", "started", True), ("stop", "failed", True), ("stop", "stopped", False),
    ("stop", "transition", False),
    ("restart", "started", True), ("restart", "stopped", False), ("restart", "failed", False),
    ("restart", "transition", False),
    ("terminate", "started", True), ("terminate", "stopped", True), ("terminate", "failed", True),
    ("terminate", "transition", False),
    ("fail", "transition", True), ("fail", "started", False), ("fail", "stopped", False),
    ("fail", "failed", False),
    ("refresh", "started", True), ("refresh", "stopped", False), ("refresh", "transition", False),
    ("config", "started", True), ("config", "stopped", False), ("config", "failed", False),
]


def _act(backend: PuddleBackend, user: User, action: str, system_id: str) -> SystemRow:
    if action == "config":
        return backend.update_config_toml(user, system_id, "a = 1")
    method = {
        "start": backend.start_system, "stop": backend.stop_system, "restart": backend.restart_system,
        "terminate": backend.terminate_system, "fail": backend.fail_system,
        "refresh": backend.refresh_idle_timeout,
    }[action]
    return method(user, system_id)


@pytest.mark.parametrize(("action", "state", "allowed"), PRECONDITIONS)
def test_preconditions(
    backend: PuddleBackend, user: User, clock: FakeClock, action: str, state: str, allowed: bool
) -> None:
    system_id = _in_state(backend, user, clock, state)
    if allowed:
        _act(backend, user, action, system_id)
        return
    status_text = _get(backend, user, system_id)
    text = next(s.text for s in S.ALL_STATES if s.code == status_text.status)
    with pytest.raises(PreconditionFailedError, match=rf"'sys-a' \({system_id}\): it is {text}, needs ") as err:
        _act(backend, user, action, system_id)
    assert err.value.code.name == "FAILED_PRECONDITION"


@pytest.mark.parametrize("action", ["start", "stop", "restart", "terminate", "fail", "refresh", "config"])
def test_unknown_or_foreign_system_is_not_found(
    backend: PuddleBackend, user: User, clock: FakeClock, action: str
) -> None:
    with pytest.raises(NotFoundError, match="'nope' not found"):
        _act(backend, user, action, "nope")
    system_id = _started(backend, user, clock)
    stranger = User("user-other", "other", "other@puddle.local")
    with pytest.raises(NotFoundError):
        _act(backend, stranger, action, system_id)
    with pytest.raises(NotFoundError):
        backend.get_system(stranger, system_id)
    assert backend.list_systems(stranger) == []


def test_get_unknown_system_and_empty_id(backend: PuddleBackend, user: User) -> None:
    with pytest.raises(NotFoundError):
        backend.get_system(user, "nope")
    with pytest.raises(ValidationFailedError, match="system_id: is required"):
        backend.get_system(user, " ")


# --------------------------------------------------------------------------- idle timeout, config


def test_idle_timeout_stops_and_refresh_pushes_it_back(
    backend: PuddleBackend, user: User, clock: FakeClock
) -> None:
    system_id = _started(backend, user, clock, idle_interval=1)  # Started at t0 + 3, idle at t0 + 63
    clock.tick(50)
    refreshed = backend.refresh_idle_timeout(user, system_id)
    assert refreshed.idle_timeout == int(clock.t + 60)
    clock.tick(59)
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_STARTED.code
    clock.tick(1.5)  # 0.5 s past the idle timeout: the stop began then
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_STOPPING.code
    clock.tick(1)
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_STOPPED.code


def test_idle_stop_is_placed_at_the_timeout_not_at_the_next_read(
    backend: PuddleBackend, user: User, clock: FakeClock
) -> None:
    system_id = _started(backend, user, clock, idle_interval=1)
    clock.tick(600)  # nobody looked for ten minutes
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_STOPPED.code


@pytest.mark.parametrize("via", ["restart", "start"])
def test_config_upload_applied_by_restart_or_start(
    backend: PuddleBackend, user: User, clock: FakeClock, via: str
) -> None:
    system_id = _started(backend, user, clock)
    uploading = backend.update_config_toml(user, system_id, 'enabled_scorers = "AUC"')
    assert uploading.config_status == S.CONFIG_STATUS_UPLOADING.code
    with pytest.raises(PreconditionFailedError, match="upload is still running"):
        backend.update_config_toml(user, system_id, "a = 2")
    clock.tick(1)
    uploaded = _get(backend, user, system_id)
    assert uploaded.config_status == S.CONFIG_STATUS_UPLOADED.code
    assert uploaded.config_toml == 'enabled_scorers = "AUC"'
    if via == "restart":
        backend.restart_system(user, system_id)
        clock.tick(1)
    else:
        backend.stop_system(user, system_id)
        clock.tick(1)
        assert _get(backend, user, system_id).config_status == S.CONFIG_STATUS_UPLOADED.code
        backend.start_system(user, system_id)
        clock.tick(2)
    applied = _get(backend, user, system_id)
    assert applied.status == S.SYSTEM_STATUS_STARTED.code
    assert applied.config_status == S.CONFIG_STATUS_OK.code


def test_restart_right_after_upload_applies_it(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    system_id = _started(backend, user, clock)
    backend.update_config_toml(user, system_id, "a = 1")
    clock.tick(0.5)
    backend.restart_system(user, system_id)  # restart ends at +1.5, after the upload at +1
    clock.tick(5)
    assert _get(backend, user, system_id).config_status == S.CONFIG_STATUS_OK.code


def test_invalid_config_toml_is_rejected(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    system_id = _started(backend, user, clock)
    with pytest.raises(ValidationFailedError, match="config_toml: is not valid TOML") as err:
        backend.update_config_toml(user, system_id, "a = ")
    assert err.value.field == "config_toml"


# --------------------------------------------------------------------------- injected failures


def test_injected_failure_of_a_transition_is_used_once(
    backend: PuddleBackend, user: User, clock: FakeClock
) -> None:
    system_id = _started(backend, user, clock)
    backend.fail_next_transition(system_id)
    assert backend.stop_system(user, system_id).status == S.SYSTEM_STATUS_STOPPING.code
    clock.tick(1)
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_FAILING.code
    clock.tick(1)
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_FAILED.code
    backend.stop_system(user, system_id)  # allowed from Failed; the flag is spent
    clock.tick(1)
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_STOPPED.code


def test_injected_failure_of_a_running_create(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    system_id = _create(backend, user).id
    backend.fail_next_transition(system_id)
    clock.tick(3)
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_FAILING.code
    clock.tick(1)
    failed = _get(backend, user, system_id)
    assert failed.status == S.SYSTEM_STATUS_FAILED.code
    assert not failed.provisioned


def test_injected_failure_of_a_config_upload(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    system_id = _started(backend, user, clock)
    backend.fail_next_transition(system_id, config_upload=True)
    backend.update_config_toml(user, system_id, "a = 1")
    clock.tick(1)
    failed = _get(backend, user, system_id)
    assert failed.config_status == S.CONFIG_STATUS_FAILED.code
    assert failed.config_toml == ""
    assert failed.status == S.SYSTEM_STATUS_STARTED.code
    backend.update_config_toml(user, system_id, "a = 2")
    clock.tick(1)
    assert _get(backend, user, system_id).config_status == S.CONFIG_STATUS_UPLOADED.code


def test_fail_next_transition_of_unknown_system(backend: PuddleBackend) -> None:
    with pytest.raises(NotFoundError):
        backend.fail_next_transition("nope")


# --------------------------------------------------------------------------- CU, names, costs


def test_cu_capacity_rejects_create_and_start(make_backend, clock: FakeClock) -> None:
    backend = make_backend(cu_capacity=20)
    user = backend.login(API_KEY_ID, API_SECRET_KEY).user
    gpu = _create(backend, user, name="gpu", instance_type_name="p3.2xlarge")
    assert (gpu.cu, gpu.gpu, gpu.gpu_count, gpu.gpu_type) == (16, True, 1, "V100")
    small = _create(backend, user, name="small")
    info = backend.cu_info(user)
    assert (info.consumed_cu, info.available_cu) == (20, 0)
    assert {(s.system_name, s.cu) for s in info.systems} == {("gpu", 16), ("small", 4)}
    with pytest.raises(PreconditionFailedError, match="not enough CU: needs 4, available 0"):
        _create(backend, user, name="more")

    clock.tick(3)
    backend.stop_system(user, small.id)  # Stopping still consumes
    assert backend.cu_info(user).consumed_cu == 20
    clock.tick(1)
    assert backend.cu_info(user).consumed_cu == 16
    _create(backend, user, name="other")  # takes the freed 4 CU
    with pytest.raises(PreconditionFailedError, match="not enough CU: needs 4, available 0"):
        backend.start_system(user, small.id)


def test_duplicate_name_until_terminated(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    first = _started(backend, user, clock)
    with pytest.raises(AlreadyExistsError, match=rf"system name 'sys-a' already exists \(id {first}\)"):
        _create(backend, user)
    backend.terminate_system(user, first)
    with pytest.raises(AlreadyExistsError):
        _create(backend, user)  # still terminating
    clock.tick(1)
    assert _create(backend, user).id != first


def test_session_costs(backend: PuddleBackend, user: User, clock: FakeClock) -> None:
    system_id = _started(backend, user, clock, instance_type_name="r5.4xlarge")  # 1.008 per hour
    clock.tick(3600)
    assert _get(backend, user, system_id).cost_at(backend.now()) == pytest.approx(1.008)
    backend.stop_system(user, system_id)
    clock.tick(1)
    cost = _get(backend, user, system_id).cost_at(backend.now())
    clock.tick(3600)
    assert _get(backend, user, system_id).cost_at(backend.now()) == pytest.approx(cost)  # frozen when stopped
    backend.start_system(user, system_id)
    moved = _get(backend, user, system_id)
    assert moved.previous_sessions_cost == pytest.approx(cost)
    assert moved.cost_at(backend.now()) == 0


# --------------------------------------------------------------------------- create validation


VALIDATION_CASES = [
    ({"name": "Bad_Name"}, "name", "lowercase letters"),
    ({"disk_size_gb": 10}, "disk_size_gb", "between 256 and 1024"),
    ({"idle_interval": 0}, "idle_interval", "between 1 and 240"),
    ({"cloud": "ibm"}, "cloud", "must be one of aws, azure, gcp, got 'ibm'"),
    ({"product": "", "version": ""}, "image", "set image, or product and version"),
    ({"image_id": "img-nope", "product": "", "version": ""}, "image", "unknown image id 'img-nope' for cloud aws"),
    ({"image_id": "img-aws-dai-1.11.2", "product": "", "version": ""}, "image", "not available (it is Building)"),
    ({"image_id": "img-gcp-dai-1.11.1", "product": "", "version": ""}, "image",
     "unknown image id 'img-gcp-dai-1.11.1' for cloud aws"),
    ({"product": "spark"}, "product", "must be one of dai, h2o3"),
    ({"version": "9.9"}, "version",
     "no available dai image with version '9.9' for cloud aws; available: 1.10.6.2, 1.11.1"),
    ({"version": "1.11.2"}, "version", "no available dai image"),  # only Building
    ({"instance_type_name": "huge"}, "instance_type_name",
     "unknown instance type 'huge' for cloud aws; available: m5.2xlarge, r5.4xlarge, p3.2xlarge"),
    ({"instance_type_name": "n1-standard-8"}, "instance_type_name", "for cloud aws"),
    ({"instance_type_id": "it-nope", "instance_type_name": ""}, "instance_type", "unknown instance type id 'it-nope'"),
    ({"instance_type_name": ""}, "instance_type", "set instance_type or instance_type_name"),
    ({"tags": []}, "tags", "tag 'Team' is required"),
    ({"tags": [("Team", "ml"), ("Colour", "red")]}, "tags", "unknown tag 'Colour'"),
    ({"tags": [("Team", "ml"), ("CostCenter", "abc")]}, "tags", "tag 'CostCenter' must be a number"),
    ({"tags": [("Team", "ml"), ("Team", "x")]}, "tags", "given twice"),
]


@pytest.mark.parametrize(("overrides", "field", "rule"), VALIDATION_CASES)
def test_create_validation_names_the_field(
    backend: PuddleBackend, user: User, overrides: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationFailedError) as err:
        _create(backend, user, **overrides)
    assert err.value.field == field
    assert rule in err.value.rule
    assert err.value.message.startswith(f"{field}: ")
    assert backend.list_systems(user) == []


def test_create_by_image_and_instance_type_ids_with_tag_defaults(
    backend: PuddleBackend, user: User
) -> None:
    system = _create(
        backend, user, cloud="gcp", product="", version="", image_id="img-gcp-h2o3-3.46.0.6",
        instance_type_name="", instance_type_id="it-gcp-a2-highgpu-1g",
        tags=[("Team", ""), ("CostCenter", "42"), ("Purpose", "")],
    )
    assert (system.cloud, system.product, system.version) == ("gcp", "h2o3", "3.46.0.6")
    assert (system.instance_type, system.gpu_type) == ("a2-highgpu-1g", "A100")
    assert system.tags == (("Team", "data-science"), ("CostCenter", "42"))


# --------------------------------------------------------------------------- catalogue, auth, clock


def test_catalogue(backend: PuddleBackend) -> None:
    aws_images = backend.list_images("aws")
    assert {(i.product, i.version) for i in aws_images} >= {("dai", "1.10.6.2"), ("h2o3", "3.46.0.6")}
    assert any(i.status == Image.IMAGE_STATUS_BUILDING.code for i in aws_images)
    assert {i.cloud for i in backend.list_images()} == {"aws", "azure", "gcp"}
    types = {t.text: t for t in backend.list_instance_types("azure")}
    assert types["Standard_NC6s_v3"].gpu
    assert not types["Standard_D8s_v3"].gpu
    tags = {t.label: t for t in backend.list_tags()}
    assert tags["Team"].required
    assert tags["Team"].default_value == "data-science"
    assert not tags["Purpose"].required
    with pytest.raises(ValidationFailedError, match="cloud: must be one of"):
        backend.list_instance_types("mars")


def test_login_tokens_and_expiry(backend: PuddleBackend, clock: FakeClock) -> None:
    with pytest.raises(AuthError, match="invalid API key id or secret"):
        backend.login(API_KEY_ID, "wrong")
    with pytest.raises(AuthError):
        backend.login("wrong", API_SECRET_KEY)
    first = backend.login(API_KEY_ID, API_SECRET_KEY)
    assert first.expires_at == int(clock.t + 3600)
    assert backend.check_token(first.token) == first.user
    backend.logout(first.token)
    with pytest.raises(AuthError, match="token expired or invalid"):
        backend.check_token(first.token)

    second = backend.login(API_KEY_ID, API_SECRET_KEY)
    backend.advance_clock(3601)
    with pytest.raises(AuthError):
        backend.check_token(second.token)

    third = backend.login(API_KEY_ID, API_SECRET_KEY)
    assert backend.expire_tokens() == 1
    with pytest.raises(AuthError):
        backend.check_token(third.token)


def test_tokens_are_not_stored_in_clear(backend: PuddleBackend, tmp_path) -> None:
    token = backend.login(API_KEY_ID, API_SECRET_KEY).token
    backend.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert token.encode() not in raw
    assert API_SECRET_KEY.encode() not in raw


def test_advance_clock_moves_transitions(backend: PuddleBackend, user: User) -> None:
    system_id = _create(backend, user).id
    backend.advance_clock(3)
    assert _get(backend, user, system_id).status == S.SYSTEM_STATUS_STARTED.code
    with pytest.raises(ValidationFailedError, match="seconds"):
        backend.advance_clock(-1)


def test_finished_transition_and_clock_offset_survive_reopen(make_backend, clock: FakeClock, tmp_path) -> None:
    db = str(tmp_path / "reopen.sqlite")
    first = make_backend(db)
    user = first.login(API_KEY_ID, API_SECRET_KEY).user
    system_id = _create(first, user).id
    first.advance_clock(100)  # the offset is kept in the database
    first.close()

    second = make_backend(db)
    assert second.now() == pytest.approx(clock.t + 100)
    system = _get(second, user, system_id)
    assert system.status == S.SYSTEM_STATUS_STARTED.code
    assert system.provisioned
    second.stop_system(user, system_id)
    second.close()

    clock.tick(1)
    third = make_backend(db)
    assert _get(third, user, system_id).status == S.SYSTEM_STATUS_STOPPED.code
    assert len(third.list_images()) == len(seed.IMAGES)  # seeded once


def test_transition_mid_way_survives_reopen(make_backend, clock: FakeClock, tmp_path) -> None:
    db = str(tmp_path / "midway.sqlite")
    first = make_backend(db)
    user = first.login(API_KEY_ID, API_SECRET_KEY).user
    system_id = _create(first, user).id
    clock.tick(1)
    assert _get(first, user, system_id).vm_status == S.VM_STATUS_PROVISIONING.code
    first.close()

    second = make_backend(db)
    assert _get(second, user, system_id).status == S.SYSTEM_STATUS_INITIALIZING.code
    clock.tick(2)
    assert _get(second, user, system_id).status == S.SYSTEM_STATUS_STARTED.code


def test_invalid_backend_options(tmp_path) -> None:
    with pytest.raises(ValueError, match="step_seconds"):
        PuddleBackend(str(tmp_path / "x.sqlite"), step_seconds=0, api_key_id="k", api_secret_key="s")
