"""The Puddle page through Airflow's own API app (``create_app``: the plugin mounted, the real auth manager).

Systems come from DAG runs (``dag.test()``) and a client on the test's emulator; the page polls
it over real gRPC. Tokens are the simple auth manager's JWTs, as the UI's login makes them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_puddle.client import CLOUD_AWS, Authorizer, InstanceTypesClient, SystemsClient
from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY
from airflow_puddle.emulator.server import EmulatorServer
from airflow_puddle.plugins import PuddlePlugin
from tests.conftest import Admin, connection_json, load_dag

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.airflow]

ROW_FIELDS = {"id", "name", "product", "version", "status", "instance_type", "gpu", "gpu_count", "gpu_type",
              "current_session_cost", "total_cost", "idle_timeout", "idle_timeout_minutes", "url", "stops_in",
              "owner"}
DAG_ID = "page_owner"
DAG = f'''
import pendulum
from airflow.sdk import DAG
from airflow_puddle.operators.puddle import PuddleCreateSystemOperator

GPU = dict(product="dai", version="1.11.1", instance_type_name="p3.2xlarge", tags={{"Team": "ml"}}, poll_interval=0.05)
with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    PuddleCreateSystemOperator(task_id="create", name="page-gpu", idle_interval=23, **GPU)
    PuddleCreateSystemOperator.partial(task_id="mapped", idle_interval=60, **GPU).expand(name=["page-mapped"])
'''


@pytest.fixture(scope="module")
def api_app() -> Iterator[Any]:
    """Airflow's API app (core), as ``airflow api-server`` builds it, with users admin and viewer."""
    env = {"AIRFLOW__API_AUTH__JWT_SECRET": "page-tests-" + "0" * 64,
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,op:op,viewer:viewer"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from airflow.api_fastapi.app import create_app

    yield create_app(apps="core")
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def token(role: str) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=role, role=role)))


