"""The fields of a parameters form, from a component's typed attributes, and the validation of what a
user typed — pure logic, no widgets.

A field's type comes from the attribute's annotation — on the class (``lr: float = 0.01``) or in
``__init__`` (``self.lr: float = 0.01``) — else from its current value. Supported: ``int``, ``float``,
``str``, ``bool``, choices (``Literal["adam", "sgd"]`` or a list such as ``["adam", "sgd"]``), each
optionally ``| None``; bounds come from ``Annotated[float, Interval(ge=0, le=1)]`` (annotated-types, or any
object with ``ge``/``gt``/``le``/``lt`` attributes) or from ``ranges={"lr": (0, 1)}``.

>>> fields = form_fields(flow, ["lr", "epochs"])
>>> validate(fields, {"lr": "abc", "epochs": "3"})
({'epochs': 3}, {'lr': "'abc' is not a number"})
"""

from __future__ import annotations

import ast
import inspect
import math
import textwrap
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from ..core.component import Component
from ..core.values import describe_type, to_json

KINDS = ("int", "float", "str", "bool", "choice")


@dataclass(frozen=True)
class Field:
    """One form field: an attribute's name, kind (``int``, ``float``, ``str``, ``bool``, ``choice``),
    choices, bounds and whether it may be left empty (``None``)."""

    name: str
    kind: str
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive: tuple[bool, bool] = (False, False)
    nullable: bool = False
    doc: str = field(default="", compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "choices": list(self.choices), "min": self.minimum,
                "max": self.maximum, "exclusive": list(self.exclusive), "nullable": self.nullable}


def form_fields(component: Component, names: list[str] | None = None, *,
                ranges: dict[str, tuple[float | None, float | None]] | None = None,
                choices: dict[str, list[Any]] | None = None) -> list[Field]:
    """The fields for ``names`` (default: every attribute of a supported type). A name that is not a state
    attribute, or whose type no field can edit, raises naming it."""
    _check_arguments(names, ranges, choices)
    values = component._public_values()
    annotations = _annotations(type(component))
    fields: list[Field] = []
    for name in names if names is not None else list(values):
        if name not in values:
            known = ", ".join(values) or "none"
            raise AttributeError(f"{component.name} has no state attribute {name!r} to put in a form "
                                 f"(its attributes: {known})")
        made = _field(name, annotations.get(name), values[name], (choices or {}).get(name))
        if made is None:
            if names is None:
                continue
            raise TypeError(f"{component.name}.{name} holds {describe_type(to_json(values[name]))}: a form edits int, "
                            "float, str, bool and choices (Literal or a list annotation) only")
        low, high = (ranges or {}).get(name, (None, None))
        if low is not None or high is not None:
            made = Field(made.name, made.kind, made.choices, low, high, (False, False), made.nullable)
        fields.append(made)
    return fields


def _check_arguments(names: Any, ranges: Any, choices: Any) -> None:
    """Arguments of the wrong shape, refused with what was expected (before they are misread)."""
    if names is not None:
        if isinstance(names, str) or not isinstance(names, (list, tuple)):
            example = f"[{names!r}]" if isinstance(names, str) else "['lr', 'epochs']"
            raise TypeError(f"ParamsForm names: expected a list of attribute names such as {example}, not "
                            f"{type(names).__name__} {names!r:.60}")
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"ParamsForm names: each must be an attribute name (a str), not "
                                f"{type(name).__name__} {name!r:.60}")
    if ranges is not None:
        if not isinstance(ranges, dict):
            raise TypeError(f"ParamsForm ranges: expected a dict of attribute name to (low, high), such as "
                            f"{{'lr': (0, 1)}}, not {type(ranges).__name__} {ranges!r:.60}")
        for name, bounds in ranges.items():
            pair = isinstance(bounds, (tuple, list)) and len(bounds) == 2
            if not pair or not all(b is None or (isinstance(b, (int, float)) and not isinstance(b, bool))
                                   for b in bounds):
                raise TypeError(f"ParamsForm ranges[{name!r}]: expected (low, high) — two numbers, or None for "
                                f"no bound, such as (0, 1) or (0, None) — not {type(bounds).__name__} "
                                f"{bounds!r:.60}")
    if choices is not None:
        if not isinstance(choices, dict):
            raise TypeError(f"ParamsForm choices: expected a dict of attribute name to a list of choices, such "
                            f"as {{'optimizer': ['adam', 'sgd']}}, not {type(choices).__name__} {choices!r:.60}")
        for name, options in choices.items():
            if isinstance(options, str) or not isinstance(options, (list, tuple)) or not options:
                raise TypeError(f"ParamsForm choices[{name!r}]: expected a non-empty list of choices such as "
                                f"['adam', 'sgd'], not {type(options).__name__} {options!r:.60}")


def current_values(component: Component, fields: list[Field]) -> dict[str, Any]:
    return {f.name: to_json(component.__dict__.get(f.name)) for f in fields}


