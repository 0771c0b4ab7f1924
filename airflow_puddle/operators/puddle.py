"""Operators that create, start, stop, restart and terminate Puddle systems.

Every operator is idempotent under retries: it looks at the system first and
only asks Puddle for what is still missing, waiting on a system already moving
toward the goal. The waits run in the worker (``deferrable=False``) or in the
triggerer (``deferrable=True``), enforcing one absolute deadline either way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException

from airflow_puddle.client.errors import PreconditionFailedError, PuddleError
from airflow_puddle.client.models import System, TagData
from airflow_puddle.domain.lifecycle import CONFIG_UPLOADED, MOVING_TOWARD, STABLE_SYSTEM_STATUSES, WAIT_TARGETS
from airflow_puddle.hooks.puddle import PuddleHook
from airflow_puddle.links.puddle import PuddleSystemLink
from airflow_puddle.triggers.puddle import PuddleSystemStateTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_puddle.client import SystemsClient

DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_TIMEOUT = timedelta(minutes=20)


def handle_trigger_event(event: dict[str, Any]) -> dict[str, Any]:
    """Turn a :class:`PuddleSystemStateTrigger` event into the system dict, or raise.

    Shared by the operators and the sensors: success returns the system's public
    fields; failed, error and timeout raise :class:`AirflowException` with the
    trigger's message (sensors turn a timeout into their own exception first).
    """
    status = event.get("status")
    if status == "success":
        return dict(event.get("system") or {})
    raise AirflowException(f"Puddle wait for {event.get('target')} ended {status}: {event.get('message')}")


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable``, read when an operator is built."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def _timeout_seconds(timeout: timedelta | float | int) -> float:
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if seconds <= 0:
        raise ValueError(f"timeout: must be positive, got {timeout!r}")
    return seconds


class PuddleBaseSystemOperator(BaseOperator):
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
    target: str = "started"

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
        if poll_interval <= 0:
            raise ValueError(f"poll_interval: must be positive, got {poll_interval}")
        self.system_id = system_id
        self.system_name = system_name
        self.puddle_conn_id = puddle_conn_id
        self.cloud = cloud
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = float(poll_interval)
        self.timeout = timeout
        self.timeout_s = _timeout_seconds(timeout)

    def _check_target(self) -> None:
        if bool(self.system_id) == bool(self.system_name):
            raise ValueError(f"{self.task_id}: give exactly one of system_id and system_name")

    @cached_property
    def hook(self) -> PuddleHook:
        return PuddleHook(self.puddle_conn_id, cloud=self.cloud)

    @cached_property
    def client(self) -> SystemsClient:
        return self.hook.get_systems_client()

    def find_system(self) -> System | None:
        """The targeted system, or None when it does not exist (or was terminated, by name)."""
        if self.system_id:
            return self.client.get(self.system_id)
        assert self.system_name
        return self.client.find_by_name(self.system_name)

    def require_system(self) -> System:
        system = self.find_system()
        if system is None:
            raise AirflowException(f"{self._what()} not found")
        return system

    def _what(self) -> str:
        return f"system {self.system_id}" if self.system_id else f"system named {self.system_name!r}"

    def settle(self, system: System, deadline: float) -> System:
        """Wait in the worker until a system in some unrelated transition becomes stable."""
        while system.status not in STABLE_SYSTEM_STATUSES:
            if time.time() >= deadline:
                raise AirflowException(f"system {system.name} still {system.status_text} at the deadline")
            self.log.info("System %s is %s; waiting for it to settle", system.name, system.status_text)
            time.sleep(min(self.poll_interval, max(0.0, deadline - time.time())))
            system = self.client.get(system.id) or system
        return system

    def finish(self, context: Context, system: System, target: str, deadline: float, owns: bool = False) -> Any:
        """Wait for ``target`` (in the worker or the triggerer) and return the system's dict.

        ``owns`` marks a system this try created, for :meth:`on_wait_failure`. A deferred
        wait carries everything it needs in the trigger and its event, not in ``defer``
        kwargs, so it resumes the same however the task is run.
        """
        if not self.wait_for_completion:
            return self.result(context, system.to_dict())
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
        waits = {
            "started": self.client.wait_for_system_started,
            "stopped": self.client.wait_for_system_stopped,
            "terminated": self.client.wait_for_system_terminated,
            "failed": self.client.wait_for_system_failed,
            CONFIG_UPLOADED: self.client.wait_for_config_toml_uploaded,
        }
        self.log.info("Waiting up to %.0fs for system %s to be %s", deadline - time.time(), system.name, target)
        try:
            done = waits[target](system.id, poll_interval_s=self.poll_interval,
                                 timeout_s=max(0.0, deadline - time.time()))
        except PuddleError as err:
            return self.on_wait_failure(system.id, str(err), owns)
        return self.after_wait(context, done.to_dict(), target, deadline)

    def after_wait(self, context: Context, data: dict[str, Any], target: str, deadline: float) -> Any:
        """The wait for ``target`` succeeded; subclasses may chain another step."""
        return self.result(context, data)

    def on_wait_failure(self, system_id: str, message: str, owns: bool) -> Any:
        """A wait ended badly; subclasses may clean up before the task fails."""
        raise AirflowException(message)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired."""
        if event.get("status") != "success":
            return self.on_wait_failure(str(event.get("system_id")), str(event.get("message")),
                                        bool(event.get("owns_system")))
        return self.after_wait(context, handle_trigger_event(event), str(event["target"]), float(event["deadline"]))

    def result(self, context: Context, data: dict[str, Any]) -> dict[str, Any]:
        """Publish the system's URL for the link and return the dict for XCom."""
        PuddleSystemLink.persist(context, data.get("default_url", ""))
        self.log.info("System %s (%s) is %s", data.get("name"), data.get("id"), data.get("status_text"))
        return data

    def reach(self, context: Context, target: str, action: str, system: System | None = None) -> Any:
        """Idempotently bring the targeted system to ``target`` by calling ``action`` if needed.

        ``system`` is the targeted system when the caller has already fetched it.
        """
        self._check_target()
        deadline = time.time() + self.timeout_s
        system = system or self.require_system()
        if system.status == WAIT_TARGETS[target].code:
            self.log.info("System %s is already %s; nothing to do", system.name, system.status_text)
            return self.result(context, system.to_dict())
        if system.status not in MOVING_TOWARD[target]:
            system = self.settle(system, deadline)
            if system.status == WAIT_TARGETS[target].code:
                return self.result(context, system.to_dict())
            try:
                system = getattr(self.client, action)(system.id)
            except PreconditionFailedError as err:
                raise AirflowException(f"cannot {action} system {system.name}: {err}") from err
            self.log.info("Asked Puddle to %s system %s", action, system.name)
        else:
            self.log.info("System %s is already %s; waiting for it", system.name, system.status_text)
        return self.finish(context, system, target, deadline)

    def on_kill(self) -> None:
        self.log.info("Task killed; Puddle carries on with the operation on %s", self._what())


