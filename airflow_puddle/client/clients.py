"""The synchronous Puddle clients: the documented API, each method one op run by :class:`SyncDriver`."""

from __future__ import annotations

from collections.abc import Callable

from airflow_puddle.client._drivers import SyncDriver
from airflow_puddle.client._ops import ImagesOps, InstanceTypesOps, SystemsOps, TagsOps
from airflow_puddle.client.auth import Authorizer
from airflow_puddle.client.models import CUConsumptionInfo, Image, InstanceType, System, Tag, TagData
from airflow_puddle.client.waiting import WaitOutcome, WaitProgress
from airflow_puddle.domain.defaults import DISCARD_TIMEOUT_S
from airflow_puddle.domain.lifecycle import CONFIG_UPLOADED, WaitTarget
from airflow_puddle.domain.products import Product


class _SyncClient(SyncDriver):
    """What every sync client shares: an :class:`Authorizer`, whose ``close`` closes the shared channel."""

    @property
    def authorizer(self) -> Authorizer:
        """The authorizer used by this client; with ``extra.client=puddle``, the adapter's stand-in for one."""
        return self._authorizer  # type checked by the base's constructor


class ImagesClient(_SyncClient, ImagesOps):
    """Client used to query images in Puddle."""

    def list_available(self) -> list[Image]:
        """All images available to the authenticated user on this client's cloud."""
        return self._run(self._list_available())


class InstanceTypesClient(_SyncClient, InstanceTypesOps):
    """Client used to query instance types in Puddle."""

    def list_available(self) -> list[InstanceType]:
        """All instance types available to the authenticated user on this client's cloud."""
        return self._run(self._list_available())


class TagsClient(_SyncClient, TagsOps):
    """Client used to query the tags in Puddle."""

    def list(self) -> list[Tag]:
        """All tags."""
        return self._run(self._list())


