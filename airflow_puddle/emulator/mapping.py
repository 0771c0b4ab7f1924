"""Typed rows to protobuf messages: used only by :mod:`airflow_puddle.emulator.servicers`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from airflow_puddle._proto.puddle.v2 import (
    image_service_pb2,
    instance_type_service_pb2,
    system_service_pb2,
    tag_service_pb2,
)
from airflow_puddle.emulator.rows import ExperimentRow, ImageRow, InstanceTypeRow, SystemRow, TagRow


def _enum(code: int) -> Any:
    """An enum field's value: the code itself (protobuf takes ints; its stubs ask for the enum type)."""
    return code


def system_to_proto(s: SystemRow, now: float, *, config_toml: bool = True) -> system_service_pb2.System:
    """The one place a system row becomes a ``System`` message, its session cost at ``now``;
    ``config_toml=False`` leaves the body out."""
    return system_service_pb2.System(
        id=s.id, name=s.name, owner_id=s.owner_id, owner_name=s.owner_name,
        cloud=s.cloud, cloud_id=s.cloud_id, product=s.product, version=s.version,
        image_id=s.image_id, instance_type=s.instance_type, gpu=s.gpu,
        gpu_count=s.gpu_count, gpu_type=s.gpu_type, disk_size_gb=s.disk_size_gb,
        status=_enum(s.status), vm_status=_enum(s.vm_status), product_status=_enum(s.product_status),
        config_status=_enum(s.config_status), config_toml=s.config_toml if config_toml else "",
        can_fail=s.can_fail, can_launch=s.can_launch, in_transition=s.in_transition,
        provisioned=s.provisioned, default_url=s.default_url, ip_address=s.ip_address,
        private_ip=s.private_ip, public_ip=s.public_ip, username=s.username,
        password=s.password, auth_type=s.auth_type, failure_reason=s.failure_reason,
        idle_timeout=int(s.idle_timeout or 0), idle_timeout_interval=s.idle_timeout_interval,
        current_session_cost=s.cost_at(now), previous_sessions_cost=s.previous_sessions_cost,
        created=int(s.created), updated=int(s.updated),
        tags=[system_service_pb2.TagData(label=label, value=value) for label, value in s.tags],
        cu=s.cu,
    )


class SystemMessages:
    """System rows as messages, each row encoded once: ListSystems of 1,000 systems is a copy of bytes.

    Rows are immutable and replaced on every write, so a row's encoding is kept while the
    store still hands out that same row object. What varies without a write is added to the
    copy: the session cost at ``now`` and, when asked for, the config.toml body.
    """

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._encoded: dict[str, tuple[SystemRow, bytes]] = {}

    def _body(self, s: SystemRow) -> bytes:
        kept = self._encoded.get(s.id)
        if kept is not None and kept[0] is s:
            return kept[1]
        body = system_to_proto(s, 0.0, config_toml=False).SerializePartialToString(deterministic=True)
        self._encoded[s.id] = (s, body)
        return body

    def fill(self, target: system_service_pb2.System, s: SystemRow, now: float, *, config_toml: bool) -> None:
        """Set ``target`` to the message of ``s`` at ``now`` (the same as :func:`system_to_proto`)."""
        target.MergeFromString(self._body(s))
        if s.session_started_at is not None:
            target.current_session_cost = s.cost_at(now)
        if config_toml:
            target.config_toml = s.config_toml

    def one(self, s: SystemRow) -> system_service_pb2.System:
        """The message of one system, now."""
        message = system_service_pb2.System()
        self.fill(message, s, self._now(), config_toml=True)
        return message

    def add_all(self, target: Any, systems: Iterable[SystemRow], *, config_toml: bool) -> None:
        """Append the messages of ``systems`` to a repeated ``System`` field."""
        now = self._now()
        for s in systems:
            self.fill(target.add(), s, now, config_toml=config_toml)


def experiment_to_proto(e: ExperimentRow) -> system_service_pb2.DAIModel:
    """A fake experiment as a ``DAIModel`` (the fields share their names)."""
    return system_service_pb2.DAIModel(**asdict(e))


def image_to_proto(i: ImageRow) -> image_service_pb2.Image:
    """An image; ``selected_version`` is its id."""
    return image_service_pb2.Image(
        id=i.id, product=i.product, version=i.version, text=i.text, selected_version=i.id,
        status=_enum(i.status), cloud=i.cloud,
    )


def instance_type_to_proto(t: InstanceTypeRow) -> instance_type_service_pb2.InstanceType:
    """An instance type."""
    return instance_type_service_pb2.InstanceType(
        id=t.id, text=t.text, gpu=t.gpu, gpu_count=t.gpu_count, gpu_type=t.gpu_type, price=t.price,
        cu=t.cu, cloud=t.cloud,
    )


def tag_to_proto(t: TagRow) -> tag_service_pb2.Tag:
    """A tag definition (times as whole seconds)."""
    return tag_service_pb2.Tag(
        id=t.id, label=t.label, default_value=t.default_value, input_type=t.input_type,
        required=t.required, status=_enum(t.status), created=int(t.created), updated=int(t.updated),
    )
