"""Reading the documented ``puddle.client`` API out of the two reference documents.

``../shared/puddle-api/001_*.txt`` (the clients) is tidy text; ``000_*.txt`` (the models) was
scraped from HTML and is ragged: one token per line, ``¶`` marks and ``-`` separators. Both
parse into the shape of ``documented_api.json``'s ``clients`` and ``models`` sections:
``{class: {"init": [...], "methods": {name: [params]}, "properties": [...], "constants": [...],
"nested": {name: [params]}}}``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def params(signature: str) -> list[str]:
    """``(cloud, server_address=None, authorizer=None)`` -> ``["cloud", "server_address", "authorizer"]``."""
    inner = signature.strip().removeprefix("(").removesuffix(")")
    return [p.split("=", 1)[0].strip() for p in inner.split(",") if p.strip()]


def _new_class(init: list[str]) -> dict[str, Any]:
    return {"init": init, "methods": {}, "properties": [], "constants": [], "nested": {}}


def parse_clients(text: str) -> dict[str, dict[str, Any]]:
    """The client classes of ``001_*.txt``: signatures, properties and constants."""
    classes: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if m := re.fullmatch(rf"class puddle\.client\.({IDENT})(\(.*\))", line):
            current = classes.setdefault(m[1], _new_class(params(m[2])))
        elif current is None:
            continue
        elif m := re.fullmatch(rf"property ({IDENT})", line):
            current["properties"].append(m[1])
        elif m := re.fullmatch(r"([A-Z][A-Z0-9_]*) = .*", line):
            current["constants"].append(m[1])
        elif (m := re.fullmatch(rf"({IDENT})(\(.*\))", line)) and m[1] != "__init__":
            current["methods"][m[1]] = params(m[2])
    return classes


def _tokens(text: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        line = raw.replace("¶", "").strip()
        if line and line != "-":
            out.append(line)
    return out


def parse_models(text: str) -> dict[str, dict[str, Any]]:
    """The model classes of the ragged ``000_*.txt``.

    A nested status class (``class`` + a bare name) owns exactly its ``__init__`` and the
    ``code`` and ``text`` properties that follow it; then members belong to the model again.
    """
    tokens = _tokens(text)
    classes: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    nested: list[str] | None = None  # the nested class's members still to come
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok == "class" and nxt == "puddle.client.models.":
            name, sig = tokens[i + 2], tokens[i + 3].split(")")[0] + ")"
            current, nested = classes.setdefault(name, _new_class(params(sig))), None
            i += 4
            continue
        if current is None:
            i += 1
            continue
        if tok == "class" and re.fullmatch(IDENT, nxt):
            current["nested"][nxt] = params(tokens[i + 2].split(")")[0] + ")")
            nested = ["__init__", "code", "text"]
            i += 3
            continue
        if tok == "__init__" and nxt.startswith("("):
            if nested and nested[0] == "__init__":
                nested.pop(0)
            i += 2
            continue
        if tok == "property" and re.fullmatch(IDENT, nxt):
            if nested and nested[0] == nxt:
                nested.pop(0)
            else:
                current["properties"].append(nxt)
            i += 2
            continue
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", tok) and nxt.startswith("="):
            current["constants"].append(tok)
            i += 2
            continue
        i += 1
    return classes


def read_documents(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(clients, models)`` from the two documents in ``folder`` (``../shared/puddle-api``)."""
    clients = models = None
    for path in sorted(folder.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        if "class puddle.client.SystemsClient" in text:
            clients = parse_clients(text)
        elif "puddle.client.models." in text:
            models = parse_models(text)
    if clients is None or models is None:
        raise FileNotFoundError(f"{folder}: expected the clients and the models documents")
    return clients, models
