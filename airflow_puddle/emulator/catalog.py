"""The catalogue: images, instance types and tags, listed and resolved for a create."""

from __future__ import annotations

from collections.abc import Sequence

from airflow_puddle.domain.clouds import ALL_CLOUDS, cloud_by_id
from airflow_puddle.domain.errors import ValidationFailedError
from airflow_puddle.domain.products import ALL_PRODUCTS
from airflow_puddle.domain.statuses import ImageStatuses, image_status_text
from airflow_puddle.emulator.rows import ImageRow, InstanceTypeRow, TagRow
from airflow_puddle.emulator.store import Store


def _choices(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "none"


def check_cloud(cloud: str, *, required: bool) -> str:
    """The cloud id; empty when not ``required`` and not given; ``ValidationFailedError`` when unknown."""
    if not cloud and not required:
        return ""
    try:
        return cloud_by_id(cloud).id
    except ValueError:
        raise ValidationFailedError(
            "cloud", f"must be one of {', '.join(c.id for c in ALL_CLOUDS)}, got {cloud!r}"
        ) from None


class Catalog:
    """Read-only views of the catalogue tables (the caller holds the lock)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def images(self, cloud: str = "") -> list[ImageRow]:
        """Every image of ``cloud`` (every cloud when empty), whatever its status."""
        return self._store.images(check_cloud(cloud, required=False))

    def instance_types(self, cloud: str = "") -> list[InstanceTypeRow]:
        """Every instance type of ``cloud`` (every cloud when empty)."""
        return self._store.instance_types(check_cloud(cloud, required=False))

    def tags(self) -> list[TagRow]:
        """Every tag definition."""
        return self._store.tags()

    def resolve_image(self, cloud: str, image_id: str, product: str, version: str) -> ImageRow:
        """The available image named by id, or by product and version (or version text)."""
        if image_id:
            image = self._store.image(image_id, cloud)
            if image is None:
                raise ValidationFailedError("image", f"unknown image id {image_id!r} for cloud {cloud}")
            if image.status != ImageStatuses.IMAGE_STATUS_AVAILABLE.code:
                status = image_status_text(image.status)
                raise ValidationFailedError("image", f"image {image_id!r} is not available (it is {status})")
            return image
        products = [p.id for p in ALL_PRODUCTS]
        if product not in products:
            raise ValidationFailedError("product", f"must be one of {', '.join(products)}, got {product!r}")
        images = self._store.images(cloud, product=product, available_only=True)
        for image in images:
            if version in (image.version, image.text):
                return image
        raise ValidationFailedError(
            "version",
            f"no available {product} image with version {version!r} for cloud {cloud}; "
            f"available: {_choices([i.version for i in images])}",
        )

    def resolve_instance_type(self, cloud: str, type_id: str, type_name: str) -> InstanceTypeRow:
        """The instance type of ``cloud`` named by id or else by name."""
        types = self._store.instance_types(cloud)
        for itype in types:
            if (type_id and itype.id == type_id) or (not type_id and itype.text == type_name):
                return itype
        if type_id:
            field, what, known = "instance_type", f"id {type_id!r}", [t.id for t in types]
        else:
            field, what, known = "instance_type_name", repr(type_name), [t.text for t in types]
        raise ValidationFailedError(
            field, f"unknown instance type {what} for cloud {cloud}; available: {_choices(known)}"
        )

    def resolve_tags(self, given: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """The system's tag values: defaults filled in, numbers checked, required tags present, empties dropped."""
        known = {t.label: t for t in sorted(self._store.tags(ok_only=True), key=lambda t: t.label)}
        values: dict[str, str] = {}
        for label, value in given:
            tag = known.get(label)
            if tag is None:
                raise ValidationFailedError("tags", f"unknown tag {label!r}; known tags: {_choices(list(known))}")
            value = value or tag.default_value
            if tag.input_type == "number" and value and not value.isdigit():
                raise ValidationFailedError("tags", f"tag {label!r} must be a number, got {value!r}")
            values[label] = value
        for label, tag in known.items():
            if tag.required and not values.get(label):
                raise ValidationFailedError("tags", f"tag {label!r} is required")
        return tuple((label, value) for label, value in values.items() if value)
