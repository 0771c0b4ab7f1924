"""The defaults, defined once: the client, the provider's waits, the operators and the hook read them here.

The first four are the documented ``SystemsClient`` constants (``DEFAULT_DISK_SIZE``,
``DEFAULT_IDLE_TIMEOUT_MIN``, ``POLL_INTERVAL_S``, ``POLL_TIMEOUT_MINUTES``); the client's
class attributes of those names are these values.
"""

from __future__ import annotations

DISK_SIZE_GB = 256
"""A new system's disk, in GB (the rule allows 256..1024)."""
IDLE_INTERVAL_MIN = 60
"""A new system's idle timeout, in minutes (the rule allows 1..240)."""
POLL_INTERVAL_S = 5.0
"""Seconds between two polls of a wait."""
WAIT_TIMEOUT_MIN = 20.0
"""Minutes a wait lasts in all before it gives up."""
CALL_TIMEOUT_S = 30.0
"""The deadline of one call (an Authorizer's ``timeout_s``, a connection's ``extra.timeout``)."""
DISCARD_TIMEOUT_S = 120.0
"""How long ``discard`` waits for a system in transition to settle before it terminates it."""
