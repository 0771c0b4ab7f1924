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

from airflow_puddle.domain.errors import ValidationFailedError
from airflow_puddle.domain.products import ALL_PRODUCTS

NAME_MAX_LENGTH = 63
NAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
"""A system name is one DNS label of its URL (``https://NAME.CLOUD...``): RFC 1123, lower case."""
MIN_DISK_SIZE_GB = 256
MAX_DISK_SIZE_GB = 1024
MIN_IDLE_INTERVAL_MIN = 1
MAX_IDLE_INTERVAL_MIN = 4 * 60
MAX_CONFIG_TOML_BYTES = 1024 * 1024
"""The largest config.toml (UTF-8) ``update_config_toml`` sends: 1 MiB."""
MAX_TAGS = 50
MAX_TAG_LABEL_CHARS = 128
MAX_TAG_VALUE_CHARS = 256
"""Tag limits every cloud accepts (AWS: 50 tags, keys up to 128 characters, values up to 256)."""
SYSTEM_ID_MAX_LENGTH = 128
SYSTEM_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
"""A system id (a UUID from Puddle): letters, digits and ``._:-``; ``[1, 2]`` or ``{'id': ...}`` is no id."""
PRODUCT_IDS = tuple(p.id for p in ALL_PRODUCTS)
"""The ids of the products a system can run: ``dai``, ``h2o3``."""
MAX_CALL_TIMEOUT_S = 600.0
"""The longest deadline of one call (``timeout_s``, a connection's ``extra.timeout``): ten minutes."""
MAX_BACKOFF_S = 300.0
"""The longest pause between two retries of a read (``extra.retry_max_wait``): five minutes."""
MAX_POLL_INTERVAL_S = 3600.0
"""The longest pause between two polls of a wait: an hour."""
MAX_WAIT_S = 30 * 24 * 3600.0
"""The longest wait (an operator's or a sensor's ``timeout``, a wait's ``timeout_s``): 30 days."""
_NOT_AN_ID = frozenset({"none", "null", "nan", "undefined"})


