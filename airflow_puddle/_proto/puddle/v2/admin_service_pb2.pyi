from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class InjectFaultRequest(_message.Message):
    __slots__ = ("method", "code", "count", "message")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    method: str
    code: str
    count: int
    message: str
    def __init__(self, method: _Optional[str] = ..., code: _Optional[str] = ..., count: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class SetLatencyRequest(_message.Message):
    __slots__ = ("method", "seconds")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    method: str
    seconds: float
    def __init__(self, method: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class FailNextTransitionRequest(_message.Message):
    __slots__ = ("system_id", "config_upload")
    SYSTEM_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_UPLOAD_FIELD_NUMBER: _ClassVar[int]
    system_id: str
    config_upload: bool
    def __init__(self, system_id: _Optional[str] = ..., config_upload: _Optional[bool] = ...) -> None: ...

class ExpireTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AdvanceClockRequest(_message.Message):
    __slots__ = ("seconds",)
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    seconds: float
    def __init__(self, seconds: _Optional[float] = ...) -> None: ...

class ClearFaultsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CallCountsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CallCountsResponse(_message.Message):
    __slots__ = ("answered",)
    class AnsweredEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    answered: _containers.ScalarMap[str, int]
    def __init__(self, answered: _Optional[_Mapping[str, int]] = ...) -> None: ...

class AdminResponse(_message.Message):
    __slots__ = ("detail",)
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    detail: str
    def __init__(self, detail: _Optional[str] = ...) -> None: ...
