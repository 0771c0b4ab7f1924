"""Names both ends of the wire agree on, beyond what the ``.proto`` files say."""

from __future__ import annotations

TOKEN_METADATA_KEY = "x-puddle-token"
"""The call metadata that carries the login token (gRPC keys are lower case)."""
