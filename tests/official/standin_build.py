"""Builds the stand-in ``puddle.client`` from our own client, exposing only the documented names.

``tests/official/standin/puddle/client`` calls :func:`populate`; ``documented_api.json`` says
what exists. Every class is a thin wrapper over ours with exactly the documented methods (and
parameters), properties and constants; any other name raises ``AttributeError``, there are no
async twins, and a call with an undocumented parameter raises ``TypeError``. What makes it a
fair stand-in for H2O's package rather than our client under another name:

- its status codes are ours plus :data:`CODE_OFFSET`: the documents name the statuses but not
  their numbers, so the provider must translate by name;
- it raises its own documented error classes (not ours), and a raw ``grpc.RpcError`` for
  anything the documents do not name (a missing system, an unavailable backend);
- its calls that change a system return nothing (the documents give them no return type),
  and nothing in it is async.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc

from airflow_puddle.client import auth as our_auth
from airflow_puddle.client import clients as our_clients
from airflow_puddle.client import models as our_models
from airflow_puddle.domain import clouds as our_clouds
from airflow_puddle.domain import errors as our_errors
from airflow_puddle.domain import products as our_products
from airflow_puddle.domain.statuses import BaseStatus

SPEC: dict[str, Any] = json.loads((Path(__file__).parent / "documented_api.json").read_text())
CODE_OFFSET = 100
"""Their status code = ours + this; the documented constant NAMES are what the two share."""
STATUS_PROPERTIES = {"System": {"status", "vm_status", "product_status", "config_status", "config_toml_status"},
                     "Image": {"status_code"}, "Tag": {"status"}}
OPAQUE = {"LoginUser", "Snapshot"}
"""Documented only as the type of a property: the stand-in returns them, with no properties, and exports neither."""
RETURNS_NOTHING = {"fail", "start", "stop", "restart", "terminate", "refresh_idle_timeout", "update_config_toml",
                   "wait_for_config_toml_uploaded", "wait_for_system_failed", "wait_for_system_started",
                   "wait_for_system_stopped", "wait_for_system_terminated"}
"""Documented without a return type."""


class StandInRpcError(grpc.RpcError):
    """What a gRPC-based client lets through for a failure its documents do not name."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class Wrapper:
    """Base of every stand-in object: one private slot holding ours, nothing else."""

    __slots__ = ("_ours",)

    def __repr__(self) -> str:
        return f"<stand-in {type(self).__module__}.{type(self).__name__} over {self._ours!r}>"


