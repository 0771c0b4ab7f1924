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

NAME_MAX_LENGTH = 63
NAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
"""A system name is one DNS label of its URL (``https://NAME.CLOUD...``): RFC 1123, lower case."""
MIN_DISK_SIZE_GB = 256
MAX_DISK_SIZE_GB = 1024
MIN_IDLE_INTERVAL_MIN = 1
MAX_IDLE_INTERVAL_MIN = 4 * 60
MAX_CONFIG_TOML_BYTES = 1024 * 1024
"""The largest config.toml (UTF-8) ``update_config_toml`` sends: 1 MiB."""
_NOT_AN_ID = frozenset({"none", "null", "nan", "undefined"})


def _int_in(field: str, value: object, low: int, high: int, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailedError(field, f"must be a whole number of {unit}, got {value!r}")
    if not low <= value <= high:
        raise ValidationFailedError(field, f"must be between {low} and {high} {unit}, got {value}")


def _text(field: str, value: object, example: str) -> None:
    if not isinstance(value, str):
        raise ValidationFailedError(field, f"must be a string such as {example!r}, got {value!r}")


def validate_name(name: object) -> None:
    """A system name: 1..63 lowercase letters, digits and hyphens, starting and ending with a letter or digit.

    The name becomes a DNS label of the system's URL, hence the length and the hyphen rule.
    """
    if not isinstance(name, str) or not name:
        raise ValidationFailedError("name", f"is required (a string), got {name!r}")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationFailedError(
            "name", f"must be at most {NAME_MAX_LENGTH} characters (a DNS label), got {len(name)}"
        )
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValidationFailedError(
            "name", f"must contain only lowercase letters, digits and hyphens, got {name!r}"
        )
    if not NAME_PATTERN.fullmatch(name):
        raise ValidationFailedError("name", f"must start and end with a letter or digit, got {name!r}")


def validate_system_id(system_id: object) -> None:
    """A system id: a non-empty string, and not a rendered ``None``."""
    if not isinstance(system_id, str) or not system_id.strip():
        raise ValidationFailedError("system_id", f"is required (a non-empty string), got {system_id!r}")
    if system_id.strip().lower() in _NOT_AN_ID:
        raise ValidationFailedError("system_id", f"got {system_id!r}: a template that rendered nothing?")


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
    for field, value, example in (("image", image_id, "img-dai-1-11-1-aws"), ("product", product, "dai"),
                                  ("version", version, "1.11.1"), ("instance_type", instance_type_id, "it-1"),
                                  ("instance_type_name", instance_type_name, "m5.2xlarge")):
        if value is not None:
            _text(field, value, example)
    if image_id and (product or version):
        raise ValidationFailedError("image", "give image, or product and version, not both")
    if instance_type_id and instance_type_name:
        raise ValidationFailedError("instance_type", "give instance_type or instance_type_name, not both")
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
    """config.toml content: a string of at most 1 MiB (UTF-8) that parses as TOML."""
    if not isinstance(config_toml, str):
        raise ValidationFailedError("config_toml", f"must be a string, got {type(config_toml).__name__}")
    size = len(config_toml.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_TOML_BYTES:
        raise ValidationFailedError(
            "config_toml", f"must be at most {MAX_CONFIG_TOML_BYTES:,} bytes (1 MiB), got {size:,}")
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
