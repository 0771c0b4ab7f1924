"""Apache Airflow provider for Puddle: hook, operators, sensors, triggers and an emulator."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager learns about this package (entry point ``apache_airflow_provider``)."""
    from airflow_puddle.hooks.form import CONN_FIELDS, UI_FIELD_BEHAVIOUR

    integration = "Puddle"
    return {
        "package-name": "airflow-provider-puddle",
        "name": "Puddle",
        "description": "Run Driverless AI and H2O-3 systems on Puddle from Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://docs.h2o.ai/puddle/",
                "tags": ["service"],
            }
        ],
        "operators": [{"integration-name": integration, "python-modules": ["airflow_puddle.operators.puddle"]}],
        "sensors": [{"integration-name": integration, "python-modules": ["airflow_puddle.sensors.puddle"]}],
        "hooks": [{"integration-name": integration, "python-modules": ["airflow_puddle.hooks.puddle"]}],
        "triggers": [{"integration-name": integration, "python-modules": ["airflow_puddle.triggers.puddle"]}],
        "connection-types": [
            {
                "connection-type": "puddle",
                "hook-class-name": "airflow_puddle.hooks.puddle.PuddleHook",
                "hook-name": "Puddle",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "extra-links": ["airflow_puddle.links.puddle.PuddleSystemLink"],
        "plugins": [{"name": "puddle", "plugin-class": "airflow_puddle.plugins.PuddlePlugin"}],
    }
