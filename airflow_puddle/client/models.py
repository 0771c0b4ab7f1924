"""Models the clients return.

Each model wraps the message the backend sent and exposes the documented
properties. The status constants are inherited from the tables in
:mod:`airflow_puddle.domain.statuses`; what the states mean for a wait lives in
:mod:`airflow_puddle.domain.lifecycle`.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

from airflow_puddle._proto.puddle.v2 import (
    auth_service_pb2,
    image_service_pb2,
    instance_type_service_pb2,
    system_service_pb2,
    tag_service_pb2,
)
from airflow_puddle.domain.statuses import (
    BaseStatus,
    ImageStatuses,
    SystemStatuses,
    TagStatuses,
    config_status_text,
    image_status_text,
    status_of,
    system_status_text,
)

T = TypeVar("T")


class _Field(Generic[T]):
    """A read-only property that returns one field of the wrapped message."""

    def __init__(self, doc: str, field: str = "") -> None:
        self.__doc__ = doc
        self.field = field

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = self.field or name

    @overload
    def __get__(self, obj: None, owner: type) -> _Field[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:
            return self
        return getattr(obj._pb, self.field)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- System


class System(SystemStatuses):
    """A system in Puddle: a cloud VM running one product.

    The status constants (``SYSTEM_STATUS_*``, ``VM_STATUS_*``, ``PRODUCT_STATUS_*``,
    ``CONFIG_STATUS_*`` and their ``ALL_*`` lists) come from
    :class:`~airflow_puddle.domain.statuses.SystemStatuses`.
    """

    def __init__(
        self,
        system: system_service_pb2.System,
        models: list[system_service_pb2.DAIModel] | None = None,
    ) -> None:
        self._pb = system
        self._models = list(models) if models is not None else None

    id = _Field[str]("Id of this system.")
    name = _Field[str]("Name of this system.")
    owner_id = _Field[str]("ID of the owner of this system.")
    owner_name = _Field[str]("Name of the owner of this system.")
    cloud = _Field[str]("Cloud id of this system's provider, the same as ``CloudProvider.id``.")
    cloud_id = _Field[str]("Identifier of this system in the cloud.")
    product = _Field[str]("Product in this system.")
    version = _Field[str]("Version of product in this system.")
    instance_type = _Field[str]("Name of the instance type used by this system.")
    gpu = _Field[bool]("True if this system has GPU.")
    gpu_count = _Field[int]("The number of GPUs, 0 without GPU.")
    gpu_type = _Field[str]("The GPU type, empty without GPU.")
    disk_size_gb = _Field[int]("Size of disk in GB.")
    status = _Field[int]("Status code of this system.")
    vm_status = _Field[int]("Status of the VM.")
    product_status = _Field[int]("Product status code of this system.")
    config_status = _Field[int]("Status of config update.")
    config_toml_status = _Field[int]("DEPRECATED. Status of config update.", "config_status")
    config_toml = _Field[str]("config.toml content, refreshed with every start of the system.")
    can_fail = _Field[bool]("True if this system can be manually marked as failed.")
    can_launch = _Field[bool]("True if this system can be started.")
    in_transition = _Field[bool]("True unless the system is started, stopped, terminated or failed.")
    provisioned = _Field[bool]("True if this system was provisioned successfully.")
    default_url = _Field[str]("URL which should be used to connect to the system.")
    ip_address = _Field[str]("Default IP address of this system.")
    private_ip = _Field[str]("Private IP address of this system.")
    public_ip = _Field[str]("Public IP address of this system.")
    username = _Field[str]("DriverlessAI username for this system.")
    password = _Field[str]("DriverlessAI password for this system.")
    auth_type = _Field[str]("Authentication method for this system.")
    failure_reason = _Field[str]("Why this system failed, when Puddle says (empty otherwise); not in H2O's client.")
    idle_timeout = _Field[int]("Unix timestamp: the system is stopped if idle till this time.")
    idle_timeout_interval = _Field[int]("Minutes of idleness after which the system is stopped.")
    current_session_cost = _Field[float]("Cost of the current session.")
    previous_sessions_cost = _Field[float]("Cumulative cost of all previous sessions.")
    created = _Field[int]("Unix timestamp when this system was created.")
    updated = _Field[int]("Unix timestamp when this system was updated.")

    @property
    def status_text(self) -> str:
        """Human readable status of this system."""
        return system_status_text(self.status)

    @property
    def vm_status_text(self) -> str:
        """Human readable status of the VM."""
        return status_of(System.ALL_VM_STATES, self.vm_status, System.VM_STATUS_INVALID_VALUE_FROM_BACKEND).text

    @property
    def product_status_text(self) -> str:
        """Human readable product status."""
        return status_of(System.ALL_PRODUCT_STATES, self.product_status, System.PRODUCT_STATUS_UNKNOWN).text

    @property
    def config_status_text(self) -> str:
        """Human readable config.toml status."""
        return config_status_text(self.config_status)

    @property
    def config_toml_status_text(self) -> str:
        """DEPRECATED. Human readable config.toml status."""
        return self.config_status_text

    @property
    def models(self) -> list[DriverlessAIModel] | None:
        """The DAI experiments on this system; empty for H2O-3, None when not fetched."""
        if self._models is None:
            return None
        return [DriverlessAIModel(m) for m in self._models]

    @property
    def snapshots(self) -> list[Snapshot]:
        """Snapshots of this system; might be empty."""
        return [Snapshot(s) for s in self._pb.snapshots]

    @property
    def tags(self) -> list[TagData]:
        """The tag values the system was created with."""
        return [TagData(t.label, t.value) for t in self._pb.tags]

    @property
    def cu(self) -> int:
        """Compute units the system consumes while it is not stopped."""
        return self._pb.cu

    def to_dict(self) -> dict[str, Any]:
        """The system's public fields as a JSON-safe dict: everything but the DAI password."""
        out: dict[str, Any] = {name: getattr(self, name) for name in PUBLIC_SYSTEM_FIELDS}
        out["tags"] = {t.label: t.value for t in self.tags}
        return out

    def __repr__(self) -> str:
        return f"System(id={self.id!r}, name={self.name!r}, status={self.status_text!r})"