def validate(fields: list[Field], raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse what the browser sent: ``(values to set, errors by field name)``. Unknown names are errors;
    names left out are not set."""
    by_name = {f.name: f for f in fields}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, text in raw.items():
        spec = by_name.get(name)
        if spec is None:
            errors[str(name)] = f"{name!r} is not a field of this form"
            continue
        try:
            values[name] = parse(spec, text)
        except ValueError as error:
            errors[name] = str(error)
    return values, errors


def parse(spec: Field, raw: Any) -> Any:
    """The value of ``raw`` (a string typed, a checkbox's bool, a chosen option) for ``spec``;
    ``ValueError`` saying what is wrong."""
    if spec.nullable and (raw is None or (isinstance(raw, str) and not raw.strip())):
        return None
    if spec.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"true", "1", "yes", "on"}:
            return True
        if text in {"false", "0", "no", "off"}:
            return False
        raise ValueError(f"{raw!r} is not true or false")
    if spec.kind == "choice":
        if raw in spec.choices:
            return next(choice for choice in spec.choices if choice == raw)
        options = ", ".join(repr(choice) for choice in spec.choices)
        raise ValueError(f"{raw!r} is not one of {options}")
    if spec.kind == "str":
        if raw is None:
            raise ValueError("a text is required")
        return str(raw)
    number = _number(spec.kind, raw)
    _check_bounds(spec, number)
    return number


def _number(kind: str, raw: Any) -> int | float:
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"{raw!r} is not a number")
    text = str(raw).strip()
    if not text:
        raise ValueError("a number is required")
    try:
        number = float(text) if kind == "float" else _integer(text)
    except ValueError:
        raise ValueError(f"{text!r} is not {'a number' if kind == 'float' else 'a whole number'}") from None
    if kind == "float" and not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    return number


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if math.isfinite(number) and number.is_integer():
            return int(number)
        raise


def _check_bounds(spec: Field, number: float) -> None:
    low_open, high_open = spec.exclusive
    if spec.minimum is not None and (number < spec.minimum or (low_open and number == spec.minimum)):
        raise ValueError(f"{number} is below the minimum {spec.minimum}" + (" (excluded)" * low_open))
    if spec.maximum is not None and (number > spec.maximum or (high_open and number == spec.maximum)):
        raise ValueError(f"{number} is above the maximum {spec.maximum}" + (" (excluded)" * high_open))


# -- types ----------------------------------------------------------------------------------------------
def _field(name: str, annotation: Any, value: Any, choices: list[Any] | None) -> Field | None:
    if choices is not None:
        return Field(name, "choice", tuple(choices))
    if annotation is None:
        return _from_value(name, value)
    return _from_annotation(name, annotation) or _from_value(name, value)


def _from_value(name: str, value: Any) -> Field | None:
    for kind, cls in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if type(value) is cls:
            return Field(name, kind)
    return None


def _from_annotation(name: str, annotation: Any) -> Field | None:
    low = high = None
    exclusive = [False, False]
    nullable = False
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *metadata = typing.get_args(annotation)
        for meta in metadata:
            for attr, is_low, is_open in (("ge", True, False), ("gt", True, True), ("le", False, False),
                                          ("lt", False, True)):
                bound = getattr(meta, attr, None)
                if isinstance(bound, (int, float)):
                    if is_low:
                        low, exclusive[0] = bound, is_open
                    else:
                        high, exclusive[1] = bound, is_open
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        nullable = len(members) < len(typing.get_args(annotation))
        if len(members) != 1:
            return None
        annotation = members[0]
        origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return Field(name, "choice", typing.get_args(annotation), nullable=nullable)
    if isinstance(annotation, (list, tuple)) and annotation:
        return Field(name, "choice", tuple(annotation), nullable=nullable)
    kinds = {bool: "bool", int: "int", float: "float", str: "str"}
    if annotation in kinds:
        return Field(name, kinds[annotation], (), low, high, (exclusive[0], exclusive[1]), nullable)
    return None


def _annotations(cls: type) -> dict[str, Any]:
    """Attribute annotations of a component class: class-level ones and ``self.x: T`` in ``__init__``
    (base classes first, so a subclass wins)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("lightnb.core") or klass is object:
            continue
        namespace = vars(inspect.getmodule(klass)) if inspect.getmodule(klass) else {}
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            found[name] = _evaluate(annotation, namespace)
        init = vars(klass).get("__init__")
        if init is not None:
            found.update(_init_annotations(init))
    return {name: value for name, value in found.items() if value is not None}


def _init_annotations(init: Any) -> dict[str, Any]:
    try:
        source = textwrap.dedent(inspect.getsource(init))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return {}
    found = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Attribute)
                and isinstance(node.target.value, ast.Name) and node.target.value.id == "self"):
            found[node.target.attr] = _evaluate(ast.unparse(node.annotation), init.__globals__)
    return found


def _evaluate(annotation: Any, namespace: dict[str, Any]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, {"typing": typing, **namespace})  # an annotation the user wrote
    except Exception:
        return None
