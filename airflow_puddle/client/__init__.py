"""The Puddle client: the documented ``puddle.client`` API over gRPC, sync and async."""

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
from airflow_puddle.domain.products import PRODUCT_DAI, PRODUCT_H2O3, Product

__all__ = [
    "CLOUD_AWS",
    "CLOUD_AZURE",
    "CLOUD_GCP",
    "PRODUCT_DAI",
    "PRODUCT_H2O3",
    "AsyncAuthorizer",
    "AsyncImagesClient",
    "AsyncInstanceTypesClient",
    "AsyncSystemsClient",
    "AsyncTagsClient",
    "Authorizer",
    "CloudProvider",
    "ImagesClient",
    "InstanceTypesClient",
    "Product",
    "RetryPolicy",
    "SystemsClient",
    "TagsClient",
]
