"""A local Puddle emulator: the Puddle gRPC API over a SQLite state model.

Run it with ``puddle-emulator`` (see :mod:`airflow_puddle.emulator.__main__`)
or in-process with :class:`EmulatorServer`.
"""

from __future__ import annotations

from airflow_puddle.emulator.faults import FaultRegistry
from airflow_puddle.emulator.server import (
    DEFAULT_API_KEY_ID,
    DEFAULT_API_SECRET_KEY,
    DEFAULT_PORT,
    EmulatorServer,
)
from airflow_puddle.emulator.state import PuddleBackend

__all__ = [
    "DEFAULT_API_KEY_ID",
    "DEFAULT_API_SECRET_KEY",
    "DEFAULT_PORT",
    "EmulatorServer",
    "FaultRegistry",
    "PuddleBackend",
]
