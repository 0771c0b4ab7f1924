from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class SystemStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYSTEM_STATUS_UNKNOWN: _ClassVar[SystemStatus]
    SYSTEM_STATUS_STARTED: _ClassVar[SystemStatus]
    SYSTEM_STATUS_STOPPED: _ClassVar[SystemStatus]
    SYSTEM_STATUS_FAILED: _ClassVar[SystemStatus]
    SYSTEM_STATUS_TERMINATED: _ClassVar[SystemStatus]
    SYSTEM_STATUS_INITIALIZING: _ClassVar[SystemStatus]
    SYSTEM_STATUS_STARTING: _ClassVar[SystemStatus]
    SYSTEM_STATUS_STOPPING: _ClassVar[SystemStatus]
    SYSTEM_STATUS_TERMINATING: _ClassVar[SystemStatus]
    SYSTEM_STATUS_FAILING: _ClassVar[SystemStatus]
    SYSTEM_STATUS_REBOOTING: _ClassVar[SystemStatus]
    SYSTEM_STATUS_RESTARTING_DAI: _ClassVar[SystemStatus]
    SYSTEM_STATUS_SCALING: _ClassVar[SystemStatus]
    SYSTEM_STATUS_SNAPSHOTTING: _ClassVar[SystemStatus]

class VmStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VM_STATUS_UNKNOWN: _ClassVar[VmStatus]
    VM_STATUS_WAITING: _ClassVar[VmStatus]
    VM_STATUS_PROVISIONING: _ClassVar[VmStatus]
    VM_STATUS_RUNNING: _ClassVar[VmStatus]
    VM_STATUS_STARTING: _ClassVar[VmStatus]
    VM_STATUS_DEALLOCATING: _ClassVar[VmStatus]
    VM_STATUS_DEALLOCATED: _ClassVar[VmStatus]
    VM_STATUS_TERMINATING: _ClassVar[VmStatus]
    VM_STATUS_TERMINATED: _ClassVar[VmStatus]
    VM_STATUS_WAITING_FOR_SOURCE_SNAPSHOT: _ClassVar[VmStatus]

class ProductStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRODUCT_STATUS_UNKNOWN: _ClassVar[ProductStatus]
    PRODUCT_STATUS_WAITING_FOR_VM: _ClassVar[ProductStatus]
    PRODUCT_STATUS_WAITING_FOR_PRODUCT: _ClassVar[ProductStatus]
    PRODUCT_STATUS_READY: _ClassVar[ProductStatus]
    PRODUCT_STATUS_VM_UNAVAILABLE: _ClassVar[ProductStatus]

class ConfigTomlStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONFIG_STATUS_UNKNOWN: _ClassVar[ConfigTomlStatus]
    CONFIG_STATUS_OK: _ClassVar[ConfigTomlStatus]
    CONFIG_STATUS_UPLOADING: _ClassVar[ConfigTomlStatus]
    CONFIG_STATUS_UPLOADED: _ClassVar[ConfigTomlStatus]
    CONFIG_STATUS_FAILED: _ClassVar[ConfigTomlStatus]

class ImageStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_STATUS_UNKNOWN: _ClassVar[ImageStatus]
    IMAGE_STATUS_NOT_YET_BUILT: _ClassVar[ImageStatus]
    IMAGE_STATUS_BUILDING: _ClassVar[ImageStatus]
    IMAGE_STATUS_AVAILABLE: _ClassVar[ImageStatus]
    IMAGE_STATUS_FAILED: _ClassVar[ImageStatus]
    IMAGE_STATUS_DELETING: _ClassVar[ImageStatus]
    IMAGE_STATUS_DELETED: _ClassVar[ImageStatus]

class TagStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TAG_STATUS_UNKNOWN: _ClassVar[TagStatus]
    TAG_STATUS_OK: _ClassVar[TagStatus]
    TAG_STATUS_DELETED: _ClassVar[TagStatus]
SYSTEM_STATUS_UNKNOWN: SystemStatus
SYSTEM_STATUS_STARTED: SystemStatus
SYSTEM_STATUS_STOPPED: SystemStatus
SYSTEM_STATUS_FAILED: SystemStatus
SYSTEM_STATUS_TERMINATED: SystemStatus
SYSTEM_STATUS_INITIALIZING: SystemStatus
SYSTEM_STATUS_STARTING: SystemStatus
SYSTEM_STATUS_STOPPING: SystemStatus
SYSTEM_STATUS_TERMINATING: SystemStatus
SYSTEM_STATUS_FAILING: SystemStatus
SYSTEM_STATUS_REBOOTING: SystemStatus
SYSTEM_STATUS_RESTARTING_DAI: SystemStatus
SYSTEM_STATUS_SCALING: SystemStatus
SYSTEM_STATUS_SNAPSHOTTING: SystemStatus
VM_STATUS_UNKNOWN: VmStatus
VM_STATUS_WAITING: VmStatus
VM_STATUS_PROVISIONING: VmStatus
VM_STATUS_RUNNING: VmStatus
VM_STATUS_STARTING: VmStatus
VM_STATUS_DEALLOCATING: VmStatus
VM_STATUS_DEALLOCATED: VmStatus
VM_STATUS_TERMINATING: VmStatus
VM_STATUS_TERMINATED: VmStatus
VM_STATUS_WAITING_FOR_SOURCE_SNAPSHOT: VmStatus
PRODUCT_STATUS_UNKNOWN: ProductStatus
PRODUCT_STATUS_WAITING_FOR_VM: ProductStatus
PRODUCT_STATUS_WAITING_FOR_PRODUCT: ProductStatus
PRODUCT_STATUS_READY: ProductStatus
PRODUCT_STATUS_VM_UNAVAILABLE: ProductStatus
CONFIG_STATUS_UNKNOWN: ConfigTomlStatus
CONFIG_STATUS_OK: ConfigTomlStatus
CONFIG_STATUS_UPLOADING: ConfigTomlStatus
CONFIG_STATUS_UPLOADED: ConfigTomlStatus
CONFIG_STATUS_FAILED: ConfigTomlStatus
IMAGE_STATUS_UNKNOWN: ImageStatus
IMAGE_STATUS_NOT_YET_BUILT: ImageStatus
IMAGE_STATUS_BUILDING: ImageStatus
IMAGE_STATUS_AVAILABLE: ImageStatus
IMAGE_STATUS_FAILED: ImageStatus
IMAGE_STATUS_DELETING: ImageStatus
IMAGE_STATUS_DELETED: ImageStatus
TAG_STATUS_UNKNOWN: TagStatus
TAG_STATUS_OK: TagStatus
TAG_STATUS_DELETED: TagStatus
