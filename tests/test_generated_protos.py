"""The checked-in generated code must be what `make protos` makes from protos/ now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _gen_module():
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    gen = _gen_module()
    gen.generate(tmp_path / "_proto")
    fresh = gen.snapshot(tmp_path / "_proto")
    checked_in = gen.snapshot(gen.OUT_ROOT)
    assert fresh.keys() == checked_in.keys(), "generated files differ: run `make protos`"
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"stale generated code, run `make protos`: {stale}"


def test_generated_code_imports_as_a_package() -> None:
    from airflow_puddle._proto.puddle.v2 import system_service_pb2, system_service_pb2_grpc

    assert system_service_pb2.System.DESCRIPTOR.full_name == "puddle.v2.System"
    assert hasattr(system_service_pb2_grpc, "SystemServiceStub")
    text = (ROOT / "airflow_puddle/_proto/puddle/v2/system_service_pb2_grpc.py").read_text()
    assert "\nfrom puddle.v2" not in text and "\nimport puddle" not in text
