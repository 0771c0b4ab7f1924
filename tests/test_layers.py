"""The layers, checked over the source (AST), no Airflow needed.

- Above the hook: only the documented puddle.client API and the adapter's extensions (``hooks/api.py``).
  What a static check cannot see (a member reached with ``getattr`` and a computed name, a member of
  the right name on the wrong class) the provider tests catch at run time, by running over the
  stand-in with ``extra.client=puddle``.
- Below it, data flows down: the domain imports nothing of the project's layers, the client and the
  emulator only the domain (and the generated protos), the hooks no private client module.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from airflow_puddle.client import async_clients, auth, clients, models
from airflow_puddle.hooks import api

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "airflow_puddle"
ABOVE_THE_HOOK = sorted([
    *PACKAGE.glob("operators/*.py"), *PACKAGE.glob("sensors/*.py"), *PACKAGE.glob("triggers/*.py"),
    *PACKAGE.glob("links/*.py"), PACKAGE / "waits.py", PACKAGE / "checks.py", *(ROOT / "example_dags").glob("*.py"),
    *PACKAGE.glob("plugins/*.py"), PACKAGE / "owners.py",
])
ALLOWED = ("airflow_puddle.hooks.api", "airflow_puddle.hooks.puddle", "airflow_puddle.hooks.user",
           "airflow_puddle.domain", "airflow_puddle.waits", "airflow_puddle.checks", "airflow_puddle.operators",
           "airflow_puddle.sensors", "airflow_puddle.triggers", "airflow_puddle.links", "airflow_puddle.plugins",
           "airflow_puddle.owners")
"""What code above the hook may import of this project: the hook, its mixin and interface module, the pure
domain, itself."""

BELOW_THE_HOOK: dict[str, tuple[str, ...]] = {
    "domain": ("airflow_puddle.domain", "airflow_puddle._proto"),
    "client": ("airflow_puddle.client", "airflow_puddle.domain", "airflow_puddle._proto"),
    "emulator": ("airflow_puddle.emulator", "airflow_puddle.domain", "airflow_puddle._proto"),
    "hooks": ("airflow_puddle.hooks", "airflow_puddle.domain", "airflow_puddle._proto",
              *(f"airflow_puddle.client.{m.stem}" for m in sorted(PACKAGE.glob("client/[!_]*.py"))),
              "airflow_puddle.client"),
}
"""What each package below the hook may import of this project: the domain is shared by the client and the
emulator, which share nothing else; the hooks use the client's public modules, never a private one
(``_ops``, ``_transport``, ``_drivers``)."""

SPEC = json.loads((ROOT / "tests" / "official" / "documented_api.json").read_text())

KNOWN_EXCEPTIONS = {
    ("example_dags/puddle_stop_idle_systems.py", "tags"):
        "the optional tag filter reads System.tags, which the documents do not have: with extra.client=puddle "
        "a tag_filter fails find_idle_systems saying so (tests/test_example_dags.py)",
}
"""(file, member) pairs allowed although neither documented nor an extension, each with why."""


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def documented_names() -> set[str]:
    """Every documented class, method, parameter-free member, property, constant and error name."""
    names: set[str] = set(SPEC["package"]["constants"]) | set(SPEC["package"]["errors"])
    for section in (SPEC["clients"], SPEC["models"], SPEC["package"]["classes"]):
        for cls, spec in section.items():
            names |= {cls, *spec.get("methods", {}), *spec.get("properties", []), *spec.get("constants", []),
                      *spec.get("nested", {})}
            for nested in spec.get("nested", {}).values():
                names |= set(nested)
    return names


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """Each import in ``path`` (also inside functions and TYPE_CHECKING blocks): line, module, names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{rel(path)}:{node.lineno}: relative import"
            found.append((node.lineno, node.module or "", [a.name for a in node.names]))
    return found


def allowed(module: str, rules: tuple[str, ...] = ALLOWED, *, exact: tuple[str, ...] = ()) -> bool:
    """Whether ``module`` is outside the project, or one of ``rules`` or under one, or one of ``exact``."""
    return not module.startswith("airflow_puddle") or module in exact or any(
        module == a or module.startswith(f"{a}.") for a in rules)


def below_the_hook_allowed(layer: str, module: str) -> bool:
    rules = BELOW_THE_HOOK[layer]
    if layer == "hooks":  # the client's public modules by name (exact), never one under them
        public = tuple(r for r in rules if r.startswith("airflow_puddle.client"))
        return allowed(module, tuple(r for r in rules if r not in public), exact=public)
    return allowed(module, rules)


def test_the_scan_sees_the_layers() -> None:
    assert {p.parent.name for p in ABOVE_THE_HOOK} >= {"operators", "sensors", "triggers", "links", "example_dags"}
    assert len(ABOVE_THE_HOOK) >= 10


@pytest.mark.parametrize("path", ABOVE_THE_HOOK, ids=rel)
def test_nothing_above_the_hook_imports_the_client(path: Path) -> None:
    bad = [f"{rel(path)}:{line}: {module}" for line, module, _ in imports(path) if not allowed(module)]
    # An import by name at run time would dodge the scan above.
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(
                ("airflow_puddle.client", "airflow_puddle._proto", "airflow_puddle.emulator")):
            bad.append(f"{rel(path)}:{node.lineno}: {node.value!r}")
    assert bad == [], "import Puddle names from airflow_puddle.hooks.api (or the hook), not the client"


def test_the_rule_catches_a_client_import(tmp_path: Path) -> None:
    sample = tmp_path / "op.py"
    sample.write_text("from airflow_puddle.client.models import System\nimport airflow_puddle._proto\n"
                      "from airflow_puddle.hooks.api import System as S\n")
    assert [m for _, m, _ in imports(sample) if not allowed(m)] == ["airflow_puddle.client.models",
                                                                   "airflow_puddle._proto"]


