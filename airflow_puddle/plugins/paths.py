"""Where the page lives: shared by the plugin and its app, which the plugin imports only on first use."""

from __future__ import annotations

from urllib.parse import urlsplit

URL_PREFIX = "/puddle"


def base_path() -> str:
    """The path of ``[api] base_url`` (empty at the root): the Airflow UI's pages and ``/puddle`` live under it."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="/") or "/"
    path = urlsplit(base).path if base.startswith(("http://", "https://")) else base
    return path.rstrip("/")