class SystemsClient(_SyncClient, SystemsOps):
    """Client used to manage the systems in Puddle.

    Calls that change a system return at once; use the ``wait_for_*`` calls to wait.
    """

    def create(
        self,
        name: str,
        disk_size_gb: int = SystemsOps.DEFAULT_DISK_SIZE,
        image: Image | str | None = None,
        product: Product | str | None = None,
        version: str | None = None,
        instance_type: InstanceType | str | None = None,
        instance_type_name: str | None = None,
        idle_interval: int = SystemsOps.DEFAULT_IDLE_TIMEOUT_MIN,
        tags: list[TagData] | None = None,
    ) -> System:
        """Create a system; returns without waiting. Raises :class:`ValidationFailedError`."""
        return self._run(self._create(self._create_args(name, disk_size_gb, image, product, version, instance_type,
                                                        instance_type_name, idle_interval, tags)))

    def fail(self, system_id: str) -> System:
        """Mark a system in transition as failed. Raises :class:`PreconditionFailedError`."""
        return self._run(self._mutate("FailSystem", system_id))

    def start(self, system_id: str) -> System:
        """Start a stopped system; returns without waiting."""
        return self._run(self._mutate("StartSystem", system_id))

    def stop(self, system_id: str) -> System:
        """Stop a started or failed system; returns without waiting."""
        return self._run(self._mutate("StopSystem", system_id))

    def restart(self, system_id: str) -> System:
        """Restart a started system; returns without waiting."""
        return self._run(self._mutate("RestartSystem", system_id))

    def terminate(self, system_id: str) -> System:
        """Terminate a started, stopped or failed system; cannot be undone."""
        return self._run(self._mutate("TerminateSystem", system_id))

    def refresh_idle_timeout(self, system_id: str) -> System:
        """Push a started system's idle timeout back by its idle interval."""
        return self._run(self._mutate("RefreshIdleTimeout", system_id))

    def get(self, system_id: str) -> System | None:
        """The system with that id (with its DAI models), or None if there is none."""
        return self._run(self._get(system_id))

    def find_by_name(self, name: str) -> System | None:
        """The non-terminated system with that name, or None (one small message, whatever the account holds)."""
        return self._run(self._find_by_name(name))

    def list(self) -> list[System]:
        """All non-terminated systems of the current user, without their config.toml (``get`` has it)."""
        return self._run(self._list())

    def update_config_toml(self, system_id: str, config_toml: str) -> System:
        """Upload a new DAI config.toml; it applies at the next start or restart."""
        return self._run(self._update_config_toml(system_id, config_toml))

    def get_cu_consumption_info(self) -> CUConsumptionInfo:
        """Current CU consumption and availability."""
        return self._run(self._cu_info())

    def discard(self, system_id: str, *, timeout_s: float = DISCARD_TIMEOUT_S) -> System | None:
        """Terminate a system whatever its state, without waiting for the end.

        A system in transition is marked failed first (as an admin would), then
        terminated once it settles. None if there is no such system.
        """
        return self._run(self._discard(system_id, timeout_s))

    def wait(
        self,
        system_id: str,
        target: WaitTarget,
        *,
        deadline: float | None = None,
        timeout_s: float | None = None,
        poll_interval_s: float | None = None,
        on_state: Callable[[WaitProgress], None] | None = None,
    ) -> WaitOutcome:
        """Wait for ``target`` and say how it ended; raises only for permanent errors (a rejected key).

        :param target: ``started``, ``stopped``, ``terminated``, ``failed``, ``config_uploaded``
            or ``settled`` (any stable state).
        :param deadline: Unix time to give up at; or give ``timeout_s`` (default :attr:`POLL_TIMEOUT_MINUTES`).
        :param poll_interval_s: Seconds between polls (default :attr:`POLL_INTERVAL_S`).
        :param on_state: Receives each line of narration; the client's logger by default.

        The backend being unavailable does not end the wait before its deadline.
        """
        checked, end, interval = self._wait_args(target, deadline, timeout_s, poll_interval_s)
        return self._run(self._wait(system_id, checked, end, interval, on_state))

    def check(
        self, system_id: str, target: WaitTarget, *, on_state: Callable[[WaitProgress], None] | None = None,
        deadline: float | None = None,
    ) -> WaitOutcome | None:
        """One poll, judged as :meth:`wait` would: its outcome if the wait would end now, else None.

        None also while Puddle is unavailable, until ``deadline`` (Unix time; none by default):
        past it, ``timed_out`` or ``unavailable``. What a sensor's poke runs.
        """
        return self._run(self._check(system_id, target, on_state, deadline))

    def _wait_for(self, system_id: str, target: WaitTarget, poll_interval_s: float | None,
                  timeout_s: float | None) -> System:
        outcome = self.wait(system_id, target, timeout_s=timeout_s, poll_interval_s=poll_interval_s)
        return outcome.result()  # type: ignore[return-value]  # None only when waiting for terminated

    def wait_for_system_started(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Wait until started; :class:`SystemFailedError` if it fails, a ``TimeoutError`` past the limit."""
        return self._wait_for(system_id, "started", poll_interval_s, timeout_s)

    def wait_for_system_stopped(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Wait until stopped; :class:`SystemFailedError` if it fails, a ``TimeoutError`` past the limit."""
        return self._wait_for(system_id, "stopped", poll_interval_s, timeout_s)

    def wait_for_system_terminated(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System | None:
        """Wait until terminated; :class:`SystemFailedError` if it fails, a ``TimeoutError`` past the limit.

        None when the system was already gone from the backend.
        """
        return self._wait_for(system_id, "terminated", poll_interval_s, timeout_s)

    def wait_for_system_failed(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Wait until failed; a ``TimeoutError`` past the limit."""
        return self._wait_for(system_id, "failed", poll_interval_s, timeout_s)

    def wait_for_config_toml_uploaded(
        self, system_id: str, *, poll_interval_s: float | None = None, timeout_s: float | None = None
    ) -> System:
        """Wait until the config.toml upload is done; :class:`SystemFailedError` if it fails."""
        return self._wait_for(system_id, CONFIG_UPLOADED, poll_interval_s, timeout_s)
