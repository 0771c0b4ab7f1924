from airflow_puddle._proto.puddle.v2 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TagData(_message.Message):
    __slots__ = ("label", "value")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    label: str
    value: str
    def __init__(self, label: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("id", "name", "created", "status_text")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STATUS_TEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    created: int
    status_text: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., created: _Optional[int] = ..., status_text: _Optional[str] = ...) -> None: ...

class DAIModel(_message.Message):
    __slots__ = ("id", "description", "dataset", "target", "scorer", "accuracy", "time", "interpretability", "progress", "status", "score", "test_score", "training_duration", "created", "updated")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SCORER_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    INTERPRETABILITY_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TEST_SCORE_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DURATION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
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
    def __init__(self, id: _Optional[str] = ..., description: _Optional[str] = ..., dataset: _Optional[str] = ..., target: _Optional[str] = ..., scorer: _Optional[str] = ..., accuracy: _Optional[int] = ..., time: _Optional[int] = ..., interpretability: _Optional[int] = ..., progress: _Optional[float] = ..., status: _Optional[float] = ..., score: _Optional[float] = ..., test_score: _Optional[float] = ..., training_duration: _Optional[float] = ..., created: _Optional[int] = ..., updated: _Optional[int] = ...) -> None: ...

class System(_message.Message):
    __slots__ = ("id", "name", "owner_id", "owner_name", "cloud", "cloud_id", "product", "version", "image_id", "instance_type", "gpu", "gpu_count", "gpu_type", "disk_size_gb", "status", "vm_status", "product_status", "config_status", "config_toml", "can_fail", "can_launch", "in_transition", "provisioned", "default_url", "ip_address", "private_ip", "public_ip", "username", "password", "auth_type", "idle_timeout", "idle_timeout_interval", "current_session_cost", "previous_sessions_cost", "created", "updated", "snapshots", "tags", "cu", "failure_reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_NAME_FIELD_NUMBER: _ClassVar[int]
    CLOUD_FIELD_NUMBER: _ClassVar[int]
    CLOUD_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    GPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    GPU_TYPE_FIELD_NUMBER: _ClassVar[int]
    DISK_SIZE_GB_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VM_STATUS_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_TOML_FIELD_NUMBER: _ClassVar[int]
    CAN_FAIL_FIELD_NUMBER: _ClassVar[int]
    CAN_LAUNCH_FIELD_NUMBER: _ClassVar[int]
    IN_TRANSITION_FIELD_NUMBER: _ClassVar[int]
    PROVISIONED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_URL_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_IP_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_IP_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    AUTH_TYPE_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    CURRENT_SESSION_COST_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SESSIONS_COST_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CU_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    owner_id: str
    owner_name: str
    cloud: str
    cloud_id: str
    product: str
    version: str
    image_id: str
    instance_type: str
    gpu: bool
    gpu_count: int
    gpu_type: str
    disk_size_gb: int
    status: _common_pb2.SystemStatus
    vm_status: _common_pb2.VmStatus
    product_status: _common_pb2.ProductStatus
    config_status: _common_pb2.ConfigTomlStatus
    config_toml: str
    can_fail: bool
    can_launch: bool
    in_transition: bool
    provisioned: bool
    default_url: str
    ip_address: str
    private_ip: str
    public_ip: str
    username: str
    password: str
    auth_type: str
    idle_timeout: int
    idle_timeout_interval: int
    current_session_cost: float
    previous_sessions_cost: float
    created: int
    updated: int
    snapshots: _containers.RepeatedCompositeFieldContainer[Snapshot]
    tags: _containers.RepeatedCompositeFieldContainer[TagData]
    cu: int
    failure_reason: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., owner_id: _Optional[str] = ..., owner_name: _Optional[str] = ..., cloud: _Optional[str] = ..., cloud_id: _Optional[str] = ..., product: _Optional[str] = ..., version: _Optional[str] = ..., image_id: _Optional[str] = ..., instance_type: _Optional[str] = ..., gpu: _Optional[bool] = ..., gpu_count: _Optional[int] = ..., gpu_type: _Optional[str] = ..., disk_size_gb: _Optional[int] = ..., status: _Optional[_Union[_common_pb2.SystemStatus, str]] = ..., vm_status: _Optional[_Union[_common_pb2.VmStatus, str]] = ..., product_status: _Optional[_Union[_common_pb2.ProductStatus, str]] = ..., config_status: _Optional[_Union[_common_pb2.ConfigTomlStatus, str]] = ..., config_toml: _Optional[str] = ..., can_fail: _Optional[bool] = ..., can_launch: _Optional[bool] = ..., in_transition: _Optional[bool] = ..., provisioned: _Optional[bool] = ..., default_url: _Optional[str] = ..., ip_address: _Optional[str] = ..., private_ip: _Optional[str] = ..., public_ip: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., auth_type: _Optional[str] = ..., idle_timeout: _Optional[int] = ..., idle_timeout_interval: _Optional[int] = ..., current_session_cost: _Optional[float] = ..., previous_sessions_cost: _Optional[float] = ..., created: _Optional[int] = ..., updated: _Optional[int] = ..., snapshots: _Optional[_Iterable[_Union[Snapshot, _Mapping]]] = ..., tags: _Optional[_Iterable[_Union[TagData, _Mapping]]] = ..., cu: _Optional[int] = ..., failure_reason: _Optional[str] = ...) -> None: ...

