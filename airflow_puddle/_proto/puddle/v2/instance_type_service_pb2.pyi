from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InstanceType(_message.Message):
    __slots__ = ("id", "text", "gpu", "gpu_count", "gpu_type", "price", "cu", "cloud")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    GPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    GPU_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CU_FIELD_NUMBER: _ClassVar[int]
    CLOUD_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    gpu: bool
    gpu_count: int
    gpu_type: str
    price: float
    cu: int
    cloud: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., gpu: _Optional[bool] = ..., gpu_count: _Optional[int] = ..., gpu_type: _Optional[str] = ..., price: _Optional[float] = ..., cu: _Optional[int] = ..., cloud: _Optional[str] = ...) -> None: ...

class ListAvailableInstanceTypesRequest(_message.Message):
    __slots__ = ("cloud",)
    CLOUD_FIELD_NUMBER: _ClassVar[int]
    cloud: str
    def __init__(self, cloud: _Optional[str] = ...) -> None: ...

class ListAvailableInstanceTypesResponse(_message.Message):
    __slots__ = ("instance_types",)
    INSTANCE_TYPES_FIELD_NUMBER: _ClassVar[int]
    instance_types: _containers.RepeatedCompositeFieldContainer[InstanceType]
    def __init__(self, instance_types: _Optional[_Iterable[_Union[InstanceType, _Mapping]]] = ...) -> None: ...
