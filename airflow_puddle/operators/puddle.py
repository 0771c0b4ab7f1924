"""Operators that create, start, stop, restart and terminate Puddle systems.

Each operator only asks Puddle for what is still missing (create asks, and adopts
the same-name system when Puddle says the name exists), waiting on a system already
moving toward the goal, so a retried task does not repeat work. What each try asked for is kept in Airflow's task state
store (:mod:`.record`), so a retry after a crash reconnects by id, keeps owning a
system it created, and does not repeat a restart. Every wait runs in the worker
(``deferrable=False``) or in the triggerer (``deferrable=True``), with one absolute
deadline either way; both end in the same event, read by one verdict
(:func:`airflow_puddle.waits.verdict`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_puddle.checks import check_flag, timeout_seconds
from airflow_puddle.domain.defaults import DISCARD_TIMEOUT_S, DISK_SIZE_GB, IDLE_INTERVAL_MIN
from airflow_puddle.domain.lifecycle import CONFIG_UPLOADED, MOVING_TOWARD, STABLE_SYSTEM_STATUSES
from airflow_puddle.hooks.api import (
    AlreadyExistsError,
    PuddleError,
    System,
    TagData,
    validate_config_toml,
    validate_create,
)
from airflow_puddle.operators.base import PuddleBaseSystemOperator, tag_data
from airflow_puddle.operators.record import CLOCK_SKEW_S
from airflow_puddle.owners import record_owner

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "PuddleBaseSystemOperator", "PuddleCreateSystemOperator", "PuddleRefreshIdleTimeoutOperator",
    "PuddleRestartSystemOperator", "PuddleStartSystemOperator", "PuddleStopSystemOperator",
    "PuddleTerminateSystemOperator", "PuddleUpdateConfigTomlOperator", "tag_data", "timeout_seconds",
]


class PuddleCreateSystemOperator(PuddleBaseSystemOperator):
    """Create a system (or adopt one of the same name) and wait until it is started.

    A same-name system is adopted only when it has the product, version (or image) and instance
    type asked for; otherwise the task fails naming the differences. A same-name system that
    failed is replaced when ``terminate_on_failure`` is set, and fails the task otherwise. Two
    tasks creating one name end with one system: the one that loses the race adopts it.

    :param name: Name of the system: 1..63 lowercase letters, digits and hyphens.
    :param image_id: Image id; or give ``product`` and ``version``.
    :param product: Product id such as ``dai`` or ``h2o3``.
    :param version: Product version, with ``product``.
    :param instance_type_name: Instance type name, e.g. ``m5.2xlarge``.
    :param disk_size_gb: Disk size, 256..1024 GB.
    :param idle_interval: Minutes of idleness before Puddle stops the system (1..240).
    :param tags: Tag values by label (a dict), or a list of :class:`TagData`.
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
        disk_size_gb: int = DISK_SIZE_GB,
        idle_interval: int = IDLE_INTERVAL_MIN,
        tags: dict[str, str] | list[TagData] | None = None,
        terminate_on_failure: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(system_name=name, **kwargs)
        if not (isinstance(tags, str) and "{{" in tags):  # a template is checked once rendered
            tag_data(tags)
        self.name = name
        self.image_id = image_id
        self.product = product
        self.version = version
        self.instance_type_name = instance_type_name
        self.disk_size_gb = disk_size_gb
        self.idle_interval = idle_interval
        self.tags = tags
        self.terminate_on_failure = check_flag("terminate_on_failure", terminate_on_failure)

    def _check(self) -> None:
        """Every create rule, on the rendered values, before the first call."""
        self.system_name = self.name  # the name may have been templated
        tags = tag_data(self.tags)
        validate_create(
            name=self.name, disk_size_gb=self.disk_size_gb, image_id=self.image_id, product=self.product,
            version=self.version, instance_type_id=None, instance_type_name=self.instance_type_name,
            idle_interval=self.idle_interval, tags=[(t.label, t.value) for t in tags],
        )

    def _act(self, context: Context, deadline: float) -> Any:
        existing = self._recorded() or self._answered()
        if existing is None:
            try:  # one CreateSystem; a name in use is Puddle's to say, in the same call
                return self._create(context, deadline)
            except AlreadyExistsError:  # that name exists (an earlier run's, or another task won a race)
                self._requests.forget()  # the create this task sent made nothing
                existing = self._client.find_by_name(self.name)
                if existing is None:
                    raise AirflowException(f"system named {self.name!r} was created and is gone again") from None
        return self._adopt(context, existing, deadline)

    def _answered(self) -> System | None:
        """A create an earlier try sent with no answer recorded (the worker died): the system it made, if any.

        Only a system of that name created since the request was sent counts (a name alone could be
        another system's), and it is then recorded by id as this task instance's own.
        """
        request = self._requests.current
        if request is None or not request.pending:
            return None
        found = self._client.find_by_name(request.name)
        if found is None or found.created < request.asked_at - CLOCK_SKEW_S:
            return None
        self.log.info("Try %d sent a create and stopped before its answer; system %s (%s), created since, is that "
                      "answer: reconnecting to it by id (created by this task instance)", request.try_number,
                      found.name, found.id)
        self._requests.write("create", found.id, created=True)
        return found

    def _owned(self, system_id: str) -> bool:
        return self.terminate_on_failure and self._requests.owns(system_id)

    def _create(self, context: Context, deadline: float) -> Any:
        self._requests.write("create", "", created=True, name=self.name)  # sent, answer not in yet
        system = self._client.create(
            self.name, disk_size_gb=self.disk_size_gb, image=self.image_id, product=self.product,
            version=self.version, instance_type_name=self.instance_type_name, idle_interval=self.idle_interval,
            tags=tag_data(self.tags),
        )
        self._requests.write("create", system.id, created=True)
        self.log.info("Created system %s (%s) on %s", system.name, system.id, system.cloud)
        record_owner(context, system.id, self.puddle_conn_id)
        return self._wait(context, system, "started", deadline)

    def _adopt(self, context: Context, existing: System, deadline: float) -> Any:
        """Take over a same-name system if it is what this task asks for; replace it if it failed and we may."""
        differences = self._differences(existing)
        if differences:
            raise AirflowFailException(
                f"system named {self.name!r} ({existing.id}) exists but is not what this task asks for: "
                f"{'; '.join(differences)}. Give the task another name, or terminate that system first")
        if existing.status not in MOVING_TOWARD["started"] and existing.status not in STABLE_SYSTEM_STATUSES:
            return self._settle(context, existing, deadline)  # then adopt (or replace) the settled system
        if existing.status == System.SYSTEM_STATUS_FAILED.code:
            if not self.terminate_on_failure:
                raise AirflowFailException(
                    f"system named {self.name!r} ({existing.id}) exists and is Failed. Terminate it (for example "
                    f"with PuddleTerminateSystemOperator), or set terminate_on_failure=True to let this task "
                    f"replace it")
            self.log.warning("System %s (%s) is Failed: terminating it to create it anew", existing.name, existing.id)
            self._client.discard(existing.id, timeout_s=max(0.0, deadline - time.time()))
            return self._wait(context, existing, "terminated", deadline, then="execute_again")  # then create
        if self._requests.owns(existing.id):  # reconnected by id: this task instance's own system
            self.log.info("System %s (%s), which this task instance created, is %s", existing.name, existing.id,
                          existing.status_text)
        else:
            self.log.info("System %s (%s) already exists and is %s: adopting it", existing.name, existing.id,
                          existing.status_text)
        record_owner(context, existing.id, self.puddle_conn_id)
        return self._reach(context, "started", "start", deadline, existing)

    def _differences(self, system: System) -> list[str]:
        """How ``system`` differs from what this task would create (product, version or image, instance type)."""
        wanted: dict[str, str | None] = {"product": self.product, "version": self.version,
                                         "instance type": self.instance_type_name}
        if self.image_id:
            image = next((i for i in self.hook.get_images_client().list_available() if i.id == self.image_id), None)
            if image is None:
                return [f"image {self.image_id!r} is not available to compare with"]
            wanted.update(product=image.product, version=image.version)
        has = {"product": system.product, "version": system.version, "instance type": system.instance_type}
        return [f"{what} is {has[what]!r}, this task asks for {want!r}"
                for what, want in wanted.items() if want is not None and has[what] != want]

    def _on_wait_failure(self, event: dict[str, Any]) -> None:
        if not event.get("owns_system"):
            return
        if "cleanup" in event:  # a deferred wait: the triggerer terminated it, so this worker does not wait
            self.log.warning("Cleaning up system %s that this task created, in the triggerer (its wait failed): %s",
                             event.get("system_id"), event["cleanup"])
            return
        self._terminate(str(event.get("system_id")), f"its wait failed ({event.get('message')})")

    def _terminate(self, system_id: str, why: str) -> None:
        try:
            self._client.discard(system_id, timeout_s=DISCARD_TIMEOUT_S)
            self.log.warning("Terminating system %s that this task created: %s", system_id, why)
        except PuddleError as term_err:
            self.log.warning("Could not terminate system %s: %s", system_id, term_err)

    def on_kill(self) -> None:
        request = self._requests.current if hasattr(self, "_requests") else None
        if self.terminate_on_failure and request is not None and request.created and request.system_id:
            with self.hook:
                self._terminate(request.system_id, "the task was killed")
        else:
            super().on_kill()