class StandIn:
    """The stand-in's classes, built once per process."""

    def __init__(self) -> None:
        self.errors = {name: type(name, (Exception,), {"__module__": "puddle.client"})
                       for name in SPEC["package"]["errors"]}
        self.classes: dict[str, type] = {}
        self.by_ours: dict[type, type] = {}
        self._build_models()
        self._build_package()
        self._build_clients()

    # ------------------------------------------------------------------ conversions

    def theirs(self, value: Any) -> Any:
        """Ours -> theirs (models, lists, the user); plain values as they are."""
        if isinstance(value, list):
            return [self.theirs(v) for v in value]
        cls = self.by_ours.get(type(value))
        if cls is not None:
            obj = object.__new__(cls)
            obj._ours = value
            return obj
        return value

    def ours(self, value: Any) -> Any:
        """Theirs -> ours, for arguments."""
        if isinstance(value, list):
            return [self.ours(v) for v in value]
        return value._ours if isinstance(value, Wrapper) else value

    def error(self, exc: BaseException) -> BaseException:
        """Our error as the stand-in raises it: a documented class, a TimeoutError, or a raw RpcError."""
        for ours, name in ((our_errors.ValidationFailedError, "ValidationFailedError"),
                           (our_errors.PreconditionFailedError, "PreconditionFailedError"),
                           (our_errors.SystemFailedError, "SystemFailedError"),
                           (our_errors.AuthError, "AuthError")):
            if isinstance(exc, ours):
                return self.errors[name](str(exc))
        if isinstance(exc, our_errors.PuddleTimeoutError):
            return TimeoutError(str(exc))
        if isinstance(exc, our_errors.PuddleError):
            return StandInRpcError(exc.code, str(exc))
        return exc

    def call(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return fn(**{k: self.ours(v) for k, v in kwargs.items()})
        except Exception as exc:
            mapped = self.error(exc)
            if mapped is exc:
                raise
            raise mapped from None

    # ------------------------------------------------------------------ builders

    def _status(self, name: str) -> type:
        def init(self: Any, code: int, text: str) -> None:
            self._ours = (code, text)

        return type(name, (Wrapper,), {"__slots__": (), "__init__": init, "__module__": "puddle.client.models",
                                       "code": property(lambda s: s._ours[0]),
                                       "text": property(lambda s: s._ours[1])})

    def _constant(self, owner: dict[str, type], value: Any) -> Any:
        if isinstance(value, list):
            return [self._constant(owner, v) for v in value]
        assert isinstance(value, BaseStatus), value
        return owner[type(value).__name__](value.code + CODE_OFFSET, value.text)

    def _property(self, model: str, name: str) -> property:
        offset = CODE_OFFSET if name in STATUS_PROPERTIES.get(model, ()) else 0
        return property(lambda s: self.theirs(getattr(s._ours, name)) + offset if offset
                        else self.theirs(getattr(s._ours, name)))

    def _build_models(self) -> None:
        for name, spec in SPEC["models"].items():
            ours_cls = getattr(our_models, name)
            nested = {n: self._status(n) for n in spec.get("nested", {})}
            ns: dict[str, Any] = {"__slots__": (), "__module__": "puddle.client.models", **nested}
            for const in spec.get("constants", []):
                ns[const] = self._constant(nested, getattr(ours_cls, const))
            for prop in spec.get("properties", []):
                ns[prop] = self._property(name, prop)

            def init(obj: Any, *args: Any, _ours_cls: type = ours_cls) -> None:
                obj._ours = _ours_cls(*args)

            ns["__init__"] = init
            cls = type(name, (Wrapper,), ns)
            self.classes[name], self.by_ours[ours_cls] = cls, cls

    def _simple(self, name: str, ours_cls: type, module: str) -> type:
        spec = SPEC["package"]["classes"][name]

        def init(obj: Any, *args: Any) -> None:
            obj._ours = ours_cls(*args)

        ns: dict[str, Any] = {"__slots__": (), "__module__": module, "__init__": init}
        ns.update({p: self._property(name, p) for p in spec["properties"]})
        cls = type(name, (Wrapper,), ns)
        self.classes[name], self.by_ours[ours_cls] = cls, cls
        return cls

    def _build_package(self) -> None:
        self._simple("CloudProvider", our_clouds.CloudProvider, "puddle.client")
        self._simple("Product", our_products.Product, "puddle.client")
        self._simple("LoginUser", our_models.LoginUser, "puddle.client")
        self._simple("Snapshot", our_models.Snapshot, "puddle.client.models")
        spec = SPEC["package"]["classes"]["Authorizer"]
        self.classes["Authorizer"] = self._client("Authorizer", spec, our_auth.Authorizer)
        self.constants = {c: self.theirs(getattr(our_clouds, c, None) or getattr(our_products, c))
                          for c in SPEC["package"]["constants"]}

    def _build_clients(self) -> None:
        for name, spec in SPEC["clients"].items():
            self.classes[name] = self._client(name, spec, getattr(our_clients, name))

    def _method(self, cls_name: str, name: str, params: list[str]) -> Callable[..., Any]:
        def method(obj: Any, *args: Any, **kwargs: Any) -> Any:
            if len(args) > len(params):
                raise TypeError(f"{cls_name}.{name}() takes {len(params)} arguments, got {len(args)}")
            bound = dict(zip(params, args, strict=False))
            for key, value in kwargs.items():
                if key not in params or key in bound:
                    raise TypeError(f"{cls_name}.{name}() got an unexpected or repeated argument {key!r}")
                bound[key] = value
            result = self.call(getattr(obj._ours, name), **bound)
            return None if name in RETURNS_NOTHING else self.theirs(result)

        method.__name__ = name
        return method

    def _client(self, name: str, spec: dict[str, Any], ours_cls: type) -> type:
        init_params = spec["init"]
        standin = self

        def init(obj: Any, *args: Any, **kwargs: Any) -> None:
            bound = dict(zip(init_params, args, strict=False))
            bound.update(kwargs)
            unknown = set(bound) - set(init_params)
            if unknown or len(args) > len(init_params):
                raise TypeError(f"{name}() takes {init_params}, got {sorted(unknown) or len(args)}")
            accepted = inspect.signature(ours_cls).parameters
            obj._ours = standin.call(ours_cls, **{k: v for k, v in bound.items() if k in accepted})

        ns: dict[str, Any] = {"__slots__": (), "__module__": "puddle.client", "__init__": init}
        ns.update({m: self._method(name, m, p) for m, p in spec.get("methods", {}).items()})
        ns.update({p: self._property(name, p) for p in spec.get("properties", [])})
        ns.update({c: getattr(ours_cls, c) for c in spec.get("constants", [])})
        cls = type(name, (Wrapper,), ns)
        self.by_ours[ours_cls] = cls
        return cls


_BUILT: StandIn | None = None


def populate(module: ModuleType, part: str) -> None:
    """Fill ``puddle.client`` (``part="client"``) or ``puddle.client.models`` with the documented names only."""
    global _BUILT
    if _BUILT is None:
        _BUILT = StandIn()
    built = _BUILT
    if part == "models":
        names = {n: built.classes[n] for n in SPEC["models"]}
    else:
        names = {**{n: built.classes[n] for n in (*SPEC["clients"], *SPEC["package"]["classes"])
                    if n not in OPAQUE},
                 **built.constants, **built.errors}
    keep = {k for k in vars(module) if k.startswith("__") and k.endswith("__")}
    for key in [k for k in vars(module) if k not in keep and k != "models"]:
        delattr(module, key)
    for key, value in names.items():
        setattr(module, key, value)
