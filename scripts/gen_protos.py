"""Regenerate airflow_puddle/_proto from protos/ (``make protos``).

Generated code is never edited by hand. ``--check`` exits 1 when the checked-in
code differs from what the protos generate now (the staleness test uses
:func:`generate` the same way).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT_ROOT = ROOT / "airflow_puddle" / "_proto"
PACKAGE = "airflow_puddle._proto"
_IMPORT = re.compile(r"^from puddle\.v2 import ", re.MULTILINE)


def generate(out_root: Path) -> list[Path]:
    """Generate Python, stubs and gRPC code for every proto into ``out_root``."""
    from grpc_tools import protoc  # dev dependency only

    protos = sorted(PROTO_ROOT.rglob("*.proto"))
    out_root.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *[str(p.relative_to(PROTO_ROOT)) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    written = []
    for path in sorted(out_root.rglob("*.py*")):
        text = _IMPORT.sub(f"from {PACKAGE}.puddle.v2 import ", path.read_text())
        path.write_text(text)
        written.append(path)
    for pkg in [out_root, *[p for p in out_root.rglob("*") if p.is_dir()]]:
        init = pkg / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated from protos/; regenerate with `make protos`."""\n'
                            if pkg == out_root else "")
            written.append(init)
    return written


def snapshot(root: Path) -> dict[str, str]:
    """Map of relative path -> text for every generated file under ``root``."""
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in {".py", ".pyi"}
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "_proto"
        generate(fresh)
        if ns.check:
            if snapshot(fresh) != snapshot(OUT_ROOT):
                print("generated protobuf code is stale: run `make protos`", file=sys.stderr)
                return 1
            print("generated protobuf code is up to date")
            return 0
        if OUT_ROOT.exists():
            shutil.rmtree(OUT_ROOT)
        shutil.copytree(fresh, OUT_ROOT)
    print(f"generated {len(snapshot(OUT_ROOT))} files into {OUT_ROOT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
