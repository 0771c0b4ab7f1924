"""PuddleSystemStateTrigger: waits, in the triggerer, for a system to reach a state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_puddle.client.errors import PuddleError, PuddleUnavailableError
from airflow_puddle.domain.lifecycle import ALL_WAIT_TARGETS, CONFIG_UPLOADED, wait_verdict
from airflow_puddle.hooks.puddle import PuddleHook


class PuddleSystemStateTrigger(BaseTrigger):
    """Poll a system until it reaches ``target``, fails, or ``deadline`` passes.

    It carries only ids, the target, the poll interval and an absolute deadline (a
    Unix timestamp), so nothing secret lands in the trigger table and a restarted
    triggerer resumes the same deadline. It yields one event: ``status`` is
    ``success``, ``failed`` (the system failed, was terminated, or the upload
    failed), ``timeout`` or ``error`` (a permanent error such as a rejected key),
    with the system's public fields under ``system``.

    :param system_id: The system to watch.
    :param target: ``started``, ``stopped``, ``terminated``, ``failed`` or ``config_uploaded``.
    :param deadline: Unix timestamp after which the wait gives up.
    :param puddle_conn_id: The ``puddle`` connection.
    :param cloud: Cloud id overriding the connection's.
    :param poll_interval: Seconds between polls.
    :param owns_system: The waiting task created this system and should clean it up:
        a user's kill of the deferred task terminates it, and events say so.
    """

    def __init__(
        self,
        *,
        system_id: str,
        target: str,
        deadline: float,
        puddle_conn_id: str = PuddleHook.default_conn_name,
        cloud: str | None = None,
        poll_interval: float = 5.0,
        owns_system: bool = False,
    ) -> None:
        super().__init__()
        if not system_id:
            raise ValueError("system_id: is required")
        if target not in ALL_WAIT_TARGETS:
            raise ValueError(f"target: must be one of {', '.join(ALL_WAIT_TARGETS)}, got {target!r}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval: must be positive, got {poll_interval}")
        self.system_id = system_id
        self.target = target
        self.deadline = float(deadline)
        self.puddle_conn_id = puddle_conn_id
        self.cloud = cloud
        self.poll_interval = float(poll_interval)
        self.owns_system = owns_system

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "system_id": self.system_id,
                "target": self.target,
                "deadline": self.deadline,
                "puddle_conn_id": self.puddle_conn_id,
                "cloud": self.cloud,
                "poll_interval": self.poll_interval,
                "owns_system": self.owns_system,
            },
        )

    def _event(self, status: str, message: str, system: dict[str, Any] | None = None) -> TriggerEvent:
        return TriggerEvent(
            {"status": status, "target": self.target, "system_id": self.system_id, "system": system,
             "message": message, "deadline": self.deadline, "owns_system": self.owns_system}
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = PuddleHook(self.puddle_conn_id, cloud=self.cloud)
        try:
            client = await hook.aget_systems_client()
        except Exception as err:  # a broken connection is permanent: say so at once
            yield self._event("error", f"connection {self.puddle_conn_id!r}: {err}")
            return
        start, seen = time.monotonic(), None
        try:
            while True:
                try:
                    system = await client.get(self.system_id)
                except PuddleUnavailableError as err:
                    self.log.warning("Puddle unavailable while waiting for %s, polling on: %s", self.target, err)
                    system = None
                    if time.time() >= self.deadline:
                        yield self._event("timeout", f"backend unavailable until the deadline: {err}")
                        return
                else:
                    if system is None:
                        yield self._event("failed", f"system {self.system_id} not found")
                        return
                    state = system.config_status_text if self.target == CONFIG_UPLOADED else system.status_text
                    if state != seen:
                        self.log.info("system %s (%s): %s after %.0fs",
                                      system.name, self.system_id, state, time.monotonic() - start)
                        seen = state
                    verdict = wait_verdict(self.target, system.status, system.config_status)
                    if verdict is not None:
                        message = f"system {system.name} ({self.system_id}) is {state}"
                        yield self._event("success" if verdict == "reached" else "failed", message,
                                          system.to_dict())
                        return
                    if time.time() >= self.deadline:
                        yield self._event("timeout", f"system {system.name} ({self.system_id}) still {state} "
                                                     f"at the deadline waiting for {self.target}", system.to_dict())
                        return
                await asyncio.sleep(max(0.0, min(self.poll_interval, self.deadline - time.time())))
        except PuddleError as err:
            yield self._event("error", f"{type(err).__name__}: {err}")
        finally:
            await client.authorizer.close()  # type: ignore[attr-defined]

    async def on_kill(self) -> None:
        """A user killed the deferred task: terminate the system if this wait owns it.

        Airflow 3.3.2 re-sends the user-action cancel on every triggerer loop (about 1 s)
        until the trigger ends, which would cancel a longer ``on_kill``. So the termination
        runs as its own task on the triggerer's loop and is only awaited here, shielded.
        """
        if not self.owns_system:
            self.log.info("Task killed; Puddle carries on with system %s", self.system_id)
            return
        task = asyncio.create_task(self._discard(), name=f"puddle-discard-{self.system_id}")
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)
        await asyncio.shield(task)

    async def _discard(self) -> None:
        client = await PuddleHook(self.puddle_conn_id, cloud=self.cloud).aget_systems_client()
        try:
            self.log.warning("Task killed: terminating system %s that this task created", self.system_id)
            await client.discard(self.system_id, timeout_s=120)
            self.log.warning("Task killed: system %s is terminating", self.system_id)
        except PuddleError as err:
            self.log.warning("Task killed; could not terminate system %s: %s", self.system_id, err)
        finally:
            await client.authorizer.close()  # type: ignore[attr-defined]


_BACKGROUND: set[asyncio.Task[None]] = set()
"""Terminations started by :meth:`PuddleSystemStateTrigger.on_kill`, kept referenced until they end."""
