"""The Puddle page: an Airflow plugin that shows every running Puddle system, its cost and its owner run.

The provider lists :class:`PuddlePlugin` in ``get_provider_info()["plugins"]`` and as an
``airflow.plugins`` entry point (Airflow loads providers' plugins only with
``[core] lazy_discover_providers = False``; the entry point loads it by default). It mounts the
page's app at ``/puddle`` (``fastapi_apps``) and adds a top-level "Puddle" entry to the UI's
navigation (``external_views``) that opens the page inside the Airflow UI.

Every Airflow process imports this module (the plugins manager loads plugins for macros and
listeners in workers too), so it stays light: the app, FastAPI and the core API's security
module are imported on the first request the API server routes to ``/puddle``.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_puddle.plugins.paths import URL_PREFIX, base_path


class LazyApp:
    """An ASGI app that builds the page's FastAPI app (:func:`~airflow_puddle.plugins.app.create_app`) on first use."""

    def __init__(self) -> None:
        self._app: Any = None

    @property
    def app(self) -> Any:
        """The FastAPI app, built now if it was not yet."""
        if self._app is None:
            from airflow_puddle.plugins.app import create_app

            self._app = create_app()
        return self._app

    def reset(self) -> None:
        """Drop the app (and its snapshots): the next request builds a new one."""
        self._app = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class PuddlePlugin(AirflowPlugin):
    """The Puddle page: ``/puddle`` (HTML) and ``/puddle/api/systems`` (JSON), and its "Puddle" nav entry."""

    name = "puddle"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "Puddle"}]
    external_views = [{
        "name": "Puddle",
        "href": f"{base_path()}{URL_PREFIX}/",
        "destination": "nav",
        "url_route": "puddle",
        "icon": f"{base_path()}{URL_PREFIX}/static/puddle.svg",
    }]
