"""Register a secret with Airflow's secrets masker without the registration echoing it at DEBUG.

``airflow.sdk.log.mask_secret`` adds the value to the task process's masker and sends
``MaskSecret(value=...)`` to the supervisor, whose masker redacts the task log. Airflow 3.3's
in-process supervisor (``dag.test()``, ``airflow dags test``) logs every request at DEBUG with its
``repr`` -- ``Sending request msg=MaskSecret(value='<the secret>')``, and the masker does not look
inside a pydantic model, so the secret is written out by the very call meant to hide it.
:func:`mask_secret_quietly` sends the same message with the value left out of its ``repr``: the
supervisor decodes it as an ordinary ``MaskSecret`` (same fields, same ``type``) and masks as before.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from airflow.sdk.log import mask_secret

try:
    from airflow.sdk.execution_time.comms import MaskSecret
    from pydantic import Field, JsonValue

    class _QuietMaskSecret(MaskSecret):
        """``MaskSecret`` whose ``repr`` (and so any log line showing it) leaves the value out."""

        value: JsonValue = Field(repr=False)

except ImportError:  # pragma: no cover - a task SDK without this message: fall back to mask_secret
    _QuietMaskSecret = None  # type: ignore[assignment,misc]


def mask_secret_quietly(secret: str) -> None:
    """Mask ``secret`` in task logs (task process and supervisor) without logging it at any level."""
    if _QuietMaskSecret is None:
        mask_secret(secret)
        return
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    _secrets_masker().add_mask(secret)
    comms: Any = None
    with suppress(Exception):
        from airflow.sdk.execution_time import task_runner

        comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is not None:
        # As mask_secret does: a failed send must not fail the task (the local mask is in place).
        with suppress(Exception):
            comms.send(_QuietMaskSecret(value=secret))