class CreateSystemRequest(_message.Message):
    __slots__ = ("cloud", "name", "disk_size_gb", "image_id", "product", "version", "instance_type_id", "instance_type_name", "idle_interval", "tags")
    CLOUD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISK_SIZE_GB_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
    IDLE_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    cloud: str
    name: str
    disk_size_gb: int
    image_id: str
    product: str
    version: str
    instance_type_id: str
    instance_type_name: str
    idle_interval: int
    tags: _containers.RepeatedCompositeFieldContainer[TagData]
    def __init__(self, cloud: _Optional[str] = ..., name: _Optional[str] = ..., disk_size_gb: _Optional[int] = ..., image_id: _Optional[str] = ..., product: _Optional[str] = ..., version: _Optional[str] = ..., instance_type_id: _Optional[str] = ..., instance_type_name: _Optional[str] = ..., idle_interval: _Optional[int] = ..., tags: _Optional[_Iterable[_Union[TagData, _Mapping]]] = ...) -> None: ...

class CreateSystemResponse(_message.Message):
    __slots__ = ("system",)
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    system: System
    def __init__(self, system: _Optional[_Union[System, _Mapping]] = ...) -> None: ...

class GetSystemRequest(_message.Message):
    __slots__ = ("system_id",)
    SYSTEM_ID_FIELD_NUMBER: _ClassVar[int]
    system_id: str
    def __init__(self, system_id: _Optional[str] = ...) -> None: ...

class GetSystemResponse(_message.Message):
    __slots__ = ("system", "models")
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    system: System
    models: _containers.RepeatedCompositeFieldContainer[DAIModel]
    def __init__(self, system: _Optional[_Union[System, _Mapping]] = ..., models: _Optional[_Iterable[_Union[DAIModel, _Mapping]]] = ...) -> None: ...

class ListSystemsRequest(_message.Message):
    __slots__ = ("cloud", "name", "include_config_toml")
    CLOUD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CONFIG_TOML_FIELD_NUMBER: _ClassVar[int]
    cloud: str
    name: str
    include_config_toml: bool
    def __init__(self, cloud: _Optional[str] = ..., name: _Optional[str] = ..., include_config_toml: _Optional[bool] = ...) -> None: ...

class ListSystemsResponse(_message.Message):
    __slots__ = ("systems",)
    SYSTEMS_FIELD_NUMBER: _ClassVar[int]
    systems: _containers.RepeatedCompositeFieldContainer[System]
    def __init__(self, systems: _Optional[_Iterable[_Union[System, _Mapping]]] = ...) -> None: ...

class SystemIdRequest(_message.Message):
    __slots__ = ("system_id",)
    SYSTEM_ID_FIELD_NUMBER: _ClassVar[int]
    system_id: str
    def __init__(self, system_id: _Optional[str] = ...) -> None: ...

class SystemResponse(_message.Message):
    __slots__ = ("system",)
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    system: System
    def __init__(self, system: _Optional[_Union[System, _Mapping]] = ...) -> None: ...

class UpdateConfigTomlRequest(_message.Message):
    __slots__ = ("system_id", "config_toml")
    SYSTEM_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_TOML_FIELD_NUMBER: _ClassVar[int]
    system_id: str
    config_toml: str
    def __init__(self, system_id: _Optional[str] = ..., config_toml: _Optional[str] = ...) -> None: ...

class GetCUConsumptionInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SystemConsumptionInfo(_message.Message):
    __slots__ = ("system_id", "system_name", "cu")
    SYSTEM_ID_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_NAME_FIELD_NUMBER: _ClassVar[int]
    CU_FIELD_NUMBER: _ClassVar[int]
    system_id: str
    system_name: str
    cu: int
    def __init__(self, system_id: _Optional[str] = ..., system_name: _Optional[str] = ..., cu: _Optional[int] = ...) -> None: ...

class GetCUConsumptionInfoResponse(_message.Message):
    __slots__ = ("available_cu", "consumed_cu", "systems_consumption_info")
    AVAILABLE_CU_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_CU_FIELD_NUMBER: _ClassVar[int]
    SYSTEMS_CONSUMPTION_INFO_FIELD_NUMBER: _ClassVar[int]
    available_cu: int
    consumed_cu: int
    systems_consumption_info: _containers.RepeatedCompositeFieldContainer[SystemConsumptionInfo]
    def __init__(self, available_cu: _Optional[int] = ..., consumed_cu: _Optional[int] = ..., systems_consumption_info: _Optional[_Iterable[_Union[SystemConsumptionInfo, _Mapping]]] = ...) -> None: ...
