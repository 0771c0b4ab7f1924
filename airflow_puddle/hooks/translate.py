"""The official ``puddle.client`` models turned into this provider's, by documented names only.

A property is copied when the official object has one named as our wire field (the
documented names); a status code is translated through the documented constant of the
same NAME (``System.SYSTEM_STATUS_STARTED``), never assumed to be the same number. The
constants are read where the documents place them, on ``puddle.client.models.System``
(``Image``, ``Tag``), not on the class of whatever object a call returned (a proxy or a
subclass would lack them). A code with no documented name becomes our ``*_UNKNOWN``,
and is said once as a warning naming the code and its family.

What our models offer beyond the documents (a system's ``tags`` and ``cu``, an instance type's
``cu``) has no value here: those properties raise ``AttributeError`` saying so, and
``System.to_dict()`` leaves them out, rather than show an empty list or a zero as if read.
"""

from __future__ import annotations

import functools
import importlib
import logging
from typing import Any

from google.protobuf.message import Message

from airflow_puddle._proto.puddle.v2 import (
    image_service_pb2,
    instance_type_service_pb2,
    system_service_pb2,
    tag_service_pb2,
)
from airflow_puddle.client.models import PUBLIC_SYSTEM_FIELDS, CUConsumptionInfo, Image, InstanceType, System, Tag
from airflow_puddle.domain.statuses import BaseStatus

log = logging.getLogger(__name__)

OFFICIAL_MODELS = "puddle.client.models"
"""Where the documents place the models and their status constants."""

SYSTEM_STATUS_FIELDS = {"status": "SYSTEM_STATUS_", "vm_status": "VM_STATUS_",
                        "product_status": "PRODUCT_STATUS_", "config_status": "CONFIG_STATUS_"}
"""Which of a system's fields hold a status code, and the prefix of that family's documented constants."""


WIRE_ONLY: dict[str, frozenset[str]] = {
    "System": frozenset({"image_id", "cu"}),
    "Image": frozenset({"cloud"}),
    "InstanceType": frozenset({"cu", "cloud"}),
}
"""Fields of our wire messages that are no documented property of the official model: never read."""


@functools.cache
def status_codes(theirs: type, ours: type, prefix: str) -> dict[int, int]:
    """Their code -> our code, for every constant named ``prefix*`` that both tables define."""
    codes: dict[int, int] = {}
    for name in dir(ours):
        mine = getattr(ours, name)
        if not name.startswith(prefix) or not isinstance(mine, BaseStatus):
            continue
        other = getattr(theirs, name, None)
        code = getattr(other, "code", None)
        if isinstance(code, int):
            codes[code] = mine.code
    return codes


def documented_model(name: str) -> type:
    """The official package's documented model class ``name`` (``System``, ``Image``, ``Tag``)."""
    return getattr(importlib.import_module(OFFICIAL_MODELS), name)


_said_unknown: set[tuple[str, object]] = set()


def our_code(theirs: type, ours: type, prefix: str, code: object) -> int:
    """Our code for their ``code`` (``*_UNKNOWN``, said once as a warning, for one without a documented name)."""
    unknown: BaseStatus = getattr(ours, f"{prefix}UNKNOWN")
    mapped = status_codes(theirs, ours, prefix).get(code) if isinstance(code, int) else None
    if mapped is not None:
        return mapped
    key = (f"{ours.__name__}.{prefix}*", code)
    if key not in _said_unknown:
        _said_unknown.add(key)
        log.warning("puddle.client returned %s code %r, which no documented %s constant names; it reads as %s",
                    key[0], code, key[0], unknown.text)
    return unknown.code


def fields(obj: object, message: type[Message], ours: type | None = None,
           statuses: dict[str, str] | None = None, renames: dict[str, str] | None = None) -> dict[str, Any]:
    """The scalar fields of ``message`` read from ``obj``'s properties of the same (or renamed) name."""
    out: dict[str, Any] = {}
    skip = WIRE_ONLY.get(message.DESCRIPTOR.name, frozenset())
    for field in message.DESCRIPTOR.fields:
        if field.message_type is not None or field.name in skip:
            continue  # nested messages and lists: built by the caller
        try:
            value = getattr(obj, (renames or {}).get(field.name, field.name))
        except AttributeError:
            continue  # not a documented property of this client's model
        if value is None:
            continue
        if statuses and field.name in statuses and ours is not None:
            value = our_code(documented_model(ours.__name__), ours, statuses[field.name], value)
        out[field.name] = value
    return out


def _undocumented(owner: str, name: str) -> property:
    def missing(self: object) -> Any:
        raise AttributeError(f"{owner}.{name} is not part of the documented puddle.client API, so it has no "
                             f"value with extra.client=puddle")

    return property(missing, doc=f"Not documented: raises AttributeError with extra.client=puddle ({owner}.{name}).")


class OfficialSystem(System):
    """A :class:`System` read through the official client: the documented properties only."""

    UNDOCUMENTED = ("tags", "cu")
    tags = _undocumented("System", "tags")
    cu = _undocumented("System", "cu")

    def to_dict(self) -> dict[str, Any]:
        """The system's documented public fields as a JSON-safe dict: no password, no tags, no CU."""
        return {name: getattr(self, name) for name in PUBLIC_SYSTEM_FIELDS if name not in self.UNDOCUMENTED}


class OfficialInstanceType(InstanceType):
    """An :class:`InstanceType` read through the official client: the documented properties only."""

    cu = _undocumented("InstanceType", "cu")


def to_system(obj: Any) -> System:
    """Our :class:`System` from an official one (with its DAI models when it carries them)."""
    pb = system_service_pb2.System(**fields(obj, system_service_pb2.System, System, SYSTEM_STATUS_FIELDS))
    try:
        models = obj.models
    except AttributeError:
        models = None
    dai = None if models is None else [system_service_pb2.DAIModel(**fields(m, system_service_pb2.DAIModel))
                                       for m in models]
    return OfficialSystem(pb, dai)


def to_image(obj: Any) -> Image:
    return Image(image_service_pb2.Image(**fields(obj, image_service_pb2.Image, Image, {"status": "IMAGE_STATUS_"},
                                                  {"status": "status_code"})))


def to_instance_type(obj: Any) -> InstanceType:
    return OfficialInstanceType(
        instance_type_service_pb2.InstanceType(**fields(obj, instance_type_service_pb2.InstanceType)))


def to_tag(obj: Any) -> Tag:
    return Tag(tag_service_pb2.Tag(**fields(obj, tag_service_pb2.Tag, Tag, {"status": "TAG_STATUS_"})))


def to_cu_info(obj: Any) -> CUConsumptionInfo:
    per_system = [system_service_pb2.SystemConsumptionInfo(**fields(s, system_service_pb2.SystemConsumptionInfo))
                  for s in obj.systems_consumption_info or []]
    return CUConsumptionInfo(system_service_pb2.GetCUConsumptionInfoResponse(
        **fields(obj, system_service_pb2.GetCUConsumptionInfoResponse), systems_consumption_info=per_system))
