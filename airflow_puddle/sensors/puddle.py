"""Sensors that wait for a system state, a config.toml upload, or free CU.

Each works in poke and reschedule mode; the state sensors also defer to the
triggerer (``deferrable=True``) after a first poke. A poke is one poll judged by
the client's wait engine, so Puddle being unavailable keeps the sensor waiting
rather than failing it. Defaults follow the Puddle client: poll every 5 s, give
up after 20 min. How a wait ends is read by the one verdict
(:func:`airflow_puddle.waits.verdict`), the same in every mode: a system that
fails fails the sensor at once (skipped with ``soft_fail``), a timeout is
``AirflowSensorTimeout``, and Puddle unavailable until the timeout is retried.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
)

from airflow_puddle.checks import check_flag, check_target, exactly_one_target, timeout_seconds
from airflow_puddle.domain.lifecycle import CONFIG_UPLOADED, WAIT_TARGETS, WaitTarget, check_wait_target
from airflow_puddle.hooks.api import (
    PuddleUnavailableError,
    ValidationFailedError,
    WaitProgress,
    narrator,
    validate_poll_interval,
)
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.hooks.user import PuddleHookUser
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


class _PuddleSensor(PuddleHookUser, BaseSensorOperator):
    def __init__(
        self,
        *,
        puddle_conn_id: str = PuddleHook.default_conn_name,
        cloud: str | None = None,
        poke_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        validate_poll_interval(poke_interval, "poke_interval")
        super().__init__(poke_interval=poke_interval, timeout=timeout_seconds(timeout), **kwargs)
        self.puddle_conn_id = puddle_conn_id
        self.cloud = cloud

    def execute(self, context: Context) -> Any:
        self._check()  # every rule that needs no server, before the first call
        self._started_at = time.time()
        self._unavailable = False
        with self.hook:
            try:
                return super().execute(context)
            except (AirflowSensorTimeout, AirflowSkipException) as err:
                if self._unavailable:  # the last poke could not reach Puddle: as the wait's verdict says, retry
                    raise PuddleUnavailableError(f"Puddle unavailable until the sensor's timeout: {err}") from err
                raise

    def _check(self) -> None:
        """Check the rendered arguments; subclasses add theirs."""

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One look; a rejected key fails it at once, inside the sensor's own ``soft_fail`` handling."""
        with permanent_errors_fail():
            return self._poke(context)

    def _poke(self, context: Context) -> bool | PokeReturnValue:
        raise NotImplementedError

    def _deadline(self, context: Context) -> tuple[float, DeadlineOf]:
        """When the wait ends: the sensor's ``timeout`` from its first try's start in reschedule mode (else
        this one's), or the end of ``execution_timeout`` if sooner; and which of the two it is."""
        start = self._started_at
        if self.reschedule:
            first = context["ti"].get_first_reschedule_date(context)
            if first is not None:
                start = first.timestamp()
        return wait_deadline(context, self.timeout, self.execution_timeout, start)

    def _narrate(self, progress: WaitProgress) -> None:
        """Tell the task log, and note whether this poke found Puddle unavailable."""
        self._unavailable = progress.kind == "unavailable"
        narrator(self.log)(progress)


