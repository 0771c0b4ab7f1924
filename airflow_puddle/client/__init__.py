"""The Puddle client: the documented ``puddle.client`` API over gRPC, sync and async.

As in ``puddle.client``, the errors are names of the package itself (they are defined in
:mod:`airflow_puddle.domain.errors`, which the emulator shares).
"""

from airflow_puddle.client._transport import RetryPolicy
from airflow_puddle.client.async_clients import (
    AsyncImagesClient,
    AsyncInstanceTypesClient,
    AsyncSystemsClient,
    AsyncTagsClient,
)
from airflow_puddle.client.auth import AsyncAuthorizer, Authorizer
from airflow_puddle.client.clients import (
    ImagesClient,
    InstanceTypesClient,
    SystemsClient,
    TagsClient,
)
from airflow_puddle.domain.clouds import CLOUD_AWS, CLOUD_AZURE, CLOUD_GCP, CloudProvider
from airflow_puddle.domain.errors import (
    AlreadyExistsError,
    AuthError,
    MessageTooLargeError,
    NotAnEmulatorError,
    NotFoundError,
    PreconditionFailedError,
    PuddleError,
    PuddleTimeoutError,
    PuddleUnavailableError,
    SystemFailedError,
    TlsHandshakeError,
    ValidationFailedError,
)
from airflow_puddle.domain.products import PRODUCT_DAI, PRODUCT_H2O3, Product

__all__ = [
    "CLOUD_AWS",
    "CLOUD_AZURE",
    "CLOUD_GCP",
    "PRODUCT_DAI",
    "PRODUCT_H2O3",
    "AlreadyExistsError",
    "AsyncAuthorizer",
    "AsyncImagesClient",
    "AsyncInstanceTypesClient",
    "AsyncSystemsClient",
    "AsyncTagsClient",
    "AuthError",
    "Authorizer",
    "CloudProvider",
    "ImagesClient",
    "InstanceTypesClient",
    "MessageTooLargeError",
    "NotAnEmulatorError",
    "NotFoundError",
    "PreconditionFailedError",
    "Product",
    "PuddleError",
    "PuddleTimeoutError",
    "PuddleUnavailableError",
    "RetryPolicy",
    "SystemFailedError",
    "SystemsClient",
    "TagsClient",
    "TlsHandshakeError",
    "ValidationFailedError",
]
