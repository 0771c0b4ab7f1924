"""Validation rules for requests, shared by the client and the emulator.

Every rule lives here once. A broken rule raises :class:`ValidationFailedError`
naming the field and the rule, before anything is sent (client) or stored
(emulator).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable

from airflow_puddle.client.errors import ValidationFailedError

NAME_MAX_LENGTH = 64
NAME_PATTERN = re.compile(r"^[a-z0-9-]+$")
MIN_DISK_SIZE_GB = 256
MAX_DISK_SIZE_GB = 1024
MIN_IDLE_INTERVAL_MIN = 1
MAX_IDLE_INTERVAL_MIN = 4 * 60


def _int_in(field: str, value: object, low: int, high: int, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailedError(field, f"must be a whole number of {unit}, got {value!r}")
    if not low <= value <= high:
        raise ValidationFailedError(field, f"must be between {low} and {high} {unit}, got {value}")


def validate_name(name: object) -> None:
    """A system name: 1..64 lowercase letters, digits and hyphens."""
    if not isinstance(name, str) or not name:
        raise ValidationFailedError("name", "is required")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationFailedError(
            "name", f"must be at most {NAME_MAX_LENGTH} characters, got {len(name)}"
        )
    if not NAME_PATTERN.match(name):
        raise ValidationFailedError(
            "name", f"must contain only lowercase letters, digits and hyphens, got {name!r}"
        )


def validate_system_id(system_id: object) -> None:
    """A system id must be a non-empty string."""
    if not isinstance(system_id, str) or not system_id.strip():
        raise ValidationFailedError("system_id", "is required")


def validate_create(
    *,
    name: object,
    disk_size_gb: object,
    image_id: str | None,
    product: str | None,
    version: str | None,
    instance_type_id: str | None,
    instance_type_name: str | None,
    idle_interval: object,
    tags: Iterable[tuple[str, str]] = (),
) -> None:
    """Check every create parameter; raise on the first rule broken."""
    validate_name(name)
    _int_in("disk_size_gb", disk_size_gb, MIN_DISK_SIZE_GB, MAX_DISK_SIZE_GB, "GB")
    _int_in("idle_interval", idle_interval, MIN_IDLE_INTERVAL_MIN, MAX_IDLE_INTERVAL_MIN, "minutes")
    if not image_id:
        if not product and not version:
            raise ValidationFailedError("image", "set image, or product and version")
        if not product:
            raise ValidationFailedError("product", "is required when image is not set")
        if not version:
            raise ValidationFailedError("version", "is required when image is not set")
    if not instance_type_id and not instance_type_name:
        raise ValidationFailedError("instance_type", "set instance_type or instance_type_name")
    seen: set[str] = set()
    for label, value in tags:
        if not isinstance(label, str) or not label.strip():
            raise ValidationFailedError("tags", "every tag needs a non-empty label")
        if not isinstance(value, str):
            raise ValidationFailedError("tags", f"value of tag {label!r} must be a string")
        if label in seen:
            raise ValidationFailedError("tags", f"tag {label!r} is given twice")
        seen.add(label)


def validate_config_toml(config_toml: object) -> None:
    """config.toml content must be a string that parses as TOML."""
    if not isinstance(config_toml, str):
        raise ValidationFailedError("config_toml", f"must be a string, got {type(config_toml).__name__}")
    try:
        tomllib.loads(config_toml)
    except tomllib.TOMLDecodeError as err:
        raise ValidationFailedError("config_toml", f"is not valid TOML ({err})") from None


def validate_seconds(field: str, value: object, *, allow_zero: bool = False) -> float:
    """A number of seconds: a real, finite number above zero (or at least zero), not a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationFailedError(field, f"must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValidationFailedError(field, f"must be a finite number of seconds, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        rule = "must not be negative" if allow_zero else "must be more than 0 seconds"
        raise ValidationFailedError(field, f"{rule}, got {value!r}")
    return seconds


def validate_poll_interval(value: object, field: str = "poll_interval") -> float:
    """The seconds between two polls of a wait: finite and above zero (NaN, 0 or -1 would spin)."""
    return validate_seconds(field, value)