PUBLIC_SYSTEM_FIELDS: tuple[str, ...] = (
    "id", "name", "owner_id", "owner_name", "cloud", "cloud_id", "product", "version",
    "instance_type", "gpu", "gpu_count", "gpu_type", "disk_size_gb",
    "status", "status_text", "vm_status", "vm_status_text", "product_status", "product_status_text",
    "config_status", "config_status_text", "can_fail", "can_launch", "in_transition", "provisioned",
    "default_url", "ip_address", "private_ip", "public_ip", "username", "auth_type",
    "idle_timeout", "idle_timeout_interval", "current_session_cost", "previous_sessions_cost",
    "created", "updated", "cu",
)
"""What :meth:`System.to_dict` carries. ``password`` is deliberately absent."""

# --------------------------------------------------------------------------- the rest


class DriverlessAIModel:
    """An experiment in Driverless AI."""

    def __init__(self, model: system_service_pb2.DAIModel) -> None:
        self._pb = model

    id = _Field[str]("Id of this experiment.")
    description = _Field[str]("Description of this experiment.")
    dataset = _Field[str]("Name of the dataset used for this experiment.")
    target = _Field[str]("Target or response column set for this experiment.")
    scorer = _Field[str]("Name of the scorer used for this experiment.")
    accuracy = _Field[int]("Accuracy set for this experiment.")
    time = _Field[int]("Time set for this experiment.")
    interpretability = _Field[int]("Interpretability set for this experiment.")
    progress = _Field[float]("Progress of this experiment.")
    status = _Field[float]("Status code for this experiment.")
    score = _Field[float]("Score for this experiment.")
    test_score = _Field[float]("Test score for this experiment.")
    training_duration = _Field[float]("Training duration in seconds of this experiment.")
    created = _Field[int]("Unix timestamp when this experiment was created.")
    updated = _Field[int]("Unix timestamp when this experiment was updated.")


class Snapshot:
    """A snapshot of a system's disk."""

    def __init__(self, snapshot: system_service_pb2.Snapshot) -> None:
        self._pb = snapshot

    id = _Field[str]("Id of this snapshot.")
    name = _Field[str]("Name of this snapshot.")
    created = _Field[int]("Unix timestamp when this snapshot was created.")
    status_text = _Field[str]("Human readable status of this snapshot.")