class PuddleStartSystemOperator(PuddleBaseSystemOperator):
    """Start a stopped system and wait until it is started; a started one is left as is."""

    def _act(self, context: Context, deadline: float) -> Any:
        return self._reach(context, "started", "start", deadline)


class PuddleStopSystemOperator(PuddleBaseSystemOperator):
    """Stop a system and wait until it is stopped; a stopped one is left as is."""

    def _act(self, context: Context, deadline: float) -> Any:
        return self._reach(context, "stopped", "stop", deadline)


class PuddleTerminateSystemOperator(PuddleBaseSystemOperator):
    """Terminate a system and wait until it is gone; a missing or terminated one succeeds."""

    def _act(self, context: Context, deadline: float) -> Any:
        system = self._find_system()
        if system is None:
            self.log.info("%s does not exist (or is already terminated); nothing to do", self._what().capitalize())
            return None
        return self._reach(context, "terminated", "terminate", deadline, system)


class PuddleRestartSystemOperator(PuddleBaseSystemOperator):
    """Restart a started system and wait until it is started again.

    A retry of a try whose restart Puddle accepted waits for that restart instead of restarting
    again (the task state store keeps the request). A system already rebooting (or otherwise on
    its way to started) is waited on.
    """

    def _act(self, context: Context, deadline: float) -> Any:
        system = self._require_system()
        return self._reach(context, "started", "restart", deadline, system, again=not self._asked("restart", system))


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
        self.restart = check_flag("restart", restart)

    def _check(self) -> None:
        super()._check()
        validate_config_toml(self.config_toml)  # before the GetSystem that finds the system

    def _act(self, context: Context, deadline: float) -> Any:
        system = self._require_system()
        if self._asked("restart", system):  # an earlier try uploaded and asked for the restart: wait for it
            return self._reach(context, "started", "restart", deadline, system)
        if not self._asked("update_config_toml", system):
            system = self._call("update_config_toml", system, self.config_toml)
        return self._wait(context, system, CONFIG_UPLOADED, deadline)

    def _after_wait(self, context: Context, data: dict[str, Any], target: str, deadline: float) -> Any:
        if target != CONFIG_UPLOADED or not self.restart:
            return self._result(context, data)
        self.log.info("Restarting system %s to apply the new config.toml", data.get("name"))
        return self._reach(context, "started", "restart", deadline, again=not self._asked("restart"))


class PuddleRefreshIdleTimeoutOperator(PuddleBaseSystemOperator):
    """Push a started system's idle timeout back, so Puddle does not stop it."""

    def _act(self, context: Context, deadline: float) -> Any:
        system = self._call("refresh_idle_timeout", self._require_system())
        self.log.info("Idle timeout of system %s now %s", system.name, system.idle_timeout)
        return self._result(context, system.to_dict())
