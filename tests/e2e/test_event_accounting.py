"""The reliability harness counts a try's events in its trigger log files and in the triggerers' own output."""

from __future__ import annotations

import json
from pathlib import Path

from reliability.events import FIRED, fired_events, task_folder


def _trigger_log(home: Path, folder: str, attempt: int, job: int, events: list[str]) -> None:
    path = home / "logs" / folder / f"attempt={attempt}.log.trigger.{job}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"level": "info", "event": e}) + "\n" for e in events))


def test_an_event_line_airflow_wrote_to_the_triggerers_output_counts_once_for_its_try(tmp_path: Path) -> None:
    _trigger_log(tmp_path, "dag_id=d/run_id=r/task_id=create/map_index=7", 1, 2, ["trigger starting", FIRED])
    _trigger_log(tmp_path, "dag_id=d/run_id=r/task_id=create/map_index=71", 1, 4, ["system is Started"])
    _trigger_log(tmp_path, "dag_id=d/run_id=r/task_id=wait", 2, 4, [FIRED, FIRED])
    components = tmp_path / "components"
    components.mkdir()
    (components / "triggerer-2.log").write_text(
        "2026-11-24T19:44:04.415561Z [info     ] Trigger fired event            [airflow.jobs.triggerer_job_runner] "
        "dag_id=d loc=triggerer_job_runner.py:1046 map_index=71 name='d/r/create/71/1 (ID 72)' "
        "result=\"TriggerEvent<{'status': 'success'}>\" run_id=r task_id=create try_number=1\n"
        "2026-11-24T19:44:04.416223Z [info     ] trigger completed              [airflow.jobs.triggerer_job_runner] "
        "dag_id=d name='d/r/create/7/1 (ID 9)'\n")
    (components / "scheduler.log").write_text("Trigger fired event name='d/r/create/7/1 (ID 9)'\n")

    tries = fired_events(tmp_path)

    assert set(tries) == {("d", "r", "create", 7, 1), ("d", "r", "create", 71, 1), ("d", "r", "wait", -1, 2)}
    own, moved = tries[("d", "r", "create", 7, 1)], tries[("d", "r", "create", 71, 1)]
    twice = tries[("d", "r", "wait", -1, 2)]
    assert (own.events, own.jobs, own.in_triggerer_output) == (1, {2}, 0)
    assert (moved.events, moved.jobs, moved.in_triggerer_output) == (1, {4}, 1)
    assert (twice.events, twice.in_triggerer_output) == (2, 0)


def test_task_folder_is_where_airflow_writes_a_mapped_and_an_unmapped_task(tmp_path: Path) -> None:
    _trigger_log(tmp_path, "dag_id=d/run_id=r/task_id=create/map_index=7", 1, 2, [FIRED])
    _trigger_log(tmp_path, "dag_id=d/run_id=r/task_id=wait", 1, 2, [FIRED])
    assert (task_folder(tmp_path, "d", "r", "create", 7) / "attempt=1.log.trigger.2.log").is_file()
    assert (task_folder(tmp_path, "d", "r", "wait", -1) / "attempt=1.log.trigger.2.log").is_file()