class Image(ImageStatuses):
    """An image: one product at one version, used to provision systems."""

    def __init__(self, image: image_service_pb2.Image) -> None:
        self._pb = image

    id = _Field[str]("Id of this image.")
    product = _Field[str]("Product in this image, e.g. ``dai``.")
    version = _Field[str]("Version of the product in this image, e.g. ``1.10.7``.")
    text = _Field[str]("Text of the image, e.g. ``1.10.7.1``.")
    selected_version = _Field[str]("Selected image version ID.")
    status_code = _Field[int]("Status code of the image.", "status")

    @property
    def status_text(self) -> str:
        """Human readable status of the image."""
        return image_status_text(self.status_code)

    def __repr__(self) -> str:
        return f"Image(id={self.id!r}, product={self.product!r}, version={self.version!r})"


class InstanceType:
    """An instance type specification."""

    def __init__(self, instance_type: instance_type_service_pb2.InstanceType) -> None:
        self._pb = instance_type

    id = _Field[str]("Id of this instance type.")
    text = _Field[str]("Name of this instance type, e.g. ``p3.2xlarge``.")
    gpu = _Field[bool]("True if this instance type has GPU.")
    gpu_count = _Field[int]("The number of GPUs, 0 without GPU.")
    gpu_type = _Field[str]("The GPU type, empty without GPU.")
    price = _Field[float]("Price per hour while started.")
    cu = _Field[int]("Compute units consumed while a system of this type is not stopped.")

    def __repr__(self) -> str:
        return f"InstanceType(id={self.id!r}, text={self.text!r})"


class Tag(TagStatuses):
    """A tag put on every cloud resource a system provisions."""

    def __init__(self, tag: tag_service_pb2.Tag) -> None:
        self._pb = tag

    id = _Field[str]("Id of this tag.")
    label = _Field[str]("Human readable label of this tag.")
    default_value = _Field[str]("Default value associated with this tag.")
    input_type = _Field[str]("Input type of this tag, e.g. number or text.")
    required = _Field[bool]("True if this tag is required.")
    status = _Field[int]("Status code of this tag.")
    created = _Field[int]("Unix timestamp when this tag was created.")
    updated = _Field[int]("Unix timestamp when this tag was updated.")

    @property
    def status_text(self) -> str:
        """Human readable status of this tag."""
        return status_of(Tag.ALL_STATES, self.status, Tag.TAG_STATUS_UNKNOWN).text


class TagData:
    """A tag value given when creating a system."""

    def __init__(self, label: str, value: str) -> None:
        self._label = label
        self._value = value

    @property
    def label(self) -> str:
        """Label of the tag."""
        return self._label

    @property
    def value(self) -> str:
        """Value used for this tag."""
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TagData) and (other.label, other.value) == (self.label, self.value)

    def __hash__(self) -> int:
        return hash((self._label, self._value))

    def __repr__(self) -> str:
        return f"TagData({self._label!r}, {self._value!r})"


class SystemConsumptionInfo:
    """A system of the current user that consumes CU."""

    def __init__(self, system_consumption_info: system_service_pb2.SystemConsumptionInfo) -> None:
        self._pb = system_consumption_info

    system_id = _Field[str]("Id of the system.")
    system_name = _Field[str]("Name of the system.")
    cu = _Field[int]("Number of consumed CU.")


class CUConsumptionInfo:
    """The current CU consumption of the whole Puddle instance."""

    def __init__(self, cu_consumption_info: system_service_pb2.GetCUConsumptionInfoResponse) -> None:
        self._pb = cu_consumption_info

    available_cu = _Field[int]("Number of CU still available.")
    consumed_cu = _Field[int]("Number of CU currently consumed by all users.")

    @property
    def systems_consumption_info(self) -> list[SystemConsumptionInfo]:
        """The current user's systems that consume CU."""
        return [SystemConsumptionInfo(s) for s in self._pb.systems_consumption_info]


class LoginUser:
    """The user an API key pair logged in as."""

    def __init__(self, user: auth_service_pb2.LoginUser) -> None:
        self._pb = user

    id = _Field[str]("Id of the user.")
    name = _Field[str]("Name of the user.")
    email = _Field[str]("E-mail of the user.")

    def __repr__(self) -> str:
        return f"LoginUser(id={self.id!r}, name={self.name!r})"


__all__ = [
    "PUBLIC_SYSTEM_FIELDS", "BaseStatus", "CUConsumptionInfo", "DriverlessAIModel", "Image", "InstanceType",
    "LoginUser", "Snapshot", "System", "SystemConsumptionInfo", "Tag", "TagData",
]
