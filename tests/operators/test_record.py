"""The task state store record: what is written, what a later try reads, expiry, a Clear, a missing store."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_puddle.operators.record import KEY, RETENTION, Requests


class DictStore:
    """Airflow's task state store as the operators use it: get, set with a retention, delete."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.retention: timedelta | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        self.values[key], self.retention = value, retention

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: Any, *args: Any) -> None:
        self.lines.append(msg % args)

    warning = info


def context(store: DictStore | None, *, try_number: int = 1, max_tries: int = 2) -> dict[str, Any]:
    ti = SimpleNamespace(try_number=try_number, max_tries=max_tries)
    return {"ti": ti} if store is None else {"ti": ti, "task_state_store": store}


def test_a_retry_reads_what_the_try_before_wrote() -> None:
    store = DictStore()
    first = Requests(context(store), Lines())
    assert first.current is None
    first.write("create", "", created=True, name="web")  # sent, no answer yet
    assert first.current is not None and first.current.pending
    first.write("create", "sys-1", created=True)
    first.write("start", "sys-1")  # a later step on a system it created keeps it its own
    assert store.retention == RETENTION
    retry = Requests(context(store, try_number=2), Lines())
    assert retry.current is not None
    assert (retry.current.operation, retry.current.system_id, retry.current.try_number) == ("start", "sys-1", 1)
    assert retry.owns("sys-1") and not retry.owns("sys-2")


def test_a_request_on_a_system_it_did_not_create_is_not_owned() -> None:
    store = DictStore()
    Requests(context(store), Lines()).write("restart", "sys-9")
    retry = Requests(context(store, try_number=2), Lines())
    assert retry.current is not None and retry.current.operation == "restart" and not retry.owns("sys-9")


def test_a_cleared_task_instance_starts_fresh_unless_it_keeps_its_state() -> None:
    store = DictStore()
    Requests(context(store, max_tries=2), Lines()).write("create", "sys-1", created=True)
    lines = Lines()
    # Airflow's Clear sets max_tries to try_number + retries: it no longer matches the record.
    assert Requests(context(store, try_number=3, max_tries=4), lines).current is None
    assert any("cleared: starting fresh" in line for line in lines.lines)
    kept = Requests(context(store, try_number=3, max_tries=4), Lines(), keep_task_state=True)
    assert kept.current is not None and kept.owns("sys-1")


def test_an_old_record_is_ignored() -> None:
    store = DictStore()
    Requests(context(store), Lines()).write("restart", "sys-1")
    store.values[KEY]["asked_at"] = time.time() - RETENTION.total_seconds() - 60
    lines = Lines()
    assert Requests(context(store, try_number=2), lines).current is None
    assert any("older than" in line for line in lines.lines)


def test_forget_drops_the_record() -> None:
    store = DictStore()
    requests = Requests(context(store), Lines())
    requests.write("create", "sys-1", created=True)
    requests.forget()
    assert KEY not in store.values and requests.current is None and not requests.owns("sys-1")


@pytest.mark.parametrize("raw", [
    "sys-1", ["create"], {"operation": "explode", "system_id": "x", "asked_at": 1.0},
    {"operation": "create", "system_id": 7, "asked_at": 1.0}, {"operation": "start", "system_id": "x"},
    {"operation": "start", "system_id": "x", "asked_at": True}, {"nonsense": 1},
])
def test_a_record_written_by_hand_is_ignored_with_a_warning(raw: object) -> None:
    store = DictStore()
    store.values[KEY] = raw
    lines = Lines()
    assert Requests(context(store), lines).current is None
    assert any("unreadable Puddle request record" in line for line in lines.lines)


def test_without_a_store_the_operators_say_so_and_carry_on() -> None:
    lines = Lines()
    requests = Requests(context(None), lines)
    assert requests.current is None
    requests.write("create", "sys-1", created=True)  # kept for this try only
    assert requests.owns("sys-1")
    assert lines.lines == ["Airflow's task state store is not available here: a retry after a crash finds the "
                           "system by name and does not own it"]
