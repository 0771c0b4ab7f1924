"""Airflow's own CLI finds the provider through its entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def airflow(*args: str) -> str:
    exe = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def json_output(*args: str) -> list[dict[str, object]]:
    """The JSON document a CLI command printed (log lines may precede it on stdout)."""
    lines = airflow(*args, "-o", "json").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("["))
    return list(json.loads("\n".join(lines[start:])))


def test_providers_get_lists_the_provider_and_its_connection_type() -> None:
    text = json.dumps(json_output("providers", "get", "airflow-provider-puddle", "--full"))
    assert "airflow-provider-puddle" in text
    assert "airflow_puddle.hooks.puddle.PuddleHook" in text
    assert '"connection-type": "puddle"' in text


def test_providers_hooks_lists_the_puddle_connection_type() -> None:
    rows = json_output("providers", "hooks")
    puddle = [r for r in rows if r.get("connection_type") == "puddle"]
    assert len(puddle) == 1
    assert puddle[0]["class"] == "airflow_puddle.hooks.puddle.PuddleHook"
    assert puddle[0]["package_name"] == "airflow-provider-puddle"