class PuddleSystemStateSensor(_PuddleSensor):
    """Wait until a system is ``started``, ``stopped``, ``terminated`` or ``failed``.

    :param system_id: The system to watch (or give ``system_name``).
    :param system_name: The name of the system to watch (or give ``system_id``). No system
        of that name counts as terminated, and fails a wait for any other state.
    :param target_state: The state to wait for.
    :param deferrable: After a first poke, wait in the triggerer; the sensor's ``timeout`` stays enforced.
    """

    template_fields: Sequence[str] = ("system_id", "system_name", "puddle_conn_id")
    target_states: tuple[WaitTarget, ...] = tuple(WAIT_TARGETS)

    def __init__(
        self,
        *,
        system_id: str | None = None,
        system_name: str | None = None,
        target_state: str = "started",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        exactly_one_target(system_id, system_name)
        self.system_id = system_id
        self.system_name = system_name
        self.target_state = check_wait_target(target_state, "target_state", self.target_states)
        self.deferrable = default_deferrable() if deferrable is None else check_flag("deferrable", deferrable)

    def _check(self) -> None:
        check_target(self.system_id, self.system_name)  # system_id="" names system_id, not name

    def _target_id(self) -> str | None:
        """The watched system's id; by name, None when no such system exists."""
        if self.system_id:
            return self.system_id
        system = self._client.find_by_name(str(self.system_name))
        return system.id if system is not None else None

    def _poke(self, context: Context) -> bool | PokeReturnValue:
        self._unavailable = False
        system_id = self._target_id()
        if system_id is None:
            if self.target_state == "terminated":
                self.log.info("No system named %r: it is terminated", self.system_name)
                return PokeReturnValue(is_done=True, xcom_value=None)
            raise AirflowFailException(f"no system named {self.system_name!r}: it will not become "
                                       f"{self.target_state}")
        deadline, deadline_of = self._deadline(context)
        outcome = self._client.check(system_id, self.target_state, on_state=self._narrate, deadline=deadline)
        if outcome is None:
            if self.deferrable:
                defer_wait(self, system_id=system_id, target=self.target_state, deadline=deadline,
                           puddle_conn_id=self.puddle_conn_id, cloud=self.cloud, poll_interval=self.poke_interval,
                           deadline_of=deadline_of)
            return False
        event = outcome_event(outcome, deadline=deadline, owns_system=False, deadline_of=deadline_of)
        return PokeReturnValue(is_done=True, xcom_value=verdict(event, sensor=True) or None)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: the same verdict as a poke's (``soft_fail`` skips as a poke's would)."""
        try:
            return verdict(event, sensor=True) or None
        except AirflowTaskTimeout as err:  # not an AirflowException: Airflow's resume would not skip it
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from err
            raise


class PuddleConfigTomlUploadedSensor(PuddleSystemStateSensor):
    """Wait until a system's config.toml upload is done; fails at once if the upload fails."""

    target_states = (CONFIG_UPLOADED,)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(target_state=CONFIG_UPLOADED, **kwargs)


MAX_CU = 1_000_000


def cu_needed(cu: object) -> int:
    """A CU count: a whole number from 1 (digits in a rendered template count); NaN, floats, booleans refused."""
    if isinstance(cu, str) and cu.strip().isdigit():
        cu = int(cu.strip())
    if isinstance(cu, bool) or not isinstance(cu, int) or not 1 <= cu <= MAX_CU:
        raise ValidationFailedError("cu", f"must be a whole number of compute units from 1 to {MAX_CU:,}, "
                                          f"got {cu!r}")
    return cu


class PuddleCUAvailableSensor(_PuddleSensor):
    """Wait until at least ``cu`` compute units are free in the shared Puddle quota.

    :param cu: How many CU must be available.
    """

    template_fields: Sequence[str] = ("cu", "puddle_conn_id")

    def __init__(self, *, cu: int | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (isinstance(cu, str) and "{{" in cu):  # a template is checked once rendered
            cu_needed(cu)
        self.cu = cu

    def _check(self) -> None:
        cu_needed(self.cu)

    def _poke(self, context: Context) -> bool | PokeReturnValue:
        needed = cu_needed(self.cu)
        self._unavailable = False
        try:
            info = self._client.get_cu_consumption_info()
        except PuddleUnavailableError as err:  # as a wait does: poll on, and retry if it lasts until the timeout
            self._unavailable = True
            self.log.warning("Puddle unavailable while waiting for %d CU (%s); poking on", needed, err)
            return False
        self.log.info("%d CU available (%d consumed); need %d", info.available_cu, info.consumed_cu, needed)
        if info.available_cu >= needed:
            return PokeReturnValue(is_done=True, xcom_value={"available_cu": info.available_cu,
                                                              "consumed_cu": info.consumed_cu})
        return False