@pytest.fixture
def page(api_app: Any, puddle_conn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client of the API app; ``puddle_default`` on the test's emulator, ``puddle_down`` on a closed port."""
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW_CONN_PUDDLE_DOWN", connection_json("http://127.0.0.1:1"))
    lazy = PuddlePlugin.fastapi_apps[0]["app"]
    lazy.reset()  # a fresh board: no snapshot of an earlier test's emulator
    with TestClient(api_app) as client:
        client.lazy = lazy
        yield client
    lazy.reset()


def get_systems(page: Any, role: str = "admin") -> dict[str, Any]:
    resp = page.get("/puddle/api/systems", headers={"Authorization": f"Bearer {token(role)}"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def by_conn(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["conn_id"]: c for c in body["connections"]}


@pytest.fixture
def client(emulator: EmulatorServer) -> SystemsClient:
    return SystemsClient(CLOUD_AWS, authorizer=Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY))


def test_the_provider_registers_the_plugin_and_airflow_loads_it() -> None:
    from airflow import plugins_manager
    from airflow.providers_manager import ProvidersManager

    from airflow_puddle import get_provider_info

    assert get_provider_info()["plugins"] == [{"name": "puddle", "plugin-class": "airflow_puddle.plugins.PuddlePlugin"}]
    assert "airflow_puddle.plugins.PuddlePlugin" in {p.plugin_class for p in ProvidersManager().plugins}
    loaded = {p.name: p for p in plugins_manager._get_plugins()[0]}
    assert loaded["puddle"].fastapi_apps[0]["url_prefix"] == "/puddle"
    view = loaded["puddle"].external_views[0]
    assert (view["name"], view["destination"], view["url_route"], view["href"]) == ("Puddle", "nav", "puddle",
                                                                                    "/puddle/")


def test_without_a_user_everything_is_refused(page: Any) -> None:
    for path in ("/puddle/", "/puddle/api/systems"):
        assert page.get(path).status_code == 401, path
        assert page.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403, path
    page.cookies.set("_token", token("admin"))  # the cookie the UI's login sets: what the iframe sends
    html = page.get("/puddle/")
    assert html.status_code == 200 and 'src="static/page.js"' in html.text
    assert "frame-ancestors 'self'" in html.headers["content-security-policy"]
    assert page.get("/puddle/api/systems").json()["connections"]


def test_a_user_without_connection_rights_sees_nothing(page: Any, client: SystemsClient) -> None:
    from airflow_puddle.client.models import TagData

    client.create("page-hidden", product="dai", version="1.11.1", instance_type_name="m5.2xlarge",
                  tags=[TagData("Team", "ml")])
    assert get_systems(page, "viewer")["connections"] == []  # a viewer may read DAGs, not connections
    assert [s["name"] for s in by_conn(get_systems(page, "op"))["puddle_default"]["systems"]] == ["page-hidden"]


def test_systems_show_fields_costs_countdown_and_owner(page: Any, client: SystemsClient, admin: Admin) -> None:
    run = load_dag(DAG, f"{DAG_ID}.py").test()
    assert str(run.state) == "success"
    page.lazy.app.state.board.ttl_s = 0.0  # every request polls: the test moves the clock in between
    conn = by_conn(get_systems(page))["puddle_default"]
    rows = {s["name"]: s for s in conn["systems"]}
    assert set(rows) == {"page-gpu", "page-mapped"} and conn["ok"] and conn["error"] is None
    gpu = rows["page-gpu"]
    assert set(gpu) == ROW_FIELDS
    assert (gpu["product"], gpu["version"], gpu["status"], gpu["instance_type"]) == ("dai", "1.11.1", "Started",
                                                                                     "p3.2xlarge")
    assert (gpu["gpu"], gpu["gpu_count"], gpu["gpu_type"]) == (True, 1, "V100")
    assert gpu["stops_in"] == "stops in 23 min" and gpu["idle_timeout_minutes"] == 23
    assert gpu["url"] == client.get(gpu["id"]).default_url and gpu["url"].startswith("https://")
    assert conn["cu"] == {"available": client.get_cu_consumption_info().available_cu,
                          "consumed": client.get_cu_consumption_info().consumed_cu} and conn["cu"]["consumed"] > 0
    assert gpu["owner"] == {"dag_id": DAG_ID, "run_id": run.run_id, "task_id": "create", "map_index": -1,
                            "url": f"/dags/{DAG_ID}/runs/{_quoted(run.run_id)}/tasks/create"}
    mapped = rows["page-mapped"]["owner"]
    assert (mapped["task_id"], mapped["map_index"]) == ("mapped", 0)
    assert mapped["url"].endswith("/tasks/mapped/mapped/0")

    price = next(t.price for t in InstanceTypesClient(CLOUD_AWS, authorizer=client.authorizer).list_available()
                 if t.text == "p3.2xlarge")
    admin.advance_clock(1200)  # 20 minutes of the first session
    first = _row(page, "page-gpu")
    assert first["current_session_cost"] == pytest.approx(price / 3, abs=0.02)
    assert first["total_cost"] == first["current_session_cost"]
    client.stop(gpu["id"])
    client.wait_for_system_stopped(gpu["id"])
    stopped = _row(page, "page-gpu")
    assert stopped["status"] == "Stopped" and stopped["stops_in"] is None
    client.start(gpu["id"])
    client.wait_for_system_started(gpu["id"])
    admin.advance_clock(600)  # 10 minutes of a second session
    second = _row(page, "page-gpu")
    assert second["current_session_cost"] == pytest.approx(price / 6, abs=0.02)
    assert second["total_cost"] == pytest.approx(first["current_session_cost"] + second["current_session_cost"],
                                                 abs=0.02)
    client.terminate(gpu["id"])
    client.wait_for_system_terminated(gpu["id"])
    assert "page-gpu" not in {s["name"] for s in by_conn(get_systems(page))["puddle_default"]["systems"]}


def test_a_run_that_adopts_a_system_becomes_its_owner(page: Any) -> None:
    dag = load_dag(DAG, f"{DAG_ID}.py")
    first = dag.test()
    owners = {s["name"]: s["owner"] for s in by_conn(get_systems(page))["puddle_default"]["systems"]}
    assert owners["page-gpu"]["run_id"] == first.run_id
    page.lazy.reset()
    second = dag.test()  # same names, still Started: each create adopts its system
    assert str(second.state) == "success" and second.run_id != first.run_id
    owners = {s["name"]: s["owner"] for s in by_conn(get_systems(page))["puddle_default"]["systems"]}
    assert {o["run_id"] for o in owners.values()} == {second.run_id} and len(owners) == 2


def _quoted(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")


def _row(page: Any, name: str) -> dict[str, Any]:
    rows = {s["name"]: s for s in by_conn(get_systems(page))["puddle_default"]["systems"]}
    return rows[name]


def test_open_tabs_share_one_poll_per_connection(page: Any, emulator: EmulatorServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    real = emulator.backend.list_systems

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(emulator.backend, "list_systems", counted)
    tabs, bodies = 12, []
    threads = [threading.Thread(target=lambda: bodies.append(get_systems(page))) for _ in range(tabs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(bodies) == tabs and all(by_conn(b)["puddle_default"]["ok"] for b in bodies)
    assert len(calls) == 1, f"{tabs} tabs at once made {len(calls)} ListSystems"
    for _ in range(5):
        get_systems(page)  # within the poll interval: the same snapshot
    assert len(calls) == 1
    page.lazy.reset()  # a new board, whose snapshots last 0.2 s
    page.lazy.app.state.board.ttl_s = 0.2
    get_systems(page)
    time.sleep(0.3)
    get_systems(page)
    assert len(calls) == 3  # one poll per refresh once the interval has passed


def test_an_unreachable_or_slow_puddle_is_that_connections_error(page: Any, admin: Admin) -> None:
    body = by_conn(get_systems(page))
    assert body["puddle_default"]["ok"]
    down = body["puddle_down"]
    assert not down["ok"] and down["systems"] == [] and "PuddleUnavailableError" in down["error"]
    page.lazy.reset()  # a new board: no snapshot kept, 1 s per connection at most
    board = page.lazy.app.state.board
    board.ttl_s, board.timeout_s = 0.0, 1.0
    admin.set_latency("ListSystems", 5)
    try:
        started = time.monotonic()
        slow = by_conn(get_systems(page))["puddle_default"]
        took = time.monotonic() - started
    finally:
        admin.set_latency("ListSystems", 0)
    assert not slow["ok"] and slow["error"] == "Puddle did not answer within 1s"
    assert took < 4, f"the page answered after {took:.1f}s with a 1s limit per connection"


def test_no_secret_in_any_response(page: Any, client: SystemsClient) -> None:
    run = load_dag(DAG, f"{DAG_ID}.py").test()
    assert str(run.state) == "success"
    passwords = [s.password for s in client.list()]
    assert len(passwords) == 2 and all(len(p) >= 8 for p in passwords)
    page.cookies.set("_token", token("admin"))
    bodies = [page.get(p).text for p in ("/puddle/", "/puddle/api/systems", "/puddle/static/page.js",
                                         "/puddle/static/page.css")]
    bodies += [get_systems(page, role)["connections"].__repr__() for role in ("admin", "op", "viewer")]
    secrets = [DEFAULT_API_SECRET_KEY, *passwords]
    hits = [(s[:4], n) for s in secrets for n, body in enumerate(bodies) if s in body]
    assert hits == []
    rows = by_conn(get_systems(page))["puddle_default"]["systems"]
    assert len(rows) == 2 and all(set(r) == ROW_FIELDS for r in rows)  # no password, username, address or tags
