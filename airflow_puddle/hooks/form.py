"""The Puddle connection form: extra fields and relabelling, declared once.

Airflow 3 reads these from the provider info (``conn-fields``, ``ui-field-behaviour``);
the hook also returns them for Airflow's older form hooks. No Airflow import here,
so the providers manager can read it cheaply.
"""

from __future__ import annotations

from typing import Any

from airflow_puddle.client import RetryPolicy
from airflow_puddle.domain.clouds import ALL_CLOUDS
from airflow_puddle.domain.defaults import CALL_TIMEOUT_S

_RETRY = RetryPolicy()

CLIENT_CHOICES = ("builtin", "puddle")
"""``extra.client``: this provider's own client (for the emulator) or H2O's ``puddle.client`` (a real Puddle)."""

BUILTIN_ONLY = ("ca_cert", "timeout", "retries", "retry_max_wait")
"""Extras only the builtin client has: the official ``puddle.client`` documents no such setting."""

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "client": {
        "label": "Client",
        "schema": {"type": ["string", "null"], "enum": [None, *CLIENT_CHOICES], "default": "builtin"},
        "description": "builtin (the provider's own client, for the Puddle emulator) or puddle (H2O's "
                       "puddle.client package, installed separately, for a real Puddle; it has no CA "
                       "certificate, timeout or retry settings).",
    },
    "cloud": {
        "label": "Cloud",
        # No default: a form default is saved into every connection's extra, and Airflow warns
        # about any extra string under 5 characters ("Skipping masking ... too short").
        "schema": {"type": ["string", "null"], "enum": [None, *[c.id for c in ALL_CLOUDS]]},
        "description": "Cloud the systems run on: aws (when empty), azure or gcp.",
    },
    "ca_cert": {
        "label": "CA certificate (PEM)",
        "schema": {"type": ["string", "null"]},
        "description": "PEM text of a private CA for TLS; leave empty for the system roots.",
    },
    "timeout": {
        "label": "Per-call timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": CALL_TIMEOUT_S},
        "description": "Deadline of each gRPC call.",
    },
    "retries": {
        "label": "Retries of a failed read",
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 20, "default": _RETRY.max_attempts - 1},
        "description": "How often a read that failed transiently is tried again (changes are never retried).",
    },
    "retry_max_wait": {
        "label": "Longest wait between retries (seconds)",
        "schema": {"type": ["number", "null"], "default": _RETRY.max_backoff_s},
        "description": "Backoff grows exponentially, with jitter, up to this.",
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema"],
    "relabeling": {"login": "API key ID", "password": "API secret key", "host": "Server address"},
    "placeholders": {
        "host": "https://puddle.example.com (http://127.0.0.1 for the emulator)",
        "port": "443 (or part of the address)",
        "login": "PUDDLE_API_KEY_ID",
        "password": "PUDDLE_API_SECRET_KEY",
    },
}