class PuddleCreateSystemOperator(PuddleBaseSystemOperator):
    """Create a system (or adopt one of the same name) and wait until it is started.

    :param name: Name of the system: 1..64 lowercase letters, digits and hyphens.
    :param image_id: Image id; or give ``product`` and ``version``.
    :param product: Product id such as ``dai`` or ``h2o3``.
    :param version: Product version, with ``product``.
    :param instance_type_name: Instance type name, e.g. ``m5.2xlarge``.
    :param disk_size_gb: Disk size, 256..1024 GB.
    :param idle_interval: Minutes of idleness before Puddle stops the system (1..240).
    :param tags: Tag values by label.
    :param terminate_on_failure: Terminate a system this try created when its wait
        fails or the task is killed (never a system it adopted).
    """

    template_fields: Sequence[str] = ("name", "image_id", "product", "version", "instance_type_name", "tags",
                                      "puddle_conn_id")

    def __init__(
        self,
        *,
        name: str,
        image_id: str | None = None,
        product: str | None = None,
        version: str | None = None,
        instance_type_name: str,
        disk_size_gb: int = 256,
        idle_interval: int = 60,
        tags: dict[str, str] | None = None,
        terminate_on_failure: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(system_name=name, **kwargs)
        self.name = name
        self.image_id = image_id
        self.product = product
        self.version = version
        self.instance_type_name = instance_type_name
        self.disk_size_gb = disk_size_gb
        self.idle_interval = idle_interval
        self.tags = tags
        self.terminate_on_failure = terminate_on_failure
        self._created_id: str | None = None

    def execute(self, context: Context) -> Any:
        self.system_name = self.name
        deadline = time.time() + self.timeout_s
        tags = [TagData(str(k), str(v)) for k, v in (self.tags or {}).items()]
        existing = self.client.find_by_name(self.name)
        if existing is not None:
            self.log.info("System %s (%s) already exists and is %s: adopting it", existing.name, existing.id,
                          existing.status_text)
            stopping = existing.status in MOVING_TOWARD["stopped"]
            system = self.settle(existing, deadline) if stopping else existing
            if system.status == System.SYSTEM_STATUS_STOPPED.code:
                system = self.client.start(system.id)
                self.log.info("Started adopted system %s", system.name)
            return self.finish(context, system, "started", deadline)
        system = self.client.create(
            self.name, disk_size_gb=self.disk_size_gb, image=self.image_id, product=self.product,
            version=self.version, instance_type_name=self.instance_type_name, idle_interval=self.idle_interval,
            tags=tags,
        )
        self._created_id = system.id
        self.log.info("Created system %s (%s) on %s", system.name, system.id, system.cloud)
        return self.finish(context, system, "started", deadline, owns=self.terminate_on_failure)

    def on_wait_failure(self, system_id: str, message: str, owns: bool) -> Any:
        if owns:
            self._terminate(system_id, f"its wait failed ({message})")
        raise AirflowException(message)

    def _terminate(self, system_id: str, why: str) -> None:
        try:
            self.client.discard(system_id, timeout_s=120)
            self.log.warning("Terminating system %s that this task created: %s", system_id, why)
        except PuddleError as term_err:
            self.log.warning("Could not terminate system %s: %s", system_id, term_err)

    def on_kill(self) -> None:
        if self.terminate_on_failure and self._created_id:
            self._terminate(self._created_id, "the task was killed")
        else:
            super().on_kill()


class PuddleStartSystemOperator(PuddleBaseSystemOperator):
    """Start a stopped system and wait until it is started; a started one is left as is."""

    def execute(self, context: Context) -> Any:
        return self.reach(context, "started", "start")


class PuddleStopSystemOperator(PuddleBaseSystemOperator):
    """Stop a system and wait until it is stopped; a stopped one is left as is."""

    def execute(self, context: Context) -> Any:
        return self.reach(context, "stopped", "stop")


class PuddleTerminateSystemOperator(PuddleBaseSystemOperator):
    """Terminate a system and wait until it is gone; a missing or terminated one succeeds."""

    def execute(self, context: Context) -> Any:
        self._check_target()
        system = self.find_system()
        if system is None:
            self.log.info("%s does not exist (or is already terminated); nothing to do", self._what().capitalize())
            return None
        return self.reach(context, "terminated", "terminate", system)


class PuddleRestartSystemOperator(PuddleBaseSystemOperator):
    """Restart a started system and wait until it is started again."""

    def execute(self, context: Context) -> Any:
        self._check_target()
        deadline = time.time() + self.timeout_s
        system = self.require_system()
        if system.status in MOVING_TOWARD["started"]:
            self.log.info("System %s is already %s; waiting for it", system.name, system.status_text)
        else:
            try:
                system = self.client.restart(system.id)
            except PreconditionFailedError as err:
                raise AirflowException(f"cannot restart system {system.name}: {err}") from err
        return self.finish(context, system, "started", deadline)


class PuddleUpdateConfigTomlOperator(PuddleBaseSystemOperator):
    """Upload a DAI config.toml, wait for the upload, and optionally restart to apply it.

    :param config_toml: The config.toml text (templated; a path ending ``.toml`` is read as a template).
    :param restart: Restart the system afterwards and wait until it is started.
    """

    template_fields: Sequence[str] = (*PuddleBaseSystemOperator.template_fields, "config_toml")
    template_ext: Sequence[str] = (".toml",)

    def __init__(self, *, config_toml: str, restart: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_toml = config_toml
        self.restart = restart

    def execute(self, context: Context) -> Any:
        self._check_target()
        deadline = time.time() + self.timeout_s
        system = self.require_system()
        system = self.client.update_config_toml(system.id, self.config_toml)
        self.log.info("Uploading config.toml to system %s", system.name)
        return self.finish(context, system, CONFIG_UPLOADED, deadline)

    def after_wait(self, context: Context, data: dict[str, Any], target: str, deadline: float) -> Any:
        if target != CONFIG_UPLOADED or not self.restart:
            return self.result(context, data)
        system = self.client.restart(data["id"])
        self.log.info("Restarting system %s to apply the new config.toml", system.name)
        return self.finish(context, system, "started", deadline)


class PuddleRefreshIdleTimeoutOperator(PuddleBaseSystemOperator):
    """Push a started system's idle timeout back, so Puddle does not stop it."""

    def execute(self, context: Context) -> Any:
        self._check_target()
        system = self.require_system()
        try:
            system = self.client.refresh_idle_timeout(system.id)
        except PreconditionFailedError as err:
            raise AirflowException(f"cannot refresh the idle timeout of system {system.name}: {err}") from err
        self.log.info("Idle timeout of system %s now %s", system.name, system.idle_timeout)
        return self.result(context, system.to_dict())
