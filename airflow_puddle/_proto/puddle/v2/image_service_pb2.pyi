from airflow_puddle._proto.puddle.v2 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Image(_message.Message):
    __slots__ = ("id", "product", "version", "text", "selected_version", "status", "cloud")
    ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SELECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_FIELD_NUMBER: _ClassVar[int]
    id: str
    product: str
    version: str
    text: str
    selected_version: str
    status: _common_pb2.ImageStatus
    cloud: str
    def __init__(self, id: _Optional[str] = ..., product: _Optional[str] = ..., version: _Optional[str] = ..., text: _Optional[str] = ..., selected_version: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.ImageStatus, str]] = ..., cloud: _Optional[str] = ...) -> None: ...

class ListAvailableImagesRequest(_message.Message):
    __slots__ = ("cloud",)
    CLOUD_FIELD_NUMBER: _ClassVar[int]
    cloud: str
    def __init__(self, cloud: _Optional[str] = ...) -> None: ...

class ListAvailableImagesResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...
