"""Seed rows for a fresh emulator database: images, instance types and tags.

:meth:`airflow_puddle.emulator.store.Store.seed` inserts these only into
empty tables, so a database keeps whatever it already holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_puddle.domain.clouds import ALL_CLOUDS, CLOUD_AWS, CLOUD_AZURE, CLOUD_GCP
from airflow_puddle.domain.products import PRODUCT_DAI, PRODUCT_H2O3
from airflow_puddle.domain.statuses import ImageStatuses as Image
from airflow_puddle.emulator.rows import ImageRow, InstanceTypeRow


@dataclass(frozen=True)
class SeedTag:
    """One tag definition."""

    id: str
    label: str
    default_value: str
    input_type: str
    required: bool


def image_row(cloud: str, product: str, version: str, status: int = Image.IMAGE_STATUS_AVAILABLE.code) -> ImageRow:
    return ImageRow(
        id=f"img-{cloud}-{product}-{version}",
        cloud=cloud,
        product=product,
        version=version,
        text=version,
        status=status,
    )


IMAGES: tuple[ImageRow, ...] = (
    *(
        image
        for cloud in ALL_CLOUDS
        for image in (
            image_row(cloud.id, PRODUCT_DAI.id, "1.10.6.2"),
            image_row(cloud.id, PRODUCT_DAI.id, "1.11.1"),
            image_row(cloud.id, PRODUCT_H2O3.id, "3.44.0.3"),
            image_row(cloud.id, PRODUCT_H2O3.id, "3.46.0.6"),
        )
    ),
    # One image still being built: listed, but create rejects it.
    image_row(CLOUD_AWS.id, PRODUCT_DAI.id, "1.11.2", Image.IMAGE_STATUS_BUILDING.code),
)


def _it(
    cloud: str, text: str, price: float, cu: int, gpu_count: int = 0, gpu_type: str = ""
) -> InstanceTypeRow:
    slug = text.lower().replace(".", "-").replace("_", "-")
    return InstanceTypeRow(
        id=f"it-{cloud}-{slug}", cloud=cloud, text=text, price=price, cu=cu,
        gpu_count=gpu_count, gpu_type=gpu_type,
    )


INSTANCE_TYPES: tuple[InstanceTypeRow, ...] = (
    _it(CLOUD_AWS.id, "m5.2xlarge", 0.384, 4),
    _it(CLOUD_AWS.id, "r5.4xlarge", 1.008, 8),
    _it(CLOUD_AWS.id, "p3.2xlarge", 3.06, 16, 1, "V100"),
    _it(CLOUD_AZURE.id, "Standard_D8s_v3", 0.384, 4),
    _it(CLOUD_AZURE.id, "Standard_E16s_v3", 1.008, 8),
    _it(CLOUD_AZURE.id, "Standard_NC6s_v3", 3.06, 16, 1, "V100"),
    _it(CLOUD_GCP.id, "n1-standard-8", 0.38, 4),
    _it(CLOUD_GCP.id, "n1-highmem-16", 0.95, 8),
    _it(CLOUD_GCP.id, "a2-highgpu-1g", 3.67, 16, 1, "A100"),
)

TAGS: tuple[SeedTag, ...] = (
    SeedTag("tag-team", "Team", "data-science", "text", required=True),
    SeedTag("tag-cost-center", "CostCenter", "", "number", required=False),
    SeedTag("tag-purpose", "Purpose", "", "text", required=False),
)