def _int_in(field: str, value: object, low: int, high: int, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailedError(field, f"must be a whole number of {unit}, got {value!r}")
    if not low <= value <= high:
        raise ValidationFailedError(field, f"must be between {low} and {high} {unit}, got {value}")


def _text(field: str, value: object, example: str) -> None:
    if not isinstance(value, str):
        raise ValidationFailedError(field, f"must be a string such as {example!r}, got {value!r}")
    if value.strip().lower() in _NOT_AN_ID:
        raise ValidationFailedError(field, f"got {value!r}: a template that rendered nothing?")


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
    """A system id: 1..128 letters, digits and ``._:-`` (a UUID from Puddle), not a rendered ``None``.

    A template that rendered a list, a dict or nothing (``[1, 2]``, ``None``) is refused, so a
    terminate cannot succeed as a no-op on a system that cannot exist.
    """
    if not isinstance(system_id, str) or not system_id.strip():
        raise ValidationFailedError("system_id", f"is required (a non-empty string), got {system_id!r}")
    if system_id.strip().lower() in _NOT_AN_ID:
        raise ValidationFailedError("system_id", f"got {system_id!r}: a template that rendered nothing?")
    if len(system_id) > SYSTEM_ID_MAX_LENGTH or not SYSTEM_ID_PATTERN.fullmatch(system_id):
        shown = system_id if len(system_id) <= 80 else f"{system_id[:80]}..."
        raise ValidationFailedError(
            "system_id", f"must be 1 to {SYSTEM_ID_MAX_LENGTH} letters, digits, '.', '_', ':' or '-' "
                         f"(a system's id, such as a UUID), got {shown!r}")


def validate_tags(tags: Iterable[tuple[object, object]], *, unset_values: bool = False) -> None:
    """Tags as ``(label, value)`` pairs: at most 50, distinct non-empty labels of at most 128 characters,
    each value a non-empty string of at most 256 characters (not ``None``, a number or a list).

    ``unset_values``: an empty value is the wire's "not given" (the tag's default), as the emulator reads it.
    """
    seen: set[str] = set()
    for label, value in tags:
        if not isinstance(label, str) or not label.strip():
            raise ValidationFailedError("tags", "every tag needs a non-empty label")
        if len(label) > MAX_TAG_LABEL_CHARS:
            raise ValidationFailedError(
                "tags", f"label {label[:40]!r}... must be at most {MAX_TAG_LABEL_CHARS} characters, got {len(label)}")
        if not isinstance(value, str):
            raise ValidationFailedError(
                "tags", f"value of tag {label!r} must be a non-empty string, got {type(value).__name__} {value!r}")
        if (not value.strip() and not (unset_values and value == "")) or value.strip().lower() in _NOT_AN_ID:
            raise ValidationFailedError(
                "tags", f"value of tag {label!r} must be a non-empty string, got {value!r} "
                        f"(a template that rendered nothing?)")
        if len(value) > MAX_TAG_VALUE_CHARS:
            raise ValidationFailedError(
                "tags", f"value of tag {label!r} must be at most {MAX_TAG_VALUE_CHARS} characters, got {len(value):,}")
        if label in seen:
            raise ValidationFailedError("tags", f"tag {label!r} is given twice")
        seen.add(label)
        if len(seen) > MAX_TAGS:
            raise ValidationFailedError("tags", f"at most {MAX_TAGS} tags")


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
    unset_tag_values: bool = False,
) -> None:
    """Check every create parameter; raise on the first rule broken (``unset_tag_values``: :func:`validate_tags`)."""
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
    if product and not image_id and product not in PRODUCT_IDS:
        raise ValidationFailedError("product", f"must be one of {', '.join(PRODUCT_IDS)}, got {product!r}")
    validate_tags(tags, unset_values=unset_tag_values)


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


def validate_seconds(field: str, value: object, *, allow_zero: bool = False, maximum: float | None = None) -> float:
    """A number of seconds: a real, finite number above zero (or at least zero), at most ``maximum``, not a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationFailedError(field, f"must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValidationFailedError(field, f"must be a finite number of seconds, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        rule = "must not be negative" if allow_zero else "must be more than 0 seconds"
        raise ValidationFailedError(field, f"{rule}, got {value!r}")
    if maximum is not None and seconds > maximum:
        raise ValidationFailedError(field, f"must be at most {_duration(maximum)} ({maximum:g} seconds), got {value!r}")
    return seconds


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} seconds"


def validate_poll_interval(value: object, field: str = "poll_interval") -> float:
    """The seconds between two polls of a wait: finite, above zero (NaN, 0 or -1 would spin), at most an hour."""
    return validate_seconds(field, value, maximum=MAX_POLL_INTERVAL_S)


def validate_wait_timeout(value: object, field: str = "timeout", *, allow_zero: bool = False) -> float:
    """How long a wait lasts in all: finite, above zero, at most 30 days."""
    return validate_seconds(field, value, allow_zero=allow_zero, maximum=MAX_WAIT_S)


def validate_deadline(value: object, now: float, field: str = "deadline") -> float:
    """A wait's absolute deadline (Unix time): finite, and at most 30 days from ``now`` (a past one times out)."""
    deadline = validate_seconds(field, value, allow_zero=True)
    if deadline > now + MAX_WAIT_S:
        raise ValidationFailedError(
            field, f"must be at most {_duration(MAX_WAIT_S)} from now, got {deadline - now:,.0f} seconds from now")
    return deadline


def validate_call_timeout(value: object, field: str = "timeout_s") -> float:
    """The deadline of one call: finite, above zero, at most ten minutes."""
    return validate_seconds(field, value, maximum=MAX_CALL_TIMEOUT_S)
