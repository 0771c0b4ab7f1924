"""Sensors that wait for a system state, a config.toml upload, or free CU.

Each works in poke and reschedule mode; the state sensors also defer to the
triggerer (``deferrable=True``). Defaults follow the Puddle client: poll every
5 s, give up after 20 min. A system that fails fails the sensor at once (or
skips it with ``soft_fail``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

from airflow_puddle.domain.lifecycle import ALL_WAIT_TARGETS, CONFIG_UPLOADED, wait_verdict
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.operators.puddle import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    default_deferrable,
    handle_trigger_event,
)
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_puddle.client import SystemsClient


class _PuddleSensor(BaseSensorOperator):
    def __init__(
        self,
        *,
        puddle_conn_id: str = PuddleHook.default_conn_name,
        cloud: str | None = None,
        poke_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT.total_seconds(),
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.puddle_conn_id = puddle_conn_id
        self.cloud = cloud

    @cached_property
    def client(self) -> SystemsClient:
        return PuddleHook(self.puddle_conn_id, cloud=self.cloud).get_systems_client()


class PuddleSystemStateSensor(_PuddleSensor):
    """Wait until a system is ``started``, ``stopped``, ``terminated`` or ``failed``.

    :param system_id: The system to watch.
    :param target_state: The state to wait for.
    :param deferrable: Wait in the triggerer; the sensor's ``timeout`` stays enforced.
    """

    template_fields: Sequence[str] = ("system_id", "puddle_conn_id")
    target_states: tuple[str, ...] = ("started", "stopped", "terminated", "failed")

    def __init__(
        self,
        *,
        system_id: str,
        target_state: str = "started",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if target_state not in self.target_states:
            raise ValueError(f"target_state: must be one of {', '.join(self.target_states)}, got {target_state!r}")
        assert target_state in ALL_WAIT_TARGETS
        self.system_id = system_id
        self.target_state = target_state
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    def poke(self, context: Context) -> bool | PokeReturnValue:
        system = self.client.get(self.system_id)
        if system is None:
            raise AirflowFailException(f"system {self.system_id} not found")
        verdict = wait_verdict(self.target_state, system.status, system.config_status)
        state = system.config_status_text if self.target_state == CONFIG_UPLOADED else system.status_text
        self.log.info("System %s (%s) is %s; waiting for %s", system.name, system.id, state, self.target_state)
        if verdict == "failed":
            raise AirflowFailException(f"system {system.name} ({system.id}) is {state}: "
                                       f"it will not become {self.target_state}")
        if verdict == "reached":
            return PokeReturnValue(is_done=True, xcom_value=system.to_dict())
        return False

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        try:
            first = self.poke(context)
        except AirflowFailException as err:
            if self.soft_fail:
                raise AirflowSkipException(f"soft_fail: {err}") from err
            raise
        if isinstance(first, PokeReturnValue) and first.is_done:
            return first.xcom_value
        self.defer(
            trigger=PuddleSystemStateTrigger(
                system_id=self.system_id, target=self.target_state, deadline=time.time() + self.timeout,
                puddle_conn_id=self.puddle_conn_id, cloud=self.cloud, poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired; a timeout event becomes ``AirflowSensorTimeout``."""
        if event.get("status") == "timeout":
            raise AirflowSensorTimeout(f"Sensor has timed out: {event.get('message')}")
        return handle_trigger_event(event)


class PuddleConfigTomlUploadedSensor(PuddleSystemStateSensor):
    """Wait until a system's config.toml upload is done; fails at once if the upload fails."""

    target_states = (CONFIG_UPLOADED,)

    def __init__(self, *, system_id: str, **kwargs: Any) -> None:
        super().__init__(system_id=system_id, target_state=CONFIG_UPLOADED, **kwargs)


class PuddleCUAvailableSensor(_PuddleSensor):
    """Wait until at least ``cu`` compute units are free in the shared Puddle quota.

    :param cu: How many CU must be available.
    """

    template_fields: Sequence[str] = ("cu", "puddle_conn_id")

    def __init__(self, *, cu: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(cu, int) and cu <= 0:
            raise ValueError(f"cu: must be a positive number of compute units, got {cu}")
        self.cu = cu

    def poke(self, context: Context) -> bool | PokeReturnValue:
        info = self.client.get_cu_consumption_info()
        needed = int(self.cu)
        self.log.info("%d CU available (%d consumed); need %d", info.available_cu, info.consumed_cu, needed)
        if info.available_cu >= needed:
            return PokeReturnValue(is_done=True, xcom_value={"available_cu": info.available_cu,
                                                              "consumed_cu": info.consumed_cu})
        return False
