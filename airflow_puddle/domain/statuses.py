"""Every status table, defined once: the numeric code each state travels as and its text.

The tables are small classes of constants. The client's models inherit them
(``System.SYSTEM_STATUS_STARTED`` is :attr:`SystemStatuses.SYSTEM_STATUS_STARTED`), and
the emulator reads them from here. :func:`status_of` is the one code-to-status lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from airflow_puddle._proto.puddle.v2 import common_pb2 as pb


class BaseStatus:
    """A status: a numeric ``code`` and a human readable ``text``."""

    def __init__(self, code: int, text: str) -> None:
        self._code = code
        self._text = text

    @property
    def code(self) -> int:
        """Code of this status."""
        return self._code

    @property
    def text(self) -> str:
        """Human readable text/description of this status."""
        return self._text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BaseStatus) and type(other) is type(self) and other.code == self.code

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._code))

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({self._code}, {self._text!r})"


_S = TypeVar("_S", bound=BaseStatus)


def _table(cls: type[_S], pairs: list[tuple[int, str]]) -> list[_S]:
    return [cls(code, text) for code, text in pairs]


def status_of(table: Sequence[_S], code: int, default: _S) -> _S:
    """The status with ``code`` in ``table``, or ``default`` for a code the table does not know."""
    for state in table:
        if state.code == code:
            return state
    return default


class SystemStatuses:
    """The four status families of a system; :class:`~airflow_puddle.client.models.System` inherits them."""

    class Status(BaseStatus):
        """Represents status of a system."""

    class VmStatus(BaseStatus):
        """Represents status of a virtual machine."""

    class ProductStatus(BaseStatus):
        """Represents status of a product."""

    class ConfigTomlStatus(BaseStatus):
        """Represents state of config.toml update process."""

    SYSTEM_STATUS_UNKNOWN, SYSTEM_STATUS_STARTED, SYSTEM_STATUS_STOPPED, SYSTEM_STATUS_FAILED, \
        SYSTEM_STATUS_TERMINATED, SYSTEM_STATUS_INITIALIZING, SYSTEM_STATUS_STARTING, \
        SYSTEM_STATUS_STOPPING, SYSTEM_STATUS_TERMINATING, SYSTEM_STATUS_FAILING, \
        SYSTEM_STATUS_REBOOTING, SYSTEM_STATUS_RESTARTING_DAI, SYSTEM_STATUS_SCALING, \
        SYSTEM_STATUS_SNAPSHOTTING = ALL_STATES = _table(Status, [
            (pb.SYSTEM_STATUS_UNKNOWN, "Unknown"),
            (pb.SYSTEM_STATUS_STARTED, "Started"),
            (pb.SYSTEM_STATUS_STOPPED, "Stopped"),
            (pb.SYSTEM_STATUS_FAILED, "Failed"),
            (pb.SYSTEM_STATUS_TERMINATED, "Terminated"),
            (pb.SYSTEM_STATUS_INITIALIZING, "Initializing"),
            (pb.SYSTEM_STATUS_STARTING, "Starting"),
            (pb.SYSTEM_STATUS_STOPPING, "Stopping"),
            (pb.SYSTEM_STATUS_TERMINATING, "Terminating"),
            (pb.SYSTEM_STATUS_FAILING, "Failing"),
            (pb.SYSTEM_STATUS_REBOOTING, "Rebooting"),
            (pb.SYSTEM_STATUS_RESTARTING_DAI, "Restarting Driverless AI"),
            (pb.SYSTEM_STATUS_SCALING, "Scaling"),
            (pb.SYSTEM_STATUS_SNAPSHOTTING, "Snapshotting"),
        ])

    # The backend never sends this one: it stands for a VM code this client does not know.
    VM_STATUS_INVALID_VALUE_FROM_BACKEND = VmStatus(-1, "Invalid value from backend")
    VM_STATUS_UNKNOWN, VM_STATUS_WAITING, VM_STATUS_PROVISIONING, VM_STATUS_RUNNING, \
        VM_STATUS_STARTING, VM_STATUS_DEALLOCATING, VM_STATUS_DEALLOCATED, VM_STATUS_TERMINATING, \
        VM_STATUS_TERMINATED, VM_STATUS_WAITING_FOR_SOURCE_SNAPSHOT = _vm = _table(VmStatus, [
            (pb.VM_STATUS_UNKNOWN, "Unknown"),
            (pb.VM_STATUS_WAITING, "Waiting"),
            (pb.VM_STATUS_PROVISIONING, "Provisioning"),
            (pb.VM_STATUS_RUNNING, "Running"),
            (pb.VM_STATUS_STARTING, "Starting"),
            (pb.VM_STATUS_DEALLOCATING, "Deallocating"),
            (pb.VM_STATUS_DEALLOCATED, "Deallocated"),
            (pb.VM_STATUS_TERMINATING, "Terminating"),
            (pb.VM_STATUS_TERMINATED, "Terminated"),
            (pb.VM_STATUS_WAITING_FOR_SOURCE_SNAPSHOT, "Waiting for source snapshot"),
        ])
    ALL_VM_STATES = [*_vm, VM_STATUS_INVALID_VALUE_FROM_BACKEND]

    PRODUCT_STATUS_UNKNOWN, PRODUCT_STATUS_WAITING_FOR_VM, PRODUCT_STATUS_WAITING_FOR_PRODUCT, \
        PRODUCT_STATUS_READY, PRODUCT_STATUS_VM_UNAVAILABLE = ALL_PRODUCT_STATES = _table(ProductStatus, [
            (pb.PRODUCT_STATUS_UNKNOWN, "Unknown"),
            (pb.PRODUCT_STATUS_WAITING_FOR_VM, "Waiting for VM"),
            (pb.PRODUCT_STATUS_WAITING_FOR_PRODUCT, "Waiting for product"),
            (pb.PRODUCT_STATUS_READY, "Ready"),
            (pb.PRODUCT_STATUS_VM_UNAVAILABLE, "VM unavailable"),
        ])

    CONFIG_STATUS_UNKNOWN, CONFIG_STATUS_OK, CONFIG_STATUS_UPLOADING, CONFIG_STATUS_UPLOADED, \
        CONFIG_STATUS_FAILED = ALL_CONFIG_STATES = _table(ConfigTomlStatus, [
            (pb.CONFIG_STATUS_UNKNOWN, "Unknown"),
            (pb.CONFIG_STATUS_OK, "OK"),
            (pb.CONFIG_STATUS_UPLOADING, "Uploading"),
            (pb.CONFIG_STATUS_UPLOADED, "Uploaded, restart to apply"),
            (pb.CONFIG_STATUS_FAILED, "Upload failed"),
        ])
    # Older names for the config statuses, kept as the docs list them.
    CONFIG_TOML_STATUS_UNKNOWN = CONFIG_STATUS_UNKNOWN
    CONFIG_TOML_STATUS_OK = CONFIG_STATUS_OK
    CONFIG_TOML_STATUS_UPLOADING = CONFIG_STATUS_UPLOADING
    CONFIG_TOML_STATUS_UPLOADED = CONFIG_STATUS_UPLOADED
    CONFIG_TOML_STATUS_FAILED = CONFIG_STATUS_FAILED
    ALL_TOML_CONFIG_STATES = ALL_CONFIG_STATES
    del _vm


class ImageStatuses:
    """The status table of an image; :class:`~airflow_puddle.client.models.Image` inherits it."""

    class Status(BaseStatus):
        """Represents status of an image."""

    IMAGE_STATUS_UNKNOWN, IMAGE_STATUS_NOT_YET_BUILT, IMAGE_STATUS_BUILDING, IMAGE_STATUS_AVAILABLE, \
        IMAGE_STATUS_FAILED, IMAGE_STATUS_DELETING, IMAGE_STATUS_DELETED = ALL_STATES = _table(Status, [
            (pb.IMAGE_STATUS_UNKNOWN, "Unknown"),
            (pb.IMAGE_STATUS_NOT_YET_BUILT, "Not yet built"),
            (pb.IMAGE_STATUS_BUILDING, "Building"),
            (pb.IMAGE_STATUS_AVAILABLE, "Available"),
            (pb.IMAGE_STATUS_FAILED, "Failed"),
            (pb.IMAGE_STATUS_DELETING, "Deleting"),
            (pb.IMAGE_STATUS_DELETED, "Deleted"),
        ])


class TagStatuses:
    """The status table of a tag; :class:`~airflow_puddle.client.models.Tag` inherits it."""

    class TagStatus(BaseStatus):
        """Represents tag status."""

    TAG_STATUS_UNKNOWN, TAG_STATUS_OK, TAG_STATUS_DELETED = ALL_STATES = _table(TagStatus, [
        (pb.TAG_STATUS_UNKNOWN, "Unknown"),
        (pb.TAG_STATUS_OK, "OK"),
        (pb.TAG_STATUS_DELETED, "Deleted"),
    ])


def system_status_text(code: int) -> str:
    """Text of a system status code (``Unknown`` for a code not in the table)."""
    return status_of(SystemStatuses.ALL_STATES, code, SystemStatuses.SYSTEM_STATUS_UNKNOWN).text


def config_status_text(code: int) -> str:
    """Text of a config.toml status code (``Unknown`` for a code not in the table)."""
    return status_of(SystemStatuses.ALL_CONFIG_STATES, code, SystemStatuses.CONFIG_STATUS_UNKNOWN).text


def image_status_text(code: int) -> str:
    """Text of an image status code (``Unknown`` for a code not in the table)."""
    return status_of(ImageStatuses.ALL_STATES, code, ImageStatuses.IMAGE_STATUS_UNKNOWN).text