BELOW = sorted((layer, path) for layer in BELOW_THE_HOOK for path in PACKAGE.glob(f"{layer}/**/*.py"))


def test_the_scan_sees_the_layers_below_the_hook() -> None:
    assert {layer for layer, _ in BELOW} == set(BELOW_THE_HOOK)
    assert PACKAGE / "emulator" / "state.py" in {p for _, p in BELOW}
    assert "airflow_puddle.client._ops" not in BELOW_THE_HOOK["hooks"]
    assert "airflow_puddle.client.extending" in BELOW_THE_HOOK["hooks"]


@pytest.mark.parametrize(("layer", "path"), BELOW, ids=lambda v: v if isinstance(v, str) else rel(v))
def test_layers_below_the_hook_import_only_what_they_may(layer: str, path: Path) -> None:
    bad = [f"{rel(path)}:{line}: {module}" for line, module, _ in imports(path)
           if not below_the_hook_allowed(layer, module)]
    if layer in ("domain", "emulator"):  # an import by name at run time would dodge the scan above
        bad += [f"{rel(path)}:{node.lineno}: {node.value!r}" for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
                and node.value.startswith(("airflow_puddle.client", "airflow_puddle.hooks"))]
    assert bad == [], f"{layer}/ may import only {', '.join(BELOW_THE_HOOK[layer])}"


def test_the_rules_below_the_hook_catch_a_crossing() -> None:
    assert not below_the_hook_allowed("emulator", "airflow_puddle.client.models")
    assert not below_the_hook_allowed("emulator", "airflow_puddle.client")
    assert below_the_hook_allowed("emulator", "airflow_puddle.domain.errors")
    assert not below_the_hook_allowed("domain", "airflow_puddle.emulator.rows")
    assert not below_the_hook_allowed("client", "airflow_puddle.hooks.api")
    assert not below_the_hook_allowed("hooks", "airflow_puddle.client._ops")
    assert not below_the_hook_allowed("hooks", "airflow_puddle.client._transport")
    assert below_the_hook_allowed("hooks", "airflow_puddle.client.extending")
    assert below_the_hook_allowed("hooks", "airflow_puddle.client")


@pytest.mark.parametrize("path", ABOVE_THE_HOOK, ids=rel)
def test_names_taken_from_the_api_are_its_own(path: Path) -> None:
    taken = {n for _, module, names in imports(path) if module == "airflow_puddle.hooks.api" for n in names}
    assert taken <= set(api.__all__), f"not part of hooks/api.py's interface: {sorted(taken - set(api.__all__))}"


def test_the_interface_is_the_documented_api_plus_named_extensions() -> None:
    documented = documented_names()
    assert set(api.DOCUMENTED) <= documented
    assert not set(api.EXTENSIONS) & documented, "an extension that is documented is not an extension"
    assert set(api.__all__) == set(api.DOCUMENTED) | (set(api.EXTENSIONS) & set(api.__all__)) | set(api.CHECKS)
    assert all(hasattr(api, name) for name in api.__all__)


def our_members() -> set[str]:
    """Public members of our clients and models: what the provider could reach by mistake."""
    classes = [clients.SystemsClient, clients.ImagesClient, clients.InstanceTypesClient, clients.TagsClient,
               async_clients.AsyncSystemsClient, auth.Authorizer, auth.AsyncAuthorizer, models.System, models.Image,
               models.InstanceType, models.Tag, models.TagData, models.CUConsumptionInfo,
               models.SystemConsumptionInfo, models.DriverlessAIModel, models.LoginUser]
    return {name for cls in classes for name in dir(cls) if not name.startswith("_")}


def test_the_member_rule_knows_what_is_not_documented() -> None:
    forbidden = our_members() - documented_names() - set(api.EXTENSIONS)
    assert {"tags", "token_for_call", "POLL_INTERVAL_S"} & forbidden == {"tags", "token_for_call"}
    # By name: "cu" is a documented property of SystemConsumptionInfo, so `system.cu` passes this scan; the
    # run over the stand-in catches it (a system read through the official client has no cu).
    assert "cu" not in forbidden
    assert {"wait", "check", "discard", "to_dict"} & forbidden == set()


def undocumented_members(source: str) -> list[tuple[int, str]]:
    """``(line, member)`` for each ``x.member`` that is neither documented nor an extension.

    By name, not by type: ``x.tags`` counts for any ``x`` but ``self``/``cls`` (the operators' own fields).
    """
    forbidden = our_members() - documented_names() - set(api.EXTENSIONS)
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute) or node.attr not in forbidden:
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append((node.lineno, node.attr))
    return found


def test_the_member_rule_catches_an_undocumented_member() -> None:
    source = "s = hook.get_systems_client().get('x')\ns.tags\ns.to_dict()\ns.status\nself.tags\n"
    assert undocumented_members(source) == [(2, "tags")]


@pytest.mark.parametrize("path", ABOVE_THE_HOOK, ids=rel)
def test_members_used_above_the_hook_are_documented_or_extensions(path: Path) -> None:
    bad = [f"{rel(path)}:{line}: .{member}" for line, member in undocumented_members(path.read_text())
           if (rel(path), member) not in KNOWN_EXCEPTIONS]
    assert bad == [], "neither documented (tests/official/documented_api.json) nor in hooks/api.py's EXTENSIONS"


def test_known_exceptions_are_still_needed() -> None:
    for (file, member), why in KNOWN_EXCEPTIONS.items():
        assert why
        used = [n for n in ast.walk(ast.parse((ROOT / file).read_text()))
                if isinstance(n, ast.Attribute) and n.attr == member]
        assert used, f"{file} no longer uses .{member}: drop the exception"
