"""PuddleBaseSystemOperator: what the system operators share (targeting, the hook, waits, deferral).

A wait runs in the worker (``deferrable=False``) or in the triggerer (``deferrable=True``),
through the client's one wait engine, with one absolute deadline either way; both end in the
same :class:`~airflow_puddle.waits.WaitEvent`, read in :meth:`PuddleBaseSystemOperator._complete`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_puddle.checks import check_flag, check_target, timeout_seconds
from airflow_puddle.domain.lifecycle import (
    MOVING_TOWARD,
    SETTLED,
    STABLE_SYSTEM_STATUSES,
    WAIT_TARGETS,
    StateTarget,
    WaitTarget,
)
from airflow_puddle.hooks.api import (
    PreconditionFailedError,
    System,
    TagData,
    ValidationFailedError,
    WaitOutcome,
    narrator,
    validate_poll_interval,
    validate_tags,
)
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.hooks.user import PuddleHookUser
from airflow_puddle.links.puddle import PuddleSystemLink
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger
from airflow_puddle.waits import DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT, default_deferrable, event_system, outcome_event

if TYPE_CHECKING:
    from airflow.sdk import Context


def tag_data(tags: object) -> list[TagData]:
    """Tags given as ``{label: value}`` or a list of :class:`TagData`, checked as the client checks them.

    A value is taken as it is, never as its ``str()``: ``{"Team": None}`` is refused, naming the tag.
    """
    if tags is None:
        return []
    if isinstance(tags, dict):
        validate_tags(tags.items())
        return [TagData(k, v) for k, v in tags.items()]
    if isinstance(tags, list | tuple) and all(isinstance(t, TagData) for t in tags):
        validate_tags((t.label, t.value) for t in tags)
        return list(tags)
    raise ValidationFailedError("tags", f"must be a dict of label to value or a list of TagData, got {tags!r}")


class PuddleBaseSystemOperator(PuddleHookUser, BaseOperator):
    """What the system operators share: targeting, the hook, waits and deferral.

    :param system_id: Id of the system (or give ``system_name``).
    :param system_name: Name of the system (or give ``system_id``).
    :param puddle_conn_id: The ``puddle`` connection.
    :param cloud: Cloud id overriding the connection's ``cloud`` extra.
    :param wait_for_completion: Wait until the system reaches the goal.
    :param deferrable: Wait in the triggerer instead of the worker; default ``[operators] default_deferrable``.
    :param poll_interval: Seconds between status checks.
    :param timeout: How long to wait in all; enforced while deferred too.
    """

    template_fields: Sequence[str] = ("system_id", "system_name", "puddle_conn_id")
    operator_extra_links = (PuddleSystemLink(),)
    ui_color = "#c7e7f7"

    def __init__(
        self,
        *,
        system_id: str | None = None,
        system_name: str | None = None,
        puddle_conn_id: str = PuddleHook.default_conn_name,
        cloud: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (system_id is None) == (system_name is None):
            raise ValueError(f"{self.task_id}: give exactly one of system_id and system_name")
        self.system_id = system_id
        self.system_name = system_name
        self.puddle_conn_id = puddle_conn_id
        self.cloud = cloud
        self.wait_for_completion = check_flag("wait_for_completion", wait_for_completion)
        self.deferrable = default_deferrable() if deferrable is None else check_flag("deferrable", deferrable)
        self.poll_interval = validate_poll_interval(poll_interval)
        self.timeout = timeout
        self.timeout_s = timeout_seconds(timeout)

    # ------------------------------------------------------------------ Airflow entry points

    def execute(self, context: Context) -> Any:
        self._check()  # every rule that needs no server, before the first call
        with self.hook:
            return self._act(context, time.time() + self.timeout_s)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired."""
        with self.hook:
            return self._complete(context, event)

    def on_kill(self) -> None:
        self.log.info("Task killed; Puddle carries on with the operation on %s", self._what())

    # ------------------------------------------------------------------ steps, for subclasses

    def _check(self) -> None:
        """Check the rendered arguments (templates may render empty, ``None`` or a list); subclasses add theirs."""
        check_target(self.system_id, self.system_name)

    def _act(self, context: Context, deadline: float) -> Any:
        """The operator's own work, due by ``deadline``."""
        raise NotImplementedError

    def _complete(self, context: Context, event: dict[str, Any]) -> Any:
        """The one reading of a wait's end, whether it ran in the worker or the triggerer."""
        if event.get("status") != "success":
            self._on_wait_failure(event)
        return self._after_wait(context, event_system(event), str(event["target"]), float(event["deadline"]))

    def _after_wait(self, context: Context, data: dict[str, Any], target: str, deadline: float) -> Any:
        """The wait for ``target`` succeeded; subclasses may chain another step."""
        return self._result(context, data)

    def _on_wait_failure(self, event: dict[str, Any]) -> NoReturn:
        """A wait ended badly; subclasses may clean up before the task fails."""
        raise AirflowException(str(event.get("message")))

    # ------------------------------------------------------------------ helpers

    def _what(self) -> str:
        return f"system {self.system_id}" if self.system_id else f"system named {self.system_name!r}"

    def _find_system(self) -> System | None:
        """The targeted system, or None when it does not exist (or was terminated, by name)."""
        if self.system_id:
            return self._client.get(self.system_id)
        return self._client.find_by_name(str(self.system_name))

    def _require_system(self) -> System:
        system = self._find_system()
        if system is None:
            raise AirflowException(f"{self._what()} not found")
        return system

    def _call(self, action: str, system: System, *args: Any) -> System:
        """Ask Puddle to ``action`` the system; a state that does not allow it fails the task clearly."""
        try:
            changed: System = getattr(self._client, action)(system.id, *args)
        except PreconditionFailedError as err:
            raise AirflowException(f"cannot {action.replace('_', ' ')} system {system.name}: {err}") from err
        self.log.info("Asked Puddle to %s system %s", action.replace("_", " "), system.name)
        return changed

    def _wait(self, system_id: str, target: WaitTarget, deadline: float) -> WaitOutcome:
        return self._client.wait(system_id, target, deadline=deadline, poll_interval_s=self.poll_interval,
                                 on_state=narrator(self.log))

    def _settle(self, system: System, deadline: float) -> System:
        """Wait in the worker until a system in some unrelated transition becomes stable."""
        if system.status in STABLE_SYSTEM_STATUSES:
            return system
        self.log.info("System %s is %s; waiting for it to settle", system.name, system.status_text)
        outcome = self._wait(system.id, SETTLED, deadline)
        if not outcome.reached or outcome.system is None:
            raise AirflowException(outcome.message)
        return outcome.system

    def _finish(self, context: Context, system: System, target: WaitTarget, deadline: float,
                owns: bool = False) -> Any:
        """Wait for ``target`` (in the worker or the triggerer) and return the system's dict.

        ``owns`` marks a system this try created, for :meth:`_on_wait_failure`. A deferred
        wait carries everything it needs in the trigger and its event, not in ``defer``
        kwargs, so it resumes the same however the task is run.
        """
        if not self.wait_for_completion:
            return self._result(context, system.to_dict())
        if self.deferrable:
            # Airflow resolves the extra link when a task defers: give it a value meanwhile.
            PuddleSystemLink.persist(context, system.default_url)
            self.defer(
                trigger=PuddleSystemStateTrigger(
                    system_id=system.id, target=target, deadline=deadline, puddle_conn_id=self.puddle_conn_id,
                    cloud=self.cloud, poll_interval=self.poll_interval, owns_system=owns,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=max(1.0, deadline - time.time())),
            )
        outcome = self._wait(system.id, target, deadline)
        return self._complete(context, dict(outcome_event(outcome, deadline=deadline, owns_system=owns)))

    def _result(self, context: Context, data: dict[str, Any]) -> dict[str, Any]:
        """Publish the system's URL for the link and return the dict for XCom."""
        PuddleSystemLink.persist(context, data.get("default_url", ""))
        self.log.info("System %s (%s) is %s", data.get("name"), data.get("id"), data.get("status_text"))
        return data

    def _reach(self, context: Context, target: StateTarget, action: str, deadline: float,
               system: System | None = None, *, again: bool = False) -> Any:
        """Bring the targeted system to ``target``, calling ``action`` only when it is needed.

        A system already moving toward ``target`` is waited on; one in another transition
        settles first. ``again``: call ``action`` even when the system is already there.
        """
        system = system or self._require_system()
        goal = WAIT_TARGETS[target].code
        if system.status in MOVING_TOWARD[target]:
            self.log.info("System %s is already %s; waiting for it", system.name, system.status_text)
            return self._finish(context, system, target, deadline)
        if not again and system.status == goal:
            self.log.info("System %s is already %s; nothing to do", system.name, system.status_text)
            return self._result(context, system.to_dict())
        system = self._settle(system, deadline)
        if not again and system.status == goal:
            return self._result(context, system.to_dict())
        return self._finish(context, self._call(action, system), target, deadline)
