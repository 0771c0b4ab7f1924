"""The typed rows the emulator's state layer returns: plain frozen dataclasses, never protobuf messages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields

from airflow_puddle.domain.lifecycle import STABLE_SYSTEM_STATUSES, Phase
from airflow_puddle.domain.statuses import SystemStatuses


@dataclass(frozen=True)
class User:
    """The user an API key pair logs in as."""

    id: str
    name: str
    email: str


@dataclass(frozen=True)
class LoginResult:
    """What a login returns: the token, when it expires, and the user."""

    token: str
    expires_at: int
    user: User


@dataclass(frozen=True)
class SystemCU:
    """One system consuming compute units."""

    system_id: str
    system_name: str
    cu: int


@dataclass(frozen=True)
class CUInfo:
    """Compute units: consumed by every system, still available, and the user's consumers."""

    available_cu: int
    consumed_cu: int
    systems: tuple[SystemCU, ...]


@dataclass(frozen=True)
class ImageRow:
    """One image of the catalogue."""

    id: str
    cloud: str
    product: str
    version: str
    text: str
    status: int


@dataclass(frozen=True)
class InstanceTypeRow:
    """One instance type; ``price`` is per hour, ``cu`` the compute units it consumes."""

    id: str
    cloud: str
    text: str
    price: float
    cu: int
    gpu_count: int
    gpu_type: str

    @property
    def gpu(self) -> bool:
        """Whether the type has a GPU."""
        return self.gpu_count > 0


@dataclass(frozen=True)
class TagRow:
    """One tag definition."""

    id: str
    label: str
    default_value: str
    input_type: str
    required: bool
    status: int
    created: float
    updated: float


@dataclass(frozen=True)
class SystemRow:
    """One system as stored: every field is a column of the ``systems`` table.

    ``phase``, ``phase_step`` and ``phase_started_at`` place a running transition;
    ``due_at`` is when the lifecycle next has something to apply (None: nothing);
    ``failure_reason`` says why the system failed, when the emulator knows (a real node died).
    """

    id: str
    name: str
    owner_id: str
    owner_name: str
    cloud: str
    cloud_id: str
    product: str
    version: str
    image_id: str
    instance_type_id: str
    instance_type: str
    gpu_count: int
    gpu_type: str
    price: float
    cu: int
    disk_size_gb: int
    tags: tuple[tuple[str, str], ...]
    status: int
    vm_status: int
    product_status: int
    phase: Phase | None
    phase_step: int
    phase_started_at: float | None
    fail_next_transition: bool
    config_status: int
    config_toml: str
    pending_config_toml: str | None
    config_started_at: float | None
    fail_next_config: bool
    provisioned: bool
    default_url: str
    ip_address: str
    private_ip: str
    public_ip: str
    username: str
    password: str
    auth_type: str
    idle_timeout: float | None
    idle_timeout_interval: int
    session_started_at: float | None
    session_cost: float
    previous_sessions_cost: float
    created: float
    updated: float
    due_at: float | None
    failure_reason: str = ""

    @property
    def gpu(self) -> bool:
        """Whether the system's instance type has a GPU."""
        return self.gpu_count > 0

    @property
    def in_transition(self) -> bool:
        """Whether the system is between stable states."""
        return self.status not in STABLE_SYSTEM_STATUSES

    @property
    def can_fail(self) -> bool:
        """Whether FailSystem applies (only to a system in transition)."""
        return self.in_transition

    @property
    def can_launch(self) -> bool:
        """Whether the system can be started."""
        return self.status == SystemStatuses.SYSTEM_STATUS_STOPPED.code

    def cost_at(self, now: float) -> float:
        """The cost of the current session at emulator time ``now`` (frozen once the session ended)."""
        if self.session_started_at is None:
            return float(self.session_cost)
        return session_cost(self.price, self.session_started_at, now)


def session_cost(price: float, started_at: float, at: float) -> float:
    """What a session that began at ``started_at`` costs at ``at``, for ``price`` per hour."""
    return round(price * max(0.0, at - started_at) / 3600, 6)


def new_system(owner_id: str, owner_name: str, cloud: str, name: str, image: ImageRow, itype: InstanceTypeRow,
               disk_size_gb: int, tags: tuple[tuple[str, str], ...], idle_interval: int, now: float) -> SystemRow:
    """A system as a create first stores it, before its first lifecycle step."""
    return SystemRow(
        id=str(uuid.uuid4()), name=name, owner_id=owner_id, owner_name=owner_name, cloud=cloud, cloud_id="",
        product=image.product, version=image.version, image_id=image.id, instance_type_id=itype.id,
        instance_type=itype.text, gpu_count=itype.gpu_count, gpu_type=itype.gpu_type, price=itype.price,
        cu=itype.cu, disk_size_gb=disk_size_gb, tags=tags, status=0, vm_status=0, product_status=0,
        phase=None, phase_step=0, phase_started_at=None, fail_next_transition=False,
        config_status=SystemStatuses.CONFIG_STATUS_OK.code, config_toml="", pending_config_toml=None,
        config_started_at=None, fail_next_config=False, provisioned=False, default_url="", ip_address="",
        private_ip="", public_ip="", username="", password="", auth_type="", idle_timeout=None,
        idle_timeout_interval=idle_interval, session_started_at=None, session_cost=0.0,
        previous_sessions_cost=0.0, created=now, updated=now, due_at=None,
    )


SYSTEM_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SystemRow))
"""The ``systems`` table's columns, in :class:`SystemRow` order."""


@dataclass(frozen=True)
class ExperimentRow:
    """One (fake) Driverless AI experiment of a started system."""

    id: str
    description: str
    dataset: str
    target: str
    scorer: str
    accuracy: int
    time: int
    interpretability: int
    progress: float
    status: float
    score: float
    test_score: float
    training_duration: float
    created: int
    updated: int
