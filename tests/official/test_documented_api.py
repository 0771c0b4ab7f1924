"""The documented names (documented_api.json) against the documents, and the stand-in against the names.

The documents live outside the project (``../shared/puddle-api``, or ``$PUDDLE_API_DOCS``): when
they are not there, the two checks against them skip saying so; everything else runs anywhere.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_puddle.client.models import System as OurSystem
from airflow_puddle.domain import errors as our_errors
from tests.conftest import STANDIN, forget_standin
from tests.official.spec import read_documents
from tests.official.standin_build import CODE_OFFSET, OPAQUE, SPEC

ROOT = Path(__file__).resolve().parents[2]
DOCS = Path(os.environ.get("PUDDLE_API_DOCS") or ROOT.parent / "shared" / "puddle-api")


def docs_folder() -> Path:
    if not (DOCS / "README.md").is_file() or not list(DOCS.glob("*.txt")):
        pytest.skip(f"cannot check documented_api.json: the Puddle API documents are not at {DOCS} "
                    f"(set PUDDLE_API_DOCS to the puddle-api folder)")
    return DOCS


def slim(classes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The data file's form: empty members left out, ``init`` always kept."""
    return {name: {k: v for k, v in spec.items() if v or k == "init"} for name, spec in classes.items()}


def test_the_names_are_the_documented_ones() -> None:
    clients, models = read_documents(docs_folder())
    assert SPEC["clients"] == slim(clients)
    assert SPEC["models"] == slim(models)


def test_the_package_facts_are_the_readmes() -> None:
    readme = (docs_folder() / "README.md").read_text()
    package = SPEC["package"]
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", readme))
    for name, spec in package["classes"].items():
        if name not in OPAQUE:  # only named as a property's type in the documents
            assert name in words, name
        assert set(spec["init"]) | set(spec.get("methods", {})) | set(spec["properties"]) <= words, name
    assert set(package["constants"]) | set(package["errors"]) <= words
    assert "Authorizer(server_address, api_key_id=None, api_secret_key=None)" in readme


def test_the_parser_reads_what_the_documents_say() -> None:
    """The parser on a ragged sample in the models' style and a tidy one in the clients'."""
    from tests.official.spec import parse_clients, parse_models

    ragged = ("-\nclass\npuddle.client.models.\nThing\n(thing)¶ Bases:\nobject\n-\nTHING_OK\n= <x>¶\n-\nclass\n"
              "Status\n(code, text)¶\n-\n__init__\n(code, text)¶\n-\nproperty\ncode\n¶\n-\nproperty\ntext\n¶\n-\n"
              "__init__\n(thing)¶\n-\nproperty\ntext\n¶\n-\nproperty\nid\n¶\n")
    assert parse_models(ragged) == {"Thing": {"init": ["thing"], "methods": {}, "properties": ["text", "id"],
                                              "constants": ["THING_OK"], "nested": {"Status": ["code", "text"]}}}
    tidy = ("class puddle.client.ThingsClient(cloud, server_address=None)\n\nLIMIT = 5\n\n"
            "__init__(cloud, server_address=None)\n\nmake(name, size=1)\n\nproperty user\n")
    assert parse_clients(tidy) == {"ThingsClient": {"init": ["cloud", "server_address"], "methods": {
        "make": ["name", "size"]}, "properties": ["user"], "constants": ["LIMIT"], "nested": {}}}


# --------------------------------------------------------------------------- the stand-in


@pytest.fixture
def official(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(STANDIN))
    yield importlib.import_module("puddle.client")
    forget_standin()


def public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_the_stand_in_exports_exactly_the_documented_names(official: ModuleType) -> None:
    package = SPEC["package"]
    expected = {*SPEC["clients"], *(set(package["classes"]) - OPAQUE), *package["constants"], *package["errors"],
                "models"}
    assert {n for n in vars(official) if not n.startswith("__")} == expected
    assert {n for n in vars(official.models) if not n.startswith("__")} == set(SPEC["models"])
    assert not [n for n in dir(official) if n.startswith("Async")]
    with pytest.raises(AttributeError):
        official.AsyncSystemsClient  # noqa: B018


def test_each_stand_in_class_has_exactly_its_documented_members(official: ModuleType) -> None:
    sections = [(official, SPEC["clients"]), (official.models, SPEC["models"]),
                (official, {k: v for k, v in SPEC["package"]["classes"].items() if k not in OPAQUE})]
    for module, classes in sections:
        for name, spec in classes.items():
            documented = {*spec.get("methods", {}), *spec.get("properties", []), *spec.get("constants", []),
                          *spec.get("nested", {})}
            assert public(getattr(module, name)) == documented, name


def test_what_is_not_documented_raises_attribute_error(official: ModuleType, emulator: Any) -> None:
    from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

    auth = official.Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    systems = official.SystemsClient(official.CLOUD_AWS, emulator.address, auth)
    created = systems.create("standin-a", product=official.PRODUCT_DAI, version="1.11.1",
                             instance_type_name="m5.2xlarge", tags=[official.models.TagData("Team", "ml")])
    for obj, name in [(systems, "wait"), (systems, "check"), (systems, "discard"), (systems, "cloud"),
                      (created, "to_dict"), (created, "tags"), (created, "cu"), (auth, "close"),
                      (auth, "token_for_call"), (systems.user, "name"), (official.CLOUD_AWS, "cloud_id")]:
        with pytest.raises(AttributeError):
            getattr(obj, name)
    with pytest.raises(TypeError, match="timeout_s"):
        systems.wait_for_system_started(created.id, timeout_s=1)
    assert systems.wait_for_system_started(created.id) is None  # documented without a return type
    assert systems.stop(created.id) is None


def test_the_stand_in_is_not_our_client_under_another_name(official: ModuleType, emulator: Any) -> None:
    """Other status numbers (same names), its own errors, raw gRPC errors for the undocumented."""
    import grpc

    from airflow_puddle.emulator import DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY

    system_cls = official.models.System
    assert system_cls.SYSTEM_STATUS_STARTED.code == OurSystem.SYSTEM_STATUS_STARTED.code + CODE_OFFSET
    assert system_cls.SYSTEM_STATUS_STARTED.text == OurSystem.SYSTEM_STATUS_STARTED.text
    assert not issubclass(official.PreconditionFailedError, our_errors.PuddleError)
    auth = official.Authorizer(emulator.address, DEFAULT_API_KEY_ID, DEFAULT_API_SECRET_KEY)
    systems = official.SystemsClient(official.CLOUD_AWS, emulator.address, auth)
    with pytest.raises(official.ValidationFailedError, match="name"):
        systems.create("Bad_Name", product=official.PRODUCT_DAI, version="1.11.1", instance_type_name="m5.2xlarge")
    with pytest.raises(grpc.RpcError) as raised:
        systems.start("no-such-system")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert systems.get("no-such-system") is None


def test_the_data_file_is_json_the_stand_in_reads() -> None:
    path = Path(__file__).with_name("documented_api.json")
    assert json.loads(path.read_text()) == SPEC
    assert {"SystemsClient", "ImagesClient", "InstanceTypesClient", "TagsClient"} == set(SPEC["clients"])
