"""What the layers above the hook may use of a Puddle client, whichever client the connection picks.

Operators, sensors, triggers, links, :mod:`airflow_puddle.waits` and the example DAGs take
Puddle names from here and clients from :class:`~airflow_puddle.hooks.puddle.PuddleHook`;
they never import :mod:`airflow_puddle.client` (``tests/test_layers.py`` enforces it). On the
objects the hook returns they use:

- :data:`DOCUMENTED`: the documented ``puddle.client`` API (``../shared/puddle-api``; the list
  is ``tests/official/documented_api.json``): the clients' documented methods, the models'
  documented properties and constants, the documented errors;
- :data:`EXTENSIONS`: what this provider adds, which the adapter (:mod:`airflow_puddle.hooks.adapter`)
  offers over a documented-only client too, each with how;
- :data:`CHECKS`: input rules, pure functions with no I/O, the same for both clients.

Nothing else: a system's ``tags`` or ``cu``, for example, are not documented, and read
through the official client they raise ``AttributeError``.
"""

from __future__ import annotations

from airflow_puddle.client.async_clients import AsyncSystemsClient
from airflow_puddle.client.clients import SystemsClient
from airflow_puddle.client.models import System, TagData
from airflow_puddle.client.waiting import WaitOutcome, WaitProgress, WaitTracker, narrator
from airflow_puddle.domain.errors import (
    AlreadyExistsError,
    AuthError,
    PreconditionFailedError,
    PuddleError,
    PuddleUnavailableError,
    TlsHandshakeError,
    ValidationFailedError,
)
from airflow_puddle.domain.validation import (
    validate_config_toml,
    validate_create,
    validate_deadline,
    validate_name,
    validate_poll_interval,
    validate_seconds,
    validate_system_id,
    validate_tags,
    validate_wait_timeout,
)

DOCUMENTED = ("SystemsClient", "System", "TagData", "AuthError", "PreconditionFailedError", "ValidationFailedError")
"""Names of the documented API exported here (their documented members are allowed too)."""

EXTENSIONS: dict[str, str] = {
    # names exported here
    "AsyncSystemsClient": "the async twin; over the official client, each call runs in a bounded thread pool",
    "PuddleError": "the root of our errors; the adapter maps the official package's errors into the tree",
    "PuddleUnavailableError": "Puddle unreachable or failing transiently; from the official client, a raw "
                              "UNAVAILABLE (or similar) gRPC error, a ConnectionError or a TimeoutError",
    "AlreadyExistsError": "create's duplicate name; from the official client, a PreconditionFailedError of "
                          "create after which a system of that name is found",
    "TlsHandshakeError": "a TLS handshake that cannot succeed (a wrong certificate); from the official client, "
                         "a raw gRPC error that says so",
    "WaitOutcome": "how a wait ended (the wait engine's result), no I/O",
    "WaitProgress": "one line of a wait's narration, no I/O",
    "WaitTracker": "the wait engine's judge, no I/O: the trigger judges shared snapshots with it",
    "narrator": "turns a wait's progress into log lines, no I/O",
    # members of the objects the hook returns
    "wait": "SystemsClient.wait: the one wait loop, over the documented get",
    "check": "SystemsClient.check: one poll judged as a wait would, over the documented get",
    "discard": "SystemsClient.discard: fail (if in transition), wait until settled, terminate",
    "to_dict": "System.to_dict: the public fields, no password; over the official client the documented ones",
    "close": "Authorizer.close: closes our channel; a no-op over the official client, which documents none",
}
"""What the provider uses beyond the documented API, and how the adapter provides each over the official client."""

CHECKS = ("validate_config_toml", "validate_create", "validate_deadline", "validate_name", "validate_poll_interval",
          "validate_seconds", "validate_system_id", "validate_tags", "validate_wait_timeout")
"""Input rules (no I/O), the same whichever client is chosen."""

__all__ = [
    "AlreadyExistsError", "AsyncSystemsClient", "AuthError", "PreconditionFailedError", "PuddleError",
    "PuddleUnavailableError", "System", "SystemsClient", "TagData", "TlsHandshakeError", "ValidationFailedError",
    "WaitOutcome", "WaitProgress", "WaitTracker", "narrator",
    "validate_config_toml", "validate_create", "validate_deadline", "validate_name", "validate_poll_interval",
    "validate_seconds", "validate_system_id", "validate_tags", "validate_wait_timeout",
]
