"""Hot reload, decided synchronously: which components switch to a new class, what state they gain or lose,
which edits are refused and why."""

from __future__ import annotations

import pytest

from lightnb import LightningFlow, LightningWork
from lightnb.core.reload import apply_plan, class_key, classes_in_use, plan_reload


def define(version: int):
    """The 'same' classes as a re-run cell defines them: new class objects with the same keys."""

    class Train(LightningWork):
        def __init__(self):
            super().__init__(parallel=True)
            self.lr = 0.1
            self.loss = None
            if version >= 2:
                self.epochs = 5   # added

        def run(self, step):
            self.loss = step * version

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.train = Train()
            self.counter = 0
            if version == 1:
                self.old_note = "bye"   # dropped in version 2
            else:
                self.message = f"v{version}"

        def run(self):
            self.counter += version

    return Root, Train


def new_classes(*classes):
    return {class_key(cls): cls for cls in classes}


def test_same_keys_match_and_unchanged_classes_are_left_alone():
    Root1, Train1 = define(1)
    Root2, Train2 = define(2)
    root = Root1()
    assert class_key(Root1) == class_key(Root2)
    assert set(classes_in_use(root)) == {class_key(Root1), class_key(Train1)}
    assert not plan_reload(root, new_classes(Root1, Train1)), "the classes in use are not an edit"


def test_a_swap_keeps_state_adds_new_defaults_and_drops_removed_attributes():
    Root1, _ = define(1)
    Root2, Train2 = define(2)
    root = Root1()
    root.counter = 41
    root.train.lr = 0.5

    plan = plan_reload(root, new_classes(Root2, Train2))

    assert not plan.refusals
    by_name = {swap.component: swap for swap in plan.swaps}
    assert by_name["root"].added == {"message": "v2"} and by_name["root"].dropped == ("old_note",)
    assert by_name["root.train"].added == {"epochs": 5} and by_name["root.train"].dropped == ()
    assert "added message='v2'; dropped old_note" in by_name["root"].describe()

    applied = apply_plan(plan, root)

    assert len(applied) == 2
    assert type(root) is Root2 and type(root.train) is Train2
    assert root.counter == 41 and root.train.lr == 0.5, "state is kept"
    assert root.message == "v2" and root.train.epochs == 5
    assert not hasattr(root, "old_note")
    root.run()
    assert root.counter == 43, "the new run() runs"
    with pytest.raises(AttributeError, match="not defined in __init__"):
        root.undeclared = 1  # still sealed after the swap


def test_a_flow_class_that_became_a_work_is_refused_and_nothing_changes():
    Root1, Train1 = define(1)
    root = Root1()

    class Train(LightningFlow):  # the work class, redefined as a flow
        def run(self):
            pass

    Train.__qualname__ = Train1.__qualname__
    Train.__module__ = Train1.__module__
    plan = plan_reload(root, new_classes(Train))

    assert plan.swaps == []
    assert [r.component for r in plan.refusals] == ["root.train"]
    assert "was a LightningWork" in plan.refusals[0].reason and "LightningFlow" in plan.refusals[0].reason
    apply_plan(plan, root)
    assert type(root.train) is Train1


def test_an_init_that_fails_is_refused_naming_the_class():
    Root1, Train1 = define(1)
    root = Root1()

    class Train(LightningWork):
        def __init__(self):
            super().__init__()
            raise ValueError("typo in the new __init__")

        def run(self):
            pass

    Train.__qualname__ = Train1.__qualname__
    plan = plan_reload(root, new_classes(Train))

    assert plan.swaps == [] and len(plan.refusals) == 1
    message = plan.refusals[0].describe()
    assert "root.train" in message and "__init__ failed: ValueError: typo in the new __init__" in message


def test_a_new_child_component_is_refused():
    Root1, Train1 = define(1)
    root = Root1()

    class Root(LightningFlow):
        def __init__(self):
            super().__init__()
            self.train = Train1()
            self.extra = Train1()
            self.counter = 0

        def run(self):
            pass

    Root.__qualname__ = Root1.__qualname__
    plan = plan_reload(root, new_classes(Root))
    assert [r.component for r in plan.refusals] == ["root"]
    assert "child components (extra)" in plan.refusals[0].reason


def test_required_init_arguments_come_from_the_running_components_attributes():
    class Scaled(LightningWork):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def run(self):
            pass

    work = Scaled(3)

    class Scaled2(LightningWork):  # noqa: N801 - the edited Scaled
        def __init__(self, factor, offset=1):
            super().__init__()
            self.factor = factor
            self.offset = offset

        def run(self):
            pass

    Scaled2.__qualname__ = Scaled.__qualname__
    plan = plan_reload(work, new_classes(Scaled2))
    assert plan.swaps[0].added == {"offset": 1}

    class Scaled3(LightningWork):  # noqa: N801 - needs an argument nothing provides
        def __init__(self, factor, scale):
            super().__init__()
            self.factor = factor

        def run(self):
            pass

    Scaled3.__qualname__ = Scaled.__qualname__
    plan = plan_reload(work, new_classes(Scaled3))
    assert plan.swaps == [] and "needs the argument 'scale'" in plan.refusals[0].reason


def test_a_child_passed_to_init_stays_in_its_place():
    Root1, Train1 = define(1)

    class Holder(LightningFlow):
        def __init__(self, train):
            super().__init__()
            self.train = train

        def run(self):
            pass

    holder = Holder(Train1())

    class Holder2(LightningFlow):  # noqa: N801
        def __init__(self, train):
            super().__init__()
            self.train = train
            self.note = "new"

        def run(self):
            pass

    Holder2.__qualname__ = Holder.__qualname__
    plan = plan_reload(holder, new_classes(Holder2))
    assert plan.swaps and plan.swaps[0].added == {"note": "new"}
    assert holder.train._parent is holder and holder.train.name == "root.train"


def define_lazy(version: int):
    class Serve(LightningWork):
        def run(self):
            pass

    class Lazy(LightningFlow):
        def __init__(self):
            super().__init__()
            self.server = None  # made in run(), as reference apps do
            self.version = version

        def run(self):
            if self.server is None:
                self.server = Serve()

    return Lazy, Serve


def test_a_child_made_onto_a_placeholder_and_a_works_url_survive_a_reload():
    Lazy1, _ = define_lazy(1)
    Lazy2, Serve2 = define_lazy(2)
    root = Lazy1()
    root.run()
    root.server.url = "http://127.0.0.1:8000"  # what a serving work sets where it runs
    plan = plan_reload(root, new_classes(Lazy2, Serve2))
    assert not plan.refusals, plan.refusals
    apply_plan(plan, root)
    assert type(root) is Lazy2 and type(root.server) is Serve2
    assert root.server.url == "http://127.0.0.1:8000"
