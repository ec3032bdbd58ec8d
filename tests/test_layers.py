"""lightnb's packages form layers, each using only those below it — so the engine can be tested, reused and
changed without the fronts, and no import cycle can creep in.

The layers, lowest first::

    core        lightnb.core.*                     components, state rules, call decisions (pure)
    runtime     lightnb.runtime.*                  where work calls execute (executors, cluster, worker)
    storage     lightnb.storage.*                  drives, paths, payloads
    app         lightnb.app                        LightningApp
    session     lightnb.session                    the apps of a kernel or process
    components  lightnb.components.*               ready-made works
                lightnb.frontend.*, lightnb.utilities.*  web frontends of flows and their AppState
    fronts      lightnb.ui.*, lightnb.magics, lightnb.cli(.*), lightnb.terminal, lightnb.appfile,
                lightnb.export, lightnb.__main__, lightnb.testing, lightnb.runners, lightnb.utilities.*
    top         lightnb (its __init__), lightnb.structures

The rule: a module may import modules of its own layer and of any layer below it, never above; core imports
nothing of lightnb outside core. One narrowing: storage uses of runtime only what code needs wherever it
runs — ``lightnb.runtime.context`` (which app, which storage root) and ``lightnb.runtime.pickling`` (how
values travel) — not the executors or the worker (runtime itself never imports storage).

Every import counts: at module level, inside functions (lazy imports), and under ``TYPE_CHECKING``.
Today's known violations are listed in KNOWN_VIOLATIONS, each with its reason; remove an entry when its
import is gone (the test says so when an entry no longer matches anything).
"""

from __future__ import annotations

import ast
from pathlib import Path

import lightnb

PACKAGE_ROOT = Path(lightnb.__file__).parent

LAYERS = ["core", "runtime", "storage", "app", "session", "components", "fronts", "top"]
RANK = {name: index for index, name in enumerate(LAYERS)}

# What storage may use of runtime (see the docstring).
STORAGE_MAY_USE = {"lightnb.runtime", "lightnb.runtime.context", "lightnb.runtime.pickling"}

# (importing module, imported module) → why it is there today. Remove entries as they get fixed. None today.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


def layer_of(module: str) -> str:
    if module in ("lightnb", "lightnb.structures"):
        return "top"
    prefixes = [
        ("lightnb.core", "core"), ("lightnb.runtime", "runtime"), ("lightnb.storage", "storage"),
        ("lightnb.app", "app"), ("lightnb.session", "session"), ("lightnb.components", "components"),
        ("lightnb.frontend", "components"), ("lightnb.utilities", "components"),
        ("lightnb.ui", "fronts"), ("lightnb.magics", "fronts"), ("lightnb.cli", "fronts"),
        ("lightnb.terminal", "fronts"), ("lightnb.appfile", "fronts"), ("lightnb.export", "fronts"),
        ("lightnb.__main__", "fronts"), ("lightnb.testing", "fronts"), ("lightnb.runners", "fronts"),
        ("lightnb.utilities", "fronts"),
    ]
    for prefix, layer in prefixes:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module} belongs to no layer: add it to tests/test_layers.py (and its docstring)")


def all_modules() -> dict[str, Path]:
    modules = {}
    for file in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = ["lightnb", *file.relative_to(PACKAGE_ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = file
    return modules


def imports_of(module: str, file: Path, known: set[str]) -> set[str]:
    """The lightnb modules ``module`` imports anywhere in its file (``from x import name``: ``x.name`` when
    that is a module, else ``x``)."""
    is_package = file.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
    return {name for name in found if name == "lightnb" or name.startswith("lightnb.")}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {module: imports_of(module, file, known) for module, file in modules.items()}


def cross_layer_imports() -> list[tuple[str, str]]:
    return sorted((module, target) for module, targets in import_graph().items() for target in targets
                  if layer_of(target) != layer_of(module))


def breaks_the_rule(module: str, target: str) -> bool:
    source, destination = layer_of(module), layer_of(target)
    if RANK[destination] > RANK[source]:
        return True
    return source == "storage" and destination == "runtime" and target not in STORAGE_MAY_USE


def test_core_imports_nothing_of_lightnb_outside_core():
    outside = [f"{module} imports {target}" for module, target in cross_layer_imports()
               if layer_of(module) == "core"]
    assert not outside, "core must stand alone (pure engine):\n  " + "\n  ".join(outside)


def test_every_import_goes_down_the_layers():
    violations = [(module, target) for module, target in cross_layer_imports() if breaks_the_rule(module, target)]
    new = [f"{module} imports {target} ({layer_of(module)} → {layer_of(target)})"
           for module, target in violations if (module, target) not in KNOWN_VIOLATIONS]
    assert not new, ("imports against the layers (see tests/test_layers.py for the rule; move the code, or "
                     "pass what is needed down instead of importing up):\n  " + "\n  ".join(new))
    fixed = sorted(set(KNOWN_VIOLATIONS) - set(violations))
    assert not fixed, ("these known violations are gone — remove them from KNOWN_VIOLATIONS in "
                       f"tests/test_layers.py: {fixed}")


def test_no_import_cycle_between_packages():
    edges: dict[str, set[str]] = {layer: set() for layer in LAYERS}
    for module, target in cross_layer_imports():
        if (module, target) not in KNOWN_VIOLATIONS:
            edges[layer_of(module)].add(layer_of(target))
    cycle = find_cycle(edges)
    assert cycle is None, "an import cycle between lightnb's packages: " + " → ".join(cycle or [])


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_checker_sees_lazy_imports_and_finds_cycles():
    # The graph above must include imports inside functions (the package's lazy import of the view is one).
    assert "lightnb.ui" in import_graph()["lightnb"]
    assert find_cycle({"app": {"fronts"}, "fronts": {"app"}}) == ["app", "fronts", "app"]
    assert find_cycle({"fronts": {"app"}, "app": {"core"}, "core": set()}) is None
    assert breaks_the_rule("lightnb.core.flow", "lightnb.app")
    assert breaks_the_rule("lightnb.storage.drive", "lightnb.runtime.dask")
    assert not breaks_the_rule("lightnb.storage.store", "lightnb.runtime.context")
    assert not breaks_the_rule("lightnb.components.scripts", "lightnb.runtime.worker")
