"""Cloud providers a system can run on (the documented ``clouds`` module)."""

from airflow_puddle.domain.clouds import ALL_CLOUDS, CLOUD_AWS, CLOUD_AZURE, CLOUD_GCP, CloudProvider, cloud_by_id

__all__ = ["ALL_CLOUDS", "CLOUD_AWS", "CLOUD_AZURE", "CLOUD_GCP", "CloudProvider", "cloud_by_id"]
