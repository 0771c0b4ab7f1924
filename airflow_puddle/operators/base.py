"""PuddleBaseSystemOperator: what the system operators share (targeting, the hook, waits, deferral).

Every wait runs in the worker (``deferrable=False``) or, all of them, in the triggerer
(``deferrable=True``), with one absolute deadline either way; both end in the same
:class:`~airflow_puddle.waits.WaitEvent`, read by :func:`~airflow_puddle.waits.verdict`. A wait
for the goal resumes in ``execute_complete``; a wait on the way (a system in another transition
settling first) resumes in ``execute_again``, which looks at the system and acts anew.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_puddle.checks import check_flag, check_target, exactly_one_target, timeout_seconds
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
    narrator,
    validate_poll_interval,
    validate_tags,
)
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.hooks.user import PuddleHookUser
from airflow_puddle.links.puddle import PuddleSystemLink
from airflow_puddle.operators.record import OPERATIONS, Operation, Requests
from airflow_puddle.triggers.puddle import defer_wait
from airflow_puddle.waits import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    DeadlineOf,
    default_deferrable,
    outcome_event,
    permanent_errors_fail,
    verdict,
    wait_deadline,
)

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


SENT_FIRST: tuple[Operation, ...] = ("restart", "update_config_toml")
"""Requests recorded just before they are sent too: a retry cannot tell from the system's state alone whether
they went through (a restarted system is Started again; an uploaded config is Uploaded, as before)."""


class PuddleBaseSystemOperator(PuddleHookUser, BaseOperator):
    """What the system operators share: targeting, the hook, waits and deferral.

    :param system_id: Id of the system (or give ``system_name``).
    :param system_name: Name of the system (or give ``system_id``).
    :param puddle_conn_id: The ``puddle`` connection.
    :param cloud: Cloud id overriding the connection's ``cloud`` extra.
    :param wait_for_completion: Wait until the system reaches the goal.
    :param deferrable: Wait in the triggerer instead of the worker; default ``[operators] default_deferrable``.
    :param poll_interval: Seconds between status checks.
    :param timeout: How long to wait in all; enforced while deferred too, as is ``execution_timeout``
        (a wait past it ends with ``AirflowTaskTimeout``).
    :param keep_task_state: After a user's Clear, reconnect to the system an earlier try asked
        for (and keep owning one it created) instead of starting fresh. Retries always reconnect.
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
        keep_task_state: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        exactly_one_target(system_id, system_name)
        self.system_id = system_id
        self.system_name = system_name
        self.puddle_conn_id = puddle_conn_id
        self.cloud = cloud
        self.wait_for_completion = check_flag("wait_for_completion", wait_for_completion)
        self.deferrable = default_deferrable() if deferrable is None else check_flag("deferrable", deferrable)
        self.poll_interval = validate_poll_interval(poll_interval)
        self.timeout = timeout
        self.timeout_s = timeout_seconds(timeout)
        self.keep_task_state = check_flag("keep_task_state", keep_task_state)
        self._deadline_of: DeadlineOf = "timeout"

    # ------------------------------------------------------------------ Airflow entry points

    def execute(self, context: Context) -> Any:
        self._check()  # every rule that needs no server, before the first call
        deadline, self._deadline_of = wait_deadline(context, self.timeout_s, self.execution_timeout, time.time())
        with permanent_errors_fail(), self.hook:
            self._begin(context)
            return self._act(context, deadline)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: the wait for the operator's goal ended."""
        with permanent_errors_fail(), self.hook:
            self._begin(context)
            return self._complete(context, event)

    def execute_again(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: a wait on the way (a transition to settle) ended; act anew."""
        with permanent_errors_fail(), self.hook:
            self._begin(context)
            return self._again(context, event)

    def on_kill(self) -> None:
        self.log.info("Task killed; Puddle carries on with the operation on %s", self._what())

    # ------------------------------------------------------------------ steps, for subclasses

    def _begin(self, context: Context) -> None:
        """Read this task instance's record of what it asked Puddle for (:mod:`.record`)."""
        self._requests = Requests(context, self.log, keep_task_state=self.keep_task_state)

    def _check(self) -> None:
        """Check the rendered arguments (templates may render empty, ``None`` or a list); subclasses add theirs."""
        check_target(self.system_id, self.system_name)

    def _act(self, context: Context, deadline: float) -> Any:
        """The operator's own work, due by ``deadline``; called anew after each wait on the way."""
        raise NotImplementedError

    def _complete(self, context: Context, event: dict[str, Any]) -> Any:
        """The end of the wait for the goal, wherever it ran, read through the one :func:`verdict`."""
        self._deadline_of = event.get("deadline_of", "timeout")
        if event.get("status") != "success":
            self._on_wait_failure(event)
        data = verdict(event, sensor=False)
        return self._after_wait(context, data, str(event["target"]), float(event["deadline"]))

    def _again(self, context: Context, event: dict[str, Any]) -> Any:
        """The end of a wait on the way: judged by the same verdict, then the operator looks and acts again."""
        self._deadline_of = event.get("deadline_of", "timeout")
        verdict(event, sensor=False)
        return self._act(context, float(event["deadline"]))

    def _after_wait(self, context: Context, data: dict[str, Any], target: str, deadline: float) -> Any:
        """The wait for ``target`` succeeded; subclasses may chain another step."""
        return self._result(context, data)

    def _on_wait_failure(self, event: dict[str, Any]) -> None:
        """A wait for the goal ended badly; subclasses may clean up before :func:`verdict` fails the task."""

    # ------------------------------------------------------------------ helpers

    def _what(self) -> str:
        return f"system {self.system_id}" if self.system_id else f"system named {self.system_name!r}"

    def _find_system(self) -> System | None:
        """The targeted system, or None when it does not exist (or was terminated, by name).

        The system a request of this task instance went to is found by its recorded id, never by name.
        """
        recorded = self._recorded()
        if recorded is not None:
            return recorded
        if self.system_id:
            return self._client.get(self.system_id)
        return self._client.find_by_name(str(self.system_name))

    def _recorded(self) -> System | None:
        """The system this task instance's record names, by id; None (and the record dropped) if it is gone."""
        request = self._requests.current
        if request is None or not request.system_id:
            return None
        system = self._client.get(request.system_id)
        if system is None or system.status == System.SYSTEM_STATUS_TERMINATED.code:
            self._requests.forget()  # gone: the next request starts a new record
            return None
        if request.try_number != self._requests.try_number:
            self.log.info("Try %d asked Puddle to %s system %s (%s); reconnecting to it by id%s",
                          request.try_number, request.operation.replace("_", " "), system.name, system.id,
                          " (created by this task instance)" if request.created else "")
        return system

    def _asked(self, operation: Operation, system: System | None = None) -> bool:
        """Whether Puddle already accepted ``operation`` for this task instance (on this try or an earlier one).

        One sent with no answer recorded (the worker died in between) counts as accepted when the
        system is in a transition, or changed since the second it was sent (Puddle's ``updated``,
        whole seconds): a restart or an upload that went through changes it, and the operators send
        them only to a system at rest.
        """
        request = self._requests.current
        if request is None or request.operation != operation:
            return False
        if not request.sent:
            return True
        system = system or self._require_system()
        accepted = system.id == request.system_id and (
            bool(system.in_transition) or system.updated >= math.floor(request.asked_at))
        self.log.info("Try %d sent a %s to system %s and stopped before its answer; the system %s",
                      request.try_number, operation.replace("_", " "), system.name,
                      "changed since: it went through" if accepted else "did not change since: asking again")
        return accepted

    def _owned(self, system_id: str) -> bool:
        """Whether a failed wait on ``system_id`` should clean it up; the create operator's rule."""
        return False

    def _require_system(self) -> System:
        system = self._find_system()
        if system is None:
            raise AirflowFailException(f"{self._what()} not found")
        return system

    def _call(self, action: str, system: System, *args: Any) -> System:
        """Ask Puddle to ``action`` the system; a state that does not allow it fails the task clearly."""
        earlier = self._requests.current
        if action in SENT_FIRST:
            self._requests.write(action, system.id, sent=True)
        try:
            changed: System = getattr(self._client, action)(system.id, *args)
        except PreconditionFailedError as err:
            self._requests.restore(earlier)  # refused: nothing was done
            raise AirflowException(f"cannot {action.replace('_', ' ')} system {system.name}: {err}") from err
        self.log.info("Asked Puddle to %s system %s", action.replace("_", " "), system.name)
        if action in OPERATIONS:
            self._requests.write(action, system.id)
        return changed

    def _wait(self, context: Context, system: System, target: WaitTarget, deadline: float, *,
              then: str = "execute_complete") -> Any:
        """Wait for ``target``, in the triggerer (deferrable) or here, then resume in ``then`` with the event.

        ``then`` is ``execute_complete`` for the operator's goal (no wait with ``wait_for_completion``
        off: the system's dict at once), ``execute_again`` for a wait on the way. A goal's wait carries
        whether this task instance owns the system (:meth:`_owned`), for :meth:`_on_wait_failure`.
        """
        goal = then == "execute_complete"
        if goal and not self.wait_for_completion:
            return self._result(context, system.to_dict())
        owns = goal and self._owned(system.id)
        if self.deferrable:
            # Airflow resolves the extra link when a task defers: give it a value meanwhile.
            PuddleSystemLink.persist(context, system.default_url)
            defer_wait(self, system_id=system.id, target=target, deadline=deadline,
                       puddle_conn_id=self.puddle_conn_id, cloud=self.cloud, poll_interval=self.poll_interval,
                       owns_system=owns, method_name=then, deadline_of=self._deadline_of)
        outcome = self._client.wait(system.id, target, deadline=deadline, poll_interval_s=self.poll_interval,
                                    on_state=narrator(self.log))
        event = dict(outcome_event(outcome, deadline=deadline, owns_system=owns, deadline_of=self._deadline_of))
        return self._complete(context, event) if goal else self._again(context, event)

    def _settle(self, context: Context, system: System, deadline: float) -> Any:
        """Wait until a system in some unrelated transition is stable, then act anew (:meth:`execute_again`)."""
        self.log.info("System %s is %s; waiting for it to settle", system.name, system.status_text)
        return self._wait(context, system, SETTLED, deadline, then="execute_again")

    def _result(self, context: Context, data: dict[str, Any]) -> dict[str, Any]:
        """Publish the system's URL for the link and return the dict for XCom."""
        PuddleSystemLink.persist(context, data.get("default_url", ""))
        self.log.info("System %s (%s) is %s", data.get("name"), data.get("id"), data.get("status_text"))
        return data

    def _reach(self, context: Context, target: StateTarget, action: str, deadline: float,
               system: System | None = None, *, again: bool = False) -> Any:
        """Bring the targeted system to ``target``, calling ``action`` only when it is needed.

        A system already moving toward ``target`` is waited on; one in another transition
        settles first, and the operator then looks again. ``again``: call ``action`` even when
        the system is already there.
        """
        system = system or self._require_system()
        goal = WAIT_TARGETS[target].code
        if system.status in MOVING_TOWARD[target]:
            self.log.info("System %s is already %s; waiting for it", system.name, system.status_text)
            return self._wait(context, system, target, deadline)
        if not again and system.status == goal:
            self.log.info("System %s is already %s; nothing to do", system.name, system.status_text)
            return self._result(context, system.to_dict())
        if system.status not in STABLE_SYSTEM_STATUSES:
            return self._settle(context, system, deadline)
        return self._wait(context, self._call(action, system), target, deadline)
