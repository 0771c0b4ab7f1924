"""Cloud providers a system can run on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CloudProvider:
    """A cloud, named for people (``display_name``) and for the API (``id``)."""

    display_name: str
    cloud_id: str

    @property
    def id(self) -> str:
        """The cloud's id as the API uses it, e.g. ``aws``."""
        return self.cloud_id


CLOUD_AWS = CloudProvider("AWS", "aws")
CLOUD_AZURE = CloudProvider("Azure", "azure")
CLOUD_GCP = CloudProvider("GCP", "gcp")
ALL_CLOUDS = (CLOUD_AWS, CLOUD_AZURE, CLOUD_GCP)


def cloud_by_id(cloud_id: str) -> CloudProvider:
    """The :class:`CloudProvider` with that id; ``ValueError`` naming the choices otherwise."""
    for cloud in ALL_CLOUDS:
        if cloud.id == cloud_id:
            return cloud
    choices = ", ".join(c.id for c in ALL_CLOUDS)
    raise ValueError(f"cloud: must be one of {choices}, got {cloud_id!r}")
