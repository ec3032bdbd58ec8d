"""Form fields from a component's typed attributes, and validation of what a user typed (no widgets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional

import pytest

from lightnb import LightningFlow
from lightnb.ui.fields import Field, form_fields, parse, validate


@dataclass
class Interval:  # what annotated-types' Interval looks like: bounds as attributes
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None


class Trainer(LightningFlow):
    momentum: Annotated[float, Interval(ge=0, lt=1)]
    optimizer: ["adam", "sgd"]  # noqa: F821, UP037 - a list annotation lists the choices

    def __init__(self):
        super().__init__()
        self.lr: float = 0.01
        self.epochs: int = 3
        self.momentum = 0.9
        self.optimizer = "adam"
        self.scheduler: Literal["cosine", "step"] = "cosine"
        self.tag = "run-1"
        self.shuffle = True
        self.seed: Optional[int] = None  # noqa: UP045 - the spelling users write
        self.history = []

    def run(self):
        pass


def _by_name(fields):
    return {field.name: field for field in fields}


def test_fields_come_from_annotations_then_values():
    fields = _by_name(form_fields(Trainer()))
    assert fields["lr"] == Field("lr", "float")
    assert fields["epochs"] == Field("epochs", "int")
    assert fields["momentum"] == Field("momentum", "float", minimum=0, maximum=1, exclusive=(False, True))
    assert fields["optimizer"] == Field("optimizer", "choice", ("adam", "sgd"))
    assert fields["scheduler"] == Field("scheduler", "choice", ("cosine", "step"))
    assert fields["tag"].kind == "str" and fields["shuffle"].kind == "bool"
    assert fields["seed"] == Field("seed", "int", nullable=True)
    assert "history" not in fields  # a list is not a form field: left out when no names are given


def test_names_ranges_and_choices_chosen_by_the_caller():
    fields = form_fields(Trainer(), ["lr", "tag"], ranges={"lr": (1e-5, 1.0)}, choices={"tag": ["a", "b"]})
    assert fields == [Field("lr", "float", minimum=1e-5, maximum=1.0), Field("tag", "choice", ("a", "b"))]


def test_bad_names_say_which_and_what_exists():
    with pytest.raises(AttributeError, match=r"root has no state attribute 'lrr'.*lr, epochs"):
        form_fields(Trainer(), ["lrr"])
    with pytest.raises(TypeError, match=r"root.history holds list: a form edits int, float, str, bool"):
        form_fields(Trainer(), ["history"])


def test_typed_text_is_checked_and_nothing_bad_passes():
    fields = form_fields(Trainer())
    values, errors = validate(fields, {"lr": "abc", "epochs": "2.5", "momentum": "1", "optimizer": "rmsprop",
                                       "seed": "", "shuffle": False, "tag": "run-2", "nope": "1"})
    assert values == {"seed": None, "shuffle": False, "tag": "run-2"}
    assert errors == {
        "lr": "'abc' is not a number",
        "epochs": "'2.5' is not a whole number",
        "momentum": "1.0 is above the maximum 1 (excluded)",
        "optimizer": "'rmsprop' is not one of 'adam', 'sgd'",
        "nope": "'nope' is not a field of this form",
    }
    assert validate(fields, {"lr": " 1e-3 ", "epochs": "4", "momentum": "0", "optimizer": "sgd"}) == (
        {"lr": 0.001, "epochs": 4, "momentum": 0.0, "optimizer": "sgd"}, {})


@pytest.mark.parametrize(("spec", "raw", "problem"), [
    (Field("x", "float"), "nan", "is not a finite number"),
    (Field("x", "float"), "", "a number is required"),
    (Field("x", "int", minimum=1), "0", "0 is below the minimum 1"),
    (Field("x", "bool"), "maybe", "'maybe' is not true or false"),
])
def test_each_kind_refuses_with_a_reason(spec, raw, problem):
    with pytest.raises(ValueError, match=problem):
        parse(spec, raw)


@pytest.mark.parametrize(("arguments", "problem"), [
    ({"names": "lr"}, "expected a list of attribute names such as ['lr'], not str 'lr'"),
    ({"names": ["lr", 3]}, "each must be an attribute name (a str), not int 3"),
    ({"names": ["lr"], "ranges": {"lr": 5}}, "ranges['lr']: expected (low, high)"),
    ({"names": ["lr"], "ranges": {"lr": (0, "1")}}, "ranges['lr']: expected (low, high)"),
    ({"names": ["lr"], "ranges": [(0, 1)]}, "ranges: expected a dict of attribute name to (low, high)"),
    ({"names": ["optimizer"], "choices": {"optimizer": "adam"}}, "choices['optimizer']: expected a non-empty list"),
])
def test_arguments_of_the_wrong_shape_say_what_was_expected(arguments, problem):
    with pytest.raises(TypeError) as refused:
        form_fields(Trainer(), **arguments)
    assert problem in str(refused.value)


def test_a_refused_form_leaves_no_noise_when_collected():
    """ipywidgets closes a widget in __del__: a ParamsForm refused in __init__ must close quietly."""
    import gc
    import sys

    from lightnb.ui import AppView, ParamsForm

    noise = []
    previous, sys.unraisablehook = sys.unraisablehook, noise.append
    try:
        with pytest.raises(TypeError, match="a list of attribute names"):
            ParamsForm(Trainer(), "lr")
        with pytest.raises(TypeError, match=r"ranges\['lr'\]"):
            ParamsForm(Trainer(), ["lr"], ranges={"lr": 5})
        with pytest.raises(TypeError, match="AppView shows a lightnb.LightningApp"):
            AppView(Trainer())
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert [f"{n.exc_type.__name__}: {n.exc_value}" for n in noise] == []
