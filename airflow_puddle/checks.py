"""Input checks the operators, sensors and the trigger share: no I/O, each naming its field.

The rules themselves live in the client's validation module (reached through
:mod:`airflow_puddle.hooks.api`); this module only adapts Airflow's shapes to them
(a ``timedelta``, a target given by id or by name, a flag).
"""

from __future__ import annotations

from datetime import timedelta

from airflow_puddle.hooks.api import ValidationFailedError, validate_name, validate_system_id, validate_wait_timeout


def timeout_seconds(timeout: object, field: str = "timeout") -> float:
    """A wait's timeout given as a ``timedelta`` or a number of seconds: finite, above zero, at most 30 days."""
    return validate_wait_timeout(timeout.total_seconds() if isinstance(timeout, timedelta) else timeout, field)


def check_flag(field: str, value: object) -> bool:
    """A boolean setting: ``True`` or ``False`` only (``"false"`` or ``"no"`` would read as true)."""
    if not isinstance(value, bool):
        raise ValidationFailedError(field, f"must be True or False, got {value!r}")
    return value


def check_target(system_id: object, system_name: object) -> None:
    """A task's rendered target: the ``system_id`` it was given, else the ``system_name``, checked as such."""
    if system_id is not None:
        validate_system_id(system_id)
    else:
        validate_name(system_name)


def exactly_one_target(system_id: object, system_name: object) -> None:
    """A task or watcher names its system one way: ``system_id`` or ``system_name``, never both or neither."""
    if (system_id is None) == (system_name is None):
        raise ValueError("system_id, system_name: give exactly one of them")
